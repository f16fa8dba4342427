-- mizan.host: what the C host calls to load an app.
--   load(app_dir, mode) -> request handler, config
local mizan = require "mizan"
local config = require "mizan.config"
local dispatch = require "mizan.dispatch"
local core = require "mizan.core"

local M = {}

local loaded_cfg -- the configuration of the last load, for check_storage
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
  package.path = app_dir .. "/?.lua;" .. app_dir .. "/?/init.lua;" .. base_path
  local before = {}
  for name in pairs(package.loaded) do before[name] = true end

  local chunk, err
  if app_dir == "@embedded" then
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
  loaded_cfg = cfg
  require("mizan.cache").configure(cfg, reg, mode)
  local channels = require "mizan.channels"
  channels.configure(reg, mode, cfg)
  return dispatch.new(reg, cfg, mode), cfg, channels.on_event
end

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
  return true
end

return M
