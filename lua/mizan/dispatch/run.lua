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

-- An undeclared code, or data that does not match: the function broke its
-- contract with the client, whose types know only what it declared. So it
-- is a 500 in every mode (logged, naming function and code); only dev and
-- test say why in the message.
local function broken_contract(who, code, why, dev)
  local msg = ("%s raised error '%s'%s%s"):format(who, code, why:find("^without") and " " or ", ", why)
  core.log("error", msg)
  return errors.raised("internal_error", dev and msg or "internal error")
end

--- An error raised by mizan.error, judged by the declaration of the
-- function that raised it (`spec`; nil for app code outside one, such as
-- an auth predicate). A declared code gets its status and checked data; a
-- protocol code it does not declare answers as before (a table is its
-- fields); any other code is a broken contract. Other errors pass as they are.
function M.declared(spec, e, dev)
  if type(e) ~= "table" or not e.by_app then return e end
  local decl = spec and spec.errors and spec.errors[e.code]
  local who = spec and ("function '%s'"):format(spec.name) or "app code outside a function"
  if decl then
    local data
    if decl.data and e.payload == nil then
      return broken_contract(who, e.code, "without the data its declaration has: mizan.error(code[, message], data)", dev)
    elseif decl.data then
      local errs
      data, errs = types.validate(decl.data, e.payload)
      if errs then
        local parts = {}
        for path, msgs in pairs(errs) do parts[#parts + 1] = (path == "" and "data" or path) .. " " .. table.concat(msgs, ", ") end
        table.sort(parts)
        return broken_contract(who, e.code, "with data that does not match its declaration: " .. table.concat(parts, "; "), dev)
      end
    elseif e.payload ~= nil then
      return broken_contract(who, e.code, "with data, but its declaration has none (declared as true)", dev)
    end
    return errors.raised_declared(e.code, e.message, data, decl.status)
  end
  if errors.status[e.code] then
    return errors.raised(e.code, e.message, e.payload)
  end
  return broken_contract(who, e.code, spec and "which it does not declare (client { errors = { ... } })"
    or "which only a function's declaration can give (client { errors = { ... } })", dev)
end

--- Run a function's handler as app code (run.app), its mizan.error judged
-- by its declaration (see M.declared).
function M.handler(spec, what, dev, req, args)
  local ok, result = xpcall(spec.handler, on_error, req, args)
  if ok then return result end
  error(M.declared(spec, failed(what, dev, result), dev), 0)
end

--- The same without raising (run.try).
function M.try_handler(spec, what, dev, req, args)
  local ok, result = xpcall(spec.handler, on_error, req, args)
  if ok then return true, result end
  return false, M.declared(spec, failed(what, dev, result), dev)
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
