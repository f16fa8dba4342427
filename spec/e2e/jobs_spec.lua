-- Durable jobs in a real `mizan serve` (a master and 2 workers) on a real
-- database: SQLite here; spec/e2e/jobs_pg_spec.lua runs this file again on
-- a real Postgres (testing.new_database set). Counts and orderings only:
-- every wait is bounded (h.wait_until), no duration is asserted.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local h = require "helpers"

local APP = "spec/apps/jobs"

local function result(res)
  assert.equals(200, res.status, res.body)
  return res.json.result
end

describe("jobs under mizan serve with 2 workers:", function()
  local srv
  setup(function()
    srv = testing.server(APP, { command = "serve", env = { MIZAN_WORKERS = "2", MIZAN_JOBS_POLL = "0.2" } })
  end)
  teardown(function() srv:stop() end)

  local function states() return result(srv:call("states")) end
  local function runs(job) return result(srv:call("runs", { job = job })).runs end
  local function job(id) return result(srv:call("job", { id = id })) end
  local function enqueue(name, o)
    o = o or {}
    o.job = name
    return result(srv:call("enqueue", o)).ids
  end

  it("100 jobs run exactly once each", function()
    local ids = enqueue("count", { args = { n = 7 }, times = 100 })
    assert.equals(100, #ids)
    assert.is_true(h.wait_until(function() return #runs("count") >= 100 and (states().done or 0) >= 100 end, 60),
      "every job ran")
    local seen, n = {}, 0
    for _, r in ipairs(runs("count")) do
      assert.is_nil(seen[r.job_id], "job " .. r.job_id .. " ran twice")
      seen[r.job_id] = true
      n = n + 1
    end
    assert.equals(100, n)
    for _, id in ipairs(ids) do assert.is_true(seen[id], "job " .. id .. " ran") end
  end)

  it("a job whose worker is killed (SIGKILL) while it runs runs again after its lease, and completes", function()
    local id = enqueue("hang_once")[1]
    assert.is_true(h.wait_until(function() return #runs("hang_once") >= 1 end, 30), "the first attempt started")
    local victim = runs("hang_once")[1].pid
    assert.is_true(kit.kill(victim, "KILL"))
    assert.is_true(h.wait_until(function() return job(id).state == "done" end, 40), "it ran again and finished")
    local r = runs("hang_once")
    assert.equals(2, #r)
    assert.equals(1, r[1].attempt)
    assert.equals(victim, r[1].pid)
    assert.equals(2, r[2].attempt)
    assert.are_not.equal(victim, r[2].pid, "another worker ran it")
    assert.equals(2, job(id).attempts)
  end)

  it("a job failing twice then succeeding ends done with 3 attempts", function()
    local id = enqueue("flaky")[1]
    assert.is_true(h.wait_until(function() return job(id).state == "done" end, 30))
    local j = job(id)
    assert.equals(3, j.attempts)
    assert.matches("flaky failure 2", j.last_error, 1, true)
    assert.equals(3, #runs("flaky"))
  end)

  it("a job failing every time is dead after its retries, with its error; a slow one times out", function()
    local id = enqueue("doomed")[1]
    local slow = enqueue("slow")[1]
    assert.is_true(h.wait_until(function() return job(id).state == "dead" end, 30))
    local j = job(id)
    assert.equals(3, j.attempts)
    assert.matches("always fails", j.last_error, 1, true)
    assert.is_true(h.wait_until(function() return job(slow).state == "dead" end, 30))
    assert.matches("timed out after 0.2 s", job(slow).last_error, 1, true)
  end)

  it("a key de-duplicates pending jobs", function()
    local a = enqueue("count", { args = { n = 1 }, key = "once", delay = 3600 })[1]
    local b = enqueue("count", { args = { n = 1 }, key = "once", delay = 3600 })[1]
    assert.equals(a, b)
    assert.equals("pending", job(a).state)
  end)

  it("an enqueue rolled back with its transaction leaves no job; a committed one runs", function()
    local before = states()
    assert.is_true(result(srv:call("enqueue_then_fail", { n = 9 })).rolled_back)
    local id = result(srv:call("enqueue_in_tx", { n = 10 })).id
    assert.is_true(h.wait_until(function() return job(id).state == "done" end, 30))
    local after = states()
    local total = function(s) local n = 0 for _, v in pairs(s) do n = n + v end return n end
    assert.equals(total(before) + 1, total(after), "one job more: the committed one")
    assert.equals(1, result(srv:call("notes")).n)
  end)

  it("mizan jobs list, retry and cancel work on the app's database", function()
    local env = ("MIZAN_DATABASE=%q"):format(srv.env.MIZAN_DATABASE)
    local exe = srv.exe
    local dead = enqueue("doomed")[1]
    assert.is_true(h.wait_until(function() return job(dead).state == "dead" end, 30))
    local later = enqueue("count", { args = { n = 3 }, delay = 3600 })[1]

    local out, code = h.run(("%s %q jobs list %q"):format(env, exe, APP))
    assert.equals(0, code, out)
    assert.matches("ID%s+JOB%s+STATE%s+ATTEMPTS%s+NEXT RUN %(UTC%)%s+LAST ERROR", out)
    assert.matches(("\n%d%%s+doomed%%s+dead%%s+3/3%%s+%%-%%s+[^\n]*always fails"):format(dead), out)
    assert.matches(("\n%d%%s+count%%s+pending%%s+0/4%%s+%%d%%d%%d%%d%%-"):format(later), out)

    out, code = h.run(("%s %q jobs list %q --state dead"):format(env, exe, APP))
    assert.equals(0, code, out)
    assert.not_matches("pending", out)

    out, code = h.run(("%s %q jobs cancel %d %q"):format(env, exe, later, APP))
    assert.equals(0, code, out)
    assert.matches(("job %d: cancelled"):format(later), out, 1, true)
    assert.equals("cancelled", job(later).state)
    out, code = h.run(("%s %q jobs cancel %d %q"):format(env, exe, later, APP))
    assert.equals(1, code)
    assert.matches(("job %d is cancelled already"):format(later), out, 1, true)

    out, code = h.run(("%s %q jobs retry %d %q"):format(env, exe, dead, APP))
    assert.equals(0, code, out)
    assert.matches(("job %d: pending, runs again now"):format(dead), out, 1, true)
    assert.is_true(h.wait_until(function() local j = job(dead) return j.state == "dead" and j.attempts == 6 end, 30),
      "it ran its 3 new attempts")

    out, code = h.run(("%s %q jobs retry nope %q"):format(env, exe, APP))
    assert.equals(2, code)
    assert.matches("retry needs a job ID", out, 1, true)
    out, code = h.run(("%q jobs --help"):format(exe))
    assert.equals(0, code)
    assert.matches("mizan jobs list [APP]", out, 1, true)
  end)
end)
