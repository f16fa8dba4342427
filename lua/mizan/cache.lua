-- mizan.cache: the origin cache's decisions (DESIGN §4). The storage, the
-- version slots and the fast path are C (core/cache*.c); here: keys, tags,
-- scopes, single-flight, fail-closed sharing, and purging from the
-- invalidation record.
--
--   key  = hex HMAC-SHA256(secret, name .. "\n" .. canonical(params) [.. "\n" .. scope])
--   tags = "fn:<name>", and per declared param "fn:<name>|k=<canonical v>" or "fn:<name>|k!"
local core = require "mizan.core"
local cc = require "mizan.cachecore"
local crypto = require "mizan.crypto"
local json = require "mizan.json"
local errors = require "mizan.errors"

local M = {}

local secret
local backend -- memory, or redis (mizan.cache_redis)
local registry

---------------------------------------------------------------- backends
-- A backend works on an entry's tags (strings):
--   lookup(key, tags) -> value | nil, versions   (versions: a snapshot taken
--                        before the value is computed, for store)
--   store(key, value, ttl, tags, versions)
--   bump(tags) -> true | nil, err   every entry carrying one of the tags is
--                        stale; nil, err when that is not certain (the caller
--                        must not say the purge is done)
-- Other runtime failures are the backend's to absorb: the cache fails open.

local function slots_of(tags)
  local slots = {}
  for i, t in ipairs(tags) do slots[i] = cc.slot(t) end
  return slots
end

local memory = { fast_path = true }
function memory.lookup(key, tags)
  local v = cc.lookup(key)
  if v then return v end
  return nil, cc.versions(slots_of(tags))
end
function memory.store(key, value, ttl, tags, versions)
  return cc.store(key, value, ttl, slots_of(tags), versions)
end
function memory.bump(tags)
  -- the C side takes at most 64 slots a call
  for i = 1, #tags, 64 do cc.bump(slots_of { unpack(tags, i, math.min(i + 63, #tags)) }) end
  return true
end

--- Set up for a loaded app: the secret, the budget, the backend.
function M.configure(cfg, reg, mode)
  registry = reg
  secret = cfg.secret
  if not cfg.secret_configured then
    -- instances that share a Redis must agree on keys; one instance (and the
    -- workers it forks) can use a secret of its own
    if cfg.cache_backend == "redis" then
      error("MIZAN_CACHE=redis needs MIZAN_SECRET: every instance sharing the cache must use the same one "
        .. "(for example: export MIZAN_SECRET=$(openssl rand -hex 32))", 0)
    end
  end
  assert(cc.init(cfg.cache_size))
  backend = memory
  if cfg.cache_backend == "redis" then
    -- a dev reload flushes Redis too (the epoch every entry carries moves),
    -- as it does the memory backend; production starts keep the shared cache
    backend = require("mizan.cache_redis").new(cfg, { flush = mode == "development" })
  end
  cc.clear() -- a reload starts from an empty cache (the slots stay: they are shared)
end

--- The state retires (mizan.host.retire): background work of the backend stops.
function M.retire()
  if backend and backend.retire then backend.retire() end
end

--- The DESIGN §4 key. `scope` is nil for a shared entry, else what M.scope says.
function M.key(name, params, scope, key_secret)
  local msg = name .. "\n" .. assert(json.canonical(params))
  if scope then msg = msg .. "\n" .. scope end
  return crypto.hmac_sha256_hex(key_secret or secret, msg)
end

local function tag_value(v) return assert(json.canonical(v)) end

--- The tags of an entry of `spec` called with `args`.
function M.entry_tags(spec, args)
  local name = spec.name
  local tags = { "fn:" .. name }
  for _, k in ipairs(spec.input.order) do
    local v = args[k]
    tags[#tags + 1] = v == nil and ("fn:%s|%s!"):format(name, k) or ("fn:%s|%s=%s"):format(name, k, tag_value(v))
  end
  return tags
end

---------------------------------------------------------------- purge

-- The tags a purge of `target` with `params` bumps, appended to `tags`.
-- With params, each param the function declares bumps "=value" and "!"
-- (entries without it cover every value): a union, so over-purge, never under.
local function purge_tags(target, params, tags)
  local names = {}
  local group = registry.contexts[target]
  if group then
    for i, f in ipairs(group.functions) do names[i] = f end
  elseif registry.functions[target] then
    names[1] = target
  end
  for _, fname in ipairs(names) do
    local spec = registry.functions[fname]
    if spec.cache then
      local any = false
      for k, v in pairs(params or {}) do
        if spec.input.fields[k] then
          any = true
          tags[#tags + 1] = ("fn:%s|%s=%s"):format(fname, k, tag_value(v))
          tags[#tags + 1] = ("fn:%s|%s!"):format(fname, k)
        end
      end
      if not any then tags[#tags + 1] = "fn:" .. fname end
    end
  end
  return tags
end

-- The tasks of the mutations running now -> false, or the error of a purge
-- of theirs that failed: a mutation whose purge failed must not answer as if
-- it had succeeded, even when app code ignored what mizan.cache.purge said.
local watched = setmetatable({}, { __mode = "k" }) -- a task that died takes its note along

local function current_task()
  local ok, task = pcall(core.current_task)
  return ok and task or nil
end

local function bump(tags)
  if #tags == 0 then return true end
  local ok, err = backend.bump(tags)
  if ok then return true end
  local task = current_task()
  if task and watched[task] == false then watched[task] = err or "the purge failed" end
  return nil, err or "the purge failed"
end

--- Start noting the purge failures of the mutation running in `task`.
function M.watch_purges(task) watched[task] = false end

--- Stop noting them: nil when every purge of that mutation reached the
-- cache, else the error of one that did not.
function M.purge_failure(task)
  local err = watched[task]
  watched[task] = nil
  return err or nil
end

--- mizan.cache.purge(target, params): drop what `target` (a context or
-- function name, or a registered function) holds, for those params or all.
-- Returns true, or nil, err when the purge may not have reached the cache
-- (a mutation that did this answers 503: see dispatch).
function M.purge(target, params)
  if type(target) == "table" and target.name then target = target.name end
  if type(target) ~= "string" or not (registry.contexts[target] or registry.functions[target]) then
    error(("mizan.cache.purge: unknown target %s"):format(tostring(target)), 2)
  end
  if params ~= nil and type(params) ~= "table" then error("mizan.cache.purge: params must be a table", 2) end
  return bump(purge_tags(target, params, {}))
end

--- Purge everything an invalidation record names (before the answer is
-- written). Returns true, or nil, err.
function M.purge_record(rec)
  local tags = {}
  for _, e in ipairs(rec:list()) do purge_tags(e.target, e.params, tags) end
  return bump(tags)
end

---------------------------------------------------------------- reads

local inflight = {} -- key .. "\n" .. versions -> { waiters = { task, ... } }

-- Run `compute` once per key and version snapshot at a time in this process;
-- concurrent callers with the same snapshot wait for its results instead of
-- running it again. A caller whose snapshot differs saw a purge the running
-- computation may predate (it may have read its data before the mutation),
-- so it starts a flight of its own; without a snapshot (the backend is down)
-- nothing proves that, so it runs alone. Returns is_leader, then pcall's
-- results of compute.
local function single_flight(key, versions, compute)
  if not versions then return true, pcall(compute) end
  local id = key .. "\n" .. table.concat(versions, ",")
  local f = inflight[id]
  if f then
    f.waiters[#f.waiters + 1] = core.current_task()
    return false, core.suspend()
  end
  f = { waiters = {} }
  inflight[id] = f
  local results = { pcall(compute) }
  inflight[id] = nil
  local n = table.maxn(results)
  for _, task in ipairs(f.waiters) do core.wakeup(task, unpack(results, 1, n)) end
  return true, unpack(results, 1, n)
end

--- The scope of per-user entries for `user` (nil when anonymous) and
-- `session_id` (nil without a session): "u:<user id>" for a signed-in user;
-- "s:<hex HMAC-SHA256(secret, "cache-scope\n" .. session id)>" for an
-- anonymous caller with a session (its req.session is its own; the id itself
-- never goes into a key, which may reach Redis); "anon" for a caller without
-- a session, whose req.session is empty. `holder` (a request, a socket)
-- keeps the last HMAC, so asking again costs nothing.
function M.scope_for(holder, user, session_id, key_secret)
  if user then return "u:" .. tostring(user.id) end
  if not session_id then return "anon" end
  local scope = rawget(holder, "_cache_scope")
  if not scope or rawget(holder, "_cache_scope_of") ~= session_id then
    scope = "s:" .. crypto.hmac_sha256_hex(key_secret or secret, "cache-scope\n" .. session_id)
    rawset(holder, "_cache_scope", scope)
    rawset(holder, "_cache_scope_of", session_id)
  end
  return scope
end

--- The scope of a request (see scope_for).
function M.scope(req, key_secret)
  return M.scope_for(req, rawget(req, "_user"), rawget(req, "_session_id"), key_secret)
end

-- Did running the function change whose data it saw, so its result does
-- not belong to `scope`? "anon" holds no session data: a caller without a
-- session that wrote into req.session (starting one) or signed in or out
-- gets a result of its own.
local function left_scope(req, scope)
  if M.scope(req) ~= scope or rawget(req, "_login") or rawget(req, "_logout") then return true end
  if scope == "anon" then
    local s = rawget(req, "_session")
    return s ~= nil and next(s) ~= nil
  end
  return false
end

local function encode(spec, result)
  local text, err = json.encode(result)
  if not text then error(("function '%s': cannot encode its result: %s"):format(spec.name, err), 0) end
  return text
end

--- Get the JSON text of `spec`'s result for `args`, from the cache or by
-- calling `run()`, which returns true, result or false, err (a raised
-- protocol error value). Returns true, json_text, key (the key only when the
-- text is cached), state ("hit" or "miss": the caller keeps it with its
-- request, since other requests run while this one yields); or false, err.
function M.fetch(spec, req, args, run)
  local policy = spec.cache
  local scope = not policy.shared and M.scope(req) or nil
  local key = M.key(spec.name, args, scope)
  local tags = M.entry_tags(spec, args)
  local hit, versions = backend.lookup(key, tags) -- versions: taken before the value is computed
  if hit then return true, hit, key, "hit" end
  local leader, ok, a, b, c, d = single_flight(key, versions, function()
    local ok, result = run()
    if not ok then return false, result end
    local text = encode(spec, result)
    -- fail closed: a shared entry that read who is asking is not shared,
    -- and a scoped one is stored only under the scope whose data it saw
    local personal
    if policy.shared then
      personal = rawget(req, "_identity_read") or false
      if personal then
        core.log("warn", ("function '%s' has cache.shared but read req.user or req.session: "
          .. "its result is not stored, so one user's data never reaches another"):format(spec.name))
      end
    else
      personal = left_scope(req, scope)
    end
    if not personal and versions then -- no snapshot (the backend is down): do not store
      backend.store(key, text, policy.ttl, tags, versions)
    end
    return true, text, personal
  end)
  if not ok then -- a Lua error in the cache layer itself
    core.log("error", ("function '%s': the cache failed: %s"):format(spec.name, tostring(a)))
    return false, errors.raised("internal_error", "internal error")
  end
  if not a then return false, b end
  if c then -- personal: the leader's result is the leader's alone
    if leader then return true, b, nil, "miss" end
    local ok2, result = run()
    if not ok2 then return false, result end
    return true, encode(spec, result), nil, "miss"
  end
  return true, b, key, "miss"
end

--- The state of the backends, for GET health: nil when all is well, or a
-- table of what is down.
function M.health()
  if backend and backend.state then
    local s = backend.state()
    if s ~= "ready" then return { cache = s } end
  end
end

--- Record a fast-path alias so C answers this GET next time on its own.
-- C knows only whether a request carries a session cookie: without one it
-- looks up the "anon" alias, with one the "shared" alias. So an answer is
-- recorded for callers without a session (its entries are of the "anon"
-- scope, which never holds session data: see left_scope), and for everyone
-- when every entry in it is shared; never when a function checks auth (C
-- does not run predicates). `segments` are the bytes around the entries'
-- values in the answer (one more than keys), so C sends exactly what Lua
-- did; `label` is the registered name for the metrics.
function M.alias(route, name, raw_query, req, specs, keys, segments, label)
  if not backend.fast_path then return end
  local all_shared = true
  for _, spec in ipairs(specs) do
    if spec.auth then return end
    all_shared = all_shared and spec.cache.shared
  end
  -- the generated client's schema hash is part of the alias: C answers a
  -- client of another schema never, so Lua judges its version skew
  -- (mizan.dispatch.skew); only a client of this schema is recorded
  local client = req.headers["x-mizan-client"] or ""
  if client ~= "" and client ~= require("mizan.dispatch.skew").schema() then return end
  local anonymous = rawget(req, "_user") == nil and rawget(req, "_session_id") == nil
  if anonymous then cc.alias(table.concat({ route, name, raw_query, "anon", client }, "\0"), keys, segments, label) end
  if all_shared then cc.alias(table.concat({ route, name, raw_query, "shared", client }, "\0"), keys, segments, label) end
end

function M.stats() return cc.stats() end

return M
