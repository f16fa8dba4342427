-- The Redis backend: two mizan instances share one redis-server that this
-- spec starts on a free port; purges are coherent across them, and the
-- cache fails open when Redis is killed, frozen or refusing connections.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"

local APP = "spec/apps/cached"

local function item(srv, id)
  local res = srv:context("items", { id = id })
  assert.equals(200, res.status, res.body)
  return res.json.item
end

-- Read until two reads in a row agree (the cache works again), bounded.
local function until_cached(srv, id)
  for _ = 1, 100 do
    local a = item(srv, id)
    local b = item(srv, id)
    if a.calls == b.calls then return true end
    kit.sleep(0.05)
  end
  return false
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

  it("fails open when Redis is killed, and recovers when it returns", function()
    redis:kill("KILL")
    for i = 1, 10 do
      assert.equals(200, a:context("items", { id = 1 }).status)
      assert.equals(200, a:call("set_item", { id = 1, value = "v" .. i }).status)
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
      if i == 5 then assert.equals(200, a:call("set_item", { id = 3, value = "frozen" }).status) end
    end
    -- without a breaker each of the 20 reads would have waited for a timeout
    local _, timeouts = a:log():gsub("a command timed out", "")
    assert.is_true(timeouts < 10, ("%d timeouts"):format(timeouts))
    kit.kill(redis.pid, "CONT")
    -- A retries its failed purge on its own, without any request to A
    local repaid = false
    for _ = 1, 100 do
      if repaid_count() > repaid_before then repaid = true; break end
      kit.sleep(0.05)
    end
    assert.is_true(repaid, "A's purge reached Redis after the freeze")
    -- so B's entry from before the mutation is gone
    assert.is_true(item(b, 3).calls > cached.calls)
    assert.is_true(until_cached(b, 3))
  end)

  it("never answered with a 5xx", function()
    assert.is_nil(a:log():find("internal_error"))
    assert.is_nil(b:log():find("internal_error"))
  end)
end)
