-- mizan.host: what the C host calls to load an app.
--   load(app_dir, mode) -> request handler, config
local mizan = require "mizan"
local config = require "mizan.config"
local dispatch = require "mizan.dispatch"
local core = require "mizan.core"

local M = {}

local base_path = package.path
local app_modules = {}

-- Forget the modules a previous load of an app required, so loading again
-- (tests, and hot reload later) starts clean.
local function forget_app_modules()
  for name in pairs(app_modules) do package.loaded[name] = nil end
  app_modules = {}
end

function M.load(app_dir, mode)
  app_dir = (app_dir or "."):gsub("/+$", "")
  if app_dir == "" then app_dir = "/" end
  forget_app_modules()
  mizan._reset(mode)
  package.path = app_dir .. "/?.lua;" .. app_dir .. "/?/init.lua;" .. base_path
  local before = {}
  for name in pairs(package.loaded) do before[name] = true end

  local path = app_dir .. "/app.lua"
  local chunk, err = loadfile(path)
  if not chunk then
    local f = io.open(path, "r")
    if not f then error(("no app.lua in %s"):format(app_dir), 0) end
    f:close()
    error(err, 0)
  end
  chunk()
  for name in pairs(package.loaded) do
    if not before[name] then app_modules[name] = true end
  end

  mizan._finalize()
  local reg = mizan.registry()
  for ref in pairs(reg.unregistered) do
    core.log("warn", ("%s was made by mizan.client{} but never registered"):format(tostring(ref)))
  end
  local cfg = config.finalize()
  cfg.app_dir = app_dir
  require("mizan.cache").configure(cfg, reg)
  return dispatch.new(reg, cfg, mode), cfg
end

return M
