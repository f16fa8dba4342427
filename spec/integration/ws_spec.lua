-- WebSocket framing in C, with raw frames: the behaviours of Autobahn|Testsuite
-- groups 1-7 and 9 (framing, pings, reserved bits, opcodes, fragmentation,
-- UTF-8, close handling, limits), as our own cases.
local testing = require "mizan.testing"
local h = require "helpers"

local APP = "spec/apps/channels"

local function subscribe_frame(id, room)
  return require("mizan.json").encode { type = "subscribe", id = id, channel = "chat", params = { room = room or "r" } }
end

describe("WebSocket", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  local function open()
    local ws, res = testing.websocket(srv.port)
    assert(ws, res and res.body)
    return ws, res
  end

  describe("handshake", function()
    it("switches protocols with the RFC's accept key", function()
      local ws, res = open()
      assert.equals(101, res.status)
      assert.equals("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", res.headers["sec-websocket-accept"])
      assert.equals("websocket", res.headers.upgrade:lower())
      ws:close()
    end)

    it("answers another version with 426 and the version it speaks", function()
      local ws, res = testing.websocket(srv.port, { version = "8" })
      assert.is_nil(ws)
      assert.equals(426, res.status)
      assert.equals("13", res.headers["sec-websocket-version"])
    end)

    it("refuses a cross-site Origin like CSRF does", function()
      local ws, res = testing.websocket(srv.port, { headers = { "Origin: https://evil.example" } })
      assert.is_nil(ws)
      assert.equals(403, res.status)
      assert.equals("csrf_failed", res.json.error.code)
      local ok = testing.websocket(srv.port, { headers = { "Origin: http://localhost" } })
      assert.is_not_nil(ok, "same origin (Host: localhost) is fine")
      ok:close()
    end)

    it("refuses a handshake without a key, and a plain GET", function()
      local c = srv:connect()
      c:send(testing.request_bytes("GET", "/api/mizan/ws/", { "Upgrade: websocket", "Connection: Upgrade",
                                                            "Sec-WebSocket-Version: 13" }))
      assert.equals(400, assert(c:read_response()).status)
      c:close()
      assert.equals(426, srv:request("GET", "/api/mizan/ws/").status)
    end)
  end)

  describe("frames", function()
    it("delivers a text message and answers it", function()
      local ws = open()
      ws:send_frame(1, subscribe_frame(1))
      assert.same({ type = "subscribed", id = 1 }, ws:read_json())
      ws:close()
    end)

    it("sends server frames unmasked", function()
      local ws = open()
      ws:send_frame(1, subscribe_frame(1))
      local f = assert(ws:read_frame())
      assert.is_false(f.masked)
      ws:close()
    end)

    it("assembles fragmented messages, with control frames between fragments", function()
      local ws = open()
      local text = subscribe_frame(7)
      local a, b, c = text:sub(1, 5), text:sub(6, 20), text:sub(21)
      ws:send_frame(1, a, { fin = false })
      ws:send_frame(9, "in between")
      ws:send_frame(0, b, { fin = false })
      ws:send_frame(0, c)
      local pong = assert(ws:read_frame())
      assert.equals(10, pong.opcode)
      assert.equals("in between", pong.payload)
      assert.same({ type = "subscribed", id = 7 }, ws:read_json())
      ws:close()
    end)

    it("answers ping with pong from C, with the same payload, up to 125 bytes", function()
      local ws = open()
      for _, payload in ipairs { "", "hello", ("x"):rep(125), "\255\0\1" } do
        ws:send_frame(9, payload)
        local f = assert(ws:read_frame())
        assert.equals(10, f.opcode)
        assert.equals(payload, f.payload)
      end
      ws:send_frame(10, "unsolicited pong is ignored")
      ws:send_frame(1, subscribe_frame(2))
      assert.same({ type = "subscribed", id = 2 }, ws:read_json())
      ws:close()
    end)

    it("handles large and many messages", function()
      local ws = open()
      local big = ("x"):rep(100000)
      ws:send_frame(1, require("mizan.json").encode { type = "subscribe", id = big, channel = "chat", params = { room = "r" } })
      local r = ws:read_json()
      assert.equals(big, r.id)
      for i = 1, 50 do ws:send_frame(1, subscribe_frame(100 + i)) end
      for i = 1, 50 do assert.equals(100 + i, ws:read_json().id) end
      ws:close()
    end)
  end)

  describe("protocol errors close with the RFC's codes", function()
    local function expect_close(frames, code)
      local ws = open()
      for _, f in ipairs(frames) do
        if type(f) == "string" then ws:send_raw(f) else ws:send_frame(f[1], f[2], f[3]) end
      end
      local got = ws:read_close()
      ws:close()
      assert.equals(code, got)
    end

    it("refuses unmasked client frames (1002)", function()
      expect_close({ { 1, subscribe_frame(1), { masked = false } } }, 1002)
    end)

    it("refuses reserved bits (1002)", function()
      for rsv = 1, 7 do expect_close({ { 1, "{}", { rsv = rsv } } }, 1002) end
    end)

    it("refuses reserved opcodes (1002)", function()
      for _, op in ipairs { 3, 4, 5, 6, 7, 11, 12, 13, 14, 15 } do expect_close({ { op, "" } }, 1002) end
    end)

    it("refuses control frames over 125 bytes or fragmented (1002)", function()
      expect_close({ { 9, ("x"):rep(126) } }, 1002)
      expect_close({ { 9, "frag", { fin = false } } }, 1002)
    end)

    it("refuses a continuation with nothing to continue, and a new message inside a fragmented one (1002)", function()
      expect_close({ { 0, "orphan" } }, 1002)
      expect_close({ { 1, "{", { fin = false } }, { 1, "}" } }, 1002)
    end)

    it("refuses invalid UTF-8, also split across fragments (1007)", function()
      expect_close({ { 1, "\xff" } }, 1007)
      expect_close({ { 1, "\xed\xa0\x80" } }, 1007) -- a surrogate
      expect_close({ { 1, "\xc0\xaf" } }, 1007)     -- overlong
      expect_close({ { 1, "ok \xce", { fin = false } }, { 0, "\xba\xe1\xbd" } }, 1007) -- truncated at the end
      -- valid UTF-8 split inside a character is fine
      local ws = open()
      local text = '{"type":"subscribe","id":"κόσμε","channel":"chat","params":{"room":"r"}}'
      local cut = text:find("\xcf", 1, true)
      ws:send_frame(1, text:sub(1, cut), { fin = false })
      ws:send_frame(0, text:sub(cut + 1))
      assert.equals("κόσμε", ws:read_json().id)
      ws:close()
    end)

    it("refuses a message over 1 MiB (1009)", function()
      expect_close({ { 1, ("x"):rep(1024 * 1024 + 1) } }, 1009)
      expect_close({ { 1, ("x"):rep(700 * 1024), { fin = false } }, { 0, ("x"):rep(400 * 1024) } }, 1009)
    end)

    it("refuses binary messages: the channel protocol is JSON text (1003)", function()
      expect_close({ { 2, "\0\1\2" } }, 1003)
    end)

    it("completes the close handshake, and refuses bad close frames", function()
      expect_close({ { 8, string.char(0x03, 0xe8) .. "bye" } }, 1000)
      expect_close({ { 8, "" } }, 1005)
      expect_close({ { 8, "x" } }, 1002)
      for _, code in ipairs { 0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000 } do
        expect_close({ { 8, string.char(math.floor(code / 256), code % 256) } }, 1002)
      end
      for _, code in ipairs { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999 } do
        expect_close({ { 8, string.char(math.floor(code / 256), code % 256) } }, 1000)
      end
      expect_close({ { 8, string.char(0x03, 0xe8) .. "\xff" } }, 1007)
    end)
  end)

  describe("frame lengths", function()
    -- a masked frame header (all-zero mask) announcing `len` bytes, as 8 bytes
    local function header64(b1, hi, lo)
      local bytes = {}
      for i = 4, 1, -1 do bytes[i] = hi % 256; hi = math.floor(hi / 256) end
      for i = 8, 5, -1 do bytes[i] = lo % 256; lo = math.floor(lo / 256) end
      return string.char(b1, 0x80 + 127) .. string.char(unpack(bytes)) .. "\0\0\0\0"
    end

    it("refuses a continuation whose 64-bit length would wrap the message size (1009), and still serves", function()
      local ws = open()
      ws:send_frame(1, ("x"):rep(16), { fin = false })
      -- 2^64 - 14: with the 16 bytes before, the sums wrap in 64 bits
      ws:send_raw(header64(0x80, 0xFFFFFFFF, 0xFFFFFFF2) .. ("A"):rep(64))
      assert.equals(1009, ws:read_close())
      ws:close()
      local again = open()
      again:send_frame(1, subscribe_frame(3))
      assert.same({ type = "subscribed", id = 3 }, again:read_json())
      again:close()
      assert.equals(200, srv:request("GET", "/api/mizan/health").status)
    end)

    it("refuses a length over the limit as soon as the header is in, without waiting for the payload (1009)", function()
      for _, len in ipairs { { 0, 1024 * 1024 + 1 }, { 0x7FFFFFFF, 0xFFFFFFFF }, { 0x80000000, 0 } } do
        local ws = open()
        ws:send_raw(header64(0x81, len[1], len[2]))
        assert.equals(1009, ws:read_close())
        ws:close()
      end
    end)
  end)

  it("says 1001 going away when the server drains", function()
    local own = testing.server(APP)
    local ws = assert(testing.websocket(own.port))
    require("mizan.testkit").kill(own.pid, "TERM")
    assert.equals(1001, ws:read_close())
    ws:close()
    assert.equals(0, (own:wait()))
  end)

  it("drops a client that stops reading instead of buffering without bound", function()
    local ws = open()
    ws:send_json { type = "subscribe", id = 1, channel = "news" }
    assert.equals("subscribed", ws:read_json().type)
    local headline = ("h"):rep(200000)
    local sent, dropped = 0, false
    for _ = 1, 300 do -- up to 60 MB for a client that reads nothing: past any socket buffer
      if srv:call("publish", { headline = headline }).json.result == 1 then
        sent = sent + 1
      else
        dropped = true
        break
      end
    end
    assert.is_true(dropped, "the server stopped sending to it")
    assert.matches("it does not read", srv:log())
    ws:close()
  end)
end)

describe("WebSocket input budget", function()
  -- 1 MB for every socket of the worker together; each socket below holds
  -- an unfinished message of 300 000 bytes, so the fourth does not fit
  local srv
  setup(function() srv = testing.server(APP, { env = { MIZAN_WS_BUFFER = "1000000" } }) end)
  teardown(function() srv:stop() end)

  local PART = 300000
  local function start_message(ws, id)
    ws:send_frame(1, '{"type":"subscribe","id":"' .. id .. ("x"):rep(PART - 26 - #id), { fin = false })
    -- the ping is answered after the fragment: the server has taken it in
    ws:send_frame(9, id)
    return ws:read_frame()
  end
  local function finish_message(ws, id)
    ws:send_frame(0, '","channel":"chat","params":{"room":"r"}}')
    local r = assert(ws:read_json())
    assert.equals("subscribed", r.type)
    assert.equals(id, r.id:sub(1, #id))
  end

  it("closes the socket that would pass it with 1013, and the others go on", function()
    local held = {}
    for i = 1, 3 do
      held[i] = assert(testing.websocket(srv.port))
      local pong = assert(start_message(held[i], "s" .. i))
      assert.equals(10, pong.opcode)
    end
    local extra = assert(testing.websocket(srv.port))
    extra:send_frame(1, '{"type":"subscribe","id":"' .. ("x"):rep(PART), { fin = false })
    assert.equals(1013, extra:read_close())
    extra:close()
    assert.matches("WebSocket input budget %(1000000 bytes%) is full", srv:log())
    -- the next ones are refused too, and the log says so once, not once per socket
    for _ = 1, 3 do
      local more = assert(testing.websocket(srv.port))
      more:send_frame(1, '{"type":"subscribe","id":"' .. ("x"):rep(PART), { fin = false })
      assert.equals(1013, more:read_close())
      more:close()
    end
    local _, lines = srv:log():gsub("WebSocket input budget", "")
    assert.equals(1, lines)
    for i = 1, 3 do finish_message(held[i], "s" .. i) end
    -- finished messages hold nothing: the room is there again
    local later = assert(testing.websocket(srv.port))
    assert.equals(10, assert(start_message(later, "late")).opcode)
    finish_message(later, "late")
    later:close()
    for i = 1, 3 do held[i]:close() end
  end)
end)

describe("WebSocket input budget counts bytes that arrived", function()
  -- room for three whole 1 MiB messages and a little more
  local srv
  setup(function() srv = testing.server(APP, { env = { MIZAN_WS_BUFFER = tostring(3 * 1048576 + 1000) } }) end)
  teardown(function() srv:stop() end)

  it("a frame header announcing 1 MiB costs its 14 bytes, not the megabyte it promises", function()
    local held = {}
    for i = 1, 3 do
      held[i] = assert(testing.websocket(srv.port))
      -- a text frame, fin, masked (zero mask), 64-bit length 1 MiB, and no payload ever
      held[i]:send_raw(string.char(0x81, 0x80 + 127, 0, 0, 0, 0, 0, 0x10, 0, 0) .. "\0\0\0\0")
    end
    require("mizan.testkit").sleep(0.3) -- the headers are in (had they cost 3 MiB, the next socket is refused)
    local legit = assert(testing.websocket(srv.port))
    local msg = subscribe_frame(("x"):rep(20000))
    legit:send_frame(1, msg:sub(1, 100), { fin = false })
    legit:send_frame(0, msg:sub(101), { fin = true })
    local r = assert(legit:read_json())
    assert.same({ "subscribed", ("x"):rep(20000) }, { r.type, r.id })
    legit:close()
    for i = 1, 3 do held[i]:close() end
  end)
end)

describe("WebSocket output budget", function()
  -- 1 MB for the unsent output of every socket of the worker together.
  -- Sleepers subscribe and never read; a reader reads everything. Once the
  -- kernel's buffers toward the sleepers are full, their output waits in the
  -- server; past the budget the sleepers must go (1008), long before each
  -- reaches its own 4 MiB limit, and the reader must not notice.
  local srv
  setup(function() srv = testing.server(APP, { env = { MIZAN_WS_BUFFER = "1000000" } }) end)
  teardown(function() srv:stop() end)

  local function gauge(name)
    local text = srv:request("GET", "/api/mizan/metrics").body
    return tonumber(text:match("\n" .. name .. " (%d+)"))
  end

  local function news_socket()
    local ws = assert(testing.websocket(srv.port))
    ws:send_json { type = "subscribe", id = 1, channel = "news" }
    assert.equals("subscribed", assert(ws:read_json()).type)
    return ws
  end

  it("drops the clients that stopped reading once the worker holds too much, never growing past it", function()
    local SLEEPERS, PIECE = 5, 100000
    local sleepers, reader = {}, news_socket()
    for i = 1, SLEEPERS do sleepers[i] = news_socket() end
    local headline = ("n"):rep(PIECE)
    local peak, sent = 0, 0
    local function dropped() return select(2, srv:log():gsub("it does not read %(1008%)", "")) end
    -- enough to fill the kernel's buffers many times over, unless the
    -- sleepers are gone first
    while dropped() < SLEEPERS and sent < 400 do
      assert.equals(200, srv:call("publish", { headline = headline }).status)
      sent = sent + 1
      local got = assert(reader:read_json(10), "the reader gets every message")
      assert.equals(PIECE, #got.data.headline)
      peak = math.max(peak, gauge("mizan_websocket_output_bytes"))
    end
    assert.equals(SLEEPERS, dropped(), ("after %d messages"):format(sent))
    -- one frame past the budget per socket at most, never a sleeper's 4 MiB
    assert.is_true(peak <= 1000000 + (SLEEPERS + 1) * (PIECE + 100), "peak " .. peak)
    assert.is_true(h.wait_until(function() return gauge("mizan_websocket_output_bytes") == 0 end))
    assert.equals(200, srv:call("publish", { headline = "after" }).status)
    assert.equals("after", assert(reader:read_json(10)).data.headline)
    reader:close()
    for _, ws in ipairs(sleepers) do ws:close() end
  end)
end)
