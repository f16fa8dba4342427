-- mizan.dispatch: the request handler C calls for every request under the
-- base path. It decides everything the core leaves open: which function,
-- which method, the arguments, validation, invalidation and the error answers.
--
-- handler(req) -> status, body (a table to encode as JSON, or a string), headers
local core = require "mizan.core"
local json = require "mizan.json"
local types = require "mizan.types"
local errors = require "mizan.errors"
local query = require "mizan.query"
local utf8 = require "mizan.utf8"
local invalidation = require "mizan.invalidation"
local cache = require "mizan.cache"
local auth = require "mizan.auth"
local session = require "mizan.session"
local config = require "mizan.config"
local mizan = require "mizan"

local null = json.null
local ARRAY_MT = json.array_mt
local M = {}

local broken -- the error of a failed reload (mizan dev), or nil
function M.set_broken(err) broken = err end

-- While the app is broken, every 500 says why.
local function with_broken(status, body, headers)
  if broken and status == 500 and type(body) == "table" and body.error then
    body.error.message = body.error.message .. "\n\nThe app failed to reload; the previous code is serving:\n" .. broken
  end
  return status, body, headers
end

-- Requests that entered Lua (cache hits answered by C never do).
local counters = { requests = 0 }
function M.stats() return { requests = counters.requests, cache = cache.stats() } end

local function log(level, msg) core.log(level, msg) end

---------------------------------------------------------------- the request object

-- Methods given to every request object a handler sees. Reading req.user or
-- req.session is noticed, so a shared cache entry never holds one user's data.
local Req = {}
Req.__index = function(req, k)
  if k == "user" then
    rawset(req, "_identity_read", true)
    return rawget(req, "_user")
  elseif k == "session" then
    rawset(req, "_identity_read", true)
    local s = rawget(req, "_session")
    if not s then -- anonymous: a fresh table; writing to it starts a session
      s = {}
      rawset(req, "_session", s)
    end
    return s
  end
  return Req[k]
end

--- req:login(user): sign `user` in (a table with an id); the session id rotates.
function Req:login(user)
  if type(user) ~= "table" or user.id == nil then error("req:login expects a user table with an id", 2) end
  rawset(self, "_login", user)
  rawset(self, "_user", user)
  rawset(self, "_user_id", user.id)
  rawset(self, "_logout", nil)
end

--- req:logout(): end the session, on the server too.
function Req:logout()
  local user = rawget(self, "_user")
  -- the call is still the signed-in user's: its invalidations go to that user
  if user then rawset(self, "_caller", user) end
  rawset(self, "_logout", true)
  rawset(self, "_login", nil)
  rawset(self, "_user", nil)
end

local registry -- the registry of the app being served (set by M.new)
local cached_call -- defined below

--- req:invalidate(target, params): add a target at run time. `target` is a
-- context or function name, or a registered function; params a table or nil.
function Req:invalidate(target, params)
  if not rawget(self, "_mutation") then error("req:invalidate is for mutations; this function is a query", 2) end
  local list = rawget(self, "_invalidations")
  if not list then
    list = {}
    rawset(self, "_invalidations", list)
  end
  local name = target
  if mizan.is_function(target) then name = target.name end
  if type(name) ~= "string" or not (registry.contexts[name] or registry.functions[name]) then
    error(("req:invalidate: unknown target %s"):format(type(name) == "string" and ("'" .. name .. "'") or tostring(target)), 2)
  end
  if params ~= nil and (type(params) ~= "table" or getmetatable(params) == ARRAY_MT) then
    error("req:invalidate: params must be a table of param = value", 2)
  end
  list[#list + 1] = { target = name, params = params }
end

local function is_json(ct)
  if ct == "application/json" then return true end -- the common case, without patterns
  if not ct then return false end
  local base = ct:match("^%s*([^;%s]+)")
  return base ~= nil and base:lower() == "application/json"
end

-- The message handler of xpcall: a raised protocol error passes through, any
-- other error gets its traceback. One function for all calls (no closure per
-- request); it runs before the stack unwinds, so nothing else interleaves.
local function on_error(e)
  if errors.is_raised(e) then return e end
  return { traceback = debug.traceback(tostring(e), 2) }
end

-- Run fn(...) as app code: true, results; or false, status, body, headers.
-- A Lua error becomes a logged 500 whose message has the traceback only in dev.
local function run(what, dev, fn, ...)
  local ok, result = xpcall(fn, on_error, ...)
  if ok then return true, result end
  if errors.is_raised(result) then
    return false, errors.response(result.code, result.message, result.fields, result.headers)
  end
  log("error", ("%s failed: %s"):format(what, result.traceback))
  return false, errors.response("internal_error", dev and result.traceback or "internal error")
end

-- Handlers that never look at the query string share one empty, frozen table.
local EMPTY_QUERY = setmetatable({}, { __newindex = function() error("req.query is read-only", 2) end })

local function prepare(req, parsed_query)
  local qs = req.query
  req.query = parsed_query or (qs == "" and EMPTY_QUERY or query.parse(qs))
  return setmetatable(req, Req)
end

-- In dev and test, a result must match the declared output: nil when it
-- does, else the error response's parts.
local function check_output(spec, result)
  local _, oerrs = types.validate(spec.output, result)
  if not oerrs then return nil end
  local parts = {}
  for path, msgs in pairs(oerrs) do parts[#parts + 1] = path .. " " .. table.concat(msgs, ", ") end
  table.sort(parts)
  local msg = ("function '%s' returned output that does not match its schema: %s")
    :format(spec.name, table.concat(parts, "; "))
  log("error", msg)
  return errors.response("internal_error", msg)
end

---------------------------------------------------------------- call/<name>/

local function not_allowed(name, method, kind)
  local allow = kind == "query" and "GET, HEAD, POST" or "POST"
  local why = kind == "query" and "call it with GET or POST" or "it is a mutation: call it with POST"
  return errors.response("method_not_allowed", ("'%s' does not accept %s: %s"):format(name, method, why),
                         nil, { Allow = allow })
end

-- The arguments of a call: validated args, or the error response's parts.
local function arguments(spec, req, params)
  local method = req.method
  if method == "POST" then
    if not is_json(req.headers["content-type"]) then
      return nil, errors.response("unsupported_media_type", "a call must send Content-Type: application/json")
    end
    local args, err = {}, nil
    if req.body ~= "" then
      args, err = json.decode(req.body)
      if args == nil then return nil, errors.response("invalid_json", "the body is not valid JSON: " .. err) end
    end
    if type(args) ~= "table" or getmetatable(args) == ARRAY_MT then
      return nil, errors.response("validation_error", "the arguments must be a JSON object",
                                  { __all__ = { "must be an object" } })
    end
    local out, errs = types.validate(spec.input, args)
    if errs then return nil, errors.response("validation_error", "the arguments are not valid", errs) end
    return out
  elseif (method == "GET" or method == "HEAD") and spec.kind == "query" then
    local out, errs = types.validate(spec.input, params, true)
    if errs then return nil, errors.response("validation_error", "the arguments are not valid", errs) end
    return out
  end
  return nil, not_allowed(spec.name, method, spec.kind)
end

-- A mutation's invalidation record, applied to its answer: the body gets
-- "invalidate" and the header X-Mizan-Invalidate; a raw response only the header.
-- Returns true, body, headers; or false, status, body, headers.
local function with_invalidation(spec, req, args, result, body, headers, dev)
  if not spec.affects and not rawget(req, "_invalidations") then return true, body, headers end
  local ok, rec, eb, eh = run(("function '%s' (affects_params)"):format(spec.name), dev,
                              invalidation.for_call, spec, req, args, result)
  if not ok then return false, rec, eb, eh end
  if rec:empty() then return true, body, headers end
  local value, err = rec:header()
  if not value then
    log("error", ("function '%s': cannot encode its invalidation: %s"):format(spec.name, err))
    return false, errors.response("internal_error", "the invalidation could not be encoded")
  end
  local out = {}
  for k, v in pairs(headers or {}) do out[k] = v end
  out["X-Mizan-Invalidate"] = value
  if type(body) == "table" and body.result ~= nil and not mizan.is_response(result) then
    body.invalidate = rec:body()
  end
  -- purge before the answer is written: a client that refetches on it reads
  -- fresh data (a failure is noted for the mutation's task: see call)
  cache.purge_record(rec)
  -- and the connected clients that asked for it hear about it too: per-user
  -- targets only the sockets of the caller's cache scope (after a logout,
  -- the user who just left; an anonymous caller's session; never every
  -- anonymous socket)
  local user = rawget(req, "_user") or rawget(req, "_caller")
  local scope = user and cache.scope_for({}, user) or cache.scope(req)
  require("mizan.channels").push_invalidation(rec:body(), scope)
  return true, body, out
end

-- 503 unavailable for a call that may have had effects: what it invalidated
-- (the header, and the body's list) goes with the error, so the caller still
-- refetches what it can.
local function unavailable(message, body, headers)
  local status, ebody = errors.response("unavailable", message)
  local invalidate = headers and headers["X-Mizan-Invalidate"]
  if not invalidate then return status, ebody end
  if type(body) == "table" then ebody.invalidate = body.invalidate end
  return status, ebody, { ["X-Mizan-Invalidate"] = invalidate }
end

-- A mutation whose purge may not have reached the cache must not answer as
-- if all were done: its effects are committed, but other instances may still
-- serve what it changed.
local function purge_failed(spec, body, headers, err)
  log("error", ("function '%s': its effects are committed but its cache purge failed: %s")
    :format(spec.name, tostring(err)))
  return unavailable("the mutation's effects are committed, but the cache could not be purged: "
    .. "what it changed may read stale until the cache recovers", body, headers)
end

-- Run a query for the cache: its result must be data (checked in dev).
local function run_for_cache(spec, req, args, dev, what)
  return function()
    local ok, result, b, h = run(what, dev, spec.handler, req, args)
    if not ok then return false, result, b, h end
    if mizan.is_response(result) then
      local msg = ("%s returned mizan.response, but its result is cached or bundled: return data instead")
        :format(what)
      log("error", msg)
      return false, errors.response("internal_error", msg)
    end
    if result == nil then result = null end
    if dev and spec.output then
      local s, b2 = check_output(spec, result)
      if s then return false, s, b2 end
    end
    return true, result
  end
end

-- Read only, shared by every cached answer; ":cache" is a note to the core
-- (for the access log), never sent.
local JSON_HIT = { ["Content-Type"] = "application/json", [":cache"] = "hit" }
local JSON_MISS = { ["Content-Type"] = "application/json", [":cache"] = "miss" }
local JSON = { ["Content-Type"] = "application/json" }

function cached_call(spec, req, args, raw_query, dev)
  local ok, text, key, h = cache.fetch(spec, req, args, run_for_cache(spec, req, args, dev,
                                                                        ("function '%s'"):format(spec.name)))
  if not ok then return text, key, h end
  local state = cache.last
  if key and req.method ~= "POST" then cache.alias("call", req.name, raw_query, req, { spec }, { key }) end
  return 200, '{"result":' .. text .. "}", state == "hit" and JSON_HIT or JSON_MISS
end

-- CSRF (DESIGN §2): a browser says where a request comes from. Judged by
-- Sec-Fetch-Site, then by Origin against Host and the allowed origins; a
-- client that sends neither (curl, a server) is not a browser and passes.
local allowed_origins = {}

local function same_origin(origin, host)
  local o = origin:lower():match("^https?://([^/]+)$")
  return o ~= nil and host ~= nil and o == host:lower()
end

local function cross_site(req)
  local h = req.headers
  local site, origin = h["sec-fetch-site"], h.origin
  if site == "same-origin" or site == "none" then return false end
  if origin and origin ~= "null" then
    return not (same_origin(origin, h.host) or allowed_origins[origin:lower()])
  end
  return site == "cross-site" or site == "same-site" or origin == "null"
end

-- Run a non-cached function and shape its answer; a mutation's carries its
-- invalidation, purged before it is returned.
local function answer(spec, req, args, dev, mutation)
  local ok, result, body, headers = run(("function '%s'"):format(spec.name), dev, spec.handler, req, args)
  if not ok then return result, body, headers end
  local status = 200
  if mizan.is_response(result) then
    status, body, headers = result.status, result.body, result.headers
  else
    if result == nil then result = null end
    if dev and spec.output then
      local s, b = check_output(spec, result)
      if s then return s, b end
    end
    body = { result = result }
  end
  if mutation then
    local a, b, c
    ok, a, b, c = with_invalidation(spec, req, args, result, body, headers, dev)
    if not ok then return a, b, c end
    body, headers = a, b
  end
  return status, body, headers
end

-- The name in call/<name>/ or ctx/<name>/, percent-decoded: the name, or
-- nil and how to show it when it is no text (invalid UTF-8 names nothing).
local function route_name(req)
  local raw = req.name
  if not raw then return nil, "" end
  local name = query.unescape_path(raw)
  if not utf8.valid(name) then return nil, utf8.printable(raw) end
  return name
end

-- The query string, parsed once for the whole request: the params, or nil
-- and the field errors when a key or a value is not UTF-8 text (a query
-- carries text; the bytes would fail later, in JSON, as a 500).
local function parsed_query(req)
  local qs = req.query
  if qs == "" then return EMPTY_QUERY end
  local params, bad = query.parse(qs), nil
  for k, v in pairs(params) do
    local ok = utf8.valid(k)
    if type(v) == "table" then
      for _, x in ipairs(v) do ok = ok and utf8.valid(x) end
    else
      ok = ok and utf8.valid(v)
    end
    if not ok then
      bad = bad or {}
      bad[utf8.printable(k)] = { "is not valid UTF-8 text" }
    end
  end
  if bad then return nil, bad end
  return params
end

local function bad_query(fields)
  return errors.response("validation_error", "the query string is not valid UTF-8 text", fields)
end

local function call(req, dev)
  local name, shown = route_name(req)
  local spec = name and registry.functions[name]
  if not spec then
    return errors.response("not_found", ("no function named '%s'"):format(name or shown))
  end
  local params, bad = parsed_query(req)
  if not params then return bad_query(bad) end
  if spec.kind == "mutation" and req.method == "POST" and cross_site(req) then
    return errors.response("csrf_failed", "a cross-site request may not call a mutation")
  end
  if spec.auth then
    local s, b, h = auth.check(spec.auth, setmetatable(req, Req), function(w, f, r) return run(w, dev, f, r) end,
                               ("function '%s'"):format(name))
    if s then return s, b, h end
  end
  local args, status, body, headers = arguments(spec, req, params)
  if not args then return status, body, headers end

  local raw_query = req.query
  prepare(req, params)
  if spec.cache then return cached_call(spec, req, args, raw_query, dev) end
  if spec.kind ~= "mutation" then return answer(spec, req, args, dev) end
  rawset(req, "_mutation", true)
  local task = core.current_task()
  cache.watch_purges(task) -- every purge it makes, declared or by mizan.cache.purge
  status, body, headers = answer(spec, req, args, dev, true)
  local failed = cache.purge_failure(task)
  -- an error answer already says it did not all go well; a success must not lie
  if failed and status < 400 then return purge_failed(spec, body, headers, failed) end
  return status, body, headers
end

---------------------------------------------------------------- ctx/<name>/

-- Merge one function's validation errors into the bundle's, without
-- repeating a message two functions share for one elevated param.
local function merge_errors(into, errs)
  for path, msgs in pairs(errs) do
    local list = into[path] or {}
    into[path] = list
    for _, m in ipairs(msgs) do
      local dup = false
      for _, have in ipairs(list) do dup = dup or have == m end
      if not dup then list[#list + 1] = m end
    end
  end
end

local function bundle(req, dev)
  local name, shown = route_name(req)
  local group = name and registry.contexts[name]
  if not group then
    return errors.response("not_found", ("no context named '%s'"):format(name or shown))
  end
  if req.method ~= "GET" and req.method ~= "HEAD" then
    return errors.response("method_not_allowed", ("context '%s' is read with GET"):format(group.name),
                           nil, { Allow = "GET, HEAD" })
  end
  -- a context is one unit: any function refusing the caller refuses it all
  setmetatable(req, Req)
  for _, fname in ipairs(group.functions) do
    local spec = registry.functions[fname]
    if spec.auth then
      local s, b, h = auth.check(spec.auth, req, function(w, f, r) return run(w, dev, f, r) end,
                                 ("function '%s' (context '%s')"):format(fname, group.name))
      if s then return s, b, h end
    end
  end
  local params, bad = parsed_query(req)
  if not params then return bad_query(bad) end
  local argsets, all = {}, nil
  for _, fname in ipairs(group.functions) do
    local spec = registry.functions[fname]
    local sub = {}
    for _, field in ipairs(spec.input.order) do sub[field] = params[field] end
    local args, errs = types.validate(spec.input, sub, true)
    if errs then
      all = all or {}
      merge_errors(all, errs)
    end
    argsets[fname] = args
  end
  if all then return errors.response("validation_error", "the context params are not valid", all) end

  local raw_query = req.query
  prepare(req, params)
  -- A context is one unit of data: any function's error is the bundle's.
  -- Each function is cached on its own; the bundle is their JSON side by side.
  local parts, keys, all_cached, any_miss = {}, {}, true, false
  for i, fname in ipairs(group.functions) do
    local spec = registry.functions[fname]
    local what = ("function '%s' (context '%s')"):format(fname, group.name)
    local runner = run_for_cache(spec, req, argsets[fname], dev, what)
    local ok, a, b, c
    if spec.cache then
      ok, a, b, c = cache.fetch(spec, req, argsets[fname], runner)
      if ok then keys[i] = b end
      if cache.last == "miss" then any_miss = true end
    else
      ok, a, b, c = runner()
      if ok then a = assert(json.encode(a)) end
    end
    if not ok then return a, b, c end
    all_cached = all_cached and keys[i] ~= nil
    parts[i] = json.encode(fname) .. ":" .. a
  end
  if all_cached and req.method ~= "POST" then
    local specs = {}
    for i, fname in ipairs(group.functions) do specs[i] = registry.functions[fname] end
    cache.alias("ctx", req.name, raw_query, req, specs, keys, group.functions)
  end
  return 200, "{" .. table.concat(parts, ",") .. "}", (not all_cached and JSON) or (any_miss and JSON_MISS) or JSON_HIT
end

---------------------------------------------------------------- routing

--- Build the request handler for a loaded registry.
-- JSON inside <script>: nothing in it may close the tag or open a comment,
-- and the line separators JavaScript once treated as newlines are escaped.
local SCRIPT_ESCAPES = { ["<"] = "\\u003c", [">"] = "\\u003e", ["&"] = "\\u0026" }
local function script_safe(text)
  return (text:gsub("[<>&]", SCRIPT_ESCAPES):gsub("\226\128\168", "\\u2028"):gsub("\226\128\169", "\\u2029"))
end
M.script_safe = script_safe

-- Add Set-Cookie to an answer's headers without touching a shared table.
local function with_cookie(status, body, headers, cookie)
  if not cookie then return status, body, headers end
  local out = {}
  for k, v in pairs(headers or {}) do out[k] = v end
  out["Set-Cookie"] = cookie
  return status, body, out
end

-- The session store or the user table could not answer: that is no
-- logout. 503, and no Set-Cookie, so a valid cookie survives the outage.
-- After a call ran (its session could not be saved), what it invalidated
-- still goes with the answer.
local function store_down(err, body, headers)
  log("error", "session store: " .. tostring(err))
  return unavailable("sessions are unavailable right now; try again shortly", body, headers)
end

-- The request's session and user (when a cookie came). true, or nil, err.
local function identify(req)
  if req.headers.cookie then
    local ok, err = session.load(req)
    if not ok then return nil, err end
  end
  local uid = rawget(req, "_user_id")
  if uid ~= nil then
    local user, err = auth.load(uid)
    if err then return nil, err end
    rawset(req, "_user", user)
  end
  return true
end

-- Run a call or a bundle inside the request's session: load it first (when
-- a cookie came), persist what changed after.
local function in_session(fn, req, dev)
  local ok, err = identify(req)
  if not ok then return store_down(err) end
  local status, body, headers = fn(req, dev)
  local cookie, cerr = session.commit(req)
  if cerr then return store_down(cerr, body, headers) end
  return with_cookie(status, body, headers, cookie)
end

-- The client's address. Behind trusted proxies (config trusted_proxies),
-- from their header: the rightmost address that is not itself a trusted
-- proxy, since each proxy appends the peer it saw and only the part they
-- wrote can be believed. From anyone else the header is ignored.
local trusted, proxy_header = {}, "x-forwarded-for"
local function client_ip(req)
  local peer = req.ip
  if not trusted[peer] then return peer end
  local value = req.headers[proxy_header]
  if not value then return peer end
  local list = {}
  for part in value:gmatch("[^,]+") do list[#list + 1] = part:match("^%s*(.-)%s*$"):lower() end
  for i = #list, 1, -1 do
    local a = list[i]
    if not trusted[a] then
      -- a proxy wrote it, so it is an address; if not, the proxy is broken:
      -- fall back to the proxy itself (its budget), never to a made-up key
      if config.is_ip(a) then return a end
      return peer
    end
  end
  return list[1] or peer -- every hop was a trusted proxy: the first one is the client
end
M.client_ip = client_ip

function M.new(reg, cfg, mode)
  registry = reg
  allowed_origins = {}
  for _, o in ipairs(cfg.allowed_origins or {}) do allowed_origins[o:lower()] = true end
  trusted = {}
  for _, a in ipairs(cfg.trusted_proxies or {}) do trusted[a:lower()] = true end
  proxy_header = (cfg.proxy_header or "x-forwarded-for"):lower()
  local dev = mode ~= "production"
  local schema_doc
  return function(req)
    counters.requests = counters.requests + 1
    if next(trusted) then
      req.peer_ip = req.ip
      req.ip = client_ip(req)
    end
    local route = req.route
    if route == "call" then
      return with_broken(in_session(call, req, dev))
    elseif route == "ctx" then
      return with_broken(in_session(bundle, req, dev))
    elseif route == "ws" and not req.name and req.ws_id then
      -- the WebSocket handshake (C checked the protocol part): same origin
      -- rules as CSRF, and the session of this request becomes the socket's
      if cross_site(req) then
        return errors.response("csrf_failed", "a cross-site page may not open this WebSocket")
      end
      local ok, err = identify(req)
      if not ok then return store_down(err) end
      -- a session that points at no (active) user is followed all the same
      require("mizan.channels").opened(req.ws_id, rawget(req, "_user"), rawget(req, "_session"),
                                       rawget(req, "_session_id"), rawget(req, "_session_expires"))
      return 101
    elseif route == "ssr" then
      -- an HTML page from static_dir: the global context for this user, to hydrate from
      local status, body = in_session(function(r, d)
        if not registry.contexts.global then return 200, "{}" end
        r.name, r.method = "global", "GET"
        return bundle(r, d)
      end, req, dev)
      if status ~= 200 or type(body) ~= "string" then body = "{}" end
      return 200, script_safe(body)
    elseif route == "health" and not req.name and cfg.health then
      local down = cache.health()
      return 200, { status = down and "degraded" or "ok", down = down }
    elseif route == "schema" and not req.name then
      if req.method ~= "GET" and req.method ~= "HEAD" then
        return errors.response("method_not_allowed", "the schema is read with GET", nil, { Allow = "GET, HEAD" })
      end
      schema_doc = schema_doc or require("mizan.schema").document(reg, cfg)
      return 200, schema_doc
    end
    return errors.response("not_found", ("no such path: %s"):format(req.path))
  end
end

return M
