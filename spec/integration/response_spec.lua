-- The one response contract (issue 13): request state that travels with the
-- request, error bodies written by the codec, caching headers by kind of
-- answer, and metrics labels only from registered names.
local testing = require "mizan.testing"
local json = require "mizan.json"
local lfs = require "lfs"
local h = require "helpers"

describe("the response contract", function()
  it("logs a slow miss as a miss, though another request hit meanwhile", function()
    local srv = testing.server("spec/apps/cached")
    srv:call("short", {}, { method = "GET" }) -- now cached
    -- a miss that sleeps 0.3 s in its function...
    local slow = srv:connect()
    slow:send(testing.request_bytes("POST", "/api/mizan/call/slow_cached/",
                                    { ["Content-Type"] = "application/json" }, '{"n":41}'))
    -- ...while a hit answered by Lua (a POST never takes the C fast path) runs
    local hit = srv:call("short", {})
    assert.equals(200, hit.status)
    local res = assert(slow:read_response())
    slow:close()
    assert.equals(200, res.status)
    assert.is_true(h.wait_until(function()
      return srv:stdout():find("POST /api/mizan/call/slow_cached/", 1, true) ~= nil
    end))
    local out = srv:stdout()
    srv:stop()
    assert.matches("POST /api/mizan/call/short/ 200 %d+B [%d.]+ms cache=hit\n", out)
    assert.matches("POST /api/mizan/call/slow_cached/ 200 %d+B [%d.]+ms cache=miss\n", out)
  end)

  it("answers a wrong Sec-WebSocket-Version with a clean JSON error", function()
    local srv = testing.server("spec/apps/basic")
    local res = srv:request("GET", "/api/mizan/ws", { headers = {
      "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 8",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" } })
    srv:stop()
    assert.equals(426, res.status)
    assert.equals("13", res.headers["sec-websocket-version"])
    assert.is_nil(res.body:find("\0", 1, true), "the body has a NUL byte")
    assert.equals(#res.body, tonumber(res.headers["content-length"]))
    local body = assert(json.decode(res.body))
    assert.equals("bad_request", body.error.code)
    assert.equals("only WebSocket version 13", body.error.message)
  end)

  describe("caching headers", function()
    local srv
    setup(function()
      local dir = h.app_dir([[
local mizan = require "mizan"
mizan.config { static_dir = "public" }
mizan.register(mizan.client { query = true } (function() return 1 end), "one")
]])
      lfs.mkdir(dir .. "/public")
      lfs.mkdir(dir .. "/public/assets")
      h.write(dir .. "/public/index.html", "<html><head></head><body>hi</body></html>")
      h.write(dir .. "/public/style.css", "body{}")
      h.write(dir .. "/public/my-template.js", "1") -- a word, not a hash
      h.write(dir .. "/public/assets/index-4f3a9c1b.js", "console.log(1)")
      h.write(dir .. "/public/assets/index-BvK3x_Q9.css", "a{}")
      srv = testing.server(dir)
    end)
    teardown(function() srv:stop() end)

    it("sends HTML pages no-store: they carry per-user data", function()
      assert.equals("no-store", srv:request("GET", "/").headers["cache-control"])
    end)

    it("lets the browser revalidate an asset by its ETag", function()
      for _, path in ipairs { "/style.css", "/my-template.js" } do
        local res = srv:request("GET", path)
        assert.equals(200, res.status)
        assert.equals("no-cache", res.headers["cache-control"], path)
        assert.matches('^W/"', res.headers.etag)
        local again = srv:request("GET", path, { headers = { "If-None-Match: " .. res.headers.etag } })
        assert.equals(304, again.status)
        assert.equals("no-cache", again.headers["cache-control"])
      end
    end)

    it("keeps a file whose name carries a content hash for a year", function()
      for _, path in ipairs { "/assets/index-4f3a9c1b.js", "/assets/index-BvK3x_Q9.css" } do
        local res = srv:request("GET", path)
        assert.equals(200, res.status)
        assert.equals("public, max-age=31536000, immutable", res.headers["cache-control"], path)
        assert.is_string(res.headers.etag)
      end
    end)

    it("leaves API answers no-store", function()
      assert.equals("no-store", srv:call("one", {}).headers["cache-control"])
      assert.equals("no-store", srv:request("GET", "/api/mizan/call/nope/").headers["cache-control"])
    end)
  end)

  it("labels metrics only with registered names, and loses no real series", function()
    local srv = testing.server("spec/apps/cached")
    local c = srv:connect()
    -- more made-up names than the series table ever held
    for i = 1, 600 do
      c:send(testing.request_bytes("GET", "/api/mizan/call/madeup" .. i .. "/"))
      assert.equals(404, assert(c:read_response()).status)
    end
    c:close()
    srv:call("short", {}, { method = "GET" }) -- a miss, through Lua
    srv:request("GET", "/api/mizan/call/%73hort/") -- "short", spelt otherwise: the fast path
    srv:request("GET", "/api/mizan/nowhere/")
    local body = srv:request("GET", "/api/mizan/metrics").body
    srv:stop()
    assert.is_nil(body:find("madeup", 1, true))
    assert.is_nil(body:find("%73hort", 1, true))
    assert.is_nil(body:find("nowhere", 1, true))
    assert.matches('mizan_requests_total{function="(unknown)",status="404"} 601', body, 1, true)
    assert.matches('mizan_requests_total{function="short",status="200"} 2', body, 1, true)
    assert.is_nil(body:find("(other)", 1, true))
  end)

  it("answers a cache hit from C with exactly the bytes Lua sent", function()
    local srv = testing.server("spec/apps/cached")
    local function lua_requests() return srv:call("calls", {}, { method = "GET" }).json.result.stats.requests end
    for _, path in ipairs { "/api/mizan/ctx/public/", "/api/mizan/call/headline/", "/api/mizan/ctx/items/?id=1" } do
      local first = srv:request("GET", path) -- a miss: Lua answers and records the alias
      local before = lua_requests()
      local again = srv:request("GET", path)
      assert.equals(before + 1, lua_requests(), path .. " was not answered by C") -- only the "calls" call itself
      assert.equals(200, again.status)
      assert.equals(first.body, again.body, path)
      assert.equals(first.headers["content-type"], again.headers["content-type"])
    end
    local metrics = srv:request("GET", "/api/mizan/metrics").body
    srv:stop()
    assert.matches('mizan_requests_total{function="public",status="200"} 2', metrics, 1, true)
    assert.matches('mizan_requests_total{function="items",status="200"} 2', metrics, 1, true)
  end)
end)
