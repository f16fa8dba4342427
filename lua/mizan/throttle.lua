-- mizan.throttle: the sign-in budget, per username and per client address.
--
-- A sliding window: an attempt counts for WINDOW seconds after it was made,
-- and a key may hold at most its limit of attempts inside the window. An
-- attempt is *reserved* before the password is checked (scrypt is slow, and
-- a check that only counted failures afterwards let hundreds of concurrent
-- guesses through a 5-guess limit); the reservation of a successful sign-in
-- is released, a failed one stays and counts.
--
-- The counters live where the sessions live, so every worker and every
-- instance sees them and a reload does not reset them: the app's SQLite
-- database (table mizan_login_attempts), or Redis when MIZAN_SESSIONS is
-- redis:// (sorted sets "mizan:login:<key>", reserved by one Lua script).
-- When the store cannot answer, sign-in fails closed (503), never open.
local core = require "mizan.core"
local crypto = require "mizan.crypto"
local db = require "mizan.db"

local M = {}

M.WINDOW, M.PER_USER, M.PER_IP = 15 * 60, 5, 20

local store

---------------------------------------------------------------- SQLite

local sqlite_store = {}
-- The table mizan_login_attempts comes from the built-in migration
-- mizan/0003_login_attempts.

-- A failed statement inside the reservation: raised, so the transaction
-- rolls back, and caught again in reserve().
local Failed = {}

local function must(res, err, kind)
  if res then return res end
  error(setmetatable({ err = err, kind = kind }, Failed), 0)
end

-- One transaction (BEGIN IMMEDIATE: the write lock first, so two workers
-- take turns and neither counts on a stale view).
function sqlite_store.reserve(keys, now)
  local cutoff = now - M.WINDOW
  local pok, a, b, c = pcall(db.transaction, function()
    -- Postgres's BEGIN takes no lock: take SQLite's turn-taking explicitly
    -- (reservations wait for each other; plain reads do not)
    if db.engine() == "postgres" then
      must(db.exec("LOCK TABLE mizan_login_attempts IN SHARE ROW EXCLUSIVE MODE"))
    end
    must(db.exec("DELETE FROM mizan_login_attempts WHERE at <= ?", cutoff))
    for _, k in ipairs(keys) do
      local row = must(db.row("SELECT count(*) AS n, min(at) AS first FROM mizan_login_attempts WHERE key = ? AND at > ?",
                              k.key, cutoff))
      if row.n >= k.limit then return false, row.first + M.WINDOW - now end
    end
    local ids = {}
    for i, k in ipairs(keys) do
      ids[i] = must(db.row("INSERT INTO mizan_login_attempts (key, at) VALUES (?, ?) RETURNING id", k.key, now)).id
    end
    return true, ids
  end)
  if not pok then
    if getmetatable(a) == Failed then return nil, nil, a.err, a.kind end
    error(a, 0)
  end
  if a == nil then return nil, nil, b, c end -- BEGIN or COMMIT failed
  if a then return b end
  return nil, b
end

function sqlite_store.release(ids)
  for _, id in ipairs(ids) do
    local ok, err = db.exec("DELETE FROM mizan_login_attempts WHERE id = ?", id)
    if not ok then return nil, err end
  end
  return true
end

---------------------------------------------------------------- Redis

-- KEYS: the budget keys. ARGV: window (ms), the attempt's member, then each
-- key's limit. Returns { 1 } when reserved, { 0, ms to wait } when refused.
-- The clock is Redis's own, so instances with skewed clocks agree.
local RESERVE = [[
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
  if redis.call('ZCARD', k) >= tonumber(ARGV[2 + i]) then
    local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    return { 0, tonumber(first[2]) + window - now }
  end
end
for _, k in ipairs(KEYS) do
  redis.call('ZADD', k, now, ARGV[2])
  redis.call('PEXPIRE', k, window)
end
return { 1 }
]]

local function redis_store(client)
  local redis = require "mizan.redis"
  local s = {}
  function s.reserve(keys)
    local member = assert(crypto.random_hex(16))
    local argv = { "EVAL", RESERVE, tostring(#keys) }
    for _, k in ipairs(keys) do argv[#argv + 1] = "mizan:login:" .. k.key end
    argv[#argv + 1] = tostring(M.WINDOW * 1000)
    argv[#argv + 1] = member
    for _, k in ipairs(keys) do argv[#argv + 1] = tostring(k.limit) end
    local reply, err = redis.call(client, unpack(argv))
    if type(reply) ~= "table" then return nil, nil, err or "unexpected reply", "redis" end
    if reply[1] == 1 then return { member = member, keys = keys } end
    return nil, (tonumber(reply[2]) or 1000) / 1000
  end
  function s.release(token)
    for _, k in ipairs(token.keys) do
      local ok, err = redis.call(client, "ZREM", "mizan:login:" .. k.key, token.member)
      if not ok then return nil, err end
    end
    return true
  end
  return s
end

---------------------------------------------------------------- the API

-- After mizan.session is configured: the counters go where the sessions are.
function M.configure()
  local client = require("mizan.session").redis()
  store = client and redis_store(client) or sqlite_store
end

--- Where the counters live: "redis" or "sqlite".
function M.backend() return store == sqlite_store and "sqlite" or "redis" end

--- Reserve one sign-in attempt for this username and this address, before
-- the password is checked. Returns a token (for release), or nil and the
-- seconds to wait when either budget is spent, or nil, nil, err when the
-- store failed.
function M.reserve(username, ip)
  local keys = { { key = "u:" .. username, limit = M.PER_USER }, { key = "ip:" .. ip, limit = M.PER_IP } }
  local token, wait, err, kind = store.reserve(keys, core.now())
  if token then return token end
  if wait then return nil, math.max(1, math.ceil(wait)) end
  return nil, nil, err, kind
end

--- A sign-in succeeded: its attempt no longer counts against the budget.
function M.release(token)
  local ok, err = store.release(token)
  if not ok then core.log("warn", "login throttle: cannot release an attempt: " .. tostring(err)) end
end

return M
