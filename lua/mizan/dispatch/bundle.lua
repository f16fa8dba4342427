-- mizan.dispatch.bundle: ctx/<name>/, a context read as one unit. Every
-- function's auth is checked first (any refusal refuses it all), then the
-- params are validated for all, then each function answers (from the cache
-- when it is cached); the bundle is their JSON side by side.
local json = require "mizan.json"
local errors = require "mizan.errors"
local cache = require "mizan.cache"
local request = require "mizan.dispatch.request"
local auth = require "mizan.dispatch.auth"
local args_of = require "mizan.dispatch.args"
local call = require "mizan.dispatch.call"
local skew = require "mizan.dispatch.skew"

local M = {}

local registry
-- Per context, made once at load: how the logs name each of its functions,
-- and the envelope's bytes around their values ({"f":, ,"g": and }).
local plans = {}
function M.configure(reg)
  registry, plans = reg, {}
  for gname, group in pairs(reg.contexts) do
    local whats, segs = {}, {}
    for i, fname in ipairs(group.functions) do
      whats[i] = ("function '%s' (context '%s')"):format(fname, gname)
      segs[i] = (i == 1 and "{" or ",") .. assert(json.encode(fname)) .. ":"
    end
    segs[#group.functions + 1] = "}"
    plans[gname] = { whats = whats, segs = segs }
  end
end

local JSON = { ["Content-Type"] = "application/json" } -- read only, shared

--- The bundle stage (inside the session stage).
function M.stage(req, dev)
  local name, shown = args_of.route_name(req)
  local group = name and registry.contexts[name]
  skew.check(req, "contexts", group and name)
  if not group then errors.fail("not_found", ("no context named '%s'"):format(name or shown)) end
  request.set(req, "_label", group.name)
  if req.method ~= "GET" and req.method ~= "HEAD" then
    errors.fail("method_not_allowed", ("context '%s' is read with GET"):format(group.name), nil, { Allow = "GET, HEAD" })
  end
  request.wrap(req)
  local plan = plans[group.name]
  for i, fname in ipairs(group.functions) do
    local spec = registry.functions[fname]
    if spec.auth ~= nil then auth.check(spec, req, dev, plan.whats[i]) end
  end
  local params = args_of.query(req)
  local argsets = args_of.of_context(group, registry.functions, params)

  local raw_query = req.query
  request.prepare(req, params)
  -- A context is one unit of data: any function's error is the bundle's.
  -- Each function is cached on its own. The bytes around the values (the
  -- envelope) serve this answer and the fast-path alias.
  local n, segs = #group.functions, plan.segs
  local values, keys, all_cached, any_miss = {}, {}, true, false
  for i, fname in ipairs(group.functions) do
    local spec = registry.functions[fname]
    local runner = call.for_cache(spec, req, argsets[fname], dev, plan.whats[i])
    local ok, text, key, state
    if spec.cache then
      ok, text, key, state = cache.fetch(spec, req, argsets[fname], runner)
      if state == "miss" then any_miss = true end
    else
      ok, text = runner()
      if ok then text = assert(json.encode(text)) end
    end
    if not ok then error(text, 0) end
    keys[i] = key
    all_cached = all_cached and key ~= nil
    values[i] = text
  end
  local parts = {}
  for i = 1, n do
    parts[2 * i - 1] = segs[i]
    parts[2 * i] = values[i]
  end
  parts[2 * n + 1] = segs[n + 1]
  if all_cached then
    request.set(req, "_cache", any_miss and "miss" or "hit")
    local specs = {}
    for i, fname in ipairs(group.functions) do specs[i] = registry.functions[fname] end
    cache.alias("ctx", req.name, raw_query, req, specs, keys, segs, group.name)
  end
  return 200, table.concat(parts), JSON
end

return M
