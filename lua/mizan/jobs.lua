-- mizan.jobs: durable jobs, rows in the app's database (the built-in
-- migration mizan/0004_jobs).
--
--   mizan.job "send_welcome" {
--     input = { user_id = T.integer },
--     retries = 5,                 -- attempts after the first (default 3)
--     backoff = 2,                 -- seconds before retry n: 2, 4, 8, ... (or function(attempt) -> s)
--     timeout = 30,                -- seconds an attempt may run (default 60)
--     run = function(ctx, args) ... end,
--   }
--   mizan.job "digest" { every = 3600, run = ... }        -- or cron = "0 7 * * *" (UTC)
--   local id = mizan.jobs.enqueue("send_welcome", { user_id = 7 }, { delay = 10, key = "welcome:7" })
--   mizan.jobs.get(id) -> { state = "pending"|"running"|"done"|"dead"|"cancelled", attempts, last_error, ... }
--
-- Delivery is at least once: a worker claims a due job with a lease (its
-- timeout + GRACE seconds) in one statement (Postgres: FOR UPDATE SKIP
-- LOCKED; SQLite: the statement's write lock); a job whose worker died is
-- claimed again once the lease has expired. Every later write about an
-- attempt names it (id, attempt number, state running), so an attempt that
-- timed out or was taken over cannot overwrite the newer state.
--
-- Workers poll every POLL seconds (option jobs_poll, default 1; faster when
-- a schedule's period is shorter), and an enqueue in the same process
-- nudges its poller at once. A schedule makes one row per period slot,
-- unique on (name, slot) in the database, so all workers of all instances
-- together run it once per period.
local core = require "mizan.core"
local json = require "mizan.json"
local types = require "mizan.types"
local timers = require "mizan.timers"
local cron = require "mizan.cron"

local M = {}

M.POLL = 1          -- seconds between polls (config jobs_poll)
M.CONCURRENCY = 16  -- attempts one worker runs at a time
M.GRACE = 2         -- seconds a lease outlives the job's timeout
local DEFAULTS = { retries = 3, backoff = 1, timeout = 60 }
local MAX_BACKOFF = 3600
local STATES = { pending = true, running = true, done = true, dead = true, cancelled = true }
M.STATES = STATES

local defs, names = {}, {}        -- this load's jobs
local started, retired = false, false
local running, ticking = 0, false
local poll_handle, nudge_handle
local last_slot = {}              -- schedule name -> the last slot this worker inserted
local logged = {}                 -- poller errors already logged (once each)

local function db() return require "mizan.db" end

---------------------------------------------------------------- declarations

local KNOWN = { input = true, retries = true, backoff = true, timeout = true, every = true, cron = true,
                run = true, description = true }
local KNOWN_LIST = "backoff, cron, description, every, input, retries, run, timeout"

local function compile(name, opts)
  local problems = {}
  local function bad(option, msg) problems[#problems + 1] = ("job '%s', option '%s': %s"):format(name, option, msg) end
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not KNOWN[k] then bad(k, "unknown option (known: " .. KNOWN_LIST .. ")") end
  end
  local d = { name = name, description = opts.description }
  if type(opts.run) ~= "function" then bad("run", "must be function(ctx, args), got " .. type(opts.run)) end
  d.run = opts.run
  local r = opts.retries == nil and DEFAULTS.retries or opts.retries
  if type(r) ~= "number" or r < 0 or r ~= math.floor(r) or r > 1000 then
    bad("retries", "must be an integer from 0 to 1000")
  end
  d.retries = r
  local b = opts.backoff == nil and DEFAULTS.backoff or opts.backoff
  if type(b) ~= "function" and (type(b) ~= "number" or b < 0 or b ~= b or b == math.huge) then
    bad("backoff", "must be a base in seconds (>= 0; doubling) or function(attempt) -> seconds")
  end
  d.backoff = b
  local t = opts.timeout == nil and DEFAULTS.timeout or opts.timeout
  if type(t) ~= "number" or t <= 0 or t ~= t or t == math.huge then bad("timeout", "must be a number of seconds > 0") end
  d.timeout = t
  if opts.every ~= nil and opts.cron ~= nil then bad("every", "and cron cannot both be given") end
  if opts.every ~= nil then
    local e = opts.every
    if type(e) ~= "number" or e < 1 or e ~= math.floor(e) then bad("every", "must be a whole number of seconds >= 1")
    else d.every = e end
  end
  if opts.cron ~= nil then
    local c, err = cron.parse(opts.cron)
    if not c then bad("cron", err) else d.cron, d.cron_text = c, opts.cron end
  end
  d.input = types.object {}
  if opts.input ~= nil then
    if not types.is_type(opts.input) and type(opts.input) ~= "table" then
      bad("input", "must be a mizan.types schema or a table of fields, got " .. type(opts.input))
    else
      d.input = types.as_type(opts.input)
      for _, p in ipairs(types.problems(d.input)) do
        bad(p.path == "" and "input" or "input." .. p.path, p.message)
      end
      if d.input.kind ~= "object" then bad("input", "must be an object type: arguments are a table of fields") end
    end
  end
  if (d.every or d.cron) and #problems == 0 and not types.validate(d.input, {}) then
    bad("input", "a schedule runs with no arguments ({}), which this input refuses")
  end
  return d, problems
end

--- mizan.job "name" { options }: declare a job. Misuse fails here, naming
-- the job and the option.
function M.job(name)
  if type(name) ~= "string" or not name:find("^[%a_][%w_%.%-]*$") then
    error(("mizan.job: invalid job name %s (letters, digits, '_', '.', '-'; not starting with a digit)")
      :format(type(name) == "string" and ("'" .. name .. "'") or type(name)), 2)
  end
  return function(opts)
    if type(opts) ~= "table" then error(("mizan.job '%s': expects a table of options"):format(name), 2) end
    if defs[name] then error(("mizan.job: job '%s' is already declared"):format(name), 2) end
    local d, problems = compile(name, opts)
    if #problems > 0 then error(table.concat(problems, "\n"), 2) end
    defs[name] = d
    names[#names + 1] = name
    return d
  end
end

--- The declared jobs: { [name] = definition }, and their names in order.
function M.definitions() return defs, names end

---------------------------------------------------------------- rows

local COLUMNS = "id, name, args, state, attempts, max_attempts, run_at, lease_until, key, slot, "
  .. "last_error, created_at, updated_at, finished_at"

local function null_to_nil(v) if v == json.null then return nil end return v end

local function row_out(r)
  if not r then return nil end
  local out = {}
  for k, v in pairs(r) do out[k] = null_to_nil(v) end
  out.id = tonumber(out.id)
  out.args = out.args and json.decode(out.args) or nil
  return out
end

local function placeholders(n) return ("?, "):rep(n - 1) .. "?" end

local function describe_errors(errs)
  local paths = {}
  for p in pairs(errs) do paths[#paths + 1] = p end
  table.sort(paths)
  local parts = {}
  for _, p in ipairs(paths) do
    local msgs = errs[p]
    parts[#parts + 1] = ("field '%s': %s"):format(p == "" and "(arguments)" or p,
      type(msgs) == "table" and table.concat(msgs, "; ") or tostring(msgs))
  end
  return table.concat(parts, ", ")
end

local nudge

--- enqueue(name, args, { delay = s, at = epoch_s, key = "..." }) -> id.
-- Misuse (unknown job, arguments its input refuses, bad options) raises;
-- a database failure returns nil, err. Inside db.transaction it is one of
-- the transaction's writes (the same connection): it commits or rolls back
-- with them. With `key`, while a job of that name and key is pending or
-- running, enqueue returns that job's id and adds nothing.
function M.enqueue(name, args, opts)
  if not pcall(core.current_task) then
    error("mizan.jobs.enqueue writes to the database: call it from a request, a timer, a job, "
      .. "req:defer or the test client's app:run, not while app.lua loads", 2)
  end
  local d = defs[name]
  if not d then
    error(("mizan.jobs.enqueue: no job named '%s' (declared: %s)"):format(tostring(name),
      #names > 0 and table.concat(names, ", ") or "none"), 2)
  end
  if args ~= nil and type(args) ~= "table" then
    error(("mizan.jobs.enqueue: job '%s': arguments must be a table, got %s"):format(name, type(args)), 2)
  end
  local clean, errs = types.validate(d.input, args or {})
  if not clean then
    error(("mizan.jobs.enqueue: job '%s': invalid arguments: %s"):format(name, describe_errors(errs)), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("mizan.jobs.enqueue: options must be a table { delay, at, key }", 2) end
  for k in pairs(opts) do
    if k ~= "delay" and k ~= "at" and k ~= "key" then
      error(("mizan.jobs.enqueue: unknown option '%s' (known: at, delay, key)"):format(tostring(k)), 2)
    end
  end
  if opts.delay ~= nil and (type(opts.delay) ~= "number" or opts.delay < 0 or opts.delay ~= opts.delay) then
    error("mizan.jobs.enqueue: delay must be a number of seconds >= 0", 2)
  end
  if opts.at ~= nil and (type(opts.at) ~= "number" or opts.at ~= opts.at) then
    error("mizan.jobs.enqueue: at must be a time in seconds since the epoch (mizan.now())", 2)
  end
  if opts.delay and opts.at then error("mizan.jobs.enqueue: give delay or at, not both", 2) end
  if opts.key ~= nil and (type(opts.key) ~= "string" or opts.key == "") then
    error("mizan.jobs.enqueue: key must be a non-empty string", 2)
  end
  local now = timers.now()
  local run_at = opts.at or now + (opts.delay or 0)
  local encoded = assert(json.encode(next(clean) == nil and json.object {} or clean))
  local row, err, kind = db().row("INSERT INTO mizan_jobs (name, args, state, attempts, max_attempts, run_at, "
    .. "timeout, key, created_at, updated_at) VALUES (?, ?, 'pending', 0, ?, ?, ?, ?, ?, ?) "
    .. "ON CONFLICT DO NOTHING RETURNING id", name, encoded, d.retries + 1, run_at, d.timeout,
    opts.key or json.null, now, now)
  if err then return nil, err, kind end
  if not row then -- the key is taken by a job not finished yet
    if not opts.key then return nil, "the job could not be stored (a conflict on no key)" end
    row, err, kind = db().row("SELECT id FROM mizan_jobs WHERE name = ? AND key = ? AND state IN ('pending', 'running')",
      name, opts.key)
    if err then return nil, err, kind end
    if not row then return nil, "the job's key was taken and freed meanwhile; enqueue again" end
    return tonumber(row.id)
  end
  nudge(run_at - now)
  return tonumber(row.id)
end

--- get(id) -> the job's row { id, name, args, state, attempts, max_attempts,
-- run_at, last_error, created_at, finished_at, ... }, or nil (no such job),
-- or nil, err.
function M.get(id)
  local r, err, kind = db().row("SELECT " .. COLUMNS .. " FROM mizan_jobs WHERE id = ?", tonumber(id) or -1)
  if err then return nil, err, kind end
  return row_out(r)
end

--- list({ state =, name =, limit = 100 }) -> rows, newest first, or nil, err.
function M.list(opts)
  opts = opts or {}
  local where, params = {}, {}
  if opts.state then where[#where + 1] = "state = ?"; params[#params + 1] = opts.state end
  if opts.name then where[#where + 1] = "name = ?"; params[#params + 1] = opts.name end
  params[#params + 1] = opts.limit or 100
  local rows, err, kind = db().query("SELECT " .. COLUMNS .. " FROM mizan_jobs"
    .. (#where > 0 and " WHERE " .. table.concat(where, " AND ") or "") .. " ORDER BY id DESC LIMIT ?",
    unpack(params))
  if not rows then return nil, err, kind end
  for i, r in ipairs(rows) do rows[i] = row_out(r) end
  return rows
end

--- retry(id): a dead, cancelled or pending job runs again now, with its
-- retries afresh. true, or nil and why not.
function M.retry(id)
  local job, err = M.get(id)
  if not job then return nil, err or ("no job %s"):format(tostring(id)) end
  if job.state == "running" then return nil, ("job %d is running now"):format(job.id) end
  if job.state == "done" then return nil, ("job %d is done; enqueue a new one"):format(job.id) end
  local d = defs[job.name]
  local now = timers.now()
  local r, uerr = db().exec("UPDATE mizan_jobs SET state = 'pending', run_at = ?, max_attempts = attempts + ?, "
    .. "lease_until = NULL, finished_at = NULL, updated_at = ? WHERE id = ? AND state = ?",
    now, (d and d.retries or DEFAULTS.retries) + 1, now, job.id, job.state)
  if not r then return nil, uerr end
  if r.changes ~= 1 then return nil, ("job %d changed meanwhile; look again"):format(job.id) end
  nudge(0)
  return true
end

--- cancel(id): a pending or running job is cancelled (an attempt already
-- running finishes, and its outcome is dropped). true, or nil and why not.
function M.cancel(id)
  local job, err = M.get(id)
  if not job then return nil, err or ("no job %s"):format(tostring(id)) end
  if job.state ~= "pending" and job.state ~= "running" then
    return nil, ("job %d is %s already"):format(job.id, job.state)
  end
  local now = timers.now()
  local r, uerr = db().exec("UPDATE mizan_jobs SET state = 'cancelled', lease_until = NULL, finished_at = ?, "
    .. "updated_at = ? WHERE id = ? AND state = ?", now, now, job.id, job.state)
  if not r then return nil, uerr end
  if r.changes ~= 1 then return nil, ("job %d changed meanwhile; look again"):format(job.id) end
  return true
end

---------------------------------------------------------------- running

local function backoff_of(d, attempt)
  local b = d.backoff
  local s
  if type(b) == "function" then
    local ok, v = pcall(b, attempt)
    s = ok and tonumber(v) or nil
    if not s then core.log("error", ("job '%s': backoff(%d) gave no number: %s"):format(d.name, attempt, tostring(v))) end
    s = s or DEFAULTS.backoff
  else
    s = b * 2 ^ (attempt - 1)
  end
  return math.max(0, math.min(s, MAX_BACKOFF))
end

-- The attempt ended: write its outcome, fenced on (id, attempt, running).
-- outcome: "done" | "failed" | "timeout".
local function finish(d, job, outcome, err, seconds)
  local now = timers.now()
  local r, uerr
  local metric = outcome
  if outcome == "done" then
    r, uerr = db().exec("UPDATE mizan_jobs SET state = 'done', lease_until = NULL, finished_at = ?, updated_at = ? "
      .. "WHERE id = ? AND attempts = ? AND state = 'running'", now, now, job.id, job.attempts)
  elseif job.attempts < job.max_attempts then
    r, uerr = db().exec("UPDATE mizan_jobs SET state = 'pending', lease_until = NULL, run_at = ?, last_error = ?, "
      .. "updated_at = ? WHERE id = ? AND attempts = ? AND state = 'running'",
      now + backoff_of(d, job.attempts), err, now, job.id, job.attempts)
  else
    metric = outcome == "timeout" and "timeout" or "dead"
    r, uerr = db().exec("UPDATE mizan_jobs SET state = 'dead', lease_until = NULL, last_error = ?, finished_at = ?, "
      .. "updated_at = ? WHERE id = ? AND attempts = ? AND state = 'running'", err, now, now, job.id, job.attempts)
  end
  if not r then
    core.log("error", ("job '%s' #%d: could not record its outcome (%s): %s; it runs again after its lease")
      :format(d.name, job.id, outcome, tostring(uerr)))
    return false
  end
  if r.changes == 1 then core.job_metric(d.name, metric, seconds) end
  return r.changes == 1
end

-- Run one claimed attempt to its end (the caller's task). `watch`: enforce
-- the timeout with a loop timer (a real clock).
local function run_attempt(job, watch)
  local d = defs[job.name]
  local args = json.decode(job.args) or {}
  local ctx = { id = job.id, name = job.name, attempt = job.attempts, max_attempts = job.max_attempts,
                deadline = timers.now() + d.timeout, scheduled_at = job.run_at, slot = null_to_nil(job.slot) }
  local t0 = core.monotonic()
  local over = false
  local guard
  if watch then
    guard = require("mizan.timer").start(d.timeout, 0, function()
      over = true
      M.protected_finish(d, job, "timeout", ("timed out after %g s (attempt %d)"):format(d.timeout, job.attempts),
        core.monotonic() - t0)
    end)
  end
  local ok, err = timers.protected(("job '%s' #%d (attempt %d)"):format(job.name, job.id, job.attempts), d.run, ctx, args)
  if guard then guard:cancel() end
  if over then return end -- the timeout already decided; this late outcome is dropped
  finish(d, job, ok and "done" or "failed", err, core.monotonic() - t0)
end

function M.protected_finish(...) return finish(...) end

-- Take one due job (or one whose lease expired) of a name this code
-- declares: its row, now running with a new lease; nil when none; nil, err.
local function claim()
  if #names == 0 then return nil end
  local now = timers.now()
  local lock = db().engine() == "postgres" and " FOR UPDATE SKIP LOCKED" or ""
  local params = { now, now }
  for i, n in ipairs(names) do params[2 + i] = n end
  params[#params + 1] = now
  params[#params + 1] = now
  local rows, err, kind = db().query("UPDATE mizan_jobs SET state = 'running', attempts = attempts + 1, "
    .. "lease_until = ? + timeout + " .. M.GRACE .. ", updated_at = ? WHERE id = (SELECT id FROM mizan_jobs "
    .. "WHERE name IN (" .. placeholders(#names) .. ") AND ((state = 'pending' AND run_at <= ?) OR "
    .. "(state = 'running' AND lease_until < ? AND attempts < max_attempts)) ORDER BY run_at, id LIMIT 1" .. lock
    .. ") RETURNING id, name, args, attempts, max_attempts, run_at, slot", unpack(params))
  if not rows then return nil, err, kind end
  local r = rows[1]
  if r then r.id = tonumber(r.id) end
  return r
end

-- Jobs whose worker died on their last attempt: dead, with why.
local function bury(now)
  return db().exec("UPDATE mizan_jobs SET state = 'dead', lease_until = NULL, last_error = ?, finished_at = ?, "
    .. "updated_at = ? WHERE state = 'running' AND lease_until < ? AND attempts >= max_attempts",
    "the worker running its last attempt stopped (its lease expired)", now, now, now)
end

-- The current slot of every schedule: one row per (name, slot), whoever
-- inserts it first (every worker of every instance tries; the unique index
-- keeps one).
local function schedule(now)
  for _, name in ipairs(names) do
    local d = defs[name]
    local slot, at
    if d.every then
      slot = math.floor(now / d.every)
      at = slot * d.every
    elseif d.cron then
      local minute = math.floor(now / 60)
      if cron.matches(d.cron, now) then slot, at = minute, minute * 60 end
    end
    if slot and last_slot[name] ~= slot then
      local _, err = db().exec("INSERT INTO mizan_jobs (name, args, state, attempts, max_attempts, run_at, timeout, "
        .. "slot, created_at, updated_at) VALUES (?, '{}', 'pending', 0, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        name, d.retries + 1, at, d.timeout, slot, now, now)
      if err then return nil, err end
      last_slot[name] = slot
    end
  end
  return true
end

local function log_once(what, err)
  local msg = ("the job poller: %s: %s"):format(what, tostring(err))
  if logged[msg] then return end
  logged[msg] = true
  core.log("error", msg .. " (logged once; it keeps trying)")
end

local function start_attempt(job)
  running = running + 1
  core.spawn(function()
    local ok = pcall(run_attempt, job, true)
    running = running - 1
    if not ok then log_once("an attempt", "failed outside the job") end
    if not retired and running == M.CONCURRENCY - 1 then nudge(0) end -- room again
  end)
end

-- One poll: schedules, the dead, then claim while there is room.
local function tick()
  if ticking or retired or #names == 0 then return end
  ticking = true
  local ok, err = pcall(function()
    local now = timers.now()
    local _, serr = schedule(now)
    if serr then return log_once("scheduling", serr) end
    local _, berr = bury(now)
    if berr then return log_once("reaping lost jobs", berr) end
    while running < M.CONCURRENCY and not retired do
      local job, cerr = claim()
      if cerr then return log_once("claiming", cerr) end
      if not job then break end
      start_attempt(job)
    end
  end)
  ticking = false
  if not ok then log_once("a poll", err) end
end

-- Poll soon (an enqueue in this process): within `delay` seconds when the
-- job is due before the next regular poll.
nudge = function(delay)
  if not started or retired or timers.is_fake() or delay > M.POLL then return end
  if nudge_handle and nudge_handle:active() then return end
  nudge_handle = require("mizan.timer").start(math.max(0, delay), 0, tick)
end

--- The state serves (mizan.host.start): start polling.
function M.start(cfg)
  if started or retired then return end
  started = true
  if #names == 0 or timers.is_fake() then return end
  local poll = cfg and cfg.jobs_poll or M.POLL
  M.POLL = poll
  for _, n in ipairs(names) do
    local d = defs[n]
    if d.every then poll = math.min(poll, d.every / 2) end
  end
  poll_handle = require("mizan.timer").start(math.random() * poll, poll, tick)
end

--- The state retired: no new claims (attempts running finish here).
function M.retire()
  retired = true
  if poll_handle then poll_handle:cancel() end
  if nudge_handle then nudge_handle:cancel() end
end

--- A new load of the app in this state: forget the previous load's jobs.
function M.reset()
  M.retire()
  defs, names, last_slot, logged = {}, {}, {}, {}
  started, retired, running, ticking = false, false, 0, false
  poll_handle, nudge_handle = nil, nil
end

--- The test client: run what is due now (the fake clock), each attempt to
-- its end, until nothing is due. Schedules insert their current slot first.
-- Call outside any task. Returns the number of attempts run.
function M.run_due(limit)
  limit = limit or 10000
  local n = 0
  local ok, err = core.run(function()
    local now = timers.now()
    assert(schedule(now))
    assert(bury(now))
  end)
  if not ok then error(err, 2) end
  while n < limit do
    local cok, job, cerr = core.run(claim)
    if not cok then error(job, 2) end
    if cerr then error("mizan.jobs: claiming: " .. tostring(cerr), 2) end
    if not job then break end
    n = n + 1
    local rok, rerr = core.run(run_attempt, job, false)
    if not rok then error(rerr, 2) end
  end
  return n
end

return M
