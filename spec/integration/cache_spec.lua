-- The origin cache end to end: hits from C, purges, TTL, budget, single-flight,
-- sharing rules. Timing never decides a pass: each check is an outcome.
local testing = require "mizan.testing"
local json = require "mizan.json"
local cases = require "cache_cases"
local h = require "helpers"

local APP = "spec/apps/cached"

local function calls(srv)
  return srv:call("calls", {}, { method = "GET" }).json.result
end

describe("origin cache (memory)", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  it("keeps Cache-Control: no-store on cached answers", function()
    local res = srv:context("items", { id = 1 })
    assert.equals(200, res.status)
    assert.equals("no-store", res.headers["cache-control"])
    res = srv:context("items", { id = 1 })
    assert.equals("no-store", res.headers["cache-control"])
  end)

  it("answers a repeated GET from C without entering Lua", function()
    local a = srv:context("items", { id = 2 })
    local before = calls(srv)
    local b = srv:context("items", { id = 2 })
    local c = srv:call("short", {}, { method = "GET" })
    local d = srv:call("short", {}, { method = "GET" })
    local after = calls(srv)
    assert.same(a.json, b.json)
    assert.same(c.json, d.json)
    -- entering Lua: the first `short` (a miss) and the second `calls` only
    assert.equals(before.stats.requests + 2, after.stats.requests)
    assert.is_true(after.stats.cache.fast_hits >= before.stats.cache.fast_hits + 2)
  end)

  it("caches each function of a bundle on its own", function()
    local first = srv:context("items", { id = 1 }).json
    local alone = srv:call("item", { id = 1 }, { method = "GET" }).json.result
    assert.equals(first.item.calls, alone.calls, "the bundle's entry serves the single call")
  end)

  it("purges what a mutation affects before it answers, for every scope", function()
    local old = srv:context("items", { id = 1 }).json
    local other = srv:context("items", { id = 2 }).json
    local res = srv:call("set_item", { id = 1, value = "changed" })
    assert.equals("items;id=1", res.headers["x-mizan-invalidate"])
    local fresh = srv:context("items", { id = 1 }).json
    assert.equals("changed", fresh.item.value)
    assert.is_true(fresh.item.calls > old.item.calls)
    assert.is_true(fresh.item_meta.calls > old.item_meta.calls)
    assert.same(other, srv:context("items", { id = 2 }).json, "id=2 was not affected")
  end)

  it("lets app code purge directly", function()
    local a = srv:call("short", {}, { method = "GET" }).json.result
    srv:call("purge_short", {})
    local b = srv:call("short", {}, { method = "GET" }).json.result
    assert.is_true(b.calls > a.calls)
  end)

  it("expires an entry after its TTL", function()
    local a = srv:call("short", {}, { method = "GET" }).json.result
    local b = srv:call("short", {}, { method = "GET" }).json.result
    assert.equals(a.calls, b.calls)
    -- the TTL is 0.3 s: a fresh computation comes (it never would without one)
    assert.is_true(h.wait_until(function()
      return srv:call("short", {}, { method = "GET" }).json.result.calls > b.calls
    end))
  end)

  it("runs concurrent misses on one key once", function()
    local conns = {}
    for i = 1, 5 do
      conns[i] = srv:connect()
      conns[i]:send(testing.request_bytes("GET", "/api/mizan/call/slow_cached/?n=7"))
    end
    local seen = {}
    for i = 1, 5 do
      local res = assert(conns[i]:read_response())
      assert.equals(200, res.status)
      seen[i] = res.json.result.calls
      conns[i]:close()
    end
    for i = 2, 5 do assert.equals(seen[1], seen[i]) end
    assert.equals(1, calls(srv).calls.slow)
  end)

  it("never lets a read after a purge join a computation from before it", function()
    cases.no_join_across_a_purge(srv)
  end)

  it("refuses to store a shared result that read req.user, and says why", function()
    local a = srv:call("leaky", {}, { method = "GET" }).json.result
    local b = srv:call("leaky", {}, { method = "GET" }).json.result
    assert.is_true(b.calls > a.calls, "never served from the cache")
    assert.matches("has cache.shared but read req.user or req.session", srv:log(), 1, true)
  end)

  it("does not cache errors", function()
    local res = srv:context("items", {})
    assert.equals(400, res.status)
    res = srv:context("items", {})
    assert.equals(400, res.status)
  end)
end)

describe("origin cache single-flight of an error", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  local function misses()
    return tonumber(srv:request("GET", "/api/mizan/metrics").body:match("\nmizan_cache_misses_total (%d+)"))
  end

  it("never gives one caller's Set-Cookie to another that shared its error", function()
    local h = require "helpers"
    assert.equals(200, srv:call("set_missing_gate", { open = false }).status)
    local before = misses()
    -- A's cookie is forged: its answer clears it. B sends none.
    local a, b = srv:connect(), srv:connect()
    a:send(testing.request_bytes("GET", "/api/mizan/call/gated_missing/", { "Cookie: mizan_session=forged.0000" }))
    assert.is_true(h.wait_until(function() return srv:call("set_missing_gate", { open = false }).json.result == 1 end))
    b:send(testing.request_bytes("GET", "/api/mizan/call/gated_missing/"))
    -- B looked the key up and waits on A's computation (one miss each, one call)
    assert.is_true(h.wait_until(function() return misses() >= before + 2 end))
    assert.equals(1, srv:call("set_missing_gate", { open = true }).json.result)
    local ra, rb = assert(a:read_response()), assert(b:read_response())
    assert.equals(404, ra.status)
    assert.matches("Max%-Age=0", ra.headers["set-cookie"] or "", 1, false)
    assert.equals(404, rb.status)
    assert.is_nil(rb.headers["set-cookie"], "B got A's Set-Cookie")
    a:close()
    b:close()
  end)
end)

describe("origin cache budget", function()
  it("evicts least recently used entries to stay within MIZAN_CACHE_SIZE", function()
    local srv = testing.server(APP, { env = { MIZAN_CACHE_SIZE = tostring(1024 * 1024) } })
    for k = 1, 30 do
      assert.equals(200, srv:call("big", { size = 100000, k = k }, { method = "GET" }).status)
    end
    local st = calls(srv).stats.cache
    assert.is_true(st.evictions > 0)
    assert.is_true(st.bytes <= st.budget)
    assert.equals(1024 * 1024, st.budget)
    -- the oldest went first: asking for it again runs the function again
    local before = calls(srv).calls.big
    srv:call("big", { size = 100000, k = 1 }, { method = "GET" })
    assert.equals(before + 1, calls(srv).calls.big)
    -- the newest is still there
    srv:call("big", { size = 100000, k = 30 }, { method = "GET" })
    assert.equals(before + 1, calls(srv).calls.big)
    srv:stop()
  end)
end)

describe("origin cache scopes (in process)", function()
  local app
  setup(function() app = testing.app(APP) end)

  local function item(user, id)
    return app:context("items", { id = id }, { user = user }).body
  end

  it("never serves one user's entry to another user or to anonymous", function()
    local a = item({ id = 5 }, 1)
    local a2 = item({ id = 5 }, 1)
    assert.equals(a.item_meta.calls, a2.item_meta.calls, "user 5 hits their own entry")
    local b = item({ id = 6 }, 1)
    assert.is_not.equals(a.item_meta.calls, b.item_meta.calls, "user 6 gets their own")
    local anon = item(nil, 1)
    assert.is_not.equals(a.item_meta.calls, anon.item_meta.calls)
    assert.is_not.equals(b.item_meta.calls, anon.item_meta.calls)
    -- the shared function is one entry for everyone
    assert.equals(a.item.calls, b.item.calls)
    assert.equals(a.item.calls, anon.item.calls)
  end)

  it("lets one user's mutation purge every user's entries of the context", function()
    local before5, before6 = item({ id = 5 }, 2), item({ id = 6 }, 2)
    app:call("set_item", { id = 2, value = "new" }, { user = { id = 5 } })
    local after6 = item({ id = 6 }, 2)
    assert.equals("new", after6.item.value)
    assert.is_true(after6.item_meta.calls > before6.item_meta.calls)
    assert.is_true(item({ id = 5 }, 2).item_meta.calls > before5.item_meta.calls)
  end)
end)

describe("origin cache scopes for anonymous callers (sessions)", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  local function who(agent_or_srv, headers)
    local res = agent_or_srv:call("whoami", {}, { method = "GET", headers = headers })
    assert.equals(200, res.status, res.body)
    return res.json.result
  end

  it("gives each session its own per-user entry, and a visitor without a cookie none of theirs", function()
    -- a visitor without a cookie first: its entry (no session data) is the
    -- "anon" one, which C then answers for every request without a cookie
    local none = who(srv)
    assert.equals(json.null, none.name)
    local a, b = srv:agent(), srv:agent()
    assert.equals(200, a:call("remember", { name = "ana" }).status)
    assert.equals(200, b:call("remember", { name = "ben" }).status)
    assert.is_truthy(a.cookie and b.cookie and a.cookie ~= b.cookie, "two sessions")
    local a1, b1 = who(a), who(b)
    assert.equals("ana", a1.name)
    assert.equals("ben", b1.name)
    -- repeated: each session hits its own entry (through Lua: C answers a
    -- request with a session cookie only from entries shared by everyone)
    local before = calls(srv).stats
    for _ = 1, 3 do
      local a2, b2 = who(a), who(b)
      assert.same(a1, a2)
      assert.same(b1, b2)
      assert.same(none, who(srv))
    end
    local after = calls(srv).stats
    assert.equals(before.requests + 6 + 1, after.requests, "the sessions' reads entered Lua, the cookieless ones did not")
    assert.equals(before.cache.fast_hits + 3, after.cache.fast_hits, "C answered the visitor without a cookie")
    -- and a fresh session starts from its own data, not another's entry
    local c = srv:agent()
    assert.equals(200, c:call("remember", { name = "cy" }).status)
    assert.equals("cy", who(c).name)
    assert.same(a1, who(a))
  end)

  it("does not keep a result under the cookieless scope when the call started a session", function()
    local r1 = srv:call("visit", {}, { method = "GET" })
    local r2 = srv:call("visit", {}, { method = "GET" })
    assert.equals(200, r1.status)
    assert.equals(200, r2.status)
    assert.is_true(r2.json.result.calls > r1.json.result.calls, "each cookieless call ran the function")
    assert.equals(1, r1.json.result.visits)
    assert.equals(1, r2.json.result.visits)
    assert.matches("^mizan_session=%x", r1.headers["set-cookie"] or "")
    assert.matches("^mizan_session=%x", r2.headers["set-cookie"] or "")
  end)

  it("treats a session cookie it cannot verify as no session", function()
    local forged = { Cookie = "mizan_session=" .. ("0"):rep(32) .. "." .. ("0"):rep(64) }
    assert.equals(json.null, who(srv, forged).name)
  end)
end)
