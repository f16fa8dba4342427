-- mizan.dispatch.respond: the one place an answer becomes the response
-- record C writes (core/http_lua.c has its definition), and the one place a
-- raised protocol error becomes an answer.
--
-- The record is the handler's return values, in this order:
--
--   status, body, headers, label, cache, schema
--   200,    "bytes" | json_data | nil, { "Name", "value", ... } | nil, "name" | nil, "hit" | "miss" | nil,
--   the schema hash (C writes it as X-Mizan-Schema) | nil
--
-- Status 101 accepts a WebSocket upgrade. No headers means Content-Type:
-- application/json and nothing else (the common answer). A table body is JSON data that C
-- encodes with the codec straight into its output (the common answer: no
-- Lua string is made for it); a string body is sent as it is (a cached
-- answer's exact bytes, a raw response). Values, not a table: C reads them
-- by position, with no table to build per answer and no key to look up.
local core = require "mizan.core"
local json = require "mizan.json"
local errors = require "mizan.errors"
local cors = require "mizan.dispatch.cors"

local M = {}

local broken -- the error of a failed reload (mizan dev), or nil
function M.set_broken(err) broken = err end

-- Every answer says which schema serves it (X-Mizan-Schema, DESIGN §2):
-- the record's sixth value, which C writes as that header.
local schema_hash, dev_mode = "", true
local JSON_HEADERS = { "Content-Type", "application/json" } -- what C writes for no list (M.read)

--- Once per load: the schema hash the answers carry, and the mode.
function M.configure(hash, dev)
  schema_hash, dev_mode = hash, dev
end

local function lower_is_ctype(k) return type(k) == "string" and #k == 12 and k:lower() == "content-type" end

--- The record for an answer: status, body (a table to encode as JSON, a
-- string sent as it is, or nil) and headers (a map) of `req`.
function M.record(req, status, body, headers)
  if req.headers.origin then headers = cors.headers(req, headers) end -- a listed origin's page reads it
  if headers == nil and type(body) == "table" then -- the common answer: JSON data, no headers
    return status, body, nil, rawget(req, "_label"), rawget(req, "_cache"), schema_hash -- C's default: JSON
  end
  if status == 101 then return 101, nil, nil, "ws" end
  local ctype
  if headers then
    for k, v in pairs(headers) do
      if lower_is_ctype(k) then ctype = v end
    end
  end
  if type(body) == "table" then
    local text, err = json.encode(body)
    if not text then
      core.log("error", ("%s %s: cannot send the response: %s"):format(req.method, req.path, err))
      return M.error(req, errors.raised("internal_error", "the response could not be encoded"))
    end
    body = text
    ctype = ctype or "application/json"
  elseif type(body) == "string" then
    ctype = ctype or "text/plain; charset=utf-8"
  elseif body ~= nil then
    core.log("error", ("%s %s: the handler returned a body that is neither a table nor a string")
      :format(req.method, req.path))
    return M.error(req, errors.raised("internal_error", "the response could not be encoded"))
  end
  local list -- nil: Content-Type: application/json alone, C's default (no list to read)
  if not (ctype == "application/json" and (headers == nil or next(headers) == nil
          or (next(headers, next(headers)) == nil and lower_is_ctype(next(headers))))) then
    list = {}
    if ctype then list[1], list[2] = "Content-Type", ctype end
    for k, v in pairs(headers or {}) do
      if not lower_is_ctype(k) then
        list[#list + 1] = k
        list[#list + 1] = v
      end
    end
  end
  return status, body, list, rawget(req, "_label"), rawget(req, "_cache"), schema_hash
end

--- The record as a table (in-process test calls read it so).
function M.read(status, body, headers, label, cache, schema)
  if status ~= 101 then -- what C writes: the list, or JSON alone; and the schema's header
    local list = {}
    for i, v in ipairs(headers or JSON_HEADERS) do list[i] = v end
    if schema then
      list[#list + 1] = "X-Mizan-Schema"
      list[#list + 1] = schema
    end
    headers = list
  end
  return { status = status, body = body, headers = headers, label = label, cache = cache }
end

--- The record for a raised protocol error `e`. While the app is broken
-- (a failed reload in dev), every 500 says why.
function M.error(req, e)
  -- mizan.error outside a function's handler (an auth predicate): only
  -- the protocol's codes, never an app's
  if e.by_app then e = require("mizan.dispatch.run").declared(nil, e, dev_mode) end
  local status, body, headers = errors.response(e.code, e.message, e.fields, e.headers, e.data, e.status)
  if e.extra then
    for k, v in pairs(e.extra) do body[k] = v end
  end
  if broken and status == 500 then
    body.error.message = body.error.message .. "\n\nThe app failed to reload; the previous code is serving:\n" .. broken
  end
  return M.record(req, status, body, headers)
end

return M
