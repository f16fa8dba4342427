-- mizan.dispatch.run: running app code (handlers, predicates). A protocol
-- error the app raised passes through as it is; any other Lua error is
-- logged with its traceback and raised again as internal_error (whose
-- message has the traceback only in dev). Either way it reaches the one
-- place that turns errors into answers (mizan.dispatch.respond).
local core = require "mizan.core"
local errors = require "mizan.errors"
local types = require "mizan.types"

local M = {}

-- The message handler of xpcall: a raised protocol error passes through, any
-- other error gets its traceback. One function for all calls (no closure per
-- request); it runs before the stack unwinds, so nothing else interleaves.
local function on_error(e)
  if errors.is_raised(e) then return e end
  return { traceback = debug.traceback(tostring(e), 2) }
end
M.on_error = on_error

local function failed(what, dev, e)
  if errors.is_raised(e) then return e end
  core.log("error", ("%s failed: %s"):format(what, e.traceback))
  return errors.raised("internal_error", dev and e.traceback or "internal error")
end

--- Run fn(...) as app code: its first result, or raise (see above).
function M.app(what, dev, fn, ...)
  local ok, result = xpcall(fn, on_error, ...)
  if ok then return result end
  error(failed(what, dev, result), 0)
end

--- The same without raising: true, result; or false, the raised error value
-- (for mizan.cache, whose waiters get the leader's outcome as values).
function M.try(what, dev, fn, ...)
  local ok, result = xpcall(fn, on_error, ...)
  if ok then return true, result end
  return false, failed(what, dev, result)
end

--- In dev and test, a result must match the declared output: raises
-- internal_error when it does not.
function M.check_output(spec, result)
  local _, oerrs = types.validate(spec.output, result)
  if not oerrs then return end
  local parts = {}
  for path, msgs in pairs(oerrs) do parts[#parts + 1] = path .. " " .. table.concat(msgs, ", ") end
  table.sort(parts)
  local msg = ("function '%s' returned output that does not match its schema: %s")
    :format(spec.name, table.concat(parts, "; "))
  core.log("error", msg)
  errors.fail("internal_error", msg)
end

return M
