-- mizan.http: outbound HTTP(S) from a function, on the loop (core/http_client.c,
-- libcurl driven by libuv). The calling task yields until the answer; other
-- requests run meanwhile.
--
--   local res, err, kind = mizan.http.request { method = "POST", url = "https://api.example.com/pay",
--     json = { amount = 100 }, timeout = 5 }
--   if not res then ... end      -- err: "timeout: ...", kind: "timeout"
--   res.status, res.headers["content-type"], res.body, res.json
--
-- Options (a wrong type or an unknown name raises, naming the option):
--   method           "GET" (default), "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"
--   url              http:// or https:// (required)
--   headers          { name = value }; values strings or numbers
--   body             a string; or json = a table, sent with Content-Type application/json
--   timeout          seconds for the whole exchange (default 30)
--   connect_timeout  seconds to connect, TLS handshake included (default 10)
--   idle_timeout     seconds a pooled keep-alive connection may sit idle and still be reused (default 60)
--   max_body         bytes of the response body, refused while reading past it (default 8 MiB)
--   redirects        how many redirects to follow (default 0: a 3xx is the answer)
--   verify           false turns certificate and host name checks off (default true)
--   ca_file          a PEM file of CAs trusted besides the system store (default: the
--                    config's http.ca_file / MIZAN_HTTP_CA_FILE)
--
-- The answer: { status, headers, body, url, json }. Any status is an answer
-- (a 404 too). headers: lowercase names; a repeated header's values are
-- joined with ", ", except set-cookie, which is always a list. url: where
-- the answer came from (after redirects). json: the body decoded, on first
-- access; nil when the body is not JSON.
--
-- A failure returns nil, "<kind>: <message>", kind, with kind one of:
--   "timeout"    the connect or total timeout passed
--   "connect"    the connection was refused or unreachable
--   "dns"        the host name did not resolve
--   "tls"        the handshake or the certificate check failed
--   "too_big"    the body passed max_body
--   "closed"     the server closed the connection or sent an incomplete answer
--   "redirects"  more redirects than allowed
--   "protocol"   not a valid HTTP answer
--   "cancelled"  the worker is shutting down or reloading
--   "failed"     anything else
--
-- Connections are kept alive per worker and per scheme, host and port. A
-- GET, HEAD, PUT, DELETE or OPTIONS that finds its pooled connection closed
-- by the server is sent once more on a new one; a POST or PATCH is never
-- sent twice: it always takes a new connection.
local core_http = require "mizan.httpc"
local json = require "mizan.json"

local M = {}

M.defaults = { timeout = 30, connect_timeout = 10, idle_timeout = 60, max_body = 8 * 1024 * 1024, redirects = 0 }

local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true, DELETE = true, OPTIONS = true }
local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local KNOWN = { method = true, url = true, headers = true, body = true, json = true, timeout = true,
                connect_timeout = true, idle_timeout = true, max_body = true, redirects = true,
                verify = true, ca_file = true }

-- Raise at the caller's line: the first frame outside this file.
local function misuse(msg)
  for level = 3, 20 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and not info.source:find("mizan/http%.lua$") then
      error(("%s:%d: mizan.http: %s"):format(info.short_src, info.currentline, msg), 0)
    end
  end
  error("mizan.http: " .. msg, 0)
end

local function seconds(opts, k)
  local v = opts[k]
  if v == nil then return M.defaults[k] end
  if type(v) ~= "number" or not (v > 0) or v == math.huge then
    misuse(("option '%s' must be a positive number of seconds, got %s"):format(k, tostring(v)))
  end
  return v
end

local function count(opts, k, min)
  local v = opts[k]
  if v == nil then return M.defaults[k] end
  if type(v) ~= "number" or v ~= math.floor(v) or v < min or v > 2 ^ 52 then
    misuse(("option '%s' must be a whole number >= %d, got %s"):format(k, min, tostring(v)))
  end
  return v
end

local function readable(path, k)
  local f = io.open(path, "r")
  if not f then misuse(("option '%s': cannot read '%s'"):format(k, path)) end
  f:close()
end

-- The spec C reads (core/http_client.c l_request), from the checked options.
local function build(opts)
  if type(opts) ~= "table" then misuse("expects a table of options") end
  for k in pairs(opts) do
    if not KNOWN[k] then misuse(("unknown option '%s'"):format(tostring(k))) end
  end
  local url = opts.url
  if type(url) ~= "string" or not url:find("^[hH][tT][tT][pP][sS]?://[^/?#%s]+") or url:find("[%c%s]") then
    misuse(("option 'url' must be an http:// or https:// URL without spaces, got %s"):format(tostring(url)))
  end
  local method = opts.method or "GET"
  if type(method) ~= "string" or not METHODS[method:upper()] then
    misuse(("option 'method' must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, got %s"):format(tostring(method)))
  end
  method = method:upper()
  local body = opts.body
  if body ~= nil and type(body) ~= "string" then misuse("option 'body' must be a string") end
  local lines, has = {}, {}
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then misuse("option 'headers' must be a table of name = value") end
    for name, value in pairs(opts.headers) do
      if type(name) ~= "string" or not name:find("^[%w!#$%%&'*+%-.^_`|~]+$") then
        misuse(("option 'headers': '%s' is not a header name"):format(tostring(name)))
      end
      if type(value) == "number" then value = tostring(value) end
      if type(value) ~= "string" or value:find("[\r\n%z]") then
        misuse(("option 'headers': the value of '%s' must be a string on one line"):format(name))
      end
      has[name:lower()] = true
      lines[#lines + 1] = name .. ": " .. value
    end
  end
  if opts.json ~= nil then
    if body ~= nil then misuse("give 'body' or 'json', not both") end
    if type(opts.json) ~= "table" then misuse("option 'json' must be a table") end
    local encoded, err = json.encode(opts.json)
    if not encoded then misuse("option 'json' cannot be encoded: " .. tostring(err)) end
    body = encoded
    if not has["content-type"] then lines[#lines + 1] = "Content-Type: application/json" end
  end
  -- a method that carries a body says so even when it is empty (Content-Length: 0)
  if body == nil and (method == "POST" or method == "PUT" or method == "PATCH") then body = "" end
  if not has["user-agent"] then lines[#lines + 1] = "User-Agent: mizan" end
  -- no "Expect: 100-continue" round trip before a body
  if not has["expect"] then lines[#lines + 1] = "Expect:" end
  local verify = opts.verify
  if verify ~= nil and type(verify) ~= "boolean" then misuse("option 'verify' must be true or false") end
  local ca_file = opts.ca_file
  if ca_file ~= nil then
    if type(ca_file) ~= "string" or ca_file == "" then misuse("option 'ca_file' must be a file path") end
    readable(ca_file, "ca_file")
  else
    local cfg = require("mizan.config").get()
    local c = cfg and cfg.http and cfg.http.ca_file
    if c and c ~= "" then readable(c, "http.ca_file (config)"); ca_file = c end
  end
  return {
    method = method, url = url, headers = lines, body = body, ca_file = ca_file,
    verify = verify ~= false,
    timeout_ms = math.ceil(seconds(opts, "timeout") * 1000),
    connect_timeout_ms = math.ceil(seconds(opts, "connect_timeout") * 1000),
    idle_s = math.max(1, math.ceil(seconds(opts, "idle_timeout"))),
    max_body = count(opts, "max_body", 0),
    redirects = count(opts, "redirects", 0),
    fresh = not IDEMPOTENT[method],
  }
end

--- The header block of the last response -> { name = value | {set-cookie...} }.
function M.parse_headers(block)
  local out = {}
  for line in block:gmatch("[^\r\n]+") do
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      if name == "set-cookie" then
        local list = out[name] or {}
        list[#list + 1] = value
        out[name] = list
      elseif out[name] then
        out[name] = out[name] .. ", " .. value
      else
        out[name] = value
      end
    end
  end
  return out
end

-- headers and json are made on first access: a caller that reads only
-- the body pays for neither
local Response = {}
Response.__index = function(res, k)
  if k == "headers" then
    local v = M.parse_headers(res._head) -- always present: no __index
    rawset(res, "headers", v)
    return v
  elseif k == "json" then
    local v = json.decode(res.body)
    rawset(res, "json", v)
    return v
  end
end

--- request{...} -> res | nil, err, kind (see the top of this file).
function M.request(opts)
  local spec = build(opts)
  local status, head, body, url = core_http.request(spec)
  if not status then return nil, ("%s: %s"):format(body, head), body end
  return setmetatable({ status = status, _head = head, body = body, url = url }, Response)
end

local function with(method, url, opts)
  if opts ~= nil and type(opts) ~= "table" then misuse("the options must be a table") end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.url, o.method = url, o.method or method
  return M.request(o)
end

--- get(url, opts), post(url, opts): request with that method.
function M.get(url, opts) return with("GET", url, opts) end
function M.post(url, opts) return with("POST", url, opts) end

return M
