-- mizan.auth: accounts (users in SQLite, scrypt passwords), the built-in
-- functions auth.signup / auth.login / auth.logout / current_user, login
-- throttling, and the auth predicates of client{ auth = ... }.
--
--   auth = true | "staff" | "superuser" | function(req) -> ok[, message]
--   no user: 401 unauthenticated; a refusal: 403 forbidden (with the message).
local core = require "mizan.core"
local crypto = require "mizan.crypto"
local json = require "mizan.json"
local db = require "mizan.db"
local errors = require "mizan.errors"
local throttle = require "mizan.throttle"

local M = {}

local loader -- an app's own user source, or nil for the built-in accounts

-- scrypt parameters for new hashes; stored next to each hash, so they can rise.
local N, R, P = 16384, 8, 1

---------------------------------------------------------------- users

-- The table mizan_users comes from the built-in migration mizan/0001_users
-- (lua/mizan/migrations_builtin.lua), applied before serving.

-- Raise the protocol error for a database failure (generic; logged).
local function must(res, err, kind)
  return db.check("accounts", res, err, kind)
end

-- What the app and the client see of a user: never the password hash.
local function public(row)
  if not row then return nil end
  return { id = row.id, username = row.username, email = row.email,
           is_staff = row.is_staff == 1, is_superuser = row.is_superuser == 1, is_active = row.is_active == 1 }
end
M.public = public

local COLUMNS = "id, username, email, is_staff, is_superuser, is_active"

--- mizan.auth.user_loader(fn): load users from the app's own source;
-- fn(user_id) returns a user table (with at least id) or nil.
function M.user_loader(fn)
  if type(fn) ~= "function" then error("mizan.auth.user_loader expects a function", 2) end
  loader = fn
end

function M.reset() loader = nil end

--- The user a session points at, or nil (unknown or inactive); or nil,
-- err, kind when the database failed (which is not "no such user").
function M.load(id)
  if id == nil then return nil end
  if loader then
    local user = loader(id)
    if type(user) == "table" and user.is_active ~= false then return user end
    return nil
  end
  local rows, qerr, qkind = db.query("SELECT " .. COLUMNS .. " FROM mizan_users WHERE id = ?", id)
  if not rows then return nil, qerr, qkind end
  local user = public(rows[1])
  if user and user.is_active then return user end
  return nil
end

--- The row of a username, or nil. A database failure raises its protocol error.
function M.find(username)
  local rows = must(db.query("SELECT * FROM mizan_users WHERE username = ?", username))
  return rows[1]
end

---------------------------------------------------------------- passwords

--- "scrypt$N$r$p$salt$hash": the parameters live next to the hash.
function M.hash_password(password)
  local salt = assert(crypto.random_hex(16))
  local hash = assert(crypto.scrypt(password, salt, N, R, P, 32))
  return ("scrypt$%d$%d$%d$%s$%s"):format(N, R, P, salt, hash)
end

function M.check_password(password, stored)
  local n, r, p, salt, hash = (stored or ""):match("^scrypt%$(%d+)%$(%d+)%$(%d+)%$(%x+)%$(%x+)$")
  if not n then return false end
  local got = crypto.scrypt(password, salt, tonumber(n), tonumber(r), tonumber(p), #hash / 2)
  return got ~= nil and crypto.equal(got, hash)
end

-- A real hash of nothing anyone knows: a login for an unknown user checks
-- against it, so it costs the same time as a login for a real one.
local dummy
local function dummy_hash()
  dummy = dummy or M.hash_password(assert(crypto.random_hex(16)))
  return dummy
end

--- Create a user. Returns the public user, or nil and field errors.
-- A database failure raises its protocol error (503 or 500, generic).
local TAKEN = { username = { "A user with that username already exists." } }
function M.create_user(t)
  if M.find(t.username) then return nil, TAKEN end
  -- RETURNING: the new id on both engines (Postgres has no last_insert_id)
  local res, err, kind = db.row(
    "INSERT INTO mizan_users (username, email, password, is_staff, is_superuser, is_active, created_at) "
      .. "VALUES (?, ?, ?, ?, ?, 1, ?) RETURNING id",
    t.username, t.email or "", M.hash_password(t.password), t.is_staff and 1 or 0, t.is_superuser and 1 or 0,
    core.now())
  if not res and kind == "constraint" then return nil, TAKEN end -- a concurrent sign-up took it
  must(res, err, kind)
  local user, lerr, lkind = M.load(res.id)
  if lerr then must(nil, lerr, lkind) end
  return user
end

function M.set_password(username, password)
  local res = must(db.exec("UPDATE mizan_users SET password = ? WHERE username = ?", M.hash_password(password), username))
  return res.changes == 1
end

function M.list_users()
  local rows = must(db.query("SELECT " .. COLUMNS .. " FROM mizan_users ORDER BY id"))
  for i, r in ipairs(rows) do rows[i] = public(r) end
  return rows
end

---------------------------------------------------------------- predicates

--- How x-mizan-functions shows a requirement: never a function body.
function M.export(requirement)
  if requirement == nil then return false end
  if type(requirement) == "function" then return "custom" end
  return requirement
end

---------------------------------------------------------------- built-in functions

--- Register auth.signup, auth.login, auth.logout and (unless the app has
-- its own) current_user. Called after app.lua ran, when accounts are on.
function M.register_builtins(mizan)
  local client, T = mizan.client, mizan.types
  local reg = mizan.registry()
  local User = T.object {
    id = T.integer, username = T.string, email = T.string,
    is_staff = T.boolean, is_superuser = T.boolean, is_active = T.boolean,
  }
  if not reg.functions.current_user then
    mizan.register(client {
      context = "global",
      description = "The signed-in user, or null.",
      output = T.nullable(User),
    } (function(req)
      return req.user or json.null
    end), "current_user")
  end
  if reg.functions["auth.signup"] then return end

  mizan.register(client {
    description = "Create an account and sign in.",
    input = {
      username = T.string { min_length = 3, max_length = 150, pattern = "^[%w.@+_%-]+$" },
      password = T.string { min_length = 8, max_length = 1024 },
      email = T.optional(T.email),
    },
    output = User,
    affects = "global",
  } (function(req, args)
    local user, errs = M.create_user(args)
    if not user then mizan.error("validation_error", "the account could not be created", errs) end
    req:login(user)
    return user
  end), "auth.signup")

  mizan.register(client {
    description = "Sign in with a username and a password.",
    input = { username = T.string { max_length = 150 }, password = T.string { max_length = 1024 } },
    output = User,
    affects = "global",
  } (function(req, args)
    -- the attempt is reserved before the (slow) password check, so
    -- concurrent guesses cannot outrun the budget (mizan.throttle)
    local token, wait, terr, tkind = throttle.reserve(args.username, req.ip)
    if not token then
      if wait then
        error(errors.raised("rate_limited", "too many failed sign-ins; try again later", nil,
                            { ["Retry-After"] = tostring(wait) }), 0)
      end
      core.log("error", ("login throttle: the store failed (%s): %s"):format(tostring(tkind), tostring(terr)))
      error(errors.raised("unavailable", "signing in is unavailable right now; try again shortly"), 0)
    end
    -- the same work whether or not the user exists; only a wrong password
    -- keeps its attempt: a failure of ours (the database is down) gives it back
    local found, row, ok = pcall(function()
      local r = M.find(args.username)
      return r, M.check_password(args.password, r and r.password or dummy_hash())
    end)
    if not found then
      throttle.release(token)
      error(row, 0)
    end
    if not (row and ok and row.is_active == 1) then
      mizan.error("validation_error", "Please enter a correct username and password.",
                  { __all__ = { "Please enter a correct username and password." } })
    end
    throttle.release(token)
    local user = public(row)
    req:login(user)
    return user
  end), "auth.login")

  mizan.register(client {
    description = "Sign out: the session ends on the server too.",
    output = T.boolean,
    affects = "global",
  } (function(req)
    req:logout()
    return true
  end), "auth.logout")
end

return M
