-- mizan.errors: the error model of DESIGN §2.
--   {"error": {"code": "...", "message": "...", "fields": {"path": ["..."]}}}
local M = {}

M.status = {
  invalid_json = 400, validation_error = 400, bad_request = 400,
  unauthenticated = 401,
  forbidden = 403, csrf_failed = 403,
  not_found = 404,
  method_not_allowed = 405,
  request_timeout = 408,
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

--- status, body, headers for an error response.
function M.response(code, message, fields, headers)
  local status = M.status[code] or 500
  if type(message) == "string" then message = utf8.printable(message) end
  local err = { code = code, message = message }
  if fields and next(fields) then err.fields = printable_fields(fields) end
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
