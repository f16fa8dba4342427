-- mizan.jobs, mizan.after/every and req:defer in-process (mizan.testing's
-- app, on the test's clock), against a real SQLite database: what runs,
-- how often, in which state it ends; and every misuse named at load or at
-- enqueue.
local testing = require "mizan.testing"
local h = require "helpers"
local mizan = require "mizan"

local SOURCE = "spec/apps/jobs"

-- a fresh copy of the spec app (its own database in its own .mizan/)
local function fresh_app(extra)
  local dir = h.app_dir(h.read(SOURCE .. "/app.lua") .. (extra or ""))
  require("lfs").mkdir(dir .. "/migrations")
  for _, name in ipairs { "generation.lua", "migrations/0001_runs.sql" } do
    h.write(dir .. "/" .. name, h.read(SOURCE .. "/" .. name))
  end
  return testing.app(dir), dir
end

local function runs(app, job) return app:call("runs", { job = job }).body.result.runs end
local function job(app, id) return app:run(mizan.jobs.get, id) end

describe("jobs in process", function()
  it("fail twice, then succeed: done with 3 attempts and one run each", function()
    local app = fresh_app()
    local id = app:call("enqueue", { job = "flaky" }).body.result.ids[1]
    assert.equals("pending", job(app, id).state)
    assert.equals(3, app:run_jobs()) -- backoff 0: each retry is due at once
    local j = job(app, id)
    assert.equals("done", j.state)
    assert.equals(3, j.attempts)
    assert.matches("flaky failure 2", j.last_error, 1, true)
    assert.same({ 1, 2, 3 }, (function() local t = {} for i, r in ipairs(runs(app, "flaky")) do t[i] = r.attempt end return t end)())
    assert.equals(0, app:run_jobs(), "nothing is left to run")
  end)

  it("are dead with their last error once the retries ran out, and retry gives them a new round", function()
    local app = fresh_app()
    local id = app:call("enqueue", { job = "doomed" }).body.result.ids[1]
    app:run_jobs() -- attempt 1 fails; the retry waits 0.05 s of the test's clock
    app:advance(1)
    app:run_jobs()
    app:advance(1)
    app:run_jobs()
    local j = job(app, id)
    assert.equals("dead", j.state)
    assert.equals(3, j.attempts) -- retries = 2
    assert.matches("always fails", j.last_error, 1, true)
    app:advance(10)
    assert.equals(0, app:run_jobs(), "a dead job stays dead")
    assert.is_true(app:run(mizan.jobs.retry, id))
    assert.equals("pending", job(app, id).state)
    assert.equals(1, app:run_jobs())
    assert.equals(4, job(app, id).attempts)
  end)

  it("wait for their backoff on the test's clock (base doubling, or a function)", function()
    local app = fresh_app([[
mizan.job "backs_off" { backoff = 10, retries = 2, run = function(ctx) error("no " .. ctx.attempt) end }
mizan.job "custom" { backoff = function(attempt) return attempt * 100 end, retries = 1,
  run = function(ctx) error("no") end }
]])
    local a = app:run(mizan.jobs.enqueue, "backs_off", {})
    assert.equals(1, app:run_jobs())
    app:advance(9)
    assert.equals(0, app:run_jobs(), "10 s have not passed")
    app:advance(1.5)
    assert.equals(1, app:run_jobs(), "the first retry after 10 s")
    app:advance(19)
    assert.equals(0, app:run_jobs(), "the second waits 20 s")
    app:advance(1.5)
    assert.equals(1, app:run_jobs())
    assert.equals(3, job(app, a).attempts)
    assert.equals("dead", job(app, a).state)
    local c = app:run(mizan.jobs.enqueue, "custom", {})
    app:run_jobs()
    app:advance(99)
    assert.equals(0, app:run_jobs())
    app:advance(2)
    assert.equals(1, app:run_jobs())
    assert.equals("dead", job(app, c).state)
  end)

  it("run after their delay, not before", function()
    local app = fresh_app()
    local id = app:call("enqueue", { job = "count", args = { n = 1 }, delay = 30 }).body.result.ids[1]
    assert.equals(0, app:run_jobs())
    app:advance(31)
    assert.equals(1, app:run_jobs())
    assert.equals("done", job(app, id).state)
  end)

  it("with a key: one pending job per key; a finished one frees the key", function()
    local app = fresh_app()
    local function enq() return app:call("enqueue", { job = "count", args = { n = 2 }, key = "k1" }).body.result.ids[1] end
    local a, b = enq(), enq()
    assert.equals(a, b)
    local other = app:call("enqueue", { job = "count", args = { n = 2 }, key = "k2" }).body.result.ids[1]
    assert.are_not.equal(a, other)
    assert.equals(2, app:run_jobs())
    local c = enq()
    assert.are_not.equal(a, c)
    assert.equals(1, app:run_jobs())
    assert.equals(3, #runs(app, "count"))
  end)

  it("enqueued in a transaction roll back with it, and commit with it", function()
    local app = fresh_app()
    assert.is_true(app:call("enqueue_then_fail", { n = 5 }).body.result.rolled_back)
    assert.equals(0, app:call("notes").body.result.n)
    assert.equals(0, app:run_jobs(), "the job went with the rollback")
    local id = app:call("enqueue_in_tx", { n = 6 }).body.result.id
    assert.equals(1, app:call("notes").body.result.n)
    assert.equals(1, app:run_jobs())
    assert.equals("done", job(app, id).state)
  end)

  it("cancel: a cancelled job never runs", function()
    local app = fresh_app()
    local id = app:call("enqueue", { job = "count", args = { n = 3 } }).body.result.ids[1]
    assert.is_true(app:run(mizan.jobs.cancel, id))
    assert.equals(0, app:run_jobs())
    assert.equals("cancelled", job(app, id).state)
    local ok, err = app:run(mizan.jobs.cancel, id)
    assert.is_nil(ok)
    assert.matches("is cancelled already", err, 1, true)
  end)

  it("a schedule runs once per period, however often the poll comes", function()
    local app = fresh_app([[
mizan.job "every_minute" { every = 60, run = function(ctx) assert(mizan.db.exec(
  "INSERT INTO job_runs (job_id, job, attempt, pid) VALUES (?, 'every_minute', ?, 0)", ctx.id, ctx.attempt)) end }
]])
    app:run_jobs()
    app:run_jobs()
    assert.equals(1, #runs(app, "every_minute"))
    app:advance(60)
    app:run_jobs()
    app:run_jobs()
    assert.equals(2, #runs(app, "every_minute"))
  end)

  it("refuse arguments their input refuses, naming the job and the field", function()
    local app = fresh_app()
    local ok, err = pcall(app.run, app, mizan.jobs.enqueue, "count", { n = -1 })
    assert.is_false(ok)
    assert.matches("job 'count': invalid arguments: field 'n'", err, 1, true)
    ok, err = pcall(app.run, app, mizan.jobs.enqueue, "nope", {})
    assert.is_false(ok)
    assert.matches("no job named 'nope'", err, 1, true)
    ok, err = pcall(app.run, app, mizan.jobs.enqueue, "count", { n = 1 }, { dealy = 3 })
    assert.is_false(ok)
    assert.matches("unknown option 'dealy'", err, 1, true)
    -- (last: loading another app replaces this one's jobs)
    ok, err = h.try_load('local mizan = require "mizan"\nmizan.job "j" { run = function() end }\nmizan.jobs.enqueue("j", {})')
    assert.is_false(ok)
    assert.matches("app.lua:3: mizan.jobs.enqueue writes to the database: call it from a request", err, 1, true)
  end)
end)

describe("job declarations", function()
  local cases = {
    { 'mizan.job "j" { run = 1 }', "job 'j', option 'run': must be function(ctx, args)" },
    { 'mizan.job "j" { retries = -1, run = function() end }', "job 'j', option 'retries'" },
    { 'mizan.job "j" { backoff = "x", run = function() end }', "job 'j', option 'backoff'" },
    { 'mizan.job "j" { timeout = 0, run = function() end }', "job 'j', option 'timeout'" },
    { 'mizan.job "j" { every = 0.5, run = function() end }', "job 'j', option 'every'" },
    { 'mizan.job "j" { cron = "* * *", run = function() end }', "job 'j', option 'cron': needs 5 fields" },
    { 'mizan.job "j" { cron = "61 * * * *", run = function() end }', "job 'j', option 'cron': minute" },
    { 'mizan.job "j" { retry = 3, run = function() end }', "job 'j', option 'retry': unknown option" },
    { 'mizan.job "j" { input = { n = mizan.types.integer }, every = 5, run = function() end }',
      "job 'j', option 'input': a schedule runs with no arguments" },
    { 'mizan.job "j" { run = function() end }\nmizan.job "j" { run = function() end }', "job 'j' is already declared" },
    { 'mizan.job "2j" { run = function() end }', "invalid job name '2j'" },
  }
  for _, c in ipairs(cases) do
    it("refuse at load: " .. c[2], function()
      local ok, err = h.try_load('local mizan = require "mizan"\n' .. c[1])
      assert.is_false(ok)
      assert.matches(c[2], err, 1, true)
      assert.matches("app.lua:%d", err)
    end)
  end
end)

describe("timers in process", function()
  it("fire on the test's clock: after once, every each period, a failing one goes on, a cancelled one never", function()
    local app = fresh_app()
    local f = app:call("fired").body.result
    assert.same({ after = 0, every = 0, failing = 0, cancelled = 0 }, f)
    -- the test's clock also runs with real time: counts are lower bounds
    -- (a period that passed fired), never exact
    app:advance(0.05)
    f = app:call("fired").body.result
    assert.equals(1, f.after)
    assert.is_true(f.every >= 1)
    assert.is_true(f.failing >= 1)
    app:advance(0.5)
    f = app:call("fired").body.result
    assert.equals(1, f.after, "after fires once")
    assert.is_true(f.every >= 11, "every fired each period: " .. f.every)
    assert.is_true(f.failing >= 11, "an error does not stop an every: " .. f.failing)
    assert.equals(0, f.cancelled)
  end)

  it("made and cancelled by requests", function()
    local app = fresh_app()
    app:call("arm")
    app:advance(1)
    assert.equals(1, app:call("fired").body.result.armed)
    app:call("arm")
    assert.is_false(app:call("disarm").body.result.active)
    app:advance(1)
    assert.equals(1, app:call("fired").body.result.armed)
  end)

  it("refuse bad seconds and a missing function, naming the call", function()
    local ok, err = h.try_load('local mizan = require "mizan"\nmizan.every(0, function() end)')
    assert.is_false(ok)
    assert.matches("app.lua:2: mizan.every(seconds, fn): seconds must be a finite number > 0, got 0", err, 1, true)
    ok, err = h.try_load('local mizan = require "mizan"\nmizan.after(1, "x")')
    assert.is_false(ok)
    assert.matches("mizan.after(seconds, fn): fn must be a function, got string", err, 1, true)
    ok, err = h.try_load('local mizan = require "mizan"\nmizan.after(-1, print)')
    assert.matches("seconds must be a finite number >= 0", err, 1, true)
  end)
end)

describe("req:defer in process", function()
  it("runs after the answer, an error answer too, each function whatever the one before did", function()
    local app = fresh_app()
    local res = app:call("defer_fail")
    assert.equals(400, res.status)
    local d = app:call("deferred").body.result
    assert.equals(400, d.failed_status)
    assert.is_true(d.after_failure)
  end)
end)
