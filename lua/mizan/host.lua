-- mizan.host: what the C host calls to load an app.
--   load(app_dir, mode) -> request handler, config
local mizan = require "mizan"
local config = require "mizan.config"
local dispatch = require "mizan.dispatch"
local core = require "mizan.core"

local M = {}

local loaded_cfg, loaded_mode -- the configuration and mode of the last load, for check_storage
local base_path = package.path
local app_modules = {}

-- Forget the modules a previous load of an app required, so loading again
-- (tests, and hot reload later) starts clean.
local function forget_app_modules()
  for name in pairs(app_modules) do package.loaded[name] = nil end
  app_modules = {}
end

-- The app inside a built executable: its app.lua as a chunk, and a searcher
-- so that its require() finds its other files.
local embedded_searcher
local function embedded_chunk()
  local files = require("mizan.bundle").files()
  if not files or not files["app.lua"] then error("this executable carries no app", 0) end
  if not embedded_searcher then
    embedded_searcher = function(name)
      local p = name:gsub("%.", "/")
      local file = files[p .. ".lua"] and p .. ".lua" or files[p .. "/init.lua"] and p .. "/init.lua"
      if not file then return ("\n\tno module '%s' in the app inside this executable"):format(name) end
      return assert(loadstring(files[file], "@" .. file))
    end
    table.insert(package.loaders, 2, embedded_searcher)
  end
  return assert(loadstring(files["app.lua"], "@app.lua"))
end

-- The secret when none is configured: in development, one generated into
-- the app folder on first run (so sessions survive restarts); otherwise a
-- random one for this process.
local function app_secret(app_dir, mode)
  local crypto = require "mizan.crypto"
  if mode ~= "development" then return assert(crypto.random_hex(32)) end
  local path = app_dir .. "/.mizan/secret"
  local f = io.open(path, "r")
  if f then
    local s = f:read("*l")
    f:close()
    if s and #s >= 32 then return s end
  end
  core.mkdir(app_dir .. "/.mizan")
  local s = assert(crypto.random_hex(32))
  if core.write_private(path, s .. "\n") then
    core.log("info", ("generated a development secret in %s (set MIZAN_SECRET in production)"):format(path))
  end
  return s
end

--- In `mizan dev`, after a failed reload: the load error, shown in the
-- message of every 500 until a good save replaces this state.
function M.set_broken(err) dispatch.set_broken(err) end

--- C calls this when the state retires (host.h, THE OWNERSHIP RULE): a
-- reload put newer code in its place, or the process drains. It only
-- finishes what it started; its background loops stop (their sleeps end at
-- once), so it can be closed.
function M.retire()
  require("mizan.jobs").retire()
  require("mizan.timers").retire()
  require("mizan.channels").retire()
  require("mizan.cache").retire()
end

--- Load an app. `overrides` replace settings after the environment is read
-- (the in-process test client uses it for a database of its own).
function M.load(app_dir, mode, overrides)
  app_dir = (app_dir or "."):gsub("/+$", "")
  if app_dir == "" then app_dir = "/" end
  forget_app_modules()
  mizan._reset(mode)
  require("mizan.auth").reset()
  require("mizan.timers").reset()
  require("mizan.jobs").reset()
  package.path = app_dir .. "/?.lua;" .. app_dir .. "/?/init.lua;" .. base_path
  local before = {}
  for name in pairs(package.loaded) do before[name] = true end

  local chunk, err
  local embedded = app_dir == "@embedded"
  if embedded then
    -- a built executable: the app's bytecode comes from inside the binary
    chunk = embedded_chunk()
    app_dir = "."
  else
    local path = app_dir .. "/app.lua"
    chunk, err = loadfile(path)
    if not chunk then
      local f = io.open(path, "r")
      if not f then error(("no app.lua in %s"):format(app_dir), 0) end
      f:close()
      error(err, 0)
    end
  end
  chunk()
  for name in pairs(package.loaded) do
    if not before[name] then app_modules[name] = true end
  end

  local reg = mizan.registry()
  local cfg = config.finalize()
  cfg.app_dir = app_dir
  cfg.embedded = embedded
  for k, v in pairs(overrides or {}) do cfg[k] = v end
  cfg.secret_configured = cfg.secret ~= nil
  cfg.secret = cfg.secret or app_secret(app_dir, mode)
  if not cfg.database then
    core.mkdir(app_dir .. "/.mizan")
    cfg.database = "sqlite:" .. app_dir .. "/.mizan/mizan.db"
  end
  if cfg.static_dir and not cfg.static_dir:find("^/") then
    cfg.static_dir = app_dir .. "/" .. cfg.static_dir -- relative to the app folder
  end
  if cfg.accounts then require("mizan.auth").register_builtins(mizan) end
  mizan._finalize()
  for ref in pairs(reg.unregistered) do
    core.log("warn", ("%s was made by mizan.client{} but never registered"):format(tostring(ref)))
  end
  require("mizan.db").configure(cfg.database, cfg)
  require("mizan.session").configure(cfg)
  require("mizan.throttle").configure() -- after the sessions: it uses their store
  loaded_cfg, loaded_mode = cfg, mode
  require("mizan.cache").configure(cfg, reg, mode)
  local channels = require "mizan.channels"
  channels.configure(reg, mode, cfg)
  return dispatch.new(reg, cfg, mode), cfg, channels.on_event
end

-- Bring the schema up to date (apply: dev, MIZAN_MIGRATE=auto), or only
-- check that nothing is pending. true, or nil and the reason. Runs its
-- own task: call it outside any (on a loop that is not turning).
-- Inside a task: true when no migration is pending, else nil and which.
local function none_pending(cfg)
  local migrate = require "mizan.migrate"
  local st, serr = migrate.status(migrate.app_of(cfg))
  if not st then return nil, serr end
  if #st.pending > 0 then return nil, migrate.pending_message(st.pending, cfg) end
  return true
end

local function migrations(apply)
  local cfg = loaded_cfg
  local migrate = require "mizan.migrate"
  local app = migrate.app_of(cfg)
  local ok, res, err = core.run(function()
    if apply then
      local done, aerr = migrate.apply(app, function(label, event)
        if event == "applied" then core.log("info", "applied migration " .. label) end
      end)
      if not done then return nil, aerr end
      return true
    end
    return none_pending(cfg)
  end)
  if not ok then return nil, tostring(res) end
  return res, err
end

--- C calls this once the state serves (mizan serve's workers, mizan dev
-- and each of its reloads): timers app.lua made start, and the job poller.
-- A state that only loads the app (migrate, schema, users) never starts.
function M.start()
  require("mizan.timers").start()
  require("mizan.jobs").start(loaded_cfg)
  require("mizan.dispatch.health").start()
end

--- From a task (health/ready): true when no migration is pending, else nil
-- and which. Once none is, none can be again while this code serves (its
-- files do not change; the database only moves forward), so that is kept.
local migrated = false
function M.migrations_pending()
  if migrated or not loaded_cfg then return true end
  local ok, err = none_pending(loaded_cfg)
  migrated = ok == true
  return ok, err
end

--- mizan dev, after a save (app/cmd_serve.c, on a private loop): apply
-- what the saved code brings. true, or nil, err.
function M.migrate() return migrations(true) end

--- Commands that use the database outside serving (mizan users): true,
-- or nil and what is pending (applied first with MIZAN_MIGRATE=auto).
function M.check_migrations() return migrations(loaded_cfg.migrate == "auto") end

--- Before serving (mizan serve and dev call it once, after load): can the
-- database do what serving needs? Returns true, or nil and the reason to
-- refuse to start. Sessions and the login throttle are written at every
-- sign-in when they live in SQLite; with them in Redis a read-only database
-- still serves sign-ins (reads only), and writes answer 503.
function M.check_storage()
  local cfg = loaded_cfg
  if not cfg then return true end
  local db = require "mizan.db"
  local path = db.describe()
  local state, err = require("mizan.db").probe()
  if not state then
    return nil, ("cannot read the database %s (MIZAN_DATABASE): %s"):format(path, tostring(err))
  end
  if state == "ro" then
    if cfg.sessions == "sqlite" then
      return nil, ("the database %s (MIZAN_DATABASE) is read-only, and sessions and the login throttle are "
        .. "written there at every sign-in: make it writable, or keep sessions in Redis "
        .. "(MIZAN_SESSIONS=redis://host:port/db)"):format(path)
    end
    core.log("warn", ("the database %s is read-only: sign-ins work (sessions are in Redis); "
      .. "sign-ups and other writes answer 503 unavailable"):format(path))
  end
  -- the schema: dev applies what is pending; serve refuses to start with
  -- anything pending, unless MIZAN_MIGRATE=auto
  local dev = loaded_mode == "development"
  local ok, merr = migrations(dev or cfg.migrate == "auto")
  if not ok and dev then
    -- shown, and in every 500 until a save brings a migration that works
    core.log("error", "the migrations failed; calls answer 500 until a save fixes them:\n" .. merr)
    dispatch.set_broken("the migrations failed: " .. merr)
    return true
  end
  if not ok then return nil, merr end
  return true
end

return M
