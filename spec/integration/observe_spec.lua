-- Access log, health and metrics.
local testing = require "mizan.testing"
local json = require "mizan.json"
local kit = require "mizan.testkit"
local h = require "helpers"

-- The first true value of fn, polled with the one wait_until; nil if none came.
local function eventually(fn)
  local v
  h.wait_until(function() v = fn(); return v end)
  return v
end

describe("observability", function()
  it("logs one readable line per request in dev", function()
    local srv = testing.server("spec/apps/cached")
    srv:call("short", {}, { method = "GET" })
    srv:call("short", {}, { method = "GET" })
    srv:request("GET", "/api/mizan/call/nope/")
    local out = eventually(function()
      local s = srv:stdout()
      return select(2, s:gsub("\n", "")) >= 3 and s
    end)
    srv:stop()
    assert.matches("GET /api/mizan/call/short/ 200 %d+B [%d.]+ms cache=miss\n", out)
    assert.matches("GET /api/mizan/call/short/ 200 %d+B [%d.]+ms cache=hit\n", out)
    assert.matches("GET /api/mizan/call/nope/ 404 %d+B [%d.]+ms cache=%-\n", out)
  end)

  it("logs JSON lines in serve", function()
    local srv = testing.server("spec/apps/basic", { command = "serve", env = { MIZAN_WORKERS = "1" } })
    srv:call("echo", { text = "hi" })
    local line = eventually(function() return srv:stdout():match("[^\n]+") end)
    srv:stop()
    local rec = assert(json.decode(line))
    assert.equals("POST", rec.method)
    assert.equals("/api/mizan/call/echo/", rec.path)
    assert.equals(200, rec.status)
    assert.is_number(rec.bytes)
    assert.is_number(rec.ms)
    assert.equals("-", rec.cache)
    assert.equals("127.0.0.1", rec.ip)
  end)

  it("can switch the access log off", function()
    local srv = testing.server("spec/apps/basic", { env = { MIZAN_ACCESS_LOG = "off" } })
    srv:call("echo", { text = "hi" })
    -- on purpose: an absence cannot be waited for, so a line that would be
    -- written gets this long to show up
    kit.sleep(0.3)
    assert.equals("", srv:stdout())
    srv:stop()
  end)

  it("answers health, and metrics in the Prometheus text format", function()
    local srv = testing.server("spec/apps/cached")
    local health = srv:request("GET", "/api/mizan/health")
    assert.equals(200, health.status)
    assert.equals("ok", health.json.status)
    srv:call("short", {}, { method = "GET" })
    srv:call("short", {}, { method = "GET" })
    local m = srv:request("GET", "/api/mizan/metrics")
    assert.equals(200, m.status)
    assert.matches("^text/plain; version=0.0.4", m.headers["content-type"])
    local body = m.body
    assert.matches('mizan_requests_total{function="short",status="200"} 2', body, 1, true)
    assert.matches('mizan_request_duration_seconds_bucket{le="%+Inf"} %d+', body)
    assert.matches("mizan_request_duration_seconds_count %d+", body)
    assert.matches("mizan_cache_hits_total %d+", body)
    assert.matches("mizan_cache_misses_total %d+", body)
    assert.matches("mizan_cache_purges_total %d+", body)
    assert.matches("mizan_open_connections %d+", body)
    assert.matches("mizan_reloads_total 0", body, 1, true)
    srv:stop()
  end)

  it("reports degraded health (still 200) when Redis is configured and down", function()
    local redis = testing.redis()
    local srv = testing.server("spec/apps/cached", { env = { MIZAN_CACHE = redis:url(0) } })
    assert.equals("ok", srv:request("GET", "/api/mizan/health").json.status)
    redis:kill("KILL")
    srv:call("short", {}, { method = "GET" }) -- notice it
    local res = eventually(function()
      local r = srv:request("GET", "/api/mizan/health")
      return r.json.status == "degraded" and r
    end)
    assert.is_table(res)
    assert.equals(200, res.status)
    srv:stop()
    redis:stop()
  end)

  it("switches health and metrics off, or moves them to another address", function()
    local off = testing.server("spec/apps/basic", { env = { MIZAN_METRICS = "off", MIZAN_HEALTH = "off" } })
    h.assert_error(off:request("GET", "/api/mizan/metrics"), 404, "not_found")
    h.assert_error(off:request("GET", "/api/mizan/health"), 404, "not_found")
    off:stop()
    local port = kit.free_port()
    local srv = testing.server("spec/apps/basic", { env = { MIZAN_OBSERVE_LISTEN = "127.0.0.1:" .. port } })
    h.assert_error(srv:request("GET", "/api/mizan/metrics"), 404, "not_found")
    local c = assert(testing.connect(port))
    c:send(testing.request_bytes("GET", "/api/mizan/metrics"))
    local res = assert(c:read_response())
    c:close()
    assert.equals(200, res.status)
    assert.matches("mizan_open_connections", res.body)
    c = assert(testing.connect(port))
    c:send(testing.request_bytes("POST", "/api/mizan/call/echo/", { "Content-Type: application/json" }, '{"text":"x"}'))
    h.assert_error(assert(c:read_response()), 404, "not_found")
    c:close()
    srv:stop()
  end)
end)
