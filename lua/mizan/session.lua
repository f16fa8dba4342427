-- mizan.session: the session cookie and the session store.
--
-- Cookie: <session_cookie>=<id>.<sig> (mizan_session by default), where id is 128 random bits (hex) and sig
-- an HMAC-SHA256 of it under the app secret, compared in constant time.
-- HttpOnly, SameSite=Lax, Path=/, and Secure when configured or when the
-- request came over HTTPS (X-Forwarded-Proto). A tampered, unknown or
-- expired cookie means anonymous.
--
-- Store: SQLite (the embedded default, shared by every worker through the
-- file) or Redis (MIZAN_SESSIONS=redis://..., shared by every instance).
-- A record is { u = user id or nil, d = the app's req.session table }.
-- The id rotates on login; logout deletes the record, so a copied cookie
-- stops working.
--
-- A store that fails is not a logout: store.get returns nil for "no such
-- session" and nil, err when it could not answer. Then the request answers
-- 503 unavailable, and no Set-Cookie goes out: the browser keeps a cookie
-- that may well still be valid, and it works again once the store is back.
local core = require "mizan.core"
local crypto = require "mizan.crypto"
local json = require "mizan.json"
local db = require "mizan.db"

local M = {}

local options = require "mizan.options"

local NAME = options.default("session_cookie") -- configure() sets the app's
local secret, ttl, secure_always, store
local ended -- told the id of every session that ends here (see M.on_end)
local identity -- told the user id of every login and logout here (see M.on_identity)

---------------------------------------------------------------- stores

local sqlite_store = {}
-- The table mizan_sessions comes from the built-in migration mizan/0002_sessions.

-- rec, expires_at; nil when there is no such session; nil, nil, err when
-- the store failed.
function sqlite_store.get(id)
  local rows, qerr = db.query("SELECT data, expires_at FROM mizan_sessions WHERE id = ?", id)
  if not rows then return nil, nil, qerr end
  local row = rows[1]
  if not row then return nil end
  if row.expires_at < core.now() then
    db.exec("DELETE FROM mizan_sessions WHERE id = ?", id) -- best effort: it is expired either way
    return nil
  end
  return json.decode(row.data), row.expires_at
end

function sqlite_store.save(id, text, seconds)
  return db.exec("INSERT INTO mizan_sessions (id, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (id) "
                 .. "DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
                 id, text, core.now() + seconds)
end

function sqlite_store.delete(id)
  return db.exec("DELETE FROM mizan_sessions WHERE id = ?", id)
end

local function redis_store(url)
  local redis = require "mizan.redis"
  local client = redis.open(url, 0.5)
  local s = { client = client }
  function s.get(id)
    local text, err = redis.call(client, "GET", "mizan:s:" .. id)
    if text == nil then return nil, nil, err end -- false is Redis's nil: no such session
    if not text then return nil end
    local ttl_left, terr = redis.call(client, "TTL", "mizan:s:" .. id)
    if ttl_left == nil then return nil, nil, terr end
    return json.decode(text), core.now() + (tonumber(ttl_left) or 0)
  end
  function s.save(id, text, seconds)
    return redis.call(client, "SET", "mizan:s:" .. id, text, "EX", tostring(math.ceil(seconds)))
  end
  function s.delete(id) return redis.call(client, "DEL", "mizan:s:" .. id) end
  return s
end

function M.configure(cfg)
  secret = assert(cfg.secret, "a secret is needed for sessions")
  ttl = cfg.session_ttl or options.default("session_ttl")
  NAME = cfg.session_cookie or options.default("session_cookie")
  secure_always = cfg.session_secure == true
  store = cfg.sessions and cfg.sessions:find("^redis://") and redis_store(cfg.sessions) or sqlite_store
end

--- The sessions' Redis client (MIZAN_SESSIONS=redis://...), or nil when
-- sessions live in SQLite: what else must be shared exactly as widely as
-- the sessions (the sign-in budget) keeps it there too.
function M.redis() return store.client end

--- How long a session lives without being used (seconds).
function M.ttl() return ttl end

--- on_end(fn): fn(id) is called when a session ends by logout or by the
-- rotation of a login, after its record is gone from the store. The
-- channels use it: the WebSockets of that session follow it.
function M.on_end(fn) ended = fn end

--- on_identity(fn): fn(user_id) is called after a login (the new user, and
-- the one it replaced) and after a logout (the user who left), once the store
-- agrees. The channels tell that user's other sockets.
function M.on_identity(fn) identity = fn end

local function changed(...)
  if not identity then return end
  local seen = {}
  for _, uid in ipairs {...} do
    if uid ~= nil and not seen[uid] then seen[uid] = true; identity(uid) end
  end
end

--- The record of a live session: { u = user id or nil, d = data }, expires
-- (epoch seconds); nil when it is unknown or expired; nil, err when the
-- store cannot answer.
function M.lookup(id)
  local rec, expires, err = store.get(id)
  if err then return nil, err end
  if type(rec) ~= "table" then return nil end
  if type(rec.d) ~= "table" then rec.d = {} end
  return rec, expires
end

---------------------------------------------------------------- cookie

local function sign(id) return crypto.hmac_sha256_hex(secret, "session\n" .. id) end

--- The session id in a Cookie header, if present and correctly signed.
-- Returns id, or nil and whether a (bad) session cookie (option session_cookie) was there.
function M.read_cookie(header)
  if not header then return nil, false end
  local value = (";" .. header):match(";%s*" .. NAME:gsub("%-", "%%-") .. "=([^;%s]*)")
  if not value then return nil, false end
  local id, sig = value:match("^(%x+)%.(%x+)$")
  if not id or #id ~= 32 or not crypto.equal(sign(id), sig) then return nil, true end
  return id, true
end

local function cookie(req, id, max_age)
  local secure = secure_always or (req.headers["x-forwarded-proto"] or ""):lower() == "https"
  return ("%s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%d%s"):format(
    NAME, id and (id .. "." .. sign(id)) or "", max_age, secure and "; Secure" or "")
end

---------------------------------------------------------------- a request's session

--- Load the request's session (if its cookie is valid and known). Sets the
-- raw fields the request object reads: _session_id, _session, _user_id.
-- Returns true, or nil, err when the store could not answer.
function M.load(req)
  local id, had = M.read_cookie(req.headers.cookie)
  if not id then
    if had then rawset(req, "_clear_cookie", true) end -- tampered: anonymous, and drop it
    return true
  end
  local rec, expires_or_err = M.lookup(id)
  if not rec then
    if expires_or_err ~= nil then return nil, expires_or_err end -- the store could not answer
    rawset(req, "_clear_cookie", true) -- unknown or expired
    return true
  end
  local data, expires = rec.d, expires_or_err
  rawset(req, "_session_id", id)
  rawset(req, "_session", data)
  rawset(req, "_session_text", assert(json.canonical(data)))
  rawset(req, "_session_expires", expires)
  rawset(req, "_user_id", rec.u)
  return true
end

local function save(id, user_id, data)
  local text = assert(json.encode { u = user_id, d = data }, "req.session holds a value JSON cannot carry")
  return store.save(id, text, ttl)
end

--- After the handler: persist what changed, rotate on login, drop on logout.
-- Returns the Set-Cookie value to send (or nil); or nil, err when the store
-- failed at something the answer depends on (a login, a logout, changed
-- session data): the caller answers 503 then, and sends no cookie.
function M.commit(req)
  local id = rawget(req, "_session_id")
  if rawget(req, "_logout") then
    if id then
      local ok, err = store.delete(id)
      if not ok then return nil, err end -- the session lives on: say so, keep the cookie
      if ended then ended(id) end
      changed(rawget(req, "_user_id"))
    end
    return cookie(req, nil, 0)
  end
  local data = rawget(req, "_session") -- nil: the call never touched a session
  local user = rawget(req, "_login")
  if user then
    if id then -- rotate: the old id dies first, so it can never outlive the login
      local ok, err = store.delete(id)
      if not ok then return nil, err end
      if ended then ended(id) end
    end
    local new = assert(crypto.random_hex(16))
    local ok, err = save(new, user.id, data or {})
    if not ok then return nil, err end
    changed(user.id, rawget(req, "_user_id"))
    return cookie(req, new, ttl)
  end
  local text = data and assert(json.canonical(data)) or nil
  if text and text ~= rawget(req, "_session_text") then
    if not id then
      if next(data) == nil then return nil end -- nothing worth a session
      id = assert(crypto.random_hex(16))
    end
    local ok, err = save(id, rawget(req, "_user_id"), data)
    if not ok then return nil, err end
    return cookie(req, id, ttl)
  end
  if id and (rawget(req, "_session_expires") or 0) - core.now() < ttl / 2 then
    -- sliding expiry for active sessions; a failed refresh only skips it
    local ok, err = save(id, rawget(req, "_user_id"), data or {})
    if ok then return cookie(req, id, ttl) end
    core.log("warn", "session: cannot refresh the expiry: " .. tostring(err))
    return nil
  end
  if rawget(req, "_clear_cookie") then return cookie(req, nil, 0) end
end

return M
