-- mizan.dispatch.health: GET health, health/live and health/ready (the
-- probes an orchestrator asks).
--
--   health        200 { status = "ok" | "degraded", down = {...} }
--   health/live   200 { status = "ok" }: the worker answers at all
--   health/ready  200 { status = "ok" | "degraded", ... } when the database
--                 answers and no migration is pending; else 503
--                 { status = "unready", why = ... }. Redis down (the shared
--                 cache) is degraded, not unready: reads run uncached.
--
-- What the dependencies say is logged when the worker starts serving and
-- whenever it changes (checked every few seconds, and at each probe).
local core = require "mizan.core"
local cache = require "mizan.cache"

local M = {}

local CHECK_EVERY = 5 -- seconds between the background checks
local last = {}       -- what was said last, per dependency, to log changes only

local function say(dep, state, why)
  local was = last[dep]
  if was == state then return end
  last[dep] = state
  local level = state == "ok" and "info" or "warn"
  local text = ("%s: %s%s"):format(dep, state, why and (" (" .. tostring(why) .. ")") or "")
  core.log(level, was == nil and ("dependency " .. text) or ("dependency changed: " .. text))
end

-- The database, and the migrations: nil when all is well, else why not.
local function database()
  local ok, state, err = pcall(require("mizan.db").probe)
  if not ok then return tostring(state) end
  if not state then return tostring(err) end
  local ready, merr = require("mizan.host").migrations_pending()
  if not ready then return merr end
end

--- Every dependency's state now: { database = nil | why, cache = nil | state }.
function M.check()
  local db_down = database()
  say("database", db_down and "unready" or "ok", db_down)
  local down = cache.health()
  say("cache", down and down.cache or "ok")
  return db_down, down
end

--- Start the background checks (once the state serves).
function M.start()
  core.spawn(M.check) -- the database is asked from a task, as in a request
  require("mizan.timers").every(CHECK_EVERY, function() M.check() end)
end

--- Is health/<name> one of ours (nil: health itself)?
function M.known(name) return name == nil or name == "live" or name == "ready" end

--- The answer to GET health[/live|/ready]: status, body.
function M.answer(name)
  if name == "live" then return 200, { status = "ok" } end
  local db_down, down = M.check()
  if name == "ready" and db_down then return 503, { status = "unready", why = db_down } end
  return 200, { status = down and "degraded" or "ok", down = down }
end

return M
