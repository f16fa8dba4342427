-- mizan.after / mizan.every, req:defer and the job metrics in a real
-- `mizan dev` (run under ASan by scripts/test: a timer that reached a
-- retired state would show there). Counts and orderings only, bounded waits.
local testing = require "mizan.testing"
local h = require "helpers"

local function result(res)
  assert.equals(200, res.status, res.body)
  return res.json.result
end

-- a copy of the spec app: the reload spec rewrites its generation.lua
local function app_copy()
  local src = "spec/apps/jobs"
  local dir = h.app_dir(h.read(src .. "/app.lua"))
  require("lfs").mkdir(dir .. "/migrations")
  for _, name in ipairs { "generation.lua", "migrations/0001_runs.sql" } do
    h.write(dir .. "/" .. name, h.read(src .. "/" .. name))
  end
  return dir
end

local function count(text, pattern)
  local n = 0
  for _ in text:gmatch(pattern) do n = n + 1 end
  return n
end

describe("timers and deferred work under mizan dev:", function()
  local srv, dir, log_path
  setup(function()
    dir = app_copy()
    log_path = dir .. "/timers.log"
    srv = testing.server(dir, { command = "dev", env = { TIMERS_LOG = log_path } })
  end)
  teardown(function() srv:stop() end)

  local function fired() return result(srv:call("fired")) end
  local function timer_log()
    local f = io.open(log_path, "r")
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
  end

  it("after fires once, every goes on (yielding), a failing every goes on and is logged, a cancelled one never fires", function()
    assert.is_true(h.wait_until(function() local f = fired() return f.every >= 5 and f.failing >= 5 end, 20))
    local f = fired()
    assert.equals(1, f.after)
    assert.equals(0, f.cancelled)
    assert.matches("a timer that always fails", srv:log(), 1, true)
    assert.matches("stack traceback", srv:log(), 1, true)
    assert.equals(200, srv:call("fired").status, "the worker still answers")
  end)

  it("a timer a request made fires; one cancelled before its time never does", function()
    result(srv:call("arm", { seconds = 0.05 }))
    assert.is_true(h.wait_until(function() return fired().armed == 1 end, 10))
    result(srv:call("arm", { seconds = 1 }))
    assert.is_false(result(srv:call("disarm")).active)
    -- an every of 0.05 s firing 60 more times means more than 1 s of this loop passed
    local start = fired().every
    assert.is_true(h.wait_until(function() return fired().every >= start + 60 end, 30))
    assert.equals(1, fired().armed, "the cancelled timer never fired")
  end)

  it("req:defer runs after the answer: the client has it while the deferred work still waits", function()
    local res = srv:call("defer_wait")
    assert.is_true(result(res).answered)
    -- the deferred function is blocked until `release`: the answer cannot have waited for it
    assert.equals("waiting", result(srv:call("deferred")).state)
    result(srv:call("release"))
    assert.is_true(h.wait_until(function() return result(srv:call("deferred")).state == "done" end, 10))
  end)

  it("req:defer runs after an error answer too; a failing deferred function stops none after it", function()
    local res = srv:call("defer_fail")
    assert.equals(400, res.status)
    assert.is_true(h.wait_until(function() return result(srv:call("deferred")).after_failure == true end, 10))
    assert.equals(400, result(srv:call("deferred")).failed_status)
    assert.matches("a deferred function that fails", srv:log(), 1, true)
  end)

  it("job counts and durations are in GET metrics, by job and outcome", function()
    local id = result(srv:call("enqueue", { job = "count", args = { n = 1 } })).ids[1]
    assert.is_true(h.wait_until(function() return result(srv:call("job", { id = id })).state == "done" end, 20))
    local flaky = result(srv:call("enqueue", { job = "flaky" })).ids[1]
    assert.is_true(h.wait_until(function() return result(srv:call("job", { id = flaky })).state == "done" end, 20))
    local m = srv:request("GET", srv.base_path .. "metrics").body
    assert.matches('mizan_jobs_total{job="count",outcome="done"} 1\n', m, 1, true)
    assert.matches('mizan_jobs_total{job="flaky",outcome="failed"} 2\n', m, 1, true)
    assert.matches('mizan_jobs_total{job="flaky",outcome="done"} 1\n', m, 1, true)
    assert.matches("mizan_job_duration_seconds_count 4\n", m, 1, true)
  end)

  it("a reload stops the old code's timers at once, while the old state still finishes its work; the new code's run", function()
    assert.is_true(h.wait_until(function() return count(timer_log(), "1 every\n") >= 3 end, 20))
    result(srv:call("hold", { seconds = 6 })) -- the old state stays open (a task) through what follows
    h.write(dir .. "/generation.lua", "return 2\n")
    assert.is_true(h.wait_until(function() return count(timer_log(), "2 every\n") >= 3 end, 30), "the new code's timers run")
    local old = count(timer_log(), "1 every\n")
    assert.is_true(h.wait_until(function() return count(timer_log(), "2 every\n") >= 40 end, 30))
    assert.equals(old, count(timer_log(), "1 every\n"), "no old timer fired after the reload")
    assert.equals(1, count(timer_log(), "2 after\n"), "the new code's after fired once")
  end)
end)
