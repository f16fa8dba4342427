-- The jobs, timers and deferred work specs' app (spec/e2e/jobs_spec.lua,
-- spec/e2e/timers_spec.lua, spec/lua/jobs_spec.lua).
local mizan = require "mizan"
local core = require "mizan.core"
local T = mizan.types
local db = mizan.db
local client = mizan.client

local function record(ctx, note)
  assert(db.exec("INSERT INTO job_runs (job_id, job, attempt, pid, note) VALUES (?, ?, ?, ?, ?)",
    ctx.id, ctx.name, ctx.attempt, core.getpid(), note or ""))
end

mizan.job "count" { input = { n = T.integer { min = 0 } }, run = function(ctx, args) record(ctx, tostring(args.n)) end }

-- the first attempt hangs (a spec kills its worker); later ones finish
mizan.job "hang_once" { timeout = 4, run = function(ctx)
  record(ctx, "started")
  if ctx.attempt == 1 then mizan.sleep(60) end
end }

mizan.job "flaky" { retries = 5, backoff = 0, run = function(ctx)
  record(ctx)
  if ctx.attempt < 3 then error("flaky failure " .. ctx.attempt) end
end }

mizan.job "doomed" { retries = 2, backoff = 0.05, run = function(ctx)
  record(ctx)
  error("always fails")
end }

mizan.job "slow" { timeout = 0.2, retries = 0, run = function(ctx)
  record(ctx)
  mizan.sleep(2)
end }

if os.getenv("JOBS_SCHEDULE") then
  mizan.job "tick" { every = 1, retries = 0, run = function(ctx) record(ctx, tostring(ctx.slot)) end }
end

local function reg(name, opts, fn) mizan.register(client(opts, fn), name) end

reg("enqueue", { input = { job = T.string, args = T.optional(T.any), key = T.optional(T.string),
                           delay = T.optional(T.number), times = T.optional(T.integer) } }, function(req, a)
  local ids = {}
  for _ = 1, a.times or 1 do
    local id, err = mizan.jobs.enqueue(a.job, a.args or {}, { key = a.key, delay = a.delay })
    if not id then error(err) end
    ids[#ids + 1] = id
  end
  return { ids = ids }
end)

-- the enqueue and a note in one transaction that fails: neither stays
reg("enqueue_then_fail", { input = { n = T.integer } }, function(req, a)
  local ok = pcall(db.transaction, function()
    assert(db.exec("INSERT INTO notes (text) VALUES (?)", "with job " .. a.n))
    assert(mizan.jobs.enqueue("count", { n = a.n }))
    error("roll it back")
  end)
  return { rolled_back = not ok }
end)

reg("enqueue_in_tx", { input = { n = T.integer } }, function(req, a)
  local id = db.transaction(function()
    assert(db.exec("INSERT INTO notes (text) VALUES (?)", "with job " .. a.n))
    return assert(mizan.jobs.enqueue("count", { n = a.n }))
  end)
  return { id = id }
end)

reg("job", { input = { id = T.integer } }, function(req, a)
  local j = mizan.jobs.get(a.id)
  if not j then mizan.error("not_found", "no such job") end
  return { state = j.state, attempts = j.attempts, last_error = j.last_error or mizan.null }
end)

reg("states", {}, function()
  local out = {}
  for _, r in ipairs(assert(db.query("SELECT state, COUNT(*) AS n FROM mizan_jobs GROUP BY state"))) do
    out[r.state] = tonumber(r.n)
  end
  return mizan.object(out)
end)

reg("runs", { input = { job = T.optional(T.string) } }, function(req, a)
  local sql = "SELECT job_id, attempt, pid, note FROM job_runs"
  local rows = assert(a.job and db.query(sql .. " WHERE job = ? ORDER BY job_id, attempt", a.job)
    or db.query(sql .. " ORDER BY job_id, attempt"))
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { job_id = tonumber(r.job_id), attempt = tonumber(r.attempt), pid = tonumber(r.pid), note = r.note }
  end
  return { runs = mizan.array(out) }
end)

reg("notes", {}, function()
  return { n = tonumber(assert(db.row("SELECT COUNT(*) AS n FROM notes")).n) }
end)

---------------------------------------------------------------- timers and defer

local gen = require "generation" -- a reload spec rewrites it
local fired = { after = 0, every = 0, failing = 0, cancelled = 0 }
local log_path = os.getenv("TIMERS_LOG")
local function log(what)
  if not log_path then return end
  local f = assert(io.open(log_path, "a"))
  f:write(gen, " ", what, "\n")
  f:close()
end

mizan.after(0.05, function() fired.after = fired.after + 1; log("after") end)
mizan.every(0.05, function()
  mizan.sleep(0.01) -- a timer's run may yield
  fired.every = fired.every + 1
  log("every")
end)
mizan.every(0.05, function()
  fired.failing = fired.failing + 1
  error("a timer that always fails")
end)
local doomed = mizan.every(0.05, function() fired.cancelled = fired.cancelled + 1 end)
doomed:cancel()

reg("fired", {}, function() return fired end)

local later -- a timer made by a request, cancelled by the next one
reg("arm", { input = { seconds = T.optional(T.number) } }, function(req, a)
  later = mizan.after(a.seconds or 0.3, function() fired.armed = (fired.armed or 0) + 1 end)
  return { ok = true }
end)
reg("disarm", {}, function()
  later:cancel()
  return { active = later:active() }
end)

local deferred = { state = "none" }
local released = false
reg("defer_wait", {}, function(req)
  deferred.state = "waiting"
  req:defer(function()
    while not released do mizan.sleep(0.01) end
    deferred.state = "done"
  end)
  return { answered = true }
end)
reg("release", {}, function() released = true; return { ok = true } end)
reg("defer_fail", {}, function(req)
  req:defer(function(r, status) deferred.failed_status = status end)
  req:defer(function() error("a deferred function that fails") end)
  req:defer(function() deferred.after_failure = true end)
  mizan.error("bad_request", "this call fails, and its deferred work still runs")
end)
reg("deferred", {}, function() return deferred end)
-- deferred work that keeps this state busy (open) for a while: a reload
-- must still stop its timers at once, not when it closes
reg("hold", { input = { seconds = T.number } }, function(req, a)
  req:defer(function() mizan.sleep(a.seconds) end)
  return { ok = true }
end)
