-- mizan serve: a master and its workers, respawn, graceful stop under load,
-- rolling reload on SIGHUP, and the refusal to start without a secret.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local h = require "helpers"

local function children(pid)
  local f = io.open(("/proc/%d/task/%d/children"):format(pid, pid))
  if not f then return {} end
  local out = {}
  for p in f:read("*a"):gmatch("%d+") do out[#out + 1] = tonumber(p) end
  f:close()
  return out
end

-- A copy of the reload fixture, so a spec can rewrite its code.
local function app_copy(version)
  local src = h.read("spec/apps/reload/app.lua")
  return h.app_dir((src:gsub('VERSION = "v1"', ('VERSION = "%s"'):format(version or "v1"))))
end

local function set_version(dir, version)
  local src = h.read(dir .. "/app.lua")
  h.write(dir .. "/app.lua", (src:gsub('VERSION = "v%w+"', ('VERSION = "%s"'):format(version))))
end

describe("mizan serve", function()
  it("refuses to start without MIZAN_SECRET, saying how to set it", function()
    local ok, err = pcall(testing.server, "spec/apps/reload", { command = "serve", env = { MIZAN_SECRET = false } })
    assert.is_false(ok)
    assert.matches("serve needs MIZAN_SECRET", tostring(err), 1, true)
    assert.matches("openssl rand %-hex 32", tostring(err))
  end)

  it("refuses to start, without crashing, when the storage check raises a non-string error", function()
    -- the check reaches the database through mizan.db: an app may have replaced it
    local dir = h.app_dir(h.read("spec/apps/reload/app.lua")
      .. '\nrequire("mizan.db").probe = function() error(setmetatable({}, {})) end\n')
    local ok, err = pcall(testing.server, dir, { command = "serve" })
    assert.is_false(ok)
    assert.matches("refusing to start: %(error object is not a string%)", tostring(err))
  end)

  it("runs MIZAN_WORKERS workers and respawns one that is killed", function()
    local srv = testing.server(app_copy(), { command = "serve", env = { MIZAN_WORKERS = "2" } })
    assert.is_true(h.wait_until(function() return #children(srv.pid) == 2 end))
    local victims = children(srv.pid)
    kit.kill(victims[1], "KILL")
    -- the other worker keeps serving meanwhile
    for _ = 1, 20 do assert.equals("v1", srv:call("version", {}, { method = "GET" }).json.result) end
    assert.is_true(h.wait_until(function()
      local now = children(srv.pid)
      return #now == 2 and now[1] ~= victims[1] and now[2] ~= victims[1]
    end), "a new worker took its place")
    assert.matches("respawning", srv:log())
    local code = srv:stop()
    assert.equals(0, code)
  end)

  it("drains on SIGTERM: requests already accepted complete, and it exits 0", function()
    local srv = testing.server(app_copy(), { command = "serve", env = { MIZAN_WORKERS = "2" } })
    local conns = {}
    for i = 1, 8 do
      conns[i] = srv:connect()
      conns[i]:send(testing.request_bytes("GET", "/api/mizan/call/slow/?seconds=0.5"))
    end
    -- they are accepted once a worker answers anything after them
    for _ = 1, 4 do assert.equals(200, srv:call("version", {}, { method = "GET" }).status) end
    kit.kill(srv.pid, "TERM")
    for i = 1, 8 do
      local res = assert(conns[i]:read_response { timeout = 15 })
      assert.equals(200, res.status)
      assert.equals("v1", res.json.result.version)
      conns[i]:close()
    end
    local code, how = srv:wait(20)
    assert.equals("exit", how)
    assert.equals(0, code)
  end)

  it("reloads on SIGHUP one worker at a time, dropping nothing", function()
    local dir = app_copy()
    local srv = testing.server(dir, { command = "serve", env = { MIZAN_WORKERS = "2" } })
    assert.equals("v1", srv:call("version", {}, { method = "GET" }).json.result)
    set_version(dir, "v2")
    kit.kill(srv.pid, "HUP")
    local failures = 0
    assert.is_true(h.wait_until(function()
      local c = srv:connect()
      c:send(testing.request_bytes("GET", "/api/mizan/call/version/"))
      local res = c:read_response()
      c:close()
      if not res or res.status ~= 200 then failures = failures + 1 end
      return res and res.json and res.json.result == "v2"
    end), "the new code serves")
    assert.equals(0, failures)
    assert.is_true(h.wait_until(function() return srv:log():find("reload done", 1, true) ~= nil end))
    for _ = 1, 10 do assert.equals("v2", srv:call("version", {}, { method = "GET" }).json.result) end
    srv:stop()
  end)

  it("answers every connection made before a reload, whose request comes after the old worker retired", function()
    local dir = app_copy()
    local srv = testing.server(dir, { command = "serve", env = { MIZAN_WORKERS = "1" } })
    local old = children(srv.pid)[1]
    -- connected, not a word said yet: taken by the old worker
    local conns = {}
    for i = 1, 4 do conns[i] = srv:connect() end
    assert.equals(200, srv:call("version", {}, { method = "GET" }).status) -- it accepted the ones before
    kit.kill(old, "STOP")
    set_version(dir, "v2")
    kit.kill(srv.pid, "HUP")
    assert.is_true(h.wait_until(function() return srv:log():find("reload done", 1, true) ~= nil end))
    local fresh
    for _, pid in ipairs(children(srv.pid)) do if pid ~= old then fresh = pid end end
    assert.is_truthy(fresh)
    -- both workers stopped: these wait in the queue of the shared socket
    kit.kill(fresh, "STOP")
    for i = 5, 8 do conns[i] = srv:connect() end
    local function retirements() return select(2, srv:log():gsub("retired by a reload", "")) end
    local retired_before = retirements()
    kit.kill(old, "CONT") -- it retires now, with connections of its own and the queue before it
    assert.is_true(h.wait_until(function() return retirements() > retired_before end), "the old worker is retiring")
    kit.kill(fresh, "CONT")
    for i = 1, 8 do
      conns[i]:send(testing.request_bytes("GET", "/api/mizan/call/version/"))
      local res = conns[i]:read_response { timeout = 10 }
      assert.is_truthy(res, "connection " .. i .. " was answered")
      assert.equals(200, res.status)
      conns[i]:close()
    end
    assert.equals("v2", srv:call("version", {}, { method = "GET" }).json.result)
    assert.is_true(h.wait_until(function() return #children(srv.pid) == 1 end), "the old worker finished")
    assert.equals(0, (srv:stop()))
  end)

  it("keeps the old workers when the new code does not load", function()
    local dir = app_copy()
    local srv = testing.server(dir, { command = "serve", env = { MIZAN_WORKERS = "2" } })
    h.write(dir .. "/app.lua", "this is not lua")
    kit.kill(srv.pid, "HUP")
    assert.is_true(h.wait_until(function() return srv:log():find("the new code does not load", 1, true) ~= nil end))
    for _ = 1, 10 do assert.equals("v1", srv:call("version", {}, { method = "GET" }).json.result) end
    assert.equals(0, (srv:stop()))
  end)

  it("pushes a mutation's invalidation to the user's sockets on every worker", function()
    local srv = testing.server("examples/todo", { command = "serve", env = { MIZAN_WORKERS = "2" } })
    local agent = srv:agent()
    assert.equals(200, agent:call("auth.signup", { username = "tabs", password = "many tabs open" }).status)
    -- several sockets, so that the two workers each hold some of them
    local socks = {}
    for i = 1, 8 do
      socks[i] = assert(testing.websocket(srv.port, { headers = { "Cookie: mizan_session=" .. agent.cookie } }))
      socks[i]:send_json { type = "subscribe_invalidations" }
      assert.equals("subscribed", socks[i]:read_json().type)
    end
    assert.equals(200, agent:call("create_list", { name = "shared" }).status)
    for _, ws in ipairs(socks) do
      local m = ws:read_json()
      assert.equals("invalidate", m.type)
      assert.same({ "lists" }, m.invalidate)
      ws:close()
    end
    srv:stop()
  end)
end)
