-- mizan.errors: the error model of DESIGN §2.
--   {"error": {"code": "...", "message": "...", "fields": {"path": ["..."]}, "data": ...}}
-- `fields` only for validation errors; `data` only for a code the function
-- declared (client { errors = {...} }), typed by its declaration.
local M = {}

M.status = {
  invalid_json = 400, validation_error = 400, bad_request = 400,
  unauthenticated = 401,
  forbidden = 403, csrf_failed = 403,
  not_found = 404,
  method_not_allowed = 405,
  request_timeout = 408,
  stale_client = 409,
  payload_too_large = 413,
  uri_too_long = 414,
  unsupported_media_type = 415,
  rate_limited = 429,
  headers_too_large = 431,
  internal_error = 500,
  unavailable = 503,
}

local utf8 = require "mizan.utf8"

-- Field paths and messages can quote the request (a query key, a name from
-- the URL): bytes JSON cannot carry are shown as %XX, never a failed answer.
local function printable_fields(fields)
  local clean = true
  for path, msgs in pairs(fields) do
    if type(path) == "string" and not utf8.valid(path) then clean = false end
    for _, m in ipairs(type(msgs) == "table" and msgs or {}) do
      if type(m) == "string" and not utf8.valid(m) then clean = false end
    end
  end
  if clean then return fields end
  local out = {}
  for path, msgs in pairs(fields) do
    local list = msgs
    if type(msgs) == "table" then
      list = {}
      for i, m in ipairs(msgs) do list[i] = type(m) == "string" and utf8.printable(m) or m end
    end
    out[type(path) == "string" and utf8.printable(path) or path] = list
  end
  return out
end

-- The protocol's codes a function may declare too (with data of its own):
-- not_found means something in an app's domain, and mizan raises it only
-- for a function or path that does not exist. The others mizan raises for
-- any function (forbidden: its auth), so their body carries no data.
M.declarable = { not_found = true }

--- The status of an app-declared code with no status of its own: the
-- protocol's for the codes it shares, 409 for conflict, else 400.
function M.default_status(code)
  if M.status[code] then return M.status[code] end
  return code == "conflict" and 409 or 400
end

--- status, body, headers for an error response. `status` is a declared
-- code's (else the protocol's status of `code`); `data` its checked data.
function M.response(code, message, fields, headers, data, status)
  status = status or M.status[code] or 500
  if type(message) == "string" then message = utf8.printable(message) end
  local err = { code = code, message = message }
  if fields and next(fields) then err.fields = printable_fields(fields) end
  if data ~= nil then err.data = data end
  return status, { error = err }, headers
end

local Raised = {}
Raised.__index = Raised
Raised.__tostring = function(e) return ("%s: %s"):format(e.code, e.message) end

--- An error value that a handler raises to answer with a protocol error.
-- `extra` holds members added to the answer's body beside "error" (a failed
-- purge keeps its "invalidate"). mizan.dispatch.respond is the one place
-- that turns such a value into an answer.
function M.raised(code, message, fields, headers, extra)
  return setmetatable({ code = code, message = message or code, fields = fields, headers = headers, extra = extra },
                      Raised)
end

--- What mizan.error raises: `payload` is the table the app passed, data
-- for a declared code or fields for a protocol one; which, only the
-- function's declaration says (mizan.dispatch.run.declared decides).
function M.raised_by_app(code, message, payload)
  local e = M.raised(code, message, nil)
  e.payload, e.by_app = payload, true
  return e
end

--- A declared error, checked: answered with its status and data.
function M.raised_declared(code, message, data, status)
  local e = M.raised(code, message)
  e.data, e.status = data, status
  return e
end

--- Raise 503 unavailable for a call that may have had effects: what it
-- invalidated (the X-Mizan-Invalidate header, and the body's "invalidate"
-- list) goes with the error, so the caller still refetches what it can.
function M.fail_unavailable(message, body, headers)
  local invalidate = headers and headers["X-Mizan-Invalidate"]
  if not invalidate then M.fail("unavailable", message) end
  M.fail("unavailable", message, nil, { ["X-Mizan-Invalidate"] = invalidate },
         type(body) == "table" and { invalidate = body.invalidate } or nil)
end

--- Raise a protocol error (never returns).
function M.fail(code, message, fields, headers, extra) error(M.raised(code, message, fields, headers, extra), 0) end
function M.is_raised(v) return getmetatable(v) == Raised end

return M
