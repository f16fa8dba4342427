-- mizan dev reloads with live resources (host.h, THE OWNERSHIP RULE): a
-- Redis cache, channels relayed through Redis, WebSockets open and calls in
-- flight. Each reload closes the old state's Redis clients (the count stays
-- flat), closes its sockets with 1012 so that they reconnect to the new code,
-- flushes the Redis cache, and lets its calls finish. Under the ASan build,
-- Server:stop fails the spec on any sanitizer report in the server's log.
local testing = require "mizan.testing"
local json = require "mizan.json"
local h = require "helpers"
local wait_until = require("helpers").wait_until

local function set_version(dir, version)
  local src = h.read(dir .. "/app.lua")
  h.write(dir .. "/app.lua", (src:gsub('VERSION = "[^"]*"', ('VERSION = "%s"'):format(version))))
end

local function get(srv, name)
  local res = srv:call(name, {}, { method = "GET" })
  assert.equals(200, res.status, res.body)
  return res.json.result
end

local function redis_cli(redis, ...)
  local cmd = ("redis-cli -p %d"):format(redis.port)
  for _, a in ipairs { ... } do cmd = cmd .. " " .. ("%q"):format(a) end
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

-- Connections to the redis-server, ours (redis-cli's) not counted.
local function clients(redis)
  local n = 0
  for line in redis_cli(redis, "CLIENT", "LIST"):gmatch("[^\n]+") do
    if line:find("^id=") and not line:find("cmd=client", 1, true) then n = n + 1 end
  end
  return n
end

-- A broadcast from another instance: it reaches this process through every
-- Redis subscriber it has (a subscriber left by an old state would run it).
local function foreign_broadcast(redis, headline)
  local frame = json.encode { g = "news", m = { headline = headline, version = "elsewhere" }, o = "another-instance" }
  return redis_cli(redis, "PUBLISH", "mizan:channels", frame)
end

local function subscribed(srv)
  local ws, res = testing.websocket(srv.port)
  assert(ws, res and res.body)
  ws:send_json { type = "subscribe", id = 1, channel = "news" }
  assert.same({ type = "subscribed", id = 1 }, ws:read_json(10))
  return ws
end

describe("mizan dev across reloads, with Redis and WebSockets", function()
  local redis, dir, srv, baseline
  setup(function()
    redis = testing.redis()
    dir = h.app_dir(h.read("spec/apps/reload_live/app.lua"))
    srv = testing.server(dir, { env = { MIZAN_CACHE = redis:url(0), MIZAN_CHANNELS = redis:url(1),
                                        MIZAN_SECRET = "spec-secret" } })
    assert.equals("v0", get(srv, "cached_version"))
    -- the cache's two clients and the channels' two (subscriber, publisher)
    assert.is_true(wait_until(function() return clients(redis) >= 4 end))
    baseline = clients(redis)
  end)
  teardown(function()
    srv:stop()
    redis:stop()
  end)

  local version = 0
  local function reload()
    version = version + 1
    local want = "v" .. version
    set_version(dir, want)
    assert.is_true(wait_until(function() return get(srv, "version") == want end, 30), "reloaded to " .. want)
    return want
  end

  it("flushes the Redis cache on reload, as it does the memory cache", function()
    assert.equals("v0", get(srv, "cached_version"))
    local want = reload()
    assert.equals(want, get(srv, "cached_version"))
  end)

  it("closes the old state's Redis clients: the count stays flat", function()
    reload()
    assert.is_true(wait_until(function() return clients(redis) == baseline end, 15),
                   ("%d redis clients, %d before the reloads"):format(clients(redis), baseline))
  end)

  it("closes sockets opened before a reload with 1012, and a reconnected one works on the new code", function()
    local old = subscribed(srv)
    local want = reload()
    assert.equals(1012, old:read_close(10))
    old:close()
    local ws = subscribed(srv)
    assert.equals(1, srv:call("publish", { headline = "after" }).json.result)
    assert.same({ type = "message", id = 1, data = { headline = "after", version = want } }, ws:read_json(10))
    -- a broadcast from another instance comes through the new state's subscriber, once
    foreign_broadcast(redis, "from elsewhere")
    assert.same({ type = "message", id = 1, data = { headline = "from elsewhere", version = "elsewhere" } },
                ws:read_json(10))
    local again, err = ws:read_json(0.3)
    assert.is_nil(again, "delivered once")
    assert.equals("timeout", err)
    ws:close()
  end)

  it("survives 50 reloads with sockets open and calls in flight", function()
    for _ = 1, 50 do
      local sockets = { subscribed(srv), subscribed(srv) }
      local before = get(srv, "version")
      local call = srv:connect()
      call:send(testing.request_bytes("GET", "/api/mizan/call/slow/?seconds=0.2"))
      -- broadcasts from elsewhere while the reload happens: they reach the old
      -- state's subscriber until it closes, never after
      foreign_broadcast(redis, "during")
      local want = reload()
      foreign_broadcast(redis, "after")
      -- the call in flight is answered, by the code it started on
      local res = assert(call:read_response { timeout = 30 })
      call:close()
      assert.equals(200, res.status, res.body)
      assert.equals(before, res.json.result.version)
      -- every socket is closed with 1012 (whatever it got before), and comes back
      for _, ws in ipairs(sockets) do
        assert.equals(1012, ws:read_close(10))
        ws:close()
      end
      local ws = subscribed(srv)
      srv:call("publish", { headline = want })
      local got = ws:read_json(10)
      assert.same({ type = "message", id = 1, data = { headline = want, version = want } }, got)
      ws:close()
      assert.equals(want, get(srv, "cached_version"))
      assert.is_true(wait_until(function() return clients(redis) == baseline end, 15),
                     ("after %s: %d redis clients, %d before the reloads"):format(want, clients(redis), baseline))
    end
    local code = srv:stop()
    assert.equals(0, code) -- and no sanitizer report: Server:stop checks the log
  end)
end)

describe("mizan dev across reloads, with the workers' bus", function()
  it("gives each state a bus socket of its own, and the old one goes with its state", function()
    local lfs = require "lfs"
    local bus = os.tmpname()
    os.remove(bus)
    assert(lfs.mkdir(bus))
    local dir = h.app_dir(h.read("spec/apps/reload_live/app.lua"))
    local srv = testing.server(dir, { env = { MIZAN_BUS_DIR = bus } })
    local function sockets()
      local n = 0
      for f in lfs.dir(bus) do if f:find("%.sock$") then n = n + 1 end end
      return n
    end
    assert.equals(1, sockets())
    for i = 1, 3 do
      set_version(dir, "bus" .. i)
      assert.is_true(wait_until(function() return get(srv, "version") == "bus" .. i end, 30))
      assert.is_true(wait_until(function() return sockets() == 1 end), sockets() .. " bus sockets")
    end
    -- a call in flight on a state that a reload retires still broadcasts
    -- without failing: the bus went with that state, the call goes on
    local gate = os.tmpname()
    os.remove(gate)
    local c = srv:connect()
    c:send(testing.request_bytes("POST", "/api/mizan/call/publish_at_gate/", { "Content-Type: application/json" },
                                 json.encode { gate = gate, headline = "late" }))
    set_version(dir, "bus-last")
    assert.is_true(wait_until(function() return get(srv, "version") == "bus-last" end, 30))
    h.write(gate, "")
    local res = assert(c:read_response())
    assert.equals(200, res.status, res.body)
    c:close()
    os.remove(gate)
    assert.equals(0, (srv:stop()))
    assert.equals(0, sockets())
    os.remove(bus)
  end)
end)
