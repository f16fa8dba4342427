-- mizan.query: application/x-www-form-urlencoded query strings.
-- A repeated key becomes a list: "a=1&a=2" -> { a = { "1", "2" } }.
local M = {}

local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
M.unescape = unescape

--- Percent-decode a path segment ('+' stays '+' in a path).
function M.unescape_path(s)
  if not s:find("%", 1, true) then return s end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function M.parse(qs)
  local out = {}
  if type(qs) ~= "string" or qs == "" then return out end
  for pair in qs:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if not k then k, v = pair, "" end
    k, v = unescape(k), unescape(v)
    local prev = out[k]
    if prev == nil then
      out[k] = v
    elseif type(prev) == "table" then
      prev[#prev + 1] = v
    else
      out[k] = { prev, v }
    end
  end
  return out
end

return M
