-- mizan.utf8: is a byte string valid UTF-8 (as the JSON codec requires:
-- no overlongs, no surrogates, nothing past U+10FFFF), and a printable form
-- of one that is not. Text from a URL (a percent-decoded name, a query
-- value) can be any bytes; it is checked here before it reaches JSON.
local M = {}

local byte = string.byte

-- Length of the valid sequence at i, or nil.
local function seq(s, i)
  local c = byte(s, i)
  if c < 0x80 then return 1 end
  local need, lo, hi
  if c >= 0xC2 and c <= 0xDF then need, lo, hi = 1, 0x80, 0xBF
  elseif c == 0xE0 then need, lo, hi = 2, 0xA0, 0xBF
  elseif c == 0xED then need, lo, hi = 2, 0x80, 0x9F
  elseif c >= 0xE1 and c <= 0xEF then need, lo, hi = 2, 0x80, 0xBF
  elseif c == 0xF0 then need, lo, hi = 3, 0x90, 0xBF
  elseif c >= 0xF1 and c <= 0xF3 then need, lo, hi = 3, 0x80, 0xBF
  elseif c == 0xF4 then need, lo, hi = 3, 0x80, 0x8F
  else return nil end
  for k = 1, need do
    local b = byte(s, i + k)
    if not b or b < lo or b > hi then return nil end
    lo, hi = 0x80, 0xBF
  end
  return need + 1
end

--- valid(s) -> true when s is valid UTF-8.
function M.valid(s)
  if not s:find("[\128-\255]") then return true end -- ASCII: the common case
  local i, n = 1, #s
  while i <= n do
    local k = seq(s, i)
    if not k then return false end
    i = i + k
  end
  return true
end

--- printable(s) -> s when valid; otherwise s with every byte that is not
-- part of a valid sequence written as %XX (how it came in a URL).
function M.printable(s)
  if M.valid(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local k = seq(s, i)
    if k then out[#out + 1] = s:sub(i, i + k - 1); i = i + k
    else out[#out + 1] = ("%%%02X"):format(byte(s, i)); i = i + 1 end
  end
  return table.concat(out)
end

return M
