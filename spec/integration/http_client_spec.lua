-- mizan.http: outbound HTTP(S) from a function, against local servers the
-- spec starts (spec/support/upstream.lua). What is checked about pooling and
-- concurrency is checked from the server's side (its connections, the
-- requests it had in flight at once), never by timing.
local testing = require "mizan.testing"
local json = require "mizan.json"
local kit = require "mizan.testkit"
local h = require "helpers"
local upstream = require "upstream"

local APP = "spec/apps/httpc"

local function fetch(srv, url, opts)
  local res = srv:call("fetch", { url = url, opts = opts and json.encode(opts) or nil }, { timeout = 30 })
  assert.equals(200, res.status, res.body)
  return res.json.result
end

describe("mizan.http over plain HTTP", function()
  local up, srv
  setup(function()
    up = upstream.start()
    srv = testing.server(APP, { env = { MIZAN_WORKERS = "1" } })
  end)
  teardown(function()
    srv:stop()
    up.stop()
  end)

  it("GETs an answer: status, lowercase headers, body", function()
    local r = fetch(srv, up.url("/hello"))
    assert.is_true(r.ok, r.err)
    assert.equals(200, r.status)
    assert.equals("hello", r.body)
    assert.equals("text/plain", r.headers["content-type"])
  end)

  it("looks a host name up off the loop (localhost), and connects", function()
    for _ = 1, 3 do
      local r = fetch(srv, up.url("/hello", "localhost"))
      assert.is_true(r.ok, r.err)
      assert.equals("hello", r.body)
    end
  end)

  it("takes a 404 as an answer, not an error", function()
    local r = fetch(srv, up.url("/status?code=404"))
    assert.is_true(r.ok, r.err)
    assert.equals(404, r.status)
    assert.equals("status 404", r.body)
  end)

  it("sends json = a table as application/json and decodes a JSON answer", function()
    local r = fetch(srv, up.url("/echo"), { method = "POST", json = { amount = 100, who = "ünï" },
                                            headers = { ["X-Thing"] = "yes" } })
    assert.is_true(r.ok, r.err)
    assert.equals("POST", r.json.method)
    assert.equals("application/json", r.json.headers["content-type"])
    assert.equals("yes", r.json.headers["x-thing"])
    assert.same({ amount = 100, who = "ünï" }, json.decode(r.json.body))
  end)

  it("sends each method as asked; a bodiless POST says Content-Length: 0", function()
    local post = fetch(srv, up.url("/echo"), { method = "POST" })
    assert.equals("POST", post.json.method)
    assert.equals("0", post.json.headers["content-length"])
    local put = fetch(srv, up.url("/echo"), { method = "PUT", body = "x" })
    assert.equals("PUT", put.json.method)
    assert.equals("x", put.json.body)
    local del = fetch(srv, up.url("/echo"), { method = "delete" })
    assert.equals("DELETE", del.json.method)
    local head = fetch(srv, up.url("/hello"), { method = "HEAD" })
    assert.equals(200, head.status)
    assert.equals("", head.body)
  end)

  it("follows a redirect of a POST with a GET, as browsers do", function()
    local r = fetch(srv, up.url("/redirect?to=/echo"), { method = "POST", body = "x", redirects = 1 })
    assert.equals(200, r.status)
    assert.equals("GET", r.json.method)
  end)

  it("joins a repeated header, and keeps set-cookie as a list", function()
    local r = fetch(srv, up.url("/echo"))
    assert.equals("a, b", r.headers["x-multi"])
    assert.same({ "a=1; Path=/", "b=2, with comma" }, r.headers["set-cookie"])
  end)

  it("keeps a connection alive and reuses it for sequential calls", function()
    local ports = {}
    for i = 1, 5 do
      local r = fetch(srv, up.url("/echo?i=" .. i))
      ports[r.json.port] = true
    end
    local n = 0
    for _ in pairs(ports) do n = n + 1 end
    assert.equals(1, n)
  end)

  it("sends a GET again on a new connection when its pooled one went stale", function()
    local first = fetch(srv, up.url("/echo?drop=50"))
    assert.is_true(first.ok, first.err)
    assert.is_true(h.wait_until(function() return up.stats().inflight == 0 end))
    kit.sleep(0.2) -- the server has closed that connection by now (50 ms after answering)
    local again = fetch(srv, up.url("/echo"))
    assert.is_true(again.ok, again.err)
    assert.are_not.equal(first.json.port, again.json.port)
  end)

  it("never sends a POST on a pooled connection (so it is never sent twice)", function()
    local a = fetch(srv, up.url("/echo"), { method = "POST", body = "1" })
    local b = fetch(srv, up.url("/echo"), { method = "POST", body = "2" })
    assert.is_true(a.ok and b.ok)
    assert.are_not.equal(a.json.port, b.json.port)
  end)

  it("follows no redirect unless asked, and at most `redirects`", function()
    local off = fetch(srv, up.url("/redirect?to=/hello"))
    assert.equals(302, off.status)
    local on = fetch(srv, up.url("/redirect?to=/hello"), { redirects = 2 })
    assert.equals(200, on.status)
    assert.equals("hello", on.body)
    assert.equals(up.url("/hello"), on.url)
    local loop = fetch(srv, up.url("/loop"), { redirects = 3 })
    assert.is_false(loop.ok)
    assert.equals("redirects", loop.kind)
  end)

  it("refuses a body bigger than max_body while reading, with or without content-length", function()
    local ok = fetch(srv, up.url("/big?n=1000"), { max_body = 1000 })
    assert.is_true(ok.ok, ok.err)
    assert.equals(1000, ok.length)
    for _, path in ipairs { "/big?n=1001", "/big?n=300000&chunked=1" } do
      local r = fetch(srv, up.url(path), { max_body = 1000 })
      assert.is_false(r.ok, path)
      assert.equals("too_big", r.kind, path)
    end
    -- the default bound (8 MiB) lets a 1 MB chunked body through
    local big = fetch(srv, up.url("/big?n=1000000&chunked=1"))
    assert.is_true(big.ok, big.err)
    assert.equals(1000000, big.length)
  end)

  it("says closed when the server drops the connection mid-answer", function()
    local r = fetch(srv, up.url("/drop"))
    assert.is_false(r.ok)
    assert.equals("closed", r.kind)
    assert.matches("^closed: ", r.err)
  end)

  it("times out a server that never answers (total timeout)", function()
    local r = fetch(srv, up.url("/hang"), { timeout = 0.3 })
    assert.is_false(r.ok)
    assert.equals("timeout", r.kind)
  end)

  it("times out a connect that never completes (connect timeout)", function()
    local bh = upstream.blackhole()
    local r = fetch(srv, ("http://127.0.0.1:%d/"):format(bh.port), { connect_timeout = 0.3 })
    bh.stop()
    assert.is_false(r.ok)
    assert.equals("timeout", r.kind)
    assert.matches("onnect", r.err)
  end)

  it("says connect when nothing listens", function()
    local port = assert(kit.free_port())
    local r = fetch(srv, ("http://127.0.0.1:%d/"):format(port))
    assert.is_false(r.ok)
    assert.equals("connect", r.kind)
  end)

  it("runs 20 slow calls from one worker at once, and answers other requests meanwhile", function()
    assert(h.run("curl -s " .. up.url("/reset")))
    local kids = {}
    for i = 1, 20 do
      kids[i] = kit.fork(function()
        -- held until all 20 are at the server together (or 20 s: then too few came at once)
        local r = fetch(srv, up.url("/slow?until=20&ms=20000&i=" .. i))
        assert(r.ok and r.body == "slow done")
      end)
    end
    -- while the slow ones are at the server, another request is answered
    assert.is_true(h.wait_until(function() return up.stats().inflight >= 1 end))
    local quick = fetch(srv, up.url("/hello"))
    assert.equals("hello", quick.body)
    assert.is_true(up.stats().inflight >= 1, "the quick call was answered while slow ones were in flight")
    for _, pid in ipairs(kids) do assert.equals(0, kit.wait(pid)) end
    -- the server's view: all 20 were in flight together (the quick one may
    -- have overlapped them too)
    assert.is_true(up.stats().max_inflight >= 20)
  end)

  it("raises on misuse, naming the option", function()
    local http = require "mizan.http"
    local cases = {
      { { url = "ftp://x/" }, "option 'url'" },
      { { url = "http://x/ y" }, "option 'url'" },
      { { url = "http://x/", timeout = "5" }, "option 'timeout'" },
      { { url = "http://x/", max_body = -1 }, "option 'max_body'" },
      { { url = "http://x/", method = "BREW" }, "option 'method'" },
      { { url = "http://x/", headers = { ["X-A"] = "a\r\nX-B: b" } }, "option 'headers'" },
      { { url = "http://x/", body = "a", json = {} }, "'body' or 'json'" },
      { { url = "http://x/", verify = "no" }, "option 'verify'" },
      { { url = "http://x/", ca_file = "/nonexistent/ca.pem" }, "option 'ca_file'" },
      { { url = "http://x/", timout = 1 }, "unknown option 'timout'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(http.request, c[1])
      assert.is_false(ok)
      assert.matches(c[2], tostring(err), 1, true)
    end
  end)
end)

describe("mizan.http over HTTPS", function()
  local ca, good, wrong, srv
  setup(function()
    ca = upstream.ca()
    good = upstream.start { cert = ca.good_cert, key = ca.good_key }
    wrong = upstream.start { cert = ca.wrong_cert, key = ca.wrong_key }
    srv = testing.server(APP, { env = { MIZAN_WORKERS = "1" } })
  end)
  teardown(function()
    srv:stop()
    good.stop()
    wrong.stop()
  end)

  it("refuses a certificate the system store does not vouch for", function()
    local r = fetch(srv, good.url("/hello"))
    assert.is_false(r.ok)
    assert.equals("tls", r.kind)
  end)

  it("accepts it with ca_file, and does not lend that trust to a later call without it", function()
    local r = fetch(srv, good.url("/hello"), { ca_file = ca.pem })
    assert.is_true(r.ok, r.err)
    assert.equals("hello", r.body)
    local again = fetch(srv, good.url("/hello"))
    assert.is_false(again.ok)
    assert.equals("tls", again.kind)
  end)

  it("verifies a certificate issued to a host name (localhost)", function()
    local r = fetch(srv, good.url("/hello", "localhost"), { ca_file = ca.pem })
    assert.is_true(r.ok, r.err)
    assert.equals("hello", r.body)
  end)

  it("checks the host name too", function()
    local r = fetch(srv, wrong.url("/hello"), { ca_file = ca.pem })
    assert.is_false(r.ok)
    assert.equals("tls", r.kind)
  end)

  it("skips the checks only with an explicit verify = false", function()
    local r = fetch(srv, wrong.url("/hello"), { verify = false })
    assert.is_true(r.ok, r.err)
    assert.equals("hello", r.body)
  end)

  it("takes the CA from the config (MIZAN_HTTP_CA_FILE) for every request", function()
    local s2 = testing.server(APP, { env = { MIZAN_WORKERS = "1", MIZAN_HTTP_CA_FILE = ca.pem } })
    local r = fetch(s2, good.url("/hello"))
    s2:stop()
    assert.is_true(r.ok, r.err)
    assert.equals("hello", r.body)
  end)
end)

describe("mizan.http under mizan test (in-process)", function()
  it("yields on the real loop and answers", function()
    local up = upstream.start()
    local app = testing.app(APP)
    local res = app:call("fetch", { url = up.url("/status?code=201") })
    up.stop()
    assert.equals(200, res.status, res.body)
    local r = res.body.result -- in-process: the body as a Lua value
    assert.is_true(r.ok, r.err)
    assert.equals(201, r.status)
  end)
end)

describe("mizan.http across a reload and a shutdown", function()
  local up
  setup(function() up = upstream.start() end)
  teardown(function() up.stop() end)

  local function version(srv)
    local res = srv:call("version", {}, { method = "GET" })
    return res.status == 200 and res.json.result.version
  end

  it("lets a request in flight finish on the old code while mizan dev reloads", function()
    local dir = h.app_dir(h.read(APP .. "/app.lua"))
    local srv = testing.server(dir, { env = { MIZAN_WORKERS = "1" } })
    assert.equals("v0", version(srv))
    assert(h.run("curl -s " .. up.url("/reset")))
    local kid = kit.fork(function()
      local r = fetch(srv, up.url("/slow?ms=1500"))
      assert(r.ok and r.body == "slow done", r.err)
    end)
    assert.is_true(h.wait_until(function() return up.stats().inflight >= 1 end))
    local src = h.read(dir .. "/app.lua")
    h.write(dir .. "/app.lua", (src:gsub('VERSION = "v0"', 'VERSION = "v1"')))
    assert.is_true(h.wait_until(function() return version(srv) == "v1" end, 30))
    assert.equals(0, kit.wait(kid))
    -- the new code has a client of its own
    local r = fetch(srv, up.url("/hello"))
    assert.equals("hello", r.body)
    srv:stop() -- under ASan: fails on any sanitizer report
  end)

  it("cancels a request still in flight when a draining worker must stop, and exits cleanly", function()
    local srv = testing.server(APP, { command = "serve", env = { MIZAN_WORKERS = "1" } })
    assert.equals("v0", version(srv))
    local kid = kit.fork(function()
      -- the drain ends the connection, or answers with the cancellation
      local ok, res = pcall(srv.call, srv, "fetch", { url = up.url("/hang"), opts = json.encode { timeout = 60 } })
      if ok and res.status == 200 then assert(res.json.result.kind == "cancelled", res.body) end
    end)
    assert.is_true(h.wait_until(function() return up.stats().inflight >= 1 end))
    kit.kill(srv.pid, "TERM")
    -- the task was resumed with the cancellation (never left suspended)
    assert.is_true(h.wait_until(function() return srv:log():find("fetch: cancelled: ", 1, true) ~= nil end, 15),
                   srv:log())
    -- a clean exit from the drain
    local code, how = srv:wait(15)
    assert.same({ 0, "exit" }, { code, how })
    assert.equals(0, kit.wait(kid))
    assert.is_true(h.wait_until(function() return up.stats().inflight == 0 end))
  end)
end)
