-- `mizan jobs`: the app's durable jobs from the command line (mizan.jobs).
--   mizan jobs list [APP] [--state S] [--name N] [--limit N]
--   mizan jobs retry ID [APP]
--   mizan jobs cancel ID [APP]
local core = require "mizan.core"

local M = {}

M.USAGE = [[
usage:
  mizan jobs list [APP] [--state STATE] [--name JOB] [--limit N]
                              the newest jobs (100 by default): id, job, state, attempts,
                              next run, last error
  mizan jobs retry ID [APP]   run a dead, cancelled or pending job again now, with its
                              retries afresh
  mizan jobs cancel ID [APP]  cancel a pending or running job (an attempt already running
                              finishes; its outcome is dropped)

APP is a folder holding app.lua (default: the current folder); the jobs are rows in its
database (MIZAN_DATABASE, or mizan.config { database = ... }), table mizan_jobs. States:
pending, running, done, dead (its retries ran out; last error kept), cancelled.
]]

local function fail(msg, code)
  io.stderr:write("mizan jobs: ", msg, "\n")
  return code or 1
end

local function usage_error(msg)
  io.stderr:write("mizan jobs: ", msg, "\n\n", M.USAGE)
  return 2
end

local VALUED = { ["--state"] = "state", ["--name"] = "name", ["--limit"] = "limit" }

local function parse(argv)
  local o, i = { words = {} }, 1
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then o.help = true
    elseif VALUED[a] then
      if not argv[i + 1] then return nil, a .. " needs a value" end
      o[VALUED[a]] = argv[i + 1]
      i = i + 1
    elseif a:sub(1, 1) == "-" then return nil, ("unknown option '%s'"):format(a)
    else o.words[#o.words + 1] = a end
    i = i + 1
  end
  return o
end

local function has_app(dir)
  local f = io.open(dir .. "/app.lua", "r")
  if f then f:close() end
  return f ~= nil
end

local function when(t)
  if not t then return "-" end
  return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t))
end

local function list(o)
  local jobs = require "mizan.jobs"
  local rows, err = jobs.list { state = o.state, name = o.name, limit = tonumber(o.limit) or 100 }
  if not rows then return fail(err) end
  print(("%-8s %-24s %-9s %-8s %-19s %s"):format("ID", "JOB", "STATE", "ATTEMPTS", "NEXT RUN (UTC)", "LAST ERROR"))
  for _, r in ipairs(rows) do
    local next_run = (r.state == "pending" and r.run_at) or (r.state == "running" and r.lease_until) or nil
    local e = r.last_error and r.last_error:gsub("%s+", " ") or "-"
    if #e > 100 then e = e:sub(1, 97) .. "..." end
    print(("%-8d %-24s %-9s %-8s %-19s %s"):format(r.id, r.name, r.state, ("%d/%d"):format(r.attempts, r.max_attempts),
      when(next_run), e))
  end
  print(("%d job(s)"):format(#rows))
  return 0
end

local function change(verb, id)
  local jobs = require "mizan.jobs"
  local ok, err = jobs[verb](id)
  if not ok then return fail(err) end
  print(("job %d: %s"):format(id, verb == "retry" and "pending, runs again now" or "cancelled"))
  return 0
end

function M.main()
  local o, perr = parse(arg or {})
  if not o then return usage_error(perr) end
  if o.help then
    io.stdout:write(M.USAGE)
    return 0
  end
  local w = o.words
  local verb = w[1]
  if not verb then return usage_error("which one: list, retry ID or cancel ID?") end
  local id, dir
  if verb == "list" then
    if #w > 2 then return usage_error("too many arguments") end
    dir = w[2] or "."
  elseif verb == "retry" or verb == "cancel" then
    id = tonumber(w[2])
    if not id or id ~= math.floor(id) then return usage_error(("%s needs a job ID (a number), like `mizan jobs %s 42`"):format(verb, verb)) end
    if #w > 3 then return usage_error("too many arguments") end
    dir = w[3] or "."
  else
    return usage_error(("unknown subcommand '%s'"):format(verb))
  end
  if o.limit and not tonumber(o.limit) then return usage_error("--limit needs a number") end
  if (o.state or o.name or o.limit) and verb ~= "list" then return usage_error("--state, --name and --limit go with list") end
  if o.state and not require("mizan.jobs").STATES[o.state] then
    return usage_error(("--state: '%s' is no state (pending, running, done, dead, cancelled)"):format(o.state))
  end
  if dir ~= "@embedded" and not has_app(dir) then return fail(("no app.lua in %s"):format(dir)) end
  local host = require "mizan.host"
  local lok, lerr = pcall(host.load, dir, "production")
  if not lok then return fail("the app failed to load: " .. tostring(lerr)) end
  local ready, merr = host.check_migrations()
  if not ready then
    host.retire()
    return fail(merr)
  end
  local ok, code = core.run(function()
    if verb == "list" then return list(o) end
    return change(verb, id)
  end)
  host.retire()
  if not ok then return fail(tostring(code)) end
  return code
end

return M
