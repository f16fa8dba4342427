-- mizan.config: the app's settings, from mizan.config{} and the environment.
-- The environment wins, so one build runs anywhere. What the options are is
-- mizan.options; this module only applies that table.
local options = require "mizan.options"

local M = {}

local current, set_by_app

M.is_ip = options.is_ip

local function get(c, o)
  if o.group then return c[o.group][o.key] end
  return c[o.name]
end

local function put(c, o, v)
  if o.transform and v ~= nil then v = o.transform(v) end
  if o.group then c[o.group][o.key] = v else c[o.name] = v end
end

function M.reset()
  current = {}
  for _, o in ipairs(options.list) do
    if o.group and not current[o.group] then current[o.group] = {} end
    put(current, o, options.default(o.name))
  end
  set_by_app = false
end

local LUA_TYPE = { string = "string", number = "number", boolean = "boolean", list = "table" }

-- Why `v` is no valid value for `o`: nil, or a phrase (a list's bad item
-- comes back with its own phrase, flagged by the second result).
local function problem(o, v)
  if type(v) ~= LUA_TYPE[o.type] then return o.must end
  if o.type == "list" then
    for _, item in ipairs(v) do
      local bad = type(item) ~= "string" and ("'%s' is not a string"):format(tostring(item)) or o.item(item)
      if bad then return bad, true end
    end
    return nil
  end
  local bad = o.check and o.check(v)
  if bad == true then return o.must end
  return bad
end

-- The nearest known name, for "did you mean"; nil when nothing is close.
local function nearest(name, group)
  local function distance(a, b)
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
      local cur = { [0] = i }
      for j = 1, #b do
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1))
      end
      prev = cur
    end
    return prev[#b]
  end
  local best, bestd = nil, 3
  for _, o in ipairs(options.list) do
    local cand = group and (o.group == group and o.key) or (not group and (o.group or o.name))
    if cand then
      local d = distance(name, cand)
      if d < bestd then best, bestd = cand, d end
    end
  end
  return best
end

-- "file:line: " of the app code that called mizan.config: the first frame
-- outside the framework (tail calls and wrappers make a fixed level wrong).
local function app_where()
  for level = 3, 30 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and info.currentline > 0 and not info.source:find("^@?mizan/") then
      return ("%s:%d: "):format(info.short_src, info.currentline)
    end
  end
  return ""
end

local function hint(name, group)
  local near = type(name) == "string" and nearest(name, group)
  return near and (" (did you mean '%s'?)"):format(near) or ""
end

--- mizan.config { ... } from app code. Errors name the option and the app's
-- own file:line.
function M.set(t)
  local where = app_where()
  local function fail(msg) error(where .. "mizan.config: " .. msg, 0) end
  if type(t) ~= "table" then fail("expects a table") end
  if set_by_app then fail("was already called; call it once") end
  set_by_app = true
  for k, v in pairs(t) do
    local o = options.by_name[k]
    if o then
      local bad, of_item = problem(o, v)
      if bad then fail(of_item and ("%s: %s"):format(k, bad) or ("option '%s' %s"):format(k, bad)) end
      if o.type == "list" then v = { unpack(v) } end
      put(current, o, v)
    elseif type(current[k]) == "table" and not options.by_name[k] then -- a group, like limits
      if type(v) ~= "table" then fail(("option '%s' must be a table"):format(k)) end
      for sk, sv in pairs(v) do
        local so = options.by_name[k .. "." .. tostring(sk)]
        if not so then fail(("%s has no option '%s'%s"):format(k, tostring(sk), hint(sk, k))) end
        local bad = problem(so, sv)
        if bad then fail(("%s %s"):format(so.name, bad)) end
        put(current, so, sv)
      end
    else
      fail(("unknown option '%s'%s"):format(tostring(k), hint(k)))
    end
  end
end

-- An environment variable's text as a value of the option's type, or nil.
local function parse(o, s)
  if o.type == "string" then return s end
  if o.type == "number" then return tonumber(s) end
  if o.type == "boolean" then
    if s == "on" then return true elseif s == "off" then return false end
    return nil
  end
  local list = {}
  for item in s:gmatch("[^,%s]+") do list[#list + 1] = item end
  return list
end

--- The effective configuration: app settings overridden by the environment.
function M.finalize(getenv)
  getenv = getenv or os.getenv
  local c = current
  for _, o in ipairs(options.list) do
    local s = o.env and getenv(o.env)
    if s then
      local v = parse(o, s)
      if v == nil then
        error(("%s %s, got '%s'"):format(o.env, o.type == "boolean" and "must be on or off" or o.must, s), 0)
      end
      local bad, of_item = problem(o, v)
      if bad then error((of_item and "%s: %s" or "%s %s, got '%s'"):format(o.env, bad, s), 0) end
      put(c, o, v)
    end
  end
  c.cache_backend = c.cache == "memory" and "memory" or "redis"
  return c
end

function M.get() return current end

--- The fields C reads into mz_config (core/config.c), in C's units.
function M.c_view(cfg)
  local out = {}
  for _, o in ipairs(options.list) do
    if o.c then
      local v = get(cfg, o)
      if o.to_c then v = o.to_c(v, cfg) end
      out[o.c] = v
    end
  end
  return out
end

local function shown_default(o)
  local d = o.default
  if o.name == "workers" then return "one per core" end
  if type(d) == "table" then return "{}" end
  if d == nil then return "-" end
  if d == "" then return '""' end
  return tostring(d)
end

--- The options as a Markdown table, for the README (spec/e2e/config_spec
-- checks the README's copy between its options markers equals this).
function M.markdown()
  local lines = { "| option | environment | default | meaning |", "|---|---|---|---|" }
  for _, o in ipairs(options.list) do
    lines[#lines + 1] = ("| `%s` | %s | `%s` | %s |"):format(o.name, o.env and ("`" .. o.env .. "`") or "(app only)",
                                                          shown_default(o), (o.doc:gsub("|", "\\|")))
  end
  return table.concat(lines, "\n") .. "\n"
end

--- The options as text, for `mizan help config`.
function M.help_text()
  local lines = { "Options: mizan.config { name = value } in app.lua, or the environment variable",
                  "(which wins). Lists in the environment are comma-separated; switches are on/off.", "" }
  for _, o in ipairs(options.list) do
    lines[#lines + 1] = ("  %-26s %-26s %-16s %s"):format(o.name, o.env or "(app only)", shown_default(o), o.doc)
  end
  return table.concat(lines, "\n") .. "\n"
end

--- `mizan help config [--markdown]`: print the options.
function M.print_help(format)
  io.stdout:write(format == "--markdown" and M.markdown() or M.help_text())
  return 0
end

M.reset()
return M
