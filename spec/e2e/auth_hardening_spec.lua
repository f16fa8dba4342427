-- Sign-in throttling that holds under concurrency, across workers, reloads
-- and instances; the client address behind trusted proxies; and the
-- session store and the database failing without logging anyone out or
-- leaking SQLite's text.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local core = require "mizan.core"
local json = require "mizan.json"
local h = require "helpers"

local APP = "spec/apps/auth"
local assert_error = h.assert_error

local function signup(srv, username, password)
  local agent = srv:agent()
  local res = agent:call("auth.signup", { username = username, password = password })
  assert.equals(200, res.status, res.body)
  return agent
end

-- Run one statement on a database file from this process (a second
-- connection, as an operator's would be). Returns its result.
local function sql(path, statement)
  local sqlite = require "mizan.sqlite"
  local ok, res, err = core.run(function()
    local handle = assert(sqlite.open(path))
    return sqlite.run(handle, statement, { n = 0 }, true)
  end)
  collectgarbage() -- closes the connection
  assert(ok, res)
  return assert(res, err)
end

-- A view in the users table's place: every worker's next query fails (no
-- such column), whether or not it has created the table before. mend_users
-- puts the table back.
local function break_users(path)
  sql(path, "ALTER TABLE mizan_users RENAME TO mizan_users_away")
  sql(path, "CREATE VIEW mizan_users AS SELECT 1 AS placeholder")
end

local function mend_users(path)
  sql(path, "DROP VIEW mizan_users")
  sql(path, "ALTER TABLE mizan_users_away RENAME TO mizan_users")
end

local function login(srv, username, password, headers)
  local hs = { ["Content-Type"] = "application/json" }
  for k, v in pairs(headers or {}) do hs[k] = v end
  return srv:call("auth.login", { username = username, password = password }, { headers = hs })
end

-- n sign-ins in flight at once: every request is sent on its own connection
-- before any answer is read. Returns the count of each status.
local function concurrent_logins(srv, n, username, password)
  local bytes = testing.request_bytes("POST", "/api/mizan/call/auth.login/", { "Content-Type: application/json" },
                                      assert(json.encode { username = username, password = password }))
  local conns = {}
  for i = 1, n do
    conns[i] = srv:connect()
    assert(conns[i]:send(bytes))
  end
  local counts = {}
  for i = 1, n do
    local res = assert(conns[i]:read_response { timeout = 120 })
    counts[res.status] = (counts[res.status] or 0) + 1
    conns[i]:close()
  end
  return counts
end

-- The budget's contract under one setup (a serve with 2 workers).
local function budget_holds(env)
  local srv = testing.server(APP, { command = "serve", env = env })
  signup(srv, "victim", "the right password")
  local counts = concurrent_logins(srv, 150, "victim", "a wrong password")
  local checked = counts[400] or 0
  assert.is_true(checked <= 5, ("%d password checks ran against a budget of 5"):format(checked))
  assert.equals(150, checked + (counts[429] or 0), "every answer is a 400 or a 429")
  local res = login(srv, "victim", "the right password")
  assert_error(res, 429, "rate_limited")
  assert.is_true(tonumber(res.headers["retry-after"]) > 0)
  -- a rolling reload starts new workers: they see the same budget
  local reloads = select(2, srv:log():gsub("reload done", ""))
  kit.kill(srv.pid, "HUP")
  assert.is_true(h.wait_until(function() return select(2, srv:log():gsub("reload done", "")) > reloads end, 30))
  for _ = 1, 4 do assert_error(login(srv, "victim", "the right password"), 429, "rate_limited") end
  srv:stop()
end

describe("login throttling", function()
  it("holds against concurrent guesses on 2 workers, and across a SIGHUP (SQLite counters)", function()
    budget_holds { MIZAN_WORKERS = "2" }
  end)

  it("holds the same way with Redis (counters in Redis)", function()
    local redis = testing.redis()
    local ok, err = pcall(budget_holds, { MIZAN_WORKERS = "2", MIZAN_SESSIONS = redis:url(0) })
    redis:stop()
    assert(ok, err)
  end)

  it("is shared by two instances on one Redis", function()
    local redis = testing.redis()
    local env = { MIZAN_SESSIONS = redis:url(0), MIZAN_SECRET = "shared-secret" }
    local a = testing.server(APP, { env = env })
    local b = testing.server(APP, { env = env })
    signup(a, "shared", "the right password")
    for i = 1, 5 do
      assert_error(login(i % 2 == 0 and a or b, "shared", "a wrong password"), 400, "validation_error")
    end
    assert_error(login(a, "shared", "the right password"), 429, "rate_limited")
    assert_error(login(b, "shared", "the right password"), 429, "rate_limited")
    a:stop()
    b:stop()
    redis:stop()
  end)

  it("releases a successful sign-in's attempt: a user who knows the password is not locked out", function()
    local srv = testing.server(APP)
    signup(srv, "regular", "the right password")
    for _ = 1, 8 do assert.equals(200, login(srv, "regular", "the right password").status) end
    srv:stop()
  end)

  it("gives back the attempt of a sign-in that our database failed: an outage locks nobody out", function()
    local redis = testing.redis()
    local srv = testing.server(APP, { env = { MIZAN_SESSIONS = redis:url(0) } })
    signup(srv, "outage", "the right password")
    local path = srv.env.MIZAN_DATABASE:sub(8)
    break_users(path)
    for _ = 1, 7 do assert_error(login(srv, "outage", "the right password"), 500, "internal_error") end
    mend_users(path)
    assert.equals(200, login(srv, "outage", "the right password").status)
    srv:stop()
    redis:stop()
  end)

  it("fails closed (503) when the Redis counters cannot be reached", function()
    local redis = testing.redis()
    local srv = testing.server(APP, { env = { MIZAN_SESSIONS = redis:url(0) } })
    signup(srv, "nored", "the right password")
    redis:kill("KILL")
    assert_error(login(srv, "nored", "the right password"), 503, "unavailable")
    srv:stop()
    redis:stop()
  end)
end)

describe("the client address", function()
  -- 20 failures from one address, each for a different username (so the
  -- per-username budget never speaks), sending this X-Forwarded-For
  local function spend_ip_budget(srv, xff)
    for i = 1, 20 do
      assert_error(login(srv, "nobody" .. i, "a wrong password", { ["X-Forwarded-For"] = xff }), 400, "validation_error")
    end
  end

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", function()
    local srv = testing.server(APP)
    spend_ip_budget(srv, "203.0.113.7")
    assert_error(login(srv, "someone", "a wrong password", { ["X-Forwarded-For"] = "198.51.100.1" }), 429, "rate_limited")
    assert_error(login(srv, "someone", "a wrong password"), 429, "rate_limited")
    srv:stop()
  end)

  it("takes the rightmost untrusted address from a trusted proxy's header", function()
    local srv = testing.server(APP, { env = { MIZAN_TRUSTED_PROXIES = "127.0.0.1, 10.0.0.2" } })
    spend_ip_budget(srv, "203.0.113.7")
    local function as(xff) return login(srv, "someone", "a wrong password", { ["X-Forwarded-For"] = xff }) end
    assert_error(as("203.0.113.7"), 429, "rate_limited")
    -- what the client itself wrote on the left cannot dodge it
    assert_error(as("198.51.100.1, 203.0.113.7"), 429, "rate_limited")
    -- another trusted hop on the right is skipped
    assert_error(as("203.0.113.7, 10.0.0.2"), 429, "rate_limited")
    -- another client behind the proxy has a budget of its own
    assert_error(as("198.51.100.1"), 400, "validation_error")
    srv:stop()
  end)

  it("honours a configured header name, and refuses bad settings by name", function()
    local srv = testing.server(APP, { env = { MIZAN_TRUSTED_PROXIES = "127.0.0.1", MIZAN_PROXY_HEADER = "X-Real-IP" } })
    for i = 1, 20 do
      assert_error(login(srv, "n" .. i, "a wrong password", { ["X-Real-IP"] = "203.0.113.9" }), 400, "validation_error")
    end
    assert_error(login(srv, "n", "a wrong password", { ["X-Real-IP"] = "203.0.113.9" }), 429, "rate_limited")
    assert_error(login(srv, "n", "a wrong password", { ["X-Forwarded-For"] = "203.0.113.9" }), 400, "validation_error")
    srv:stop()
    local ok, err = pcall(testing.server, APP, { env = { MIZAN_TRUSTED_PROXIES = "127.0.0.1,proxy.local" } })
    assert.is_false(ok)
    assert.matches("MIZAN_TRUSTED_PROXIES: 'proxy.local' is not an IP address", tostring(err), 1, true)
    local lok, lerr = h.try_load([[require("mizan").config { trusted_proxies = "127.0.0.1" }]])
    assert.is_false(lok)
    assert.matches("option 'trusted_proxies' must be a list", tostring(lerr), 1, true)
    lok, lerr = h.try_load([[require("mizan").config { trusted_proxies = { "10.0.0.300" } }]])
    assert.is_false(lok)
    assert.matches("trusted_proxies: '10.0.0.300' is not an IP address", tostring(lerr), 1, true)
  end)
end)

describe("a session store that fails", function()
  local function whoami(srv, agent)
    return srv:call("whoami", {}, { method = "GET", headers = { Cookie = "mizan_session=" .. agent.cookie } })
  end

  it("answers 503 and keeps the cookie while Redis is frozen; the session works after", function()
    local redis = testing.redis()
    local srv = testing.server(APP, { env = { MIZAN_SESSIONS = redis:url(0) } })
    local agent = signup(srv, "frozen", "the right password")
    assert.equals(200, whoami(srv, agent).status)
    kit.kill(redis.pid, "STOP")
    for _ = 1, 3 do
      local res = whoami(srv, agent)
      assert_error(res, 503, "unavailable")
      assert.is_nil(res.headers["set-cookie"], "no cookie-clearing Set-Cookie")
    end
    local out = agent:call("auth.logout", {})
    assert_error(out, 503, "unavailable") -- the session could not be ended: say so
    assert.is_nil(out.headers["set-cookie"])
    kit.kill(redis.pid, "CONT")
    assert.is_true(h.wait_until(function() return whoami(srv, agent).status == 200 end, 15))
    assert.equals("frozen", whoami(srv, agent).json.result.me)
    srv:stop()
    redis:stop()
  end)

  it("answers 503 without clearing the cookie when the SQLite store fails", function()
    local srv = testing.server(APP)
    local agent = signup(srv, "sqlfail", "the right password")
    local path = srv.env.MIZAN_DATABASE:sub(8)
    assert.equals(200, whoami(srv, agent).status)
    sql(path, "ALTER TABLE mizan_sessions RENAME TO mizan_sessions_away")
    local res = whoami(srv, agent)
    assert_error(res, 503, "unavailable")
    assert.is_nil(res.headers["set-cookie"])
    assert.is_nil(res.body:find("mizan_sessions", 1, true), "no SQLite text in the answer")
    sql(path, "ALTER TABLE mizan_sessions_away RENAME TO mizan_sessions")
    assert.equals("sqlfail", whoami(srv, agent).json.result.me)
    srv:stop()
  end)
  it("keeps a mutation's invalidation when its session cannot be saved afterwards", function()
    local redis = testing.redis()
    local srv = testing.server(APP, { env = { MIZAN_SESSIONS = redis:url(0) } })
    redis:kill("KILL") -- no cookie: nothing to load; the new session's save fails
    local res = srv:call("session_set_mine", { key = "k", value = "v" })
    local err = assert_error(res, 503, "unavailable")
    assert.is_nil(res.headers["set-cookie"])
    assert.equals("mine", res.headers["x-mizan-invalidate"])
    assert.same({ "mine" }, res.json.invalidate)
    assert.is_string(err.message)
    srv:stop()
    redis:stop()
  end)
end)

describe("database failures", function()
  it("answer sign-up with a generic 500, never SQLite's text", function()
    local srv = testing.server(APP, { command = "serve" })
    signup(srv, "first", "the right password")
    break_users(srv.env.MIZAN_DATABASE:sub(8))
    local res = srv:agent():call("auth.signup", { username = "second", password = "the right password" })
    local err = assert_error(res, 500, "internal_error")
    assert.equals("internal error", err.message)
    assert.is_nil(res.body:find("mizan_users", 1, true))
    assert.matches("no such column", srv:log(), 1, true) -- the real text is in the log
    srv:stop()
  end)

  it("refuse writes once the database file is removed while serving, and log it", function()
    local srv = testing.server(APP, { command = "serve" })
    signup(srv, "before", "the right password")
    local path = srv.env.MIZAN_DATABASE:sub(8)
    assert(os.remove(path))
    local res = srv:agent():call("auth.signup", { username = "after", password = "the right password" })
    local err = assert_error(res, 503, "unavailable")
    assert.is_nil(err.message:find("removed", 1, true), "a generic message")
    local li = login(srv, "before", "the right password") -- its session cannot be written either
    assert_error(li, 503, "unavailable")
    assert.is_nil(li.headers["set-cookie"])
    assert.is_true(h.wait_until(function() return srv:log():find("was removed or replaced while serving", 1, true) ~= nil end))
    srv:stop()
  end)

  it("refuse writes when the database file is replaced by another one", function()
    local srv = testing.server(APP, { command = "serve" })
    signup(srv, "before", "the right password")
    local path = srv.env.MIZAN_DATABASE:sub(8)
    h.write(path .. ".new", "")
    assert(os.rename(path .. ".new", path))
    assert_error(srv:agent():call("auth.signup", { username = "after", password = "the right password" }),
                 503, "unavailable")
    srv:stop()
  end)
end)

describe("a read-only database", function()
  local dir, path, redis

  -- `mizan serve` with the folder of the database mounted read-only, in a
  -- mount namespace of its own (the specs run as root, whom permissions
  -- would not stop).
  local function serve_read_only(env)
    env.MIZAN_DATABASE = "sqlite:" .. path
    local script = ("mount --bind %s %s && mount -o remount,ro,bind %s && exec %s serve %s")
      :format(dir, dir, dir, assert(kit.exe()), APP)
    return testing.server(APP, { exe = "unshare", command = "-m", args = { "sh", "-c", script }, env = env })
  end

  setup(function()
    dir = ("/tmp/mizan-ro-%d"):format(kit.getpid())
    os.execute("rm -rf " .. dir .. " && mkdir -p " .. dir)
    path = dir .. "/app.db"
    redis = testing.redis()
    -- a database with an account, in rollback-journal mode (a WAL file
    -- cannot even be read without writing its index)
    local srv = testing.server(APP, { env = { MIZAN_DATABASE = "sqlite:" .. path } })
    signup(srv, "reader", "the right password")
    srv:stop()
    assert.equals("delete", sql(path, "PRAGMA journal_mode=DELETE")[1].journal_mode)
  end)
  teardown(function()
    redis:stop()
    os.execute("rm -rf " .. dir)
  end)

  it("still lets users sign in when sessions are in Redis; sign-up answers 503", function()
    local srv = serve_read_only { MIZAN_SESSIONS = redis:url(0) }
    local agent = srv:agent()
    local res = agent:call("auth.login", { username = "reader", password = "the right password" })
    assert.equals(200, res.status, res.body)
    assert.equals("reader", agent:call("whoami", {}, { method = "GET" }).json.result.me)
    local su = srv:agent():call("auth.signup", { username = "writer", password = "the right password" })
    local err = assert_error(su, 503, "unavailable")
    assert.is_nil(err.message:find("readonly", 1, true))
    assert.is_nil(su.body:find("attempt to write", 1, true))
    assert.matches("is read%-only: sign%-ins work", srv:log())
    srv:stop()
  end)

  it("refuses to start, saying why, when sessions would be written there", function()
    local ok, err = pcall(serve_read_only, {})
    assert.is_false(ok)
    assert.matches("refusing to start: the database " .. path:gsub("%p", "%%%0") .. " %(MIZAN_DATABASE%) is read%-only",
                   tostring(err))
    assert.matches("MIZAN_SESSIONS=redis://", tostring(err), 1, true)
  end)

  it("refuses to start when it cannot even read it (a WAL database on a read-only mount)", function()
    local wal = dir .. "/wal.db"
    assert.equals("wal", sql(wal, "PRAGMA journal_mode")[1].journal_mode)
    local saved = path
    path = wal
    local ok, err = pcall(serve_read_only, { MIZAN_SESSIONS = redis:url(0) })
    path = saved
    assert.is_false(ok)
    assert.matches("refusing to start: cannot read the database " .. wal:gsub("%p", "%%%0"), tostring(err))
  end)
end)
