-- Shared helpers for Mizan's own specs.
local lfs = require "lfs"
local json = require "mizan.json"

local M = {}

--- The shared/ folder beside this repository (the design contract's data).
function M.shared(path)
  local root = os.getenv("MIZAN_SHARED") or "../shared"
  return root .. "/" .. path
end

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- Decode a JSON file with our own codec.
function M.load_json(path) return assert(json.decode(M.read(path))) end

function M.list(dir, pattern)
  local out = {}
  for name in lfs.dir(dir) do
    if name:find(pattern or ".") and name ~= "." and name ~= ".." then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

local counter = 0
--- A fresh folder holding app.lua with `source`; returns its path.
function M.app_dir(source, files)
  counter = counter + 1
  local dir = ("/tmp/mizan-spec-app-%d-%d"):format(require("mizan.testkit").getpid(), counter)
  lfs.mkdir(dir)
  M.write(dir .. "/app.lua", source)
  for name, text in pairs(files or {}) do M.write(dir .. "/" .. name, text) end
  return dir
end

--- Load an app from source in-process; returns ok, err (the load error text).
function M.try_load(source)
  local dir = M.app_dir(source)
  return pcall(require("mizan.host").load, dir, "test")
end

return M
