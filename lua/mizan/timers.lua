-- mizan.timers: mizan.after, mizan.every, req:defer, and the clock they
-- (and mizan.jobs) read.
--
--   local h = mizan.after(5, function() ... end)    -- once, in 5 s
--   local h = mizan.every(60, function() ... end)   -- every 60 s
--   h:cancel()
--
-- Each firing runs fn in a task of its own, so fn may yield (mizan.db,
-- mizan.sleep, mizan.http). An error is logged with its traceback and
-- changes nothing else: the worker goes on, an `every` fires again. An
-- `every` whose previous run has not finished skips that firing (runs never
-- pile up behind a slow one).
--
-- Timers made while app.lua loads wait until the state serves (mizan serve
-- and mizan dev start them in every worker; mizan migrate, schema, users
-- and build load the app and never do). Timers belong to the state that
-- made them (core/timer.c): a reload or a shutdown retires that state and
-- its timers stop; the reloaded app.lua makes its own. A run already going
-- finishes on the old state.
--
-- Under the test client (mizan.testing) the clock is the test's: the real
-- time plus an offset that only app:advance(seconds) moves. Timers never
-- fire by themselves there; advance runs what falls due on the way, in
-- order (M.use_fake_clock, M.advance).
local core = require "mizan.core"

local M = {}

local started, retired = false, false
local timers = {} -- every live timer of this load (handle -> true)
local fake      -- the test clock's offset from the real one (seconds), or nil

--- Seconds since the epoch: the real clock, or the test client's (shifted) one.
function M.now() return fake and core.now() + fake or core.now() end

local function traceback(e)
  if type(e) == "table" then e = e.message or e.code or tostring(e) end
  return debug.traceback(tostring(e), 2)
end

--- Run fn(...) here, logging an error with its traceback under `what`.
-- Returns true, or false and the error text (the traceback's first line).
function M.protected(what, fn, ...)
  local ok, err = xpcall(fn, traceback, ...)
  if ok then return true end
  core.log("error", what .. " failed: " .. err)
  return false, (err:match("^([^\n]*)"))
end

local Timer = {}
Timer.__index = Timer

--- handle:cancel(): no more firings (a run already going finishes). Idempotent.
function Timer:cancel()
  self.cancelled = true
  timers[self] = nil
  if self.handle then self.handle:cancel() end
end

--- handle:active(): it may still fire.
function Timer:active() return not self.cancelled end

local function fire(self)
  if self.cancelled or retired then return end
  if not self.interval then
    self.cancelled = true
    timers[self] = nil
  end
  if self.running then return end -- an `every` still busy with its last firing
  self.running = true
  M.protected(self.what, self.fn)
  self.running = false
end

local function arm(self)
  local timer = require "mizan.timer"
  self.handle = timer.start(self.delay, self.interval or 0, function() fire(self) end)
end

local function make(kind, seconds, fn, level)
  local what = "mizan." .. kind
  if type(seconds) ~= "number" or seconds ~= seconds or seconds == math.huge or seconds < 0
     or (kind == "every" and seconds == 0) then
    error(("%s(seconds, fn): seconds must be a finite number %s, got %s")
      :format(what, kind == "every" and "> 0" or ">= 0", tostring(seconds)), level + 1)
  end
  if type(fn) ~= "function" then
    error(("%s(seconds, fn): fn must be a function, got %s"):format(what, type(fn)), level + 1)
  end
  local where = debug.getinfo(level + 1, "Sl")
  local self = setmetatable({ delay = seconds, interval = kind == "every" and seconds or nil, fn = fn,
                              what = ("%s(%g) from %s:%d"):format(what, seconds, where and where.short_src or "?",
                                                                 where and where.currentline or 0) }, Timer)
  if retired then
    -- a request finishing on replaced code: its timer would run old code
    core.log("warn", self.what .. ": ignored, this code was replaced (reload or shutdown)")
    self.cancelled = true
    return self
  end
  timers[self] = true
  self.due = M.now() + seconds
  if started and not fake then arm(self) end
  return self
end

--- mizan.after(seconds, fn) -> handle
function M.after(seconds, fn)
  local t = make("after", seconds, fn, 2) -- not a tail call: the levels count this frame
  return t
end

--- mizan.every(seconds, fn) -> handle
function M.every(seconds, fn)
  local t = make("every", seconds, fn, 2)
  return t
end

--- The state serves (mizan.host.start): arm what app.lua made.
function M.start()
  if started or retired then return end
  started = true
  if fake then return end
  for t in pairs(timers) do
    if not t.handle then
      t.delay = math.max(0, t.due - M.now())
      arm(t)
    end
  end
end

--- The state retired: nothing fires any more (core/timer.c also ends the handles).
function M.retire()
  retired = true
  for t in pairs(timers) do t:cancel() end
end

--- A new load of the app in this state (tests load several): forget the
-- previous load's timers.
function M.reset()
  for t in pairs(timers) do t:cancel() end
  timers, started, retired = {}, false, false
end

---------------------------------------------------------------- fake clock

--- The test client's clock, at the real time (each testing.app starts it
-- afresh) until advanced; timers then fire only from M.advance.
function M.use_fake_clock() fake = 0 end

--- Leave the fake clock (back to real time).
function M.real_clock() fake = nil end

function M.is_fake() return fake ~= nil end

--- Move the fake clock by `seconds`, running every timer that falls due on
-- the way, in order of its due time, each to its end (a task of its own,
-- on the loop). Call it outside any task. Returns the number of firings.
function M.advance(seconds)
  if not fake then error("advance needs the fake clock (mizan.testing's app uses one)", 2) end
  if type(seconds) ~= "number" or seconds < 0 or seconds ~= seconds then
    error("advance(seconds): seconds must be a number >= 0", 2)
  end
  local target, fired = M.now() + seconds, 0
  while true do
    local next_t
    for t in pairs(timers) do
      if not t.cancelled and t.due <= target and (not next_t or t.due < next_t.due) then next_t = t end
    end
    if not next_t then break end
    fake = math.max(fake, next_t.due - core.now()) -- the firing sees its own due time
    if next_t.interval then next_t.due = next_t.due + next_t.interval end
    fired = fired + 1
    if fired > 100000 then error("advance: more than 100000 firings; is an every() interval tiny?", 2) end
    local ok, err = core.run(fire, next_t)
    if not ok then error(err, 0) end
  end
  fake = math.max(fake, target - core.now())
  return fired
end

---------------------------------------------------------------- deferred work

local inline_queue -- the test client collects deferred work here instead

--- After the response record for `req` is made (mizan.dispatch): run its
-- req:defer functions once the response is written: a task of its own that
-- first lets the loop turn (C writes the response in the same turn the
-- handler returns, before any timer runs).
function M.run_deferred(req, status)
  local list = rawget(req, "_deferred")
  if inline_queue then
    inline_queue[#inline_queue + 1] = { list = list, req = req, status = status }
    return
  end
  core.spawn(function()
    core.sleep(0)
    for _, fn in ipairs(list) do M.protected("req:defer", fn, req, status) end
  end)
end

--- The test client: collect deferred work (true) or spawn it (false).
function M.collect_deferred(on) inline_queue = on and (inline_queue or {}) or nil end

--- The test client, after a call: run the deferred work collected so far,
-- each list in a task of its own, to its end. Returns how many functions ran.
function M.drain_deferred()
  local n = 0
  while inline_queue and #inline_queue > 0 do
    local item = table.remove(inline_queue, 1)
    local ok, err = core.run(function()
      for _, fn in ipairs(item.list) do
        n = n + 1
        M.protected("req:defer", fn, item.req, item.status)
      end
    end)
    if not ok then error(err, 0) end
  end
  return n
end

return M
