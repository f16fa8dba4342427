-- mizan.db: SQLite on the thread pool, bound parameters, transactions.
local testing = require "mizan.testing"
local json = require "mizan.json"
local h = require "helpers"

describe("mizan.db", function()
  local srv
  setup(function() srv = testing.server("spec/apps/db") end)
  teardown(function() srv:stop() end)

  it("inserts and queries with bound parameters; NULL is mizan.null", function()
    local r = srv:call("add_note", { body = "hello", score = 1.5 }).json.result
    assert.is_true(r.id >= 1)
    assert.equals(1, r.changes)
    local rows = srv:call("find_notes", { body = "hello" }, { method = "GET" }).json.result
    assert.equals("hello", rows[1].body)
    assert.equals(1.5, rows[1].score)
    assert.equals(json.null, rows[1].extra)
  end)

  it("never splices values into SQL", function()
    local hostile = "x'); DROP TABLE notes; --"
    srv:call("add_note", { body = hostile })
    assert.equals(1, srv:call("count_body", { body = hostile }, { method = "GET" }).json.result)
    assert.equals(1, srv:call("count_body", { body = "hello" }, { method = "GET" }).json.result, "the table is still there")
  end)

  it("rolls a failed transaction back and re-raises, and commits a good one", function()
    local r = srv:call("aborted", { body = "ghost" }).json.result
    assert.is_false(r.ok)
    assert.equals("changed my mind", r.err)
    assert.equals(0, r.left)
    assert.equals(2, srv:call("committed", { body = "pair" }).json.result)
  end)

  it("returns SQL errors as nil, err (here raised by the app's assert: a logged 500)", function()
    local res = srv:call("bad_sql", {}, { method = "GET" })
    h.assert_error(res, 500, "internal_error")
  end)

  it("does not stall other requests while a statement runs (by ordering)", function()
    for _ = 1, 5 do
      local a = srv:connect()
      a:send(testing.request_bytes("GET", "/api/mizan/call/slow_count/"))
      local b = srv:connect()
      b:send(testing.request_bytes("GET", "/api/mizan/call/tick/"))
      local tick = assert(b:read_response()).json.result
      local slow = assert(a:read_response { timeout = 30 }).json.result
      a:close()
      b:close()
      assert.equals(3000000, slow.n)
      if slow.started < tick.started then
        assert.is_true(tick.finished < slow.finished)
        return
      end
    end
    error("the slow statement never started before the tick")
  end)
end)

describe("an app's own user source", function()
  local srv
  setup(function() srv = testing.server("spec/apps/loader") end)
  teardown(function() srv:stop() end)

  it("loads req.user through mizan.auth.user_loader", function()
    local a = srv:agent()
    h.assert_error(a:call("who", {}, { method = "GET" }), 401, "unauthenticated")
    a:call("login_as", { id = 7 })
    assert.equals("seven", a:call("who", {}, { method = "GET" }).json.result)
    assert.equals("staff", a:call("staff_only", {}, { method = "GET" }).json.result)
  end)

  it("treats an inactive or unknown user as anonymous", function()
    local a = srv:agent()
    a:call("login_as", { id = 8 })
    h.assert_error(a:call("who", {}, { method = "GET" }), 401, "unauthenticated")
    a:call("login_as", { id = 99 })
    h.assert_error(a:call("who", {}, { method = "GET" }), 401, "unauthenticated")
  end)

  it("has no built-in accounts when they are switched off", function()
    local f = srv:request("GET", "/api/mizan/schema/").json["x-mizan-functions"]
    assert.is_nil(f["auth.login"])
    assert.is_nil(f.current_user)
  end)
end)

describe("sessions in Redis", function()
  it("are shared by instances: sign in on A, be signed in on B", function()
    local redis = testing.redis()
    local env = { MIZAN_SESSIONS = redis:url(1), MIZAN_SECRET = "shared-secret" }
    local a = testing.server("spec/apps/loader", { env = env })
    local b = testing.server("spec/apps/loader", { env = env })
    local agent = a:agent()
    agent:call("login_as", { id = 7 })
    local on_b = b:agent()
    on_b.cookie = agent.cookie
    assert.equals("seven", on_b:call("who", {}, { method = "GET" }).json.result)
    a:stop()
    b:stop()
    redis:stop()
  end)
end)
