-- `mizan migrate`: the app's migrations from the command line (mizan.migrate).
--   mizan migrate [APP]                  apply the pending migrations
--   mizan migrate --status [APP]         list the applied and the pending ones
--   mizan migrate new NAME [APP] [--lua] write the next numbered file
local core = require "mizan.core"
local migrate = require "mizan.migrate"

local M = {}

M.USAGE = [[
usage:
  mizan migrate [APP]                  apply the pending migrations, each in its own transaction
  mizan migrate --status [APP]         list the applied and the pending migrations
  mizan migrate new NAME [APP] [--lua] write migrations/NNNN_NAME.sql (--lua: .lua), NNNN the next number

APP is a folder holding app.lua (default: the current folder). The database is the app's
(MIZAN_DATABASE, or mizan.config { database = ... }). Migrations are the framework's own
(mizan/NNNN_name) and then the app's migrations/NNNN_name.sql or .lua, in order; a .lua one
returns function(db) ... end. `mizan dev` applies pending ones on start and on save; `mizan
serve` refuses to start while any is pending, unless MIZAN_MIGRATE=auto.
]]

local function fail(msg, code)
  io.stderr:write("mizan migrate: ", msg, "\n")
  return code or 1
end

local function usage_error(msg)
  io.stderr:write("mizan migrate: ", msg, "\n\n", M.USAGE)
  return 2
end

-- { status, lua, help, words } or nil, message.
local function parse(argv)
  local o = { words = {} }
  for _, a in ipairs(argv) do
    if a == "--status" then o.status = true
    elseif a == "--lua" then o.lua = true
    elseif a == "--help" or a == "-h" then o.help = true
    elseif a:sub(1, 1) == "-" then return nil, ("unknown option '%s'"):format(a)
    else o.words[#o.words + 1] = a end
  end
  return o
end

local function has_app(dir)
  local f = io.open(dir .. "/app.lua", "r")
  if f then f:close() end
  return f ~= nil
end

-- mizan migrate new NAME [APP] [--lua]
local function new(name, dir, lua)
  if not name then return usage_error("new needs a NAME, like `mizan migrate new add_due_dates`") end
  if not name:find("^[%w_]+$") then
    return usage_error(("'%s' is no migration name: use letters, digits and _"):format(name))
  end
  if dir == "@embedded" then
    return fail("a built executable carries its migrations; write new ones in the app's folder and build again")
  end
  if not has_app(dir) then return fail(("no app.lua in %s"):format(dir)) end
  local ok, list = pcall(migrate.discover, { dir = dir })
  if not ok then return fail(list) end
  local next_number = 1
  for _, m in ipairs(list) do next_number = math.max(next_number, m.number + 1) end
  local ext = lua and "lua" or "sql"
  local rel = ("migrations/%04d_%s.%s"):format(next_number, name, ext)
  local body = lua and ([[
-- %s: runs once, in a transaction of its own (mizan migrate, or mizan dev on save).
-- db is mizan.db whose exec / query / row raise on failure, so a failure rolls
-- this migration back; db.engine() says "sqlite" or "postgres".
return function(db)
end
]]):format(name) or ([[
-- %s: runs once, in a transaction of its own (mizan migrate, or mizan dev on save).
-- Statements end with ;. Never edit this file once applied: write a new migration.
]]):format(name)
  core.mkdir(dir .. "/migrations")
  local f, err = io.open(dir .. "/" .. rel, "w")
  if not f then return fail(("cannot write %s/%s: %s"):format(dir, rel, tostring(err))) end
  f:write(body)
  f:close()
  print(("created %s/%s"):format(dir, rel))
  return 0
end

local function status(app)
  local st, err = migrate.status(app)
  if not st then return fail(err) end
  local napplied = 0
  for _, m in ipairs(st.list) do
    local r = st.applied[m.id]
    if r then napplied = napplied + 1 end
    print(("%-8s %-20s %s"):format(r and "applied" or "pending", r and r.applied_at or "", m.label))
  end
  print(("%d applied, %d pending"):format(napplied, #st.pending))
  return 0
end

local function apply(app)
  local done, err = migrate.apply(app, function(label, event)
    if event == "applying" then io.stdout:write("applying ", label, "\n")
    elseif event == "applied" then io.stdout:write("applied ", label, "\n")
    else io.stdout:write(label, " was applied by another process meanwhile\n") end
    io.stdout:flush() -- line by line, also into a file or a pipe
  end)
  if not done then return fail(err) end
  if #done == 0 then print("nothing to apply: every migration is applied") end
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
  if w[1] == "new" then
    if o.status then return usage_error("--status and new do not go together") end
    if #w > 3 then return usage_error("too many arguments") end
    return new(w[2], w[3] or ".", o.lua)
  end
  if o.lua then return usage_error("--lua goes with `new NAME`") end
  if #w > 1 then return usage_error(("too many arguments (did you mean `mizan migrate new %s`?)"):format(w[2])) end
  local dir = w[1] or "."
  if dir ~= "@embedded" and not has_app(dir) then return fail(("no app.lua in %s"):format(dir)) end
  local host = require "mizan.host"
  local lok, cfg_or_err = pcall(function() return select(2, host.load(dir, "production")) end)
  if not lok then return fail("the app failed to load: " .. tostring(cfg_or_err)) end
  local app = migrate.app_of(cfg_or_err)
  local ok, code = core.run(o.status and status or apply, app)
  host.retire()
  if not ok then return fail(tostring(code)) end
  return code
end

return M
