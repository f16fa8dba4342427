-- The Redis backend: two mizan instances share one redis-server that this
-- spec starts on a free port; purges are coherent across them, and the
-- cache fails open when Redis is killed, frozen or refusing connections.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local cases = require "cache_cases"
local h = require "helpers"

local APP = "spec/apps/cached"

local function item(srv, id)
  local res = srv:context("items", { id = id })
  assert.equals(200, res.status, res.body)
  return res.json.item
end

-- Read until two reads in a row agree (the cache works again), bounded.
local function until_cached(srv, id)
  return h.wait_until(function() return item(srv, id).calls == item(srv, id).calls end)
end

describe("origin cache (redis)", function()
  local redis, a, b
  setup(function()
    redis = testing.redis()
    local env = { MIZAN_CACHE = redis:url(0), MIZAN_SECRET = "spec-secret" }
    a = testing.server(APP, { env = env })
    b = testing.server(APP, { env = env })
  end)
  teardown(function()
    a:stop()
    b:stop()
    redis:stop()
  end)

  it("shares entries between instances", function()
    local first = item(b, 1)
    assert.equals(first.calls, item(b, 1).calls, "B hits its own entry")
    assert.equals(first.calls, item(a, 1).calls, "A is served B's entry")
  end)

  it("purges across instances: mutate on A, read on B, and the read is fresh", function()
    local before = item(b, 2)
    assert.equals(before.calls, item(b, 2).calls)
    local res = a:call("set_item", { id = 2, value = "x" })
    assert.equals(200, res.status)
    local after = item(b, 2)
    assert.is_true(after.calls > before.calls, "B recomputed")
  end)

  it("refuses to start on a shared Redis without a shared secret", function()
    local ok, err = pcall(testing.server, APP, { env = { MIZAN_CACHE = redis:url(0), MIZAN_SECRET = false } })
    assert.is_false(ok)
    assert.matches("MIZAN_CACHE=redis needs MIZAN_SECRET", tostring(err))
  end)

  it("refuses a MIZAN_CACHE_PURGE_TIMEOUT that is not a number of seconds", function()
    local ok, err = pcall(testing.server, APP, { env = { MIZAN_CACHE = redis:url(0), MIZAN_SECRET = "spec-secret",
                                                         MIZAN_CACHE_PURGE_TIMEOUT = "soon" } })
    assert.is_false(ok)
    assert.matches("MIZAN_CACHE_PURGE_TIMEOUT must be a number of seconds", tostring(err), 1, true)
  end)

  it("fails open when Redis is killed, and recovers when it returns", function()
    redis:kill("KILL")
    for i = 1, 10 do
      assert.equals(200, a:context("items", { id = 1 }).status)
      -- its effects are committed, but the purge is not: it says so
      local res = a:call("set_item", { id = 1, value = "v" .. i })
      assert.equals(503, res.status)
      assert.equals("unavailable", res.json.error.code)
      assert.equals(200, b:call("short", {}, { method = "GET" }).status)
    end
    -- reads run uncached meanwhile
    assert.is_true(item(b, 1).calls < item(b, 1).calls)
    redis:restart()
    assert.is_true(until_cached(b, 1), "caching resumed on B")
    assert.is_true(until_cached(a, 1), "caching resumed on A")
  end)

  it("fails open when Redis is frozen (SIGSTOP), without waiting on it for every request", function()
    assert.is_true(until_cached(b, 3))
    local cached = item(b, 3)
    local function repaid_count() return select(2, a:log():gsub("it is done now", "")) end
    local repaid_before = repaid_count()
    kit.kill(redis.pid, "STOP")
    for i = 1, 20 do
      assert.equals(200, a:context("items", { id = 3 }).status)
      if i == 5 then assert.equals(503, a:call("set_item", { id = 3, value = "frozen" }).status) end
    end
    -- without a breaker each of the 20 reads would have waited for a timeout
    local _, timeouts = a:log():gsub("a command timed out", "")
    assert.is_true(timeouts < 10, ("%d timeouts"):format(timeouts))
    kit.kill(redis.pid, "CONT")
    -- A retries its failed purge on its own, without any request to A
    assert.is_true(h.wait_until(function() return repaid_count() > repaid_before end),
                   "A's purge reached Redis after the freeze")
    -- so B's entry from before the mutation is gone
    assert.is_true(item(b, 3).calls > cached.calls)
    assert.is_true(until_cached(b, 3))
  end)

  it("never lets a read after a purge join a computation from before it", function()
    cases.no_join_across_a_purge(a)
  end)

  it("never answered with a 5xx but for the purges it could not make", function()
    assert.is_nil(a:log():find("internal_error"))
    assert.is_nil(b:log():find("internal_error"))
  end)
end)

describe("origin cache (redis): a purge that cannot reach Redis", function()
  local redis, proxy, a, b
  local dbfile = ("/tmp/mizan-test-%d-notes.sqlite"):format(kit.getpid())
  setup(function()
    redis = testing.redis()
    proxy = testing.proxy(redis.port)
    local function env(cache)
      return { MIZAN_CACHE = cache, MIZAN_SECRET = "spec-secret", MIZAN_DATABASE = "sqlite:" .. dbfile,
               MIZAN_CACHE_PURGE_TIMEOUT = "0.5" }
    end
    -- A reaches Redis through the proxy, B directly; both share one database
    a = testing.server(APP, { env = env(("redis://127.0.0.1:%d/0"):format(proxy.port)) })
    b = testing.server(APP, { env = env(redis:url(0)) })
  end)
  teardown(function()
    a:stop()
    b:stop()
    proxy:stop()
    redis:stop()
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(dbfile .. suffix) end
  end)

  local function note(srv, id)
    local res = srv:call("note", { id = id }, { method = "GET" })
    assert.equals(200, res.status, res.body)
    return res.json.result
  end

  it("answers 503 unavailable with its effects committed, and no instance serves stale after a success", function()
    assert.equals(200, b:call("set_note", { id = 1, body = "v1" }).status)
    local first = note(b, 1)
    assert.equals("v1", first.body)
    assert.same(first, note(b, 1), "B cached it")
    assert.same(first, note(a, 1), "A is served B's entry from Redis, through the proxy")

    proxy:freeze()
    local res = a:call("set_note", { id = 1, body = "v2" })
    assert.equals(503, res.status, res.body)
    assert.equals("unavailable", res.json.error.code)
    assert.matches("effects are committed", res.json.error.message, 1, true)
    -- what it invalidated is still said, so the caller refetches what it can
    assert.equals("note;id=1", res.headers["x-mizan-invalidate"])
    assert.same({ { target = "note", params = { id = 1 } } }, res.json.invalidate)
    assert.matches("its effects are committed but its cache purge failed", a:log(), 1, true)
    -- committed: the data changed
    assert.equals("v2", b:call("note_uncached", { id = 1 }, { method = "GET" }).json.result.body)
    -- the purge never arrived, so B still serves v1: which is why A said 503
    assert.same(first, note(b, 1))
    -- A, cut off, serves nothing cached meanwhile: no local layer holds an old value
    assert.equals("v2", note(a, 1).body)
    -- a purge that app code makes (mizan.cache.purge) is not acknowledged either
    assert.equals(503, a:call("purge_short", {}).status)

    -- a mutation that succeeds on B: after its answer nobody serves an older value
    assert.equals(200, b:call("set_note", { id = 1, body = "v3" }).status)
    assert.equals("v3", note(b, 1).body)
    assert.equals("v3", note(a, 1).body)
    assert.equals("v3", note(b, 1).body)

    proxy:thaw()
    -- A pays its debt on its own (its purges and the epoch), then caches again
    assert.is_true(h.wait_until(function() return a:log():find("it is done now", 1, true) ~= nil end),
                   "A's purge reached Redis after the thaw")
    assert.is_true(h.wait_until(function()
      local x, y = note(a, 1), note(a, 1)
      return x.calls == y.calls
    end), "A caches again")
    assert.equals("v3", note(a, 1).body)
    assert.equals("v3", note(b, 1).body)
  end)
end)
