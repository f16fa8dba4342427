-- mizan.db on Postgres: a real Postgres 15 of the spec's own
-- (spec/support/postgres.lua), one `mizan dev` worker on it.
local testing = require "mizan.testing"
local json = require "mizan.json"
local kit = require "mizan.testkit"
local h = require "helpers"
local postgres = require "postgres"

local APP = "spec/apps/pg"

local function result(res)
  assert.equals(200, res.status, res.body)
  return res.json.result
end

-- How many of this database's backends (other than psql's own) are in `state`.
local function backends(pg, state)
  return tonumber(pg.psql(("SELECT count(*) FROM pg_stat_activity WHERE datname = 'mizan' AND state = '%s' "
    .. "AND pid <> pg_backend_pid() AND application_name = 'mizan'"):format(state)))
end

describe("mizan.db on postgres", function()
  local pg, srv
  setup(function()
    pg = postgres.start()
    pg.psql("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); "
      .. "INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 1000) i; GRANT SELECT ON items TO mizan")
    srv = testing.server(APP, { env = { MIZAN_DATABASE = pg.url, MIZAN_DB_POOL = "4", MIZAN_DB_TIMEOUT = "2" } })
  end)
  teardown(function()
    if srv then srv:stop() end
    pg.stop()
  end)

  it("says which engine it is on", function()
    assert.equals("postgres", result(srv:call("engine", {}, { method = "GET" })).engine)
  end)

  it("types every result by column: numbers exact, int8 past 2^53 as text, json decoded, ISO times, bytes", function()
    local r = result(srv:call("literals", {}, { method = "GET" }))
    local function is(name, ty, value)
      assert.equals(ty, r[name].type, name)
      assert.same(value, r[name].value, name)
    end
    is("i2", "number", 32767)
    is("i4", "number", -2147483648)
    is("i8", "number", 9007199254740992)
    is("i8big", "string", "9007199254740993")
    is("i8min", "string", "-9223372036854775808")
    is("f4", "number", 1.5)
    is("f8", "number", 0.1)
    is("b", "boolean", true)
    is("bf", "boolean", false)
    is("n", "string", "12345678901234567890.000000001")
    is("j", "table", { a = { 1, 2, json.null } })
    is("jb", "table", { k = "v", n = 1.25 })
    is("by", "string", "00ff41")
    is("ts", "string", "2024-02-29T23:59:58.25")
    is("tz", "string", "2024-02-29T21:59:58.25Z")
    is("d", "string", "2024-02-29")
    is("t", "string", "héllo")
    is("nul", "null", json.null)
  end)

  it("round-trips every type through bound parameters (bytea as its exact bytes)", function()
    local bytes = "00010227273f5c78ff" -- NUL, quotes, '?', a backslash and "\x"
    local r = result(srv:call("roundtrip", { bytes_hex = bytes }))
    assert.is_true(r.found, "found again by every value")
    local s = r.stored
    assert.same({ type = "number", value = -32768 }, s.i2)
    assert.same({ type = "number", value = 2147483647 }, s.i4)
    assert.same({ type = "string", value = "9223372036854775807" }, s.i8)
    assert.same({ type = "number", value = 0.5 }, s.f4)
    assert.same({ type = "number", value = 1e300 }, s.f8)
    assert.same({ type = "boolean", value = false }, s.b)
    assert.same({ type = "string", value = "3.14159265358979323846264338327950288" }, s.n)
    assert.same({ type = "table", value = { list = { 1, 2, 3 } } }, s.j)
    assert.same({ type = "table", value = { nested = { ok = true } } }, s.jb)
    assert.same({ type = "string", value = bytes }, s.by)
    assert.same({ type = "string", value = "2001-02-03T04:05:06.789" }, s.ts)
    assert.same({ type = "string", value = "2001-02-03T04:05:06Z" }, s.tz)
    assert.same({ type = "string", value = "2001-02-03" }, s.d)
    assert.same({ type = "string", value = "it's \"quoted\" ? -- not a comment" }, s.t)
    assert.same({ type = "null", value = json.null }, s.nul)
  end)

  it("stores injection attempts literally", function()
    for _, hostile in ipairs { "x'); DROP TABLE notes; --", "'; SELECT pg_sleep(5); --", "$1", "?", "\\' OR 1=1" } do
      assert.equals(1, result(srv:call("add_note", { body = hostile })).changes)
      local rows = result(srv:call("find_notes", { body = hostile }, { method = "GET" }))
      assert.equals(1, #rows, hostile)
      assert.equals(hostile, rows[1].body)
    end
    assert.is_true(result(srv:call("count_notes", {}, { method = "GET" })) >= 5, "the table is still there")
  end)

  it("leaves `?` inside literals, quoted identifiers and comments alone", function()
    local r = result(srv:call("placeholders", { v = "bound" }, { method = "GET" }))
    assert.same({ lit = "?", esc = "'?", dollar = "?", tagged = " ? ", ident = 1, param = "bound" }, r)
  end)

  it("gives 23505 (kind constraint) for a unique violation, and no last_insert_id", function()
    local first = result(srv:call("add_note", { body = "unique-one" }))
    assert.equals(1, first.changes)
    assert.is_false(first.has_last_id)
    local again = result(srv:call("add_note", { body = "unique-one" }))
    assert.equals("23505", again.sqlstate)
    assert.equals("constraint", again.kind)
    assert.matches("duplicate key", again.err)
  end)

  it("rolls a failed transaction back and re-raises; nested ones are savepoints", function()
    local r = result(srv:call("aborted", { body = "ghost" }))
    assert.is_false(r.ok)
    assert.equals("changed my mind", r.err)
    assert.equals(0, r.left)
    local n = result(srv:call("nested", { body = "sp" }))
    assert.same({ inner_ok = false, inner_left = 0 }, n)
    assert.equals(1, #result(srv:call("find_notes", { body = "sp-outer" }, { method = "GET" })))
  end)

  it("does not report a transaction whose statement failed as committed", function()
    local r = result(srv:call("ignored_failure", { body = "ignored" }))
    assert.equals(json.null, r.res)
    assert.equals("25P02", r.sqlstate)
    assert.equals(0, r.left)
  end)

  it("does not hold up another request while pg_sleep(1) runs (by ordering)", function()
    for _ = 1, 5 do
      local a = srv:connect()
      a:send(testing.request_bytes("GET", "/api/mizan/call/sleep/?" .. testing.encode_query { seconds = 1 }))
      local b = srv:connect()
      b:send(testing.request_bytes("GET", "/api/mizan/call/tick/"))
      local tick = assert(b:read_response()).json.result
      local slow = assert(a:read_response { timeout = 30 }).json.result
      a:close()
      b:close()
      if slow.started < tick.started then
        assert.is_true(tick.finished < slow.finished, "the tick answered while the sleep was running")
        return
      end
    end
    error("the sleep never started before the tick")
  end)

  it("answers 200 concurrent calls on one worker with a pool of 4", function()
    local conns = {}
    for i = 1, 200 do
      local c = srv:connect()
      c:send(testing.request_bytes("GET", "/api/mizan/call/pk/?" .. testing.encode_query { id = i }))
      conns[i] = c
    end
    for i, c in ipairs(conns) do
      local res = assert(c:read_response { timeout = 30 }, "answer " .. i)
      assert.equals(200, res.status, res.body)
      assert.same({ id = i, name = "item " .. i }, res.json.result)
      c:close()
    end
    assert.is_true(backends(pg, "idle") + backends(pg, "active") <= 4, "at most the pool's 4 connections")
  end)

  it("cancels a statement past MIZAN_DB_TIMEOUT on the server, and answers 503", function()
    local res = srv:call("sleep", { seconds = 60 }, { method = "GET", timeout = 30 })
    h.assert_error(res, 503, "unavailable")
    assert.is_true(h.wait_until(function()
      return tonumber(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' "
        .. "AND state = 'active'")) == 0
    end), "the pg_sleep is no longer running on the server")
    assert.equals(200, srv:call("pk", { id = 1 }, { method = "GET" }).status, "the pool still serves")
  end)

  it("leaves no connection idle in transaction when the client goes mid-transaction", function()
    for i = 1, 3 do
      local c = srv:connect()
      c:send(testing.request_bytes("POST", "/api/mizan/call/slow_tx/", { ["content-type"] = "application/json" },
                                   json.encode { body = "gone-" .. i }))
      c:close() -- before the answer
    end
    -- the transactions still run to their end (they commit), and then none is left open
    assert.is_true(h.wait_until(function()
      return #result(srv:call("find_notes", { body = "gone-3" }, { method = "GET" })) == 1
    end), "the last transaction finished")
    assert.is_true(h.wait_until(function() return backends(pg, "idle in transaction") == 0 end))
  end)

  it("rolls back a transaction the app opened by hand before the connection goes back", function()
    assert.equals(200, srv:call("leaky", { body = "leaked" }).status)
    assert.equals(0, backends(pg, "idle in transaction"))
    assert.equals(0, backends(pg, "idle in transaction (aborted)"))
  end)

  it("answers 503 while Postgres is down (none hanging), then 200 after it is back, without a restart", function()
    assert.equals(200, srv:call("pk", { id = 1 }, { method = "GET" }).status)
    -- load in flight when it goes: statements running on the server, and
    -- more waiting for one of the pool's 4 connections
    local inflight = {}
    for i = 1, 12 do
      local c = srv:connect()
      c:send(testing.request_bytes("GET", "/api/mizan/call/sleep/?" .. testing.encode_query { seconds = 0.3 }))
      inflight[i] = c
    end
    assert.is_true(h.wait_until(function()
      return tonumber(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")) > 0
    end), "the load reached the server")
    pg.kill()
    local statuses = {}
    for i, c in ipairs(inflight) do
      local res = assert(c:read_response { timeout = 10 }, "in-flight call " .. i .. " answered")
      c:close()
      statuses[res.status] = (statuses[res.status] or 0) + 1
      assert.is_true(res.status == 200 or res.status == 503, res.body)
    end
    assert.is_true((statuses[503] or 0) > 0, "some were cut off by the outage")
    for i = 1, 20 do
      local res = srv:call("pk", { id = i }, { method = "GET", timeout = 10 })
      h.assert_error(res, 503, "unavailable")
    end
    pg.restart()
    assert.is_true(h.wait_until(function()
      return srv:call("pk", { id = 7 }, { method = "GET" }).status == 200
    end), "service resumed")
    for i = 1, 20 do assert.equals(200, srv:call("pk", { id = i }, { method = "GET" }).status) end
    assert.is_nil(kit.wait(srv.pid, 0), "the same server process")
  end)
end)
