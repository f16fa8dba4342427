-- mizan.cron: five-field cron strings ("*/5 * * * *"), read in UTC.
--   minute hour day-of-month month day-of-week (0 or 7 = Sunday)
-- Each field: *, N, A-B, */S, A-B/S, or a comma list of those. As in
-- classic cron, when both day fields are restricted a day matching either
-- one matches.
local M = {}

local FIELDS = {
  { name = "minute", min = 0, max = 59 },
  { name = "hour", min = 0, max = 23 },
  { name = "day of month", min = 1, max = 31 },
  { name = "month", min = 1, max = 12 },
  { name = "day of week", min = 0, max = 7 },
}

local function parse_field(text, f)
  local set, any = {}, text == "*"
  for part in (text .. ","):gmatch("([^,]*),") do
    local range, step = part:match("^([^/]+)/(%d+)$")
    range, step = range or part, tonumber(step) or 1
    local a, b
    if range == "*" then
      a, b = f.min, f.max
    else
      a, b = range:match("^(%d+)%-(%d+)$")
      if not a then a = range:match("^(%d+)$"); b = a end
      a, b = tonumber(a), tonumber(b)
      if not a then return nil, ("%s: '%s' is not *, N, A-B or */S"):format(f.name, part) end
    end
    if a < f.min or b > f.max or a > b or step < 1 then
      return nil, ("%s: '%s' is outside %d-%d"):format(f.name, part, f.min, f.max)
    end
    for v = a, b, step do set[v] = true end
  end
  if f.max == 7 and set[7] then set[0] = true end
  return { set = set, any = any }
end

--- Parse a cron string: a matcher, or nil and what is wrong.
function M.parse(s)
  if type(s) ~= "string" then return nil, "must be a string like \"*/5 * * * *\"" end
  local parts = {}
  for w in s:gmatch("%S+") do parts[#parts + 1] = w end
  if #parts ~= 5 then return nil, ("needs 5 fields (minute hour day month weekday), got %d"):format(#parts) end
  local fields = {}
  for i, f in ipairs(FIELDS) do
    local p, err = parse_field(parts[i], f)
    if not p then return nil, err end
    fields[i] = p
  end
  return fields
end

--- Does the minute that holds `t` (epoch seconds, UTC) match?
function M.matches(fields, t)
  local d = os.date("!*t", math.floor(t))
  if not (fields[1].set[d.min] and fields[2].set[d.hour] and fields[4].set[d.month]) then return false end
  local dom, dow = fields[3], fields[5]
  local dom_ok, dow_ok = dom.set[d.day], dow.set[d.wday - 1]
  if dom.any or dow.any then return dom_ok == true and dow_ok == true end
  return dom_ok == true or dow_ok == true
end

return M
