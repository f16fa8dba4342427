-- mizan.dispatch: the request handler C calls for every request under the
-- base path. It decides everything the core leaves open: which function,
-- which method, the arguments, validation, and the error answers.
--
-- handler(req) -> status, body (a table to encode as JSON, or a string), headers
local core = require "mizan.core"
local json = require "mizan.json"
local types = require "mizan.types"
local errors = require "mizan.errors"
local query = require "mizan.query"
local mizan = require "mizan"

local null = json.null
local ARRAY_MT = json.array_mt
local M = {}

local function log(level, msg) core.log(level, msg) end

-- Methods given to every request object a handler sees.
local Req = {}
Req.__index = Req
local function later(what)
  return function() error(what .. " is not supported yet", 2) end
end
Req.login = later("req:login")
Req.logout = later("req:logout")
Req.invalidate = later("req:invalidate")

local function is_json(ct)
  if ct == "application/json" then return true end -- the common case, without patterns
  if not ct then return false end
  local base = ct:match("^%s*([^;%s]+)")
  return base ~= nil and base:lower() == "application/json"
end

-- The message handler of xpcall: a raised protocol error passes through, any
-- other error gets its traceback. One function for all calls (no closure per
-- request); it runs before the stack unwinds, so nothing else interleaves.
local function on_error(e)
  if errors.is_raised(e) then return e end
  return { traceback = debug.traceback(tostring(e), 2) }
end

-- Run the handler: true, result; or false, status, body, headers. A Lua error
-- becomes a logged 500 whose message carries the traceback only in dev.
local function run(spec, req, args, dev)
  local ok, result = xpcall(spec.handler, on_error, req, args)
  if ok then return true, result end
  if errors.is_raised(result) then return false, errors.response(result.code, result.message, result.fields) end
  log("error", ("function '%s' failed: %s"):format(spec.name, result.traceback))
  return false, errors.response("internal_error", dev and result.traceback or "internal error")
end

-- Handlers that never look at the query string share one empty, frozen table.
local EMPTY_QUERY = setmetatable({}, { __newindex = function() error("req.query is read-only", 2) end })

local function call(reg, req, dev)
  local name = req.name
  local spec = name and reg.functions[name]
  if not spec then
    return errors.response("not_found", ("no function named '%s'"):format(tostring(name)))
  end
  local method = req.method
  local args, errs
  if method == "POST" then
    if not is_json(req.headers["content-type"]) then
      return errors.response("unsupported_media_type", "a call must send Content-Type: application/json")
    end
    local body = req.body
    if body == "" then
      args = {}
    else
      local err
      args, err = json.decode(body)
      if args == nil then return errors.response("invalid_json", "the body is not valid JSON: " .. err) end
    end
    if type(args) ~= "table" or getmetatable(args) == ARRAY_MT then
      return errors.response("validation_error", "the arguments must be a JSON object",
                             { __all__ = { "must be an object" } })
    end
    args, errs = types.validate(spec.input, args)
  elseif (method == "GET" or method == "HEAD") and spec.kind == "query" then
    args, errs = types.validate(spec.input, query.parse(req.query), true)
  else
    local allow = spec.kind == "query" and "GET, HEAD, POST" or "POST"
    local why = spec.kind == "query" and "call it with GET or POST"
      or "it is a mutation: call it with POST"
    return errors.response("method_not_allowed", ("'%s' does not accept %s: %s"):format(name, method, why),
                           nil, { Allow = allow })
  end
  if errs then
    return errors.response("validation_error", "the arguments are not valid", errs)
  end

  local qs = req.query
  req.query = qs == "" and EMPTY_QUERY or query.parse(qs)
  setmetatable(req, Req)
  local ok, result, body, headers = run(spec, req, args, dev)
  if not ok then return result, body, headers end
  if getmetatable(result) and mizan.is_response(result) then
    return result.status, result.body, result.headers
  end
  if result == nil then result = null end
  if dev and spec.output then
    local _, oerrs = types.validate(spec.output, result)
    if oerrs then
      local parts = {}
      for path, msgs in pairs(oerrs) do parts[#parts + 1] = path .. " " .. table.concat(msgs, ", ") end
      table.sort(parts)
      local msg = ("function '%s' returned output that does not match its schema: %s")
        :format(name, table.concat(parts, "; "))
      log("error", msg)
      return errors.response("internal_error", msg)
    end
  end
  return 200, { result = result }
end

--- Build the request handler for a loaded registry.
function M.new(reg, cfg, mode)
  local dev = mode ~= "production"
  local schema_doc
  return function(req)
    local route = req.route
    if route == "call" then
      return call(reg, req, dev)
    elseif route == "schema" and not req.name then
      if req.method ~= "GET" and req.method ~= "HEAD" then
        return errors.response("method_not_allowed", "the schema is read with GET", nil, { Allow = "GET, HEAD" })
      end
      schema_doc = schema_doc or require("mizan.schema").document(reg, cfg)
      return 200, schema_doc
    end
    return errors.response("not_found", ("no such path: %s"):format(req.path))
  end
end

return M
