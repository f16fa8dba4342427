-- mizan.dispatch.call: call/<name>/. Finds the function, runs the stages
-- before it (CSRF for mutations, auth, arguments), then the function itself:
-- from the cache when it is cached, with its invalidation when it is a
-- mutation (purged before the answer is written).
local core = require "mizan.core"
local json = require "mizan.json"
local errors = require "mizan.errors"
local invalidation = require "mizan.invalidation"
local cache = require "mizan.cache"
local mizan = require "mizan"
local request = require "mizan.dispatch.request"
local run = require "mizan.dispatch.run"
local csrf = require "mizan.dispatch.csrf"
local auth = require "mizan.dispatch.auth"
local args_of = require "mizan.dispatch.args"
local skew = require "mizan.dispatch.skew"

local null = json.null
local M = {}

local registry
-- How the logs name each function ("function 'x'"), made once at load so
-- no call formats a string it only needs when something fails.
local names = {}
function M.configure(reg)
  registry, names = reg, {}
  for name in pairs(reg.functions) do names[name] = ("function '%s'"):format(name) end
end

--- A runner for mizan.cache.fetch: true, the result (data, checked in dev),
-- or false, the raised error value.
function M.for_cache(spec, req, args, dev, what)
  return function()
    local ok, result = run.try_handler(spec, what, dev, req, args)
    if not ok then return false, result end
    if mizan.is_response(result) then
      local msg = ("%s returned mizan.response, but its result is cached or bundled: return data instead")
        :format(what)
      core.log("error", msg)
      return false, errors.raised("internal_error", msg)
    end
    if result == nil then result = null end
    if dev and spec.output then
      local ok2, e = pcall(run.check_output, spec, result)
      if not ok2 then return false, e end
    end
    return true, result
  end
end

-- The envelope of a call's answer: the cached value goes between the two.
local RESULT = { '{"result":', "}" }
local JSON = { ["Content-Type"] = "application/json" } -- read only, shared

local function cached_call(spec, req, args, raw_query, dev)
  local ok, text, key, state = cache.fetch(spec, req, args, M.for_cache(spec, req, args, dev, names[spec.name]))
  if not ok then error(text, 0) end
  request.set(req, "_cache", state)
  if key and req.method ~= "POST" then cache.alias("call", req.name, raw_query, req, { spec }, { key }, RESULT, spec.name) end
  return 200, RESULT[1] .. text .. RESULT[2], JSON
end

-- A mutation's invalidation record, applied to its answer: the body gets
-- "invalidate" and the header X-Mizan-Invalidate; a raw response only the header.
local function with_invalidation(spec, req, args, result, body, headers, dev)
  if not spec.affects and not rawget(req, "_invalidations") then return body, headers end
  local rec = run.app(names[spec.name] .. " (affects_params)", dev, invalidation.for_call, spec, req, args, result)
  if rec:empty() then return body, headers end
  local value, err = rec:header()
  if not value then
    core.log("error", ("function '%s': cannot encode its invalidation: %s"):format(spec.name, err))
    errors.fail("internal_error", "the invalidation could not be encoded")
  end
  local out = {}
  for k, v in pairs(headers or {}) do out[k] = v end
  out["X-Mizan-Invalidate"] = value
  if type(body) == "table" and body.result ~= nil and not mizan.is_response(result) then
    body.invalidate = rec:body()
  end
  -- purge before the answer is written: a client that refetches on it reads
  -- fresh data (a failure is noted for the mutation's task: see M.stage)
  cache.purge_record(rec)
  -- and the connected clients that asked for it hear about it too: per-user
  -- targets only the sockets of the caller's cache scope (after a logout,
  -- the user who just left; an anonymous caller's session; never every
  -- anonymous socket)
  local user = rawget(req, "_user") or rawget(req, "_caller")
  local scope = user and cache.scope_for({}, user) or cache.scope(req)
  require("mizan.channels").push_invalidation(rec:body(), scope)
  return body, out
end

-- A mutation whose purge may not have reached the cache must not answer as
-- if all were done: its effects are committed, but other instances may still
-- serve what it changed.
local function purge_failed(spec, body, headers, err)
  core.log("error", ("function '%s': its effects are committed but its cache purge failed: %s")
    :format(spec.name, tostring(err)))
  errors.fail_unavailable("the mutation's effects are committed, but the cache could not be purged: "
    .. "what it changed may read stale until the cache recovers", body, headers)
end

-- Run a non-cached function and shape its answer; a mutation's carries its
-- invalidation, purged before it is returned.
local function answer(spec, req, args, dev, mutation)
  local result = run.handler(spec, names[spec.name], dev, req, args)
  local status, body, headers = 200, nil, nil
  if mizan.is_response(result) then
    status, body, headers = result.status, result.body, result.headers
  else
    if result == nil then result = null end
    if dev and spec.output then run.check_output(spec, result) end
    body = { result = result }
  end
  if mutation then body, headers = with_invalidation(spec, req, args, result, body, headers, dev) end
  return status, body, headers
end

--- The call stage (inside the session stage).
function M.stage(req, dev)
  local name, shown = args_of.route_name(req)
  local spec = name and registry.functions[name]
  skew.check(req, "functions", spec and name)
  if not spec then errors.fail("not_found", ("no function named '%s'"):format(name or shown)) end
  request.set(req, "_label", spec.name)
  local params = args_of.query(req)
  if spec.kind == "mutation" and req.method == "POST" then csrf.check(req, "request may not call a mutation") end
  request.wrap(req)
  if spec.auth ~= nil then auth.check(spec, req, dev, names[name]) end
  local args = args_of.of_call(spec, req, params)

  local raw_query = req.query
  request.prepare(req, params)
  if spec.cache then return cached_call(spec, req, args, raw_query, dev) end
  if spec.kind ~= "mutation" then return answer(spec, req, args, dev) end
  request.set(req, "_mutation", true)
  local task = core.current_task()
  cache.watch_purges(task) -- every purge it makes, declared or by mizan.cache.purge
  -- no pcall here (it costs the hot path): when answer raises, the answer is
  -- an error anyway, and the note left on the task is reset by its next
  -- mutation's watch_purges (or goes with the task: the notes are weak-keyed)
  local status, body, headers = answer(spec, req, args, dev, true)
  local failed = cache.purge_failure(task)
  -- an error answer already says it did not all go well; a success must not lie
  if failed and status < 400 then purge_failed(spec, body, headers, failed) end
  return status, body, headers
end

return M
