-- Shared helpers for Mizan's own specs.
local lfs = require "lfs"
local json = require "mizan.json"
local assert = require "luassert"

local M = {}

--- The design contract's data (vectors, conformance suites, the bench peer's
-- config): the committed copy in spec/shared, so the repository stands alone.
-- spec/unit/shared_spec.lua checks it still equals ../shared (MIZAN_SHARED).
function M.shared(path) return "spec/shared/" .. path end

--- The upstream shared/ folder beside this repository, or nil when absent.
function M.upstream_shared()
  local root = os.getenv("MIZAN_SHARED") or "../shared"
  if lfs.attributes(root .. "/DESIGN.md", "mode") == "file" then return root end
end

--- The one polling helper of the specs: call `cond` until it returns a true
-- value, for at most `timeout` seconds (10 by default). Returns whether it
-- held. A bound turns a hang into a failure; never use it to time anything.
function M.wait_until(cond, timeout)
  local core, kit = require "mizan.core", require "mizan.testkit"
  local deadline = core.monotonic() + (timeout or 10)
  repeat
    if cond() then return true end
    kit.sleep(0.01)
  until core.monotonic() > deadline
  return cond() and true or false
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

--- Run a shell command; returns its output and exit status (LuaJIT's
-- popen close does not report the status, so the shell prints it).
function M.run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"\n#exit:$?\"")
  local out = p:read("*a")
  p:close()
  local body, code = out:match("^(.-)\n?\n#exit:(%d+)\n$")
  return body, tonumber(code)
end

--- Assert that a response is a DESIGN §2 error with this status and code,
-- and carries Cache-Control: no-store. Returns the error object.
function M.assert_error(res, status, code)
  assert.equals(status, res.status)
  assert.equals("no-store", res.headers["cache-control"])
  local body = res.json or res.body
  assert.is_table(body, "expected a JSON error body")
  assert.equals(code, body.error.code)
  assert.is_string(body.error.message)
  return body.error
end

return M
