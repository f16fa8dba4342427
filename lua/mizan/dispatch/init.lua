-- mizan.dispatch: the request handler C calls for every request under the
-- base path and for HTML pages from static_dir. It decides everything the
-- core leaves open, in stages, one module each:
--
--   request   the request object and every private field it carries
--   csrf      where a browser request comes from
--   session   the caller's session and user, loaded before, saved after
--   auth      a function's auth requirement
--   args      the name, the query string, a call's arguments
--   call      call/<name>/: run the function (cached, or a mutation)
--   bundle    ctx/<name>/: a context's functions as one answer
--   upgrade   the WebSocket handshake
--   ssr       an HTML page with the user's global context
--   run       app code: its errors become protocol errors
--   respond   the response record C writes; raised errors become answers
--
-- handler(req) -> the response record (see mizan.dispatch.respond).
-- Stages return status, body, headers, or raise a protocol error
-- (mizan.errors.fail); only respond turns either into the record.
local core = require "mizan.core"
local cache = require "mizan.cache"
local config = require "mizan.config"
local errors = require "mizan.errors"
local request = require "mizan.dispatch.request"
local respond = require "mizan.dispatch.respond"
local csrf = require "mizan.dispatch.csrf"
local session = require "mizan.dispatch.session"
local call = require "mizan.dispatch.call"
local bundle = require "mizan.dispatch.bundle"
local upgrade = require "mizan.dispatch.upgrade"
local ssr = require "mizan.dispatch.ssr"
local run = require "mizan.dispatch.run"
local health = require "mizan.dispatch.health"
local cors = require "mizan.dispatch.cors"

local M = {}

M.set_broken = respond.set_broken
M.script_safe = ssr.script_safe

-- Requests that entered Lua (cache hits answered by C never do).
local counters = { requests = 0 }
function M.stats() return { requests = counters.requests, cache = cache.stats() } end

-- The client's address. Behind trusted proxies (config trusted_proxies),
-- from their header: the rightmost address that is not itself a trusted
-- proxy, since each proxy appends the peer it saw and only the part they
-- wrote can be believed. From anyone else the header is ignored.
local trusted, proxy_header = {}, "x-forwarded-for"
local function client_ip(req)
  local peer = req.ip
  if not trusted[peer] then return peer end
  local value = req.headers[proxy_header]
  if not value then return peer end
  local list = {}
  for part in value:gmatch("[^,]+") do list[#list + 1] = part:match("^%s*(.-)%s*$"):lower() end
  for i = #list, 1, -1 do
    local a = list[i]
    if not trusted[a] then
      -- a proxy wrote it, so it is an address; if not, the proxy is broken:
      -- fall back to the proxy itself (its budget), never to a made-up key
      if config.is_ip(a) then return a end
      return peer
    end
  end
  return list[1] or peer -- every hop was a trusted proxy: the first one is the client
end
M.client_ip = client_ip

-- A raised protocol error passes through; anything else is a framework bug,
-- kept with its traceback for the log (the same handler app code runs under).
local on_error = run.on_error

--- Build the request handler for a loaded registry.
function M.new(reg, cfg, mode)
  request.configure(reg)
  call.configure(reg)
  bundle.configure(reg)
  ssr.configure(reg)
  csrf.configure(cfg)
  cors.configure(reg, cfg)
  trusted = {}
  for _, a in ipairs(cfg.trusted_proxies or {}) do trusted[a:lower()] = true end
  proxy_header = (cfg.proxy_header or "x-forwarded-for"):lower()
  local dev = mode ~= "production"
  local schema_doc
  local skew = require "mizan.dispatch.skew"
  skew.configure(reg, cfg)
  respond.configure(skew.schema(), dev)

  local function route(req)
    local r = req.route
    if req.method == "OPTIONS" then return cors.preflight(req) end
    if r == "call" then
      return session.around(call.stage, req, dev)
    elseif r == "ctx" then
      return session.around(bundle.stage, req, dev)
    elseif req.page then
      return ssr.stage(req, dev)
    elseif r == "ws" and not req.name and req.ws_id then
      return upgrade.stage(req)
    elseif r == "health" and cfg.health and health.known(req.name) then
      request.set(req, "_label", "health")
      return health.answer(req.name)
    elseif r == "schema" and not req.name then
      request.set(req, "_label", "schema")
      if req.method ~= "GET" and req.method ~= "HEAD" then
        errors.fail("method_not_allowed", "the schema is read with GET", nil, { Allow = "GET, HEAD" })
      end
      schema_doc = schema_doc or require("mizan.schema").document(reg, cfg)
      return 200, schema_doc
    end
    errors.fail("not_found", ("no such path: %s"):format(req.path))
  end

  -- req:defer's work starts once the record is made (mizan.timers)
  local function deferring(req, status, ...)
    require("mizan.timers").run_deferred(req, status)
    return status, ...
  end

  return function(req)
    counters.requests = counters.requests + 1
    if next(trusted) then
      req.peer_ip = req.ip
      req.ip = client_ip(req)
    end
    local ok, status, body, headers = xpcall(route, on_error, req)
    if rawget(req, "_deferred") then
      if ok then return deferring(req, respond.record(req, status, body, headers)) end
      if errors.is_raised(status) then return deferring(req, respond.error(req, status)) end
      core.log("error", "request failed: " .. status.traceback)
      return deferring(req, respond.error(req, errors.raised("internal_error", dev and status.traceback or "internal error")))
    end
    if ok then return respond.record(req, status, body, headers) end
    if errors.is_raised(status) then return respond.error(req, status) end
    core.log("error", "request failed: " .. status.traceback)
    return respond.error(req, errors.raised("internal_error", dev and status.traceback or "internal error"))
  end
end

return M
