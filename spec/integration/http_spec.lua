-- The HTTP/1.1 core, driven over real sockets against a real `mizan` process.
local testing = require "mizan.testing"
local json = require "mizan.json"
local kit = require "mizan.testkit"

local APP = "spec/apps/basic"
local bytes = testing.request_bytes

local function post_echo(text, extra)
  local body = json.encode { text = text }
  local headers = { "Content-Type: application/json" }
  for _, h in ipairs(extra or {}) do headers[#headers + 1] = h end
  return bytes("POST", "/api/mizan/call/echo/", headers, body)
end

local assert_error = require("helpers").assert_error

describe("HTTP core", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  describe("connections", function()
    it("keeps a connection alive across requests", function()
      local c = srv:connect()
      for i = 1, 3 do
        c:send(post_echo("n" .. i))
        local res = assert(c:read_response())
        assert.equals(200, res.status)
        assert.equals("n" .. i, res.json.result.message)
        assert.is_nil(res.headers.connection)
      end
      c:close()
    end)

    it("closes after Connection: close, and after HTTP/1.0 without keep-alive", function()
      local c = srv:connect()
      c:send(post_echo("bye", { "Connection: close" }))
      local res = assert(c:read_response())
      assert.equals("close", res.headers.connection)
      assert.is_true(c:closed())
      c:close()

      c = srv:connect()
      c:send("GET /api/mizan/call/fast/ HTTP/1.0\r\n\r\n")
      res = assert(c:read_response())
      assert.equals(200, res.status)
      assert.is_true(c:closed())
      c:close()
    end)

    it("keeps an HTTP/1.0 connection that asks for keep-alive", function()
      local c = srv:connect()
      for _ = 1, 2 do
        c:send("GET /api/mizan/call/fast/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        local res = assert(c:read_response())
        assert.equals(200, res.status)
        assert.equals("keep-alive", res.headers.connection)
      end
      c:close()
    end)

    it("answers pipelined requests in order, in one write when they are ready together", function()
      local c = srv:connect()
      c:send(post_echo("one") .. post_echo("two") .. post_echo("three"))
      assert(c:fill(5))
      -- one write on loopback arrives as one segment: all three are already here
      local _, count = c.buf:gsub("HTTP/1%.1 200", "")
      assert.equals(3, count)
      for _, want in ipairs { "one", "two", "three" } do
        local res = assert(c:read_response())
        assert.equals(want, res.json.result.message)
      end
      c:close()
    end)

    it("answers every pipelined request even when the answers pass the output limit", function()
      local c = srv:connect()
      local n = 8 -- 4 MiB of answers against a 1 MiB output buffer
      c:send(bytes("GET", "/api/mizan/call/big/"):rep(n))
      for _ = 1, n do
        local res = assert(c:read_response())
        assert.equals(200, res.status)
        assert.equals(512 * 1024, #res.json.result.data)
      end
      c:close()
    end)

    it("runs pipelined requests one after another, answering in order even when the first sleeps", function()
      local c = srv:connect()
      local slow = bytes("POST", "/api/mizan/call/slow/", { "Content-Type: application/json" }, '{"seconds":0.2}')
      c:send(slow .. bytes("GET", "/api/mizan/call/fast/"))
      local a = assert(c:read_response())
      local b = assert(c:read_response())
      assert.is_not_nil(a.json.result.started, "the slow call answers first")
      assert.is_true(b.json.result.started > a.json.result.finished)
      c:close()
    end)

    it("reads chunked request bodies", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Transfer-Encoding: chunked\r\n\r\n")
      c:send('5\r\n{"tex\r\n')
      c:send('9\r\nt":"chunk\r\n4\r\ned"}\r\n')
      c:send("0\r\n\r\n")
      local res = assert(c:read_response())
      assert.equals(200, res.status)
      assert.equals("chunked", res.json.result.message)
      c:close()
    end)

    it("answers Expect: 100-continue before the body is sent", function()
      local c = srv:connect()
      local body = '{"text":"continued"}'
      c:send("POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Expect: 100-continue\r\nContent-Length: " .. #body .. "\r\n\r\n")
      local interim = assert(c:read_response())
      assert.equals(100, interim.status)
      c:send(body)
      local res = assert(c:read_response())
      assert.equals(200, res.status)
      assert.equals("continued", res.json.result.message)
      c:close()
    end)

    it("refuses an oversized body after Expect: 100-continue without asking for it", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n")
      local res = assert(c:read_response())
      assert_error(res, 413, "payload_too_large")
      c:close()
    end)

    it("answers HEAD with the headers of GET and no body", function()
      local c = srv:connect()
      c:send(bytes("HEAD", "/api/mizan/call/fast/"))
      local res = assert(c:read_response { head = true })
      assert.equals(200, res.status)
      assert.is_true(tonumber(res.headers["content-length"]) > 0)
      -- had a body been sent, it would now be read as the next status line
      c:send(bytes("GET", "/api/mizan/call/fast/"))
      local res2 = assert(c:read_response())
      assert.equals(200, res2.status)
      assert.is_table(res2.json.result)
      c:close()
    end)

    it("sends an IMF-fixdate Date header and Cache-Control: no-store", function()
      local res = srv:request("GET", "/api/mizan/call/fast/")
      assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$", res.headers.date)
      assert.equals("no-store", res.headers["cache-control"])
    end)

    it("answers paths outside the API with a JSON 404", function()
      assert_error(srv:request("GET", "/elsewhere"), 404, "not_found")
      assert_error(srv:request("GET", "/api/mizan/nothing/"), 404, "not_found")
    end)
  end)

  describe("limits", function()
    it("answers 431 when the headers pass 16 KiB", function()
      local c = srv:connect()
      c:send(bytes("GET", "/api/mizan/call/fast/", { "X-Big: " .. ("a"):rep(17000) }))
      assert_error(assert(c:read_response()), 431, "headers_too_large")
      assert.is_true(c:closed())
      c:close()
    end)

    it("answers 414 when the request line alone passes the limit", function()
      local c = srv:connect()
      c:send("GET /api/mizan/call/fast/?q=" .. ("a"):rep(17000) .. " HTTP/1.1\r\nHost: x\r\n\r\n")
      assert_error(assert(c:read_response()), 414, "uri_too_long")
      c:close()
    end)

    it("answers 413 for a Content-Length over 1 MiB without reading it", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Content-Length: 1048577\r\n\r\n")
      assert_error(assert(c:read_response()), 413, "payload_too_large")
      assert.is_true(c:closed())
      c:close()
    end)

    it("answers 413 when a chunked body grows past 1 MiB", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Transfer-Encoding: chunked\r\n\r\n")
      local chunk = ("%x\r\n%s\r\n"):format(65536, ("x"):rep(65536))
      for _ = 1, 17 do
        if not c:send(chunk) then break end
      end
      assert_error(assert(c:read_response()), 413, "payload_too_large")
      c:close()
    end)

    it("counts chunked-body trailers against the head limit: 431 without waiting for their end", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/whoami/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
      -- twice the 16 KiB limit in one trailer field that never ends: an
      -- answer can only come from a server that counts as the bytes arrive
      c:send("X-Big: " .. ("a"):rep(16 * 1024))
      c:send(("a"):rep(16 * 1024))
      local res = assert(c:read_response())
      assert_error(res, 431, "headers_too_large")
      assert.equals("close", res.headers.connection)
      c:close()
      assert.equals(200, srv:request("GET", "/api/mizan/call/fast/").status)
    end)

    it("accepts small trailers and does not show them as headers", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/whoami/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Agent: from-the-trailer\r\n\r\n")
      local res = assert(c:read_response())
      assert.equals(200, res.status)
      assert.equals("POST", res.json.result.method)
      assert.is_nil(res.json.result.agent)
      -- the connection goes on with the next request
      c:send(bytes("GET", "/api/mizan/call/whoami/", { "X-Agent: a-header" }))
      assert.equals("a-header", assert(c:read_response()).json.result.agent)
      c:close()
    end)

    it("counts chunk extensions against the head limit: 413 while they arrive", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/whoami/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Transfer-Encoding: chunked\r\n\r\n1;")
      -- one extension of twice the head limit that never ends: only a server
      -- that counts as the bytes arrive can answer
      c:send(("a"):rep(16 * 1024))
      c:send(("a"):rep(16 * 1024))
      local res = assert(c:read_response())
      assert_error(res, 413, "payload_too_large")
      assert.equals("close", res.headers.connection)
      c:close()
      assert.equals(200, srv:request("GET", "/api/mizan/call/fast/").status)
    end)

    it("accepts small chunk extensions", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/whoami/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Transfer-Encoding: chunked\r\n\r\n2;name=value\r\n{}\r\n0\r\n\r\n")
      local res = assert(c:read_response())
      assert.equals(200, res.status)
      c:close()
    end)

    it("refuses a chunk announced over the body limit at its size line", function()
      local c = srv:connect()
      c:send("POST /api/mizan/call/whoami/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
             "Transfer-Encoding: chunked\r\n\r\n800000000\r\n")
      local res = assert(c:read_response()) -- no data follows: the size alone must be enough
      assert_error(res, 413, "payload_too_large")
      c:close()
    end)

    it("accepts a body just under the limit", function()
      local data = ("y"):rep(1024 * 1024 - 20)
      local body = json.encode { data = data }
      assert.is_true(#body <= 1024 * 1024)
      local res = srv:request("POST", "/api/mizan/call/upload/",
                              { headers = { "Content-Type: application/json" }, body = body })
      assert.equals(200, res.status)
      assert.equals(#data, res.json.result.length)
    end)
  end)

  describe("strict parsing", function()
    local cases = {
      ["obs-fold"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n",
      ["whitespace before a colon"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost : x\r\n\r\n",
      ["a missing Host on HTTP/1.1"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\n\r\n",
      ["a duplicate Host"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
      ["Transfer-Encoding on HTTP/1.0"] = "POST /api/mizan/call/echo/ HTTP/1.0\r\nContent-Type: application/json\r\n" ..
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      ["Content-Length with Transfer-Encoding"] = "POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\n" ..
        "Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      ["an invalid Content-Length"] = "POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
      ["a negative Content-Length"] = "POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      ["a duplicate Content-Length"] = "POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n" ..
        "Content-Length: 2\r\n\r\n{}",
      ["a list in Content-Length"] = "POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}",
      ["an unknown Transfer-Encoding"] = "POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\n" ..
        "Transfer-Encoding: gzip\r\n\r\n",
      ["a malformed request line"] = "GET  /api/mizan/call/fast/ HTTP/1.1\r\nHost: x\r\n\r\n",
      ["a bad HTTP version"] = "GET /api/mizan/call/fast/ HTTP/2.0\r\nHost: x\r\n\r\n",
      ["a control character in a header value"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x\r\nX-A: a\1b\r\n\r\n",
      ["a header line without a colon"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
      -- a bare CR ends no line: without the check this head waited for its timeout
      ["bare CR line endings"] = "GET /api/mizan/call/fast/ HTTP/1.1\rHost: x\r\r",
      ["a bare CR inside a header value"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
      ["a Host with userinfo"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: u@x\r\n\r\n",
      ["a Host with a path"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x/p\r\n\r\n",
      ["a Host with a bad port"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x:8o\r\n\r\n",
      ["a Host with an open bracket"] = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: [::1\r\n\r\n",
    }
    for name, raw in pairs(cases) do
      it("answers 400 and closes for " .. name, function()
        local c = srv:connect()
        c:send(raw)
        local res = assert(c:read_response())
        assert_error(res, 400, "bad_request")
        assert.equals("close", res.headers.connection)
        assert.is_true(c:closed())
        c:close()
      end)
    end

    it("still serves after all of them", function()
      assert.equals(200, srv:request("GET", "/api/mizan/call/fast/").status)
    end)

    it("accepts the Host forms RFC 9112 allows: a name, an IPv4 or IPv6 address, a port, empty on HTTP/1.1", function()
      for _, host in ipairs { "example.com", "127.0.0.1:8080", "[::1]", "[::1]:8080", "xn--bcher-kva.example", "" } do
        local c = srv:connect()
        c:send("GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n")
        local res = assert(c:read_response())
        assert.equals(200, res.status, "Host: " .. host)
        c:close()
      end
    end)
  end)
end)

describe("HTTP timeouts", function()
  local srv
  setup(function()
    srv = testing.server(APP, { env = {
      MIZAN_HEADER_TIMEOUT = "0.5", MIZAN_BODY_TIMEOUT = "0.5", MIZAN_KEEPALIVE_TIMEOUT = "0.5",
      MIZAN_SEND_TIMEOUT = "0.5",
    } })
  end)
  teardown(function() srv:stop() end)

  it("answers 408 and closes when the head does not arrive in time", function()
    local c = srv:connect()
    c:send("GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x\r\n")
    assert_error(assert(c:read_response()), 408, "request_timeout")
    assert.is_true(c:closed())
    c:close()
  end)

  it("does not let a client extend the head deadline by trickling bytes", function()
    local c = srv:connect()
    local head = "GET /api/mizan/call/fast/ HTTP/1.1\r\nHost: x\r\nX-Slow: " .. ("a"):rep(300)
    -- 150 bytes at 20 ms each outlast the 0.5 s deadline six times over; a
    -- deadline that moved with each byte would never fire while we trickle
    local answered_while_trickling = false
    for i = 1, 150 do
      c:send(head:sub(i, i))
      kit.sleep(0.02)
      if c:fill(0) then answered_while_trickling = true; break end
    end
    assert.is_true(answered_while_trickling)
    assert_error(assert(c:read_response()), 408, "request_timeout")
    assert.is_true(c:closed())
    c:close()
  end)

  it("answers 408 and closes when the body does not arrive in time", function()
    local c = srv:connect()
    c:send("POST /api/mizan/call/echo/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" ..
           "Content-Length: 100\r\n\r\n{\"text\":")
    assert_error(assert(c:read_response()), 408, "request_timeout")
    assert.is_true(c:closed())
    c:close()
  end)

  it("closes an idle keep-alive connection", function()
    local c = srv:connect()
    c:send(bytes("GET", "/api/mizan/call/fast/"))
    assert.equals(200, assert(c:read_response()).status)
    assert.is_true(c:closed(5))
    c:close()
  end)

  it("drops a client that stops reading, instead of buffering without bound", function()
    local c = srv:connect()
    local n = 64
    local req = bytes("GET", "/api/mizan/call/big/")
    c:send(req:rep(n), 2)
    kit.sleep(1.5) -- read nothing for three send timeouts
    local data, err = c:read_all(10)
    assert.equals("closed", err)
    assert.is_true(#data < n * 512 * 1024, "the server stopped before answering everything")
    c:close()
    assert.equals(200, srv:request("GET", "/api/mizan/call/fast/").status)
  end)

  it("closes a connection that never sends anything", function()
    local c = srv:connect()
    assert.is_true(c:closed(5))
    c:close()
  end)
end)

describe("graceful drain", function()
  for _, signal in ipairs { "TERM", "INT" } do
    it("on SIG" .. signal .. " finishes the request in flight, closes idle connections, and exits 0", function()
      local srv = testing.server(APP)
      local idle = srv:connect()
      idle:send(bytes("GET", "/api/mizan/call/fast/"))
      assert.equals(200, assert(idle:read_response()).status)

      local busy = srv:connect()
      busy:send(bytes("POST", "/api/mizan/call/slow/", { "Content-Type: application/json" }, '{"seconds":0.5}'))
      -- the request is in flight once the server has parsed it; a second
      -- connection's answer proves the loop has moved past it
      local probe = srv:connect()
      probe:send(bytes("GET", "/api/mizan/call/fast/"))
      assert.equals(200, assert(probe:read_response()).status)
      probe:close()

      kit.kill(srv.pid, signal)
      assert.is_true(idle:closed(5))
      local res = assert(busy:read_response())
      assert.equals(200, res.status)
      assert.equals("close", res.headers.connection)
      assert.is_number(res.json.result.finished)
      local code, how = srv:wait()
      assert.equals("exit", how)
      assert.equals(0, code)
      idle:close()
      busy:close()
    end)
  end
end)

local wait_until = require("helpers").wait_until

-- `mizan serve` in a shell that sets the descriptor limits first.
local function serve_with_limits(ulimits, env)
  local script = ("%s && exec %q serve %q"):format(ulimits, assert(kit.exe()), APP)
  local e = { MIZAN_WORKERS = "1" }
  for k, v in pairs(env or {}) do e[k] = v end
  return testing.server(APP, { exe = "/bin/sh", command = "-c", args = { script }, env = e })
end

describe("file descriptors", function()
  it("raises the soft limit to the hard limit at start, and says so", function()
    local srv = serve_with_limits("ulimit -Sn 64 && ulimit -Hn 128")
    assert.matches("file descriptor limit: 128 %(raised from 64", srv:log())
    assert.equals(200, srv:request("GET", "/api/mizan/call/fast/").status)
    assert.equals(0, (srv:stop()))
  end)

  it("when out of descriptors, says so, keeps serving its connections, and accepts again once some close", function()
    local srv = serve_with_limits("ulimit -n 64")
    local kept = srv:connect()
    kept:send(bytes("GET", "/api/mizan/call/fast/"))
    assert.equals(200, assert(kept:read_response()).status)
    -- more idle connections than the worker has descriptors left
    local idle = {}
    for i = 1, 80 do idle[i] = testing.connect(srv.port) end
    assert.is_true(wait_until(function() return srv:log():find("out of file descriptors", 1, true) ~= nil end))
    assert.matches("limit 64", srv:log())
    for _ = 1, 3 do
      kept:send(bytes("GET", "/api/mizan/call/fast/"))
      assert.equals(200, assert(kept:read_response()).status)
    end
    for _, c in ipairs(idle) do c:close() end
    assert.is_true(wait_until(function()
      local c = testing.connect(srv.port)
      if not c then return false end
      c:send(bytes("GET", "/api/mizan/call/fast/"))
      local res = c:read_response { timeout = 1 }
      c:close()
      return res ~= nil and res.status == 200
    end))
    kept:close()
    assert.equals(0, (srv:stop()))
  end)
end)

describe("drain and the backlog", function()
  -- `spin` keeps the worker's loop busy, so that new connections wait in
  -- the kernel's backlog, their handshake done, their request sent
  local SPIN_APP = [[
local mizan = require "mizan"
local T = mizan.types
mizan.register(mizan.client { input = { seconds = T.number } } (function(req, args)
  local t = os.clock()
  while os.clock() - t < args.seconds do end
  return { spun = true }
end), "spin")
mizan.register(mizan.client { query = true } (function() return { fast = true } end), "fast")
]]

  for _, command in ipairs { "dev", "serve" } do
    it("answers (" .. command .. ") the connections waiting in the backlog when SIGTERM is handled", function()
      local dir = require("helpers").app_dir(SPIN_APP)
      local srv = testing.server(dir, { command = command, env = { MIZAN_WORKERS = "1" } })
      local spinner = srv:connect()
      spinner:send(bytes("POST", "/api/mizan/call/spin/", { "Content-Type: application/json" }, '{"seconds":1.5}'))
      kit.sleep(0.3) -- the spin has started (if not, these are simply served the usual way)
      kit.kill(srv.pid, "TERM")
      kit.sleep(0.1) -- on purpose, as above: the signal is in before these connect (else they are served the usual way)
      local waiting = {}
      for i = 1, 5 do
        waiting[i] = testing.connect(srv.port)
        if waiting[i] then waiting[i]:send(bytes("GET", "/api/mizan/call/fast/")) end
      end
      assert.equals(200, assert(spinner:read_response()).status)
      for i = 1, 5 do
        -- refused at connect time is fine (the listener is gone); accepted
        -- by the kernel and then reset is not
        if waiting[i] then
          local res, err = waiting[i]:read_response()
          assert.is_not_nil(res, "connection " .. i .. ": " .. tostring(err))
          assert.equals(200, res.status)
          assert.equals("close", res.headers.connection)
          waiting[i]:close()
        end
      end
      spinner:close()
      local code, how = srv:wait()
      assert.equals("exit", how)
      assert.equals(0, code)
    end)
  end

  it("does not leave the socket open in the master while the workers drain (serve)", function()
    local srv = testing.server(APP, { command = "serve", env = { MIZAN_WORKERS = "1" } })
    local busy = srv:connect()
    busy:send(bytes("POST", "/api/mizan/call/slow/", { "Content-Type: application/json" }, '{"seconds":1}'))
    local probe = srv:connect()
    probe:send(bytes("GET", "/api/mizan/call/fast/"))
    assert.equals(200, assert(probe:read_response()).status)
    probe:close()
    kit.kill(srv.pid, "TERM")
    assert.is_true(wait_until(function() return srv:log():find("draining (", 1, true) ~= nil end))
    -- the drain lasts as long as the slow call; a client now is either
    -- refused or answered, never accepted by the kernel and then reset
    local late = testing.connect(srv.port)
    if late then
      late:send(bytes("GET", "/api/mizan/call/fast/"))
      local res, err = late:read_response()
      assert.is_not_nil(res, "a connection accepted during the drain was dropped: " .. tostring(err))
      late:close()
    end
    assert.equals(200, assert(busy:read_response()).status)
    busy:close()
    assert.equals(0, (srv:wait()))
  end)
end)
