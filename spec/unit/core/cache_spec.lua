-- The cache's C side: keys, version slots, LRU, TTL and budget.
local cc = require "mizan.cachecore"
local cache = require "mizan.cache"
local h = require "helpers"

describe("cache keys", function()
  local vectors = h.load_json(h.shared("vectors/cache_keys.json"))

  it("reproduce every key of shared/vectors/cache_keys.json from C", function()
    assert.is_true(#vectors.cases > 0)
    for _, case in ipairs(vectors.cases) do
      assert.equals(case.key, cc.key(vectors.secret, case.name, case.params, case.scope), case.name)
    end
  end)

  it("reproduce every key from Lua", function()
    for _, case in ipairs(vectors.cases) do
      assert.equals(case.key, cache.key(case.name, case.params, case.scope, vectors.secret), case.name)
    end
  end)

  it("scope a signed-in user by id, an anonymous session by an HMAC of its id, and no session as anon", function()
    local crypto = require "mizan.crypto"
    local sid = "0123456789abcdef0123456789abcdef"
    assert.equals("u:5", cache.scope({ _user = { id = 5 }, _session_id = sid }, vectors.secret))
    assert.equals("anon", cache.scope({}, vectors.secret))
    local s = cache.scope({ _session_id = sid }, vectors.secret)
    assert.equals("s:" .. crypto.hmac_sha256_hex(vectors.secret, "cache-scope\n" .. sid), s)
    assert.is_nil(s:find(sid, 1, true), "the session id itself never goes into a key")
    assert.is_not.equals(s, cache.scope({ _session_id = ("f"):rep(32) }, vectors.secret))
    -- not the session cookie's signature, which is an HMAC of the id too
    assert.is_not.equals(s, "s:" .. crypto.hmac_sha256_hex(vectors.secret, "session\n" .. sid))
  end)

  it("treat an empty params object as a value", function()
    local json = require "mizan.json"
    local empty = cc.key("s", "f", json.object {}, nil)
    assert.equals(empty, cc.key("s", "f", {}, nil))
    assert.is_not.equals(empty, cc.key("s", "f", json.array {}, nil))
    assert.is_not.equals(empty, cc.key("s", "f", { a = json.null }, nil))
  end)
end)

describe("cache store", function()
  local KEY = ("a"):rep(64)
  local function key(i) return ("%064x"):format(i) end

  setup(function() assert(cc.init(64 * 1024 * 1024)) end)
  before_each(function() cc.clear() end)

  it("stores and finds a value", function()
    local slots = { cc.slot("fn:f") }
    assert(cc.store(KEY, '{"x":1}', 60, slots, cc.versions(slots)))
    assert.equals('{"x":1}', cc.lookup(KEY))
    assert.is_nil(cc.lookup(key(1)))
  end)

  it("drops an entry once any of its slots is bumped", function()
    local slots = { cc.slot("fn:f"), cc.slot("fn:f|id=1") }
    assert(cc.store(KEY, "v", 60, slots, cc.versions(slots)))
    cc.bump { cc.slot("fn:g") }
    assert.equals("v", cc.lookup(KEY), "an unrelated purge keeps it")
    cc.bump { cc.slot("fn:f|id=1") }
    assert.is_nil(cc.lookup(KEY))
  end)

  it("never serves a value computed while a purge ran", function()
    local slots = { cc.slot("fn:race") }
    local before = cc.versions(slots) -- the value starts being computed
    cc.bump(slots)                    -- a mutation purges meanwhile
    assert(cc.store(KEY, "old", 60, slots, before))
    assert.is_nil(cc.lookup(KEY))
  end)

  it("shares the version slots with processes forked after it was made", function()
    local kit = require "mizan.testkit"
    local slots = { cc.slot("fn:shared|id=7") }
    assert(cc.store(KEY, "parent's", 60, slots, cc.versions(slots)))
    -- a worker (here a forked child) purges; the parent must see it at once
    local pid = assert(kit.fork(function() cc.bump(slots) end))
    assert.equals(0, (kit.wait(pid, 10)))
    assert.is_nil(cc.lookup(KEY))
  end)

  it("expires entries after their TTL", function()
    assert(cc.store(KEY, "v", 0.05, {}, {}))
    assert.equals("v", cc.lookup(KEY))
    assert.is_true(require("helpers").wait_until(function() return cc.lookup(KEY) == nil end))
  end)

  it("refuses a value larger than the budget", function()
    local stats = cc.stats()
    local ok, err = cc.store(KEY, ("x"):rep(stats.budget + 1), 60, {}, {})
    assert.is_nil(ok)
    assert.matches("budget", err)
  end)
end)
