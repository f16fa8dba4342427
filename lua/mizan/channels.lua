-- mizan.channels: realtime channels over one WebSocket per client (DESIGN §6).
--
--   mizan.channel "chat" {
--     params = { room = T.string },
--     server_message = { text = T.string, author = T.string },
--     client_message = { text = T.string { max_length = 2000 } },
--     authorize = function(ctx, params) return ctx.user ~= nil end,
--     group = function(ctx, params) return "chat_" .. params.room end,
--     receive = function(ctx, params, msg) mizan.channels.send("chat", params, {...}) end,
--   }
--
-- Client -> server frames: subscribe {id, channel, params}, unsubscribe {id},
-- send {id, data}, subscribe_invalidations. Server -> client: subscribed,
-- unsubscribed, message {id, data}, error {id, error}, invalidate.
-- The WebSocket itself (framing, ping, close codes, limits) is C: core/ws.c.
--
-- A socket follows the session it was opened with: when that session ends
-- (logout or a login that rotates it, on any worker or instance; or expiry)
-- the socket drops its user, every subscription is authorized again (the
-- refused ones end with an error frame and an unsubscribed frame), and what
-- it sends next is anonymous. Every incoming frame checks the session in the
-- store first, so a lost "ended" event or an expiry is caught there too.
local core = require "mizan.core"
local json = require "mizan.json"
local types = require "mizan.types"
local errors = require "mizan.errors"
local ws = require "mizan.ws"
local session = require "mizan.session"
local auth = require "mizan.auth"
local cache = require "mizan.cache"

local M = {}
local null = json.null

local registry      -- the app's registry (channels live in registry.channels)
local dev = false
local sockets = {}  -- id -> { user, session, session_id, expires, subs = { [sub id] = { channel, params, group } }, invalidations }
local groups = {}   -- group name -> { [socket id] = { [sub id] = true } }
local relay         -- optional: how a broadcast reaches other processes (see M.set_relay)

---------------------------------------------------------------- declaring

local KEYS = { params = true, server_message = true, client_message = true, authorize = true, group = true,
               receive = true, description = true }

--- mizan.channel "name" { ... }: declare a channel; misuse fails at load,
-- naming the channel and the option.
function M.channel(name)
  if type(name) ~= "string" or not name:find("^[%a_][%w_.%-]*$") then
    error("mizan.channel: a channel needs a name (letters, digits, '_', '.', '-')", 2)
  end
  return function(def)
    local problems = {}
    local function bad(option, msg)
      problems[#problems + 1] = ("channel '%s', option '%s': %s"):format(name, option, msg)
    end
    if type(def) ~= "table" then error(("mizan.channel '%s' expects a table"):format(name), 2) end
    for k in pairs(def) do
      if not KEYS[k] then bad(tostring(k), "unknown option") end
    end
    local spec = { name = name, description = def.description }
    for _, opt in ipairs { "params", "server_message", "client_message" } do
      local v = def[opt]
      if v ~= nil then
        if not types.is_type(v) and type(v) ~= "table" then
          bad(opt, "must be a mizan.types schema or a table of fields")
        else
          local t = types.as_type(v)
          for _, p in ipairs(types.problems(t)) do bad(p.path == "" and opt or opt .. "." .. p.path, p.message) end
          spec[opt] = t
        end
      end
    end
    spec.params = spec.params or types.object {}
    if spec.params.kind ~= "object" then bad("params", "must be an object type") end
    for _, fn in ipairs { "authorize", "group", "receive" } do
      if def[fn] ~= nil and type(def[fn]) ~= "function" then bad(fn, "must be a function") end
      spec[fn] = def[fn]
    end
    if not spec.group then bad("group", "is required: function(ctx, params) -> the group's name") end
    local reg = require("mizan").registry()
    if reg.channels[name] then bad("name", "a channel with this name is already declared") end
    if #problems > 0 then error(table.concat(problems, "\n"), 2) end
    reg.channels[name] = spec
    reg.channel_order[#reg.channel_order + 1] = name
    return spec
  end
end

---------------------------------------------------------------- sending

local function frame(t) return assert(json.encode(t)) end

local function send_to(id, t) return ws.send(id, frame(t)) end

local function reply_error(id, sub, code, message, fields)
  local _, body = errors.response(code, message, fields)
  send_to(id, { type = "error", id = sub == nil and null or sub, error = body.error })
end

-- Deliver a message to this process's members of a group. Members that
-- subscribed with the same id get one shared frame.
local function deliver(group, data)
  local members = groups[group]
  if not members then return 0 end
  local by_sub = {}
  for sock, subs in pairs(members) do
    for sub in pairs(subs) do
      local list = by_sub[sub]
      if not list then list = {}; by_sub[sub] = list end
      list[#list + 1] = sock
    end
  end
  local n = 0
  for sub, ids in pairs(by_sub) do
    n = n + ws.send_many(ids, frame { type = "message", id = sub, data = data })
  end
  return n
end

--- mizan.channels.send(channel, params, message): broadcast to the group
-- that `group(ctx, params)` names, in every process.
function M.send(channel, params, message)
  local spec = registry.channels[channel]
  if not spec then error(("mizan.channels.send: no channel named '%s'"):format(tostring(channel)), 2) end
  local p, errs = types.validate(spec.params, params or {})
  if errs then error(("mizan.channels.send: params for '%s' are not valid: %s"):format(channel, json.encode(errs)), 2) end
  if dev and spec.server_message then
    local _, merrs = types.validate(spec.server_message, message)
    if merrs then
      error(("mizan.channels.send: a message for '%s' does not match server_message: %s"):format(channel, json.encode(merrs)), 2)
    end
  end
  local group = spec.group({ server = true }, p)
  local n = deliver(group, message)
  if relay then relay.publish { g = group, m = message } end
  return n
end

--- Another process (worker or instance) broadcast to a group.
function M.relayed(group, message) return deliver(group, message) end

--- How broadcasts, invalidation pushes and ended sessions reach other processes:
--- { publish = function(frame) }, frame { g = group, m = message }, { i = entries, u = user id }
--- or { e = session id }.
function M.set_relay(r) relay = r end

---------------------------------------------------------------- sockets

local function ctx_of(sock) return { user = sock.user, session = sock.session, socket = sock.id } end

local function join(sock, sub, group)
  local members = groups[group]
  if not members then members = {}; groups[group] = members end
  local subs = members[sock.id]
  if not subs then subs = {}; members[sock.id] = subs end
  subs[sub] = true
end

local function leave(sock, sub)
  local s = sock.subs[sub]
  if not s then return end
  sock.subs[sub] = nil
  local members = groups[s.group]
  if members and members[sock.id] then
    members[sock.id][sub] = nil
    if next(members[sock.id]) == nil then members[sock.id] = nil end
    if next(members) == nil then groups[s.group] = nil end
  end
end

-- Run app code (authorize, group, receive): true, results, or false after
-- answering the client with an internal_error frame.
local function guarded(sock, sub, what, fn, ...)
  local ok, a, b = xpcall(fn, function(e)
    if errors.is_raised(e) then return e end
    return { traceback = debug.traceback(tostring(e), 2) }
  end, ...)
  if ok then return true, a, b end
  if errors.is_raised(a) then
    reply_error(sock.id, sub, a.code, a.message, a.fields)
  else
    core.log("error", ("%s failed: %s"):format(what, a.traceback))
    reply_error(sock.id, sub, "internal_error", dev and a.traceback or "internal error")
  end
  return false
end

local handlers = {}

-- The one authorize decision, for a subscribe and for an HTTP caller alike:
-- nil when allowed, else the error code and message. App errors propagate.
local function refusal(spec, ctx, params)
  if not spec.authorize then return nil end
  local allowed, message = spec.authorize(ctx, params)
  if allowed then return nil end
  if ctx.user then return "forbidden", message or "you may not subscribe to this" end
  return "unauthenticated", message or "sign in first"
end

-- May this socket hold a subscription to `spec` with these params? Its
-- group when yes; nil after answering the client with the error frame.
local function admit(sock, sub, spec, params)
  local ctx = ctx_of(sock)
  local ok, code, message = guarded(sock, sub, ("channel '%s' authorize"):format(spec.name), refusal, spec, ctx, params)
  if not ok then return nil end
  if code then return reply_error(sock.id, sub, code, message) end
  local gok, group = guarded(sock, sub, ("channel '%s' group"):format(spec.name), spec.group, ctx, params)
  if not gok then return nil end
  if type(group) ~= "string" then
    core.log("error", ("channel '%s': group() must return a string"):format(spec.name))
    return reply_error(sock.id, sub, "internal_error", "internal error")
  end
  return group
end

function handlers.subscribe(sock, msg)
  local sub = msg.id
  local spec = registry.channels[msg.channel]
  if not spec then return reply_error(sock.id, sub, "not_found", ("no channel named '%s'"):format(tostring(msg.channel))) end
  if sock.subs[sub] then return reply_error(sock.id, sub, "validation_error", "this subscription id is in use") end
  local params, errs = types.validate(spec.params, msg.params == nil and {} or msg.params)
  if errs then return reply_error(sock.id, sub, "validation_error", "the params are not valid", errs) end
  -- authorize may yield: decide again if the socket's identity changed
  -- meanwhile (a logout), so nothing is admitted for a user who has left
  local group, gen
  repeat
    gen = sock.gen
    group = admit(sock, sub, spec, params)
    if not group or sockets[sock.id] ~= sock then return end
  until sock.gen == gen
  if sock.subs[sub] then return reply_error(sock.id, sub, "validation_error", "this subscription id is in use") end
  sock.subs[sub] = { channel = spec.name, params = params, group = group }
  join(sock, sub, group)
  send_to(sock.id, { type = "subscribed", id = sub })
end

--- mizan.channels.authorize(channel, req, params): the channel's own
-- authorize decision for an HTTP caller, so a function serving the same data
-- (a room's history) lets in exactly who may subscribe. Returns when
-- allowed; raises 401 unauthenticated or 403 forbidden as a subscribe is answered.
function M.authorize(channel, req, params)
  local spec = registry.channels[channel]
  if not spec then error(("mizan.channels.authorize: no channel named '%s'"):format(tostring(channel)), 2) end
  local p, errs = types.validate(spec.params, params or {})
  if errs then error(errors.raised("validation_error", "the channel params are not valid", errs), 0) end
  local code, message = refusal(spec, { user = req.user, session = req.session, req = req }, p)
  if code then error(errors.raised(code, message), 0) end
end

function handlers.unsubscribe(sock, msg)
  if not sock.subs[msg.id] then return reply_error(sock.id, msg.id, "not_found", "no such subscription") end
  leave(sock, msg.id)
  send_to(sock.id, { type = "unsubscribed", id = msg.id })
end

handlers["send"] = function(sock, msg)
  local s = sock.subs[msg.id]
  if not s then return reply_error(sock.id, msg.id, "not_found", "no such subscription") end
  local spec = registry.channels[s.channel]
  if not spec.receive then return reply_error(sock.id, msg.id, "method_not_allowed", "this channel does not take messages") end
  local data, errs = msg.data, nil
  if spec.client_message then data, errs = types.validate(spec.client_message, msg.data) end
  if errs then return reply_error(sock.id, msg.id, "validation_error", "the message is not valid", errs) end
  guarded(sock, msg.id, ("channel '%s' receive"):format(spec.name), spec.receive, ctx_of(sock), s.params, data)
end

function handlers.subscribe_invalidations(sock)
  sock.invalidations = true
  send_to(sock.id, { type = "subscribed", id = "invalidations" })
end

---------------------------------------------------------------- following the session

local per_user -- defined with the invalidation push below

-- Authorize each subscription again for the socket as it is now. A refused
-- one ends with its error frame then an unsubscribed frame; one whose group
-- changed moves.
local function reauthorize(sock)
  local ids, gen = {}, sock.gen
  for sub in pairs(sock.subs) do ids[#ids + 1] = sub end
  for _, sub in ipairs(ids) do
    local s = sock.subs[sub]
    -- authorize may yield: the socket may have closed or unsubscribed
    -- meanwhile; and once its identity changed again, the pass that change
    -- started decides, not this one
    if sock.gen ~= gen then return end
    if s and sockets[sock.id] == sock then
      local group = admit(sock, sub, registry.channels[s.channel], s.params)
      if sock.subs[sub] == s and sock.gen == gen then
        if not group then
          leave(sock, sub)
          send_to(sock.id, { type = "unsubscribed", id = sub })
        elseif group ~= s.group then
          leave(sock, sub)
          sock.subs[sub] = { channel = s.channel, params = s.params, group = group }
          join(sock, sub, group)
        end
      end
    end
  end
end

-- The socket's session ended: it has no user any more, and its
-- subscriptions are authorized again as such.
local function drop_session(sock)
  local had_user = sock.user ~= nil
  sock.user, sock.session, sock.session_id, sock.expires = nil, nil, nil, nil
  sock.gen = sock.gen + 1
  -- the client's "global" data (its current user) is stale now
  if had_user and sock.invalidations and registry.contexts.global and per_user("global") then
    send_to(sock.id, { type = "invalidate", invalidate = json.array { "global" } })
  end
  -- and whoever it is now, the client reopens its socket and refetches
  if sock.invalidations then send_to(sock.id, { type = "identity" }) end
  reauthorize(sock)
end

-- Did what authorize may look at change? The user's plain fields, compared
-- one by one (a table field counts as changed unless it is the same table).
local function user_changed(a, b)
  for k, v in pairs(a) do if b[k] ~= v then return true end end
  for k, v in pairs(b) do if a[k] ~= v then return true end end
  return false
end

-- Every local socket of this session drops it. Identities go at once,
-- before any authorize runs (and may yield), so nothing acts as the old user.
local function end_local(session_id)
  local list = {}
  for _, sock in pairs(sockets) do
    if sock.session_id == session_id then list[#list + 1] = sock end
  end
  for _, sock in ipairs(list) do
    sock.session_id = false -- claimed: drop_session clears the rest
  end
  for _, sock in ipairs(list) do drop_session(sock) end
end

-- The user signed in or out somewhere: that user's other sockets that
-- listen for invalidations are told, so their clients refetch. Sockets of the
-- session that ended are not among them (they dropped their user first: the
-- task that does it was spawned before this one) and are told by drop_session.
local function identity_local(uid)
  for id, sock in pairs(sockets) do
    if sock.invalidations and sock.user and sock.user.id == uid then send_to(id, { type = "identity" }) end
  end
end

--- A user signed in or out here: their sockets on every worker and instance
-- are told. The session layer calls this.
function M.identity_changed(uid)
  if relay then relay.publish { d = uid } end
  core.spawn(identity_local, uid)
end

--- A session ended here (logout, or a login rotated it): its sockets on
-- every worker and instance drop it. The session layer calls this.
function M.session_ended(session_id)
  if relay then relay.publish { e = session_id } end
  core.spawn(end_local, session_id)
end

-- Is the socket's session still the one it opened with, and its user still
-- one who may sign in? Looked up as an HTTP request would (the session
-- store, shared by workers and instances; then the user): true, or false
-- after dropping the session; nil, err when the store cannot answer. A user
-- whose record changed (no longer staff) has the subscriptions authorized again.
local function revalidate(sock)
  local id = sock.session_id
  if not id then return true end
  local rec, expires_or_err = session.lookup(id)
  if sock.session_id ~= id then return true end -- changed while we waited
  if rec == nil and expires_or_err ~= nil then return nil, expires_or_err end
  local uid = sock.user and sock.user.id
  local user
  if rec and uid ~= nil and rec.u == uid then
    local loaded, err = auth.load(uid)
    if err then return nil, err end
    user = loaded
  end
  if sock.session_id ~= id then return true end
  if rec and rec.u == uid and (uid == nil or user) then
    -- a store that rounds (Redis: whole seconds) must not make the sweep spin
    sock.session, sock.expires = rec.d, math.max(tonumber(expires_or_err) or 0, core.now() + 1)
    sock.checked = core.now()
    if user and user_changed(sock.user, user) then
      sock.user = user
      sock.gen = sock.gen + 1
      reauthorize(sock)
    end
    return true
  end
  sock.session_id = false
  drop_session(sock)
  return false
end

-- Sockets with a session are checked again when it would expire (a client
-- that only listens sends nothing that would reveal it), and at least every
-- RECHECK seconds: an "ended" event can be lost (Redis pub/sub delivers at
-- most once; instances may share only the session store), and then the
-- store is the only witness. One task per process, running only while such
-- sockets exist. The interval: a quarter of the session lifetime, at most
-- a minute, so an ended session's socket never outlives it by more.
local sweeping, retired = false, false

local function recheck() return math.min(60, session.ttl() / 4) end

-- When `sock` is next due for a check.
local function due_at(sock) return math.min(sock.expires, sock.checked + recheck()) end

local function sweep_once()
  local now, due, soonest = core.now(), {}, nil
  for _, sock in pairs(sockets) do
    if sock.session_id and sock.expires then
      local at = due_at(sock)
      if at <= now then due[#due + 1] = sock
      elseif not soonest or at < soonest then soonest = at end
    end
  end
  for _, sock in ipairs(due) do
    if sockets[sock.id] == sock then
      -- an app's user loader may raise: one socket's failure never ends the sweep
      local pok, ok, err = pcall(revalidate, sock)
      if not pok or ok == nil then
        core.log("warn", "channels: cannot check a socket's session: " .. tostring(pok and err or ok))
        sock.checked = now - recheck() + 1 -- try again soon, never in a tight loop
        sock.expires = math.max(sock.expires or 0, now + 1)
      end
    end
  end
  if #due > 0 then return 0 end
  return soonest and math.max(soonest - now, 0.05)
end

local function sweep()
  while not retired do
    local ok, wait = pcall(sweep_once)
    if not ok then
      core.log("error", "channels: the session sweep failed: " .. tostring(wait))
      wait = 1
    end
    if not wait then break end
    if wait > 0 then core.sleep(wait, true) end
  end
  sweeping = false
end

local function watch_expiry(sock)
  if sweeping or retired or not sock.expires then return end
  sweeping = true
  core.spawn(sweep)
end

--- This state stops serving (a hot reload replaced it): its background
-- task ends, so the state can be closed once its requests are done.
function M.retire() retired = true end

---------------------------------------------------------------- events

--- The WebSocket event handler C calls: ("message", id, text) or ("close", id).
function M.on_event(event, id, text)
  local sock = sockets[id]
  if event == "close" then
    if sock then
      for sub in pairs(sock.subs) do leave(sock, sub) end
      sockets[id] = nil
    end
    return
  end
  if not sock then return end
  local msg, err = json.decode(text)
  if msg == nil then return reply_error(id, nil, "invalid_json", "the frame is not valid JSON: " .. err) end
  if type(msg) ~= "table" or json.is_array(msg) then
    return reply_error(id, nil, "validation_error", "a frame is a JSON object with a type")
  end
  local h = handlers[msg.type]
  if not h then return reply_error(id, msg.id, "validation_error", ("unknown frame type '%s'"):format(tostring(msg.type))) end
  if msg.type ~= "subscribe_invalidations" and (type(msg.id) ~= "number" and type(msg.id) ~= "string") then
    return reply_error(id, nil, "validation_error", "a frame needs an id (a number or a string)")
  end
  -- never act for a session that ended (logged out elsewhere, expired)
  local ok, verr = revalidate(sock)
  if ok == nil then
    core.log("warn", "channels: cannot check a socket's session: " .. tostring(verr))
    return reply_error(id, msg.id, "unavailable", "the session store cannot be reached; try again")
  end
  if sockets[id] ~= sock then return end -- closed meanwhile
  h(sock, msg)
end

--- A WebSocket was accepted for this request (C gave it `id`): it carries
-- the request's user and session (its id, and when it expires).
function M.opened(id, user, session_data, session_id, expires)
  local sock = { id = id, user = user, session = session_data, session_id = session_id, expires = expires,
                 checked = core.now(), gen = 0, subs = {}, invalidations = false }
  sockets[id] = sock
  if session_id then watch_expiry(sock) end
end

---------------------------------------------------------------- invalidation push

-- A target is per user unless every function of it is cached for everyone.
function per_user(target)
  local group = registry.contexts[target]
  local names = group and group.functions or { target }
  for _, f in ipairs(names) do
    local spec = registry.functions[f]
    if not (spec and spec.cache and spec.cache.shared) then return true end
  end
  return false
end

--- Push a mutation's invalidation record to the sockets that should
-- refetch: shared targets to every socket that asked, per-user targets only
-- to the sockets whose cache scope is the mutation's (mizan.cache.scope_for:
-- the same user; for an anonymous caller, the same session, or the sockets
-- without one when it had none), since only their entries changed.
local function push_local(entries, scope)
  local shared, personal = json.array {}, json.array {}
  for _, e in ipairs(entries) do
    local t = type(e) == "table" and e.target or e
    if per_user(t) then personal[#personal + 1] = e else shared[#shared + 1] = e end
  end
  for id, sock in pairs(sockets) do
    if sock.invalidations then
      local list = shared
      if #personal > 0 and cache.scope_for(sock, sock.user, sock.session_id or nil) == scope then
        list = json.array { unpack(shared) }
        for _, e in ipairs(personal) do list[#list + 1] = e end
      end
      if #list > 0 then send_to(id, { type = "invalidate", invalidate = list }) end
    end
  end
end

function M.push_invalidation(entries, scope)
  push_local(entries, scope)
  -- the caller's other tabs may be connected to another worker or instance
  if relay then relay.publish { i = entries, s = scope } end
end

-- Broadcasts reach the other processes through Redis pub/sub (every
-- instance, MIZAN_CHANNELS=redis://...), or else through the workers' bus
-- (one instance, no server). A message carries its origin so that a process
-- does not deliver its own broadcast twice.
local origin = ("%d:%s"):format(require("mizan.core").getpid(), require("mizan.crypto").random_hex(4))
local relay_ready = false

local function on_relayed(payload)
  local m = json.decode(payload)
  if type(m) ~= "table" or m.o == origin then return end
  if type(m.g) == "string" then deliver(m.g, m.m)
  elseif type(m.i) == "table" and type(m.s) == "string" then push_local(m.i, m.s)
  elseif type(m.e) == "string" then end_local(m.e)
  elseif m.d ~= nil then identity_local(m.d) end
end

local function setup_relay(cfg)
  if relay_ready then return end
  if cfg.channels then
    local redis = require "mizan.redis"
    redis.open(cfg.channels, 0.5, "mizan:channels", on_relayed) -- the subscriber
    local pub = redis.open(cfg.channels, 0.5)
    relay = { publish = function(frame)
      frame.o = origin
      local ok, err = redis.call(pub, "PUBLISH", "mizan:channels", assert(json.encode(frame)))
      if not ok then core.log("warn", "channels: a broadcast did not reach redis: " .. tostring(err)) end
    end }
  elseif os.getenv("MIZAN_BUS_DIR") then
    local bus = require "mizan.bus"
    local ok, err = bus.open(os.getenv("MIZAN_BUS_DIR"), on_relayed)
    if not ok then
      core.log("warn", "channels: cannot join the workers' bus: " .. tostring(err))
      return
    end
    relay = { publish = function(frame)
      frame.o = origin
      local n, perr = bus.publish(assert(json.encode(frame)))
      if not n then core.log("warn", "channels: a broadcast did not reach the other workers: " .. tostring(perr)) end
    end }
  end
  relay_ready = true
end

function M.configure(reg, mode, cfg)
  registry = reg
  dev = mode ~= "production"
  session.on_end(M.session_ended)
  session.on_identity(M.identity_changed)
  if cfg and mode ~= "test" then setup_relay(cfg) end
end

function M.stats()
  local n, g = 0, 0
  for _ in pairs(sockets) do n = n + 1 end
  for _ in pairs(groups) do g = g + 1 end
  return { sockets = n, groups = g }
end

return M
