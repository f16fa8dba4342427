-- Idle keep-alive connections cost about what nginx's do: each one that has
-- answered its request and waits for the next gives its request pool and
-- buffers back, keeping only its record (core/http.c, sweep_idle; records
-- come from slabs of their own, so the freed pages go back). 10 000
-- of them may grow a worker by 12 MB at most. Memory, not time: RSS read
-- from /proc, with a bounded wait for the sweep.
local testing = require "mizan.testing"
local core = require "mizan.core"
local h = require "helpers"

local WANT = 10000
local BUDGET = 12 * 1024 * 1024 / WANT -- bytes per idle connection

local function rss(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmRSS:%s+(%d+) kB")) * 1024
end

-- Descriptors this process may open (mizan test raises its soft limit to
-- the hard one, as the server does).
local function nofile()
  local f = assert(io.open("/proc/self/limits"))
  local text = f:read("*a")
  f:close()
  local soft = text:match("Max open files%s+(%S+)")
  return soft == "unlimited" and math.huge or tonumber(soft)
end

local REQUEST = testing.request_bytes("POST", "/api/mizan/call/echo/", { "Content-Type: application/json" },
                                      '{"text":"hello world"}')

describe("idle keep-alive connections", function()
  local srv
  local worker
  setup(function()
    srv = testing.server("spec/bench/app", { command = "serve", env = { MIZAN_ACCESS_LOG = "off", MIZAN_WORKERS = "1" } })
    local f = assert(io.open(("/proc/%d/task/%d/children"):format(srv.pid, srv.pid)))
    worker = assert(tonumber(f:read("*a"):match("%d+")), "the worker's pid")
    f:close()
  end)
  teardown(function() srv:stop() end)

  -- one request and its answer on a fresh connection, kept open
  local function open_one()
    local c = srv:connect()
    c:send(REQUEST)
    local res = assert(c:read_response())
    assert.equals(200, res.status)
    return c
  end

  it("cost at most 1.2 KB each once idle: 10 000 grow the worker by at most 12 MB", function()
    if core.sanitized then
      -- AddressSanitizer pads and quarantines every allocation, and the
      -- records are single allocations there so it sees their lifetimes
      return pending("memory is counted in the release build (this one has AddressSanitizer)")
    end
    local n = math.min(WANT, nofile() - 500)
    assert.is_true(n >= 2000, "too few descriptors for this spec: raise the hard limit (ulimit -Hn)")
    -- warm up: the requests' own memory (Lua's heap, the coroutines) reaches
    -- its steady size on one connection first, so what grows after is the
    -- connections'
    local warm = open_one()
    for _ = 1, n do
      warm:send(REQUEST)
      assert.equals(200, assert(warm:read_response()).status)
    end
    warm:close()
    local before = rss(worker)
    local conns = {}
    for i = 1, n do conns[i] = open_one() end
    local grown
    -- the sweep runs every second; a connection idle through two of them gives its buffers back
    local ok = h.wait_until(function()
      grown = rss(worker) - before
      return grown <= BUDGET * n
    end, 15)
    assert.is_true(ok, ("%d idle connections grew the worker by %d bytes, %.0f each (budget %.0f)")
      :format(n, grown, grown / n, BUDGET))
    -- having given their memory back, they still serve their next request
    for i = 1, n, 97 do
      local c = conns[i]
      c:send(REQUEST)
      local res = assert(c:read_response())
      assert.equals(200, res.status)
      assert.equals("hello world", res.json.result.message)
    end
    for _, c in ipairs(conns) do c:close() end
  end)
end)
