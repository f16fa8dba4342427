-- mizan.dispatch.request: the request object a handler sees, and every
-- private field it carries. The fields below are the request's state for
-- the whole of its life (they travel with it across yields, never in a
-- module variable); the stages, mizan.session, mizan.cache and
-- mizan.invalidation read and write them with rawget/rawset, and nothing
-- else may add one: M.set refuses a name not declared here.
local errors = require "mizan.errors"
local query = require "mizan.query"
local mizan = require "mizan"
local json = require "mizan.json"

local M = {}

M.FIELDS = {
  _user = "the signed-in user (a table), or nil",
  _user_id = "the id the session names (mizan.session), before the user is loaded",
  _session = "the session's data (req.session); created on first read",
  _session_id = "the session's id (mizan.session)",
  _session_expires = "when the session ends (mizan.session)",
  _session_text = "the session's data as loaded, to see whether it changed (mizan.session)",
  _clear_cookie = "the cookie must be cleared in the answer (mizan.session)",
  _identity_read = "the handler read req.user or req.session (a shared entry is then not stored)",
  _login = "req:login(user) was called: the user",
  _logout = "req:logout() was called",
  _caller = "the user a logged-out call still belongs to (its invalidations go there)",
  _mutation = "the function running is a mutation (req:invalidate is allowed)",
  _invalidations = "targets added by req:invalidate",
  _cache_scope = "the last cache scope computed (mizan.cache.scope_for)",
  _cache_scope_of = "the session id that scope is of",
  _cache = '"hit" or "miss" when answered through the cache, for the access log',
  _label = "the registered function or context answering, for the metrics",
  _deferred = "functions req:defer queued, run after the response is written (mizan.timers)",
}

--- Set a declared private field (misuse raises: a typo is a bug).
function M.set(req, field, value)
  if not M.FIELDS[field] then error("mizan.dispatch.request: undeclared private field " .. tostring(field), 2) end
  rawset(req, field, value)
end

local Req = {}
M.methods = Req

-- Reading req.user or req.session is noticed, so a shared cache entry never
-- holds one user's data.
local function index(req, k)
  if k == "user" then
    rawset(req, "_identity_read", true)
    return rawget(req, "_user")
  elseif k == "session" then
    rawset(req, "_identity_read", true)
    local s = rawget(req, "_session")
    if not s then -- anonymous: a fresh table; writing to it starts a session
      s = {}
      rawset(req, "_session", s)
    end
    return s
  end
  return Req[k]
end
local MT = { __index = index }

--- req:login(user): sign `user` in (a table with an id); the session id rotates.
function Req:login(user)
  if type(user) ~= "table" or user.id == nil then error("req:login expects a user table with an id", 2) end
  rawset(self, "_login", user)
  rawset(self, "_user", user)
  rawset(self, "_user_id", user.id)
  rawset(self, "_logout", nil)
end

--- req:logout(): end the session, on the server too.
function Req:logout()
  local user = rawget(self, "_user")
  -- the call is still the signed-in user's: its invalidations go to that user
  if user then rawset(self, "_caller", user) end
  rawset(self, "_logout", true)
  rawset(self, "_login", nil)
  rawset(self, "_user", nil)
end

--- req:defer(fn): run fn(req, status) after the response has been written,
-- in a task of its own (the client does not wait for it). It runs whatever
-- the answer was, an error too (status says which); its error is logged.
function Req:defer(fn)
  if type(fn) ~= "function" then error("req:defer(fn): fn must be a function, got " .. type(fn), 2) end
  local list = rawget(self, "_deferred")
  if not list then
    list = {}
    rawset(self, "_deferred", list)
  end
  list[#list + 1] = fn
end

local registry -- the registry of the app being served
function M.configure(reg) registry = reg end

--- req:invalidate(target, params): add a target at run time. `target` is a
-- context or function name, or a registered function; params a table or nil.
function Req:invalidate(target, params)
  if not rawget(self, "_mutation") then error("req:invalidate is for mutations; this function is a query", 2) end
  local list = rawget(self, "_invalidations")
  if not list then
    list = {}
    rawset(self, "_invalidations", list)
  end
  local name = target
  if mizan.is_function(target) then name = target.name end
  if type(name) ~= "string" or not (registry.contexts[name] or registry.functions[name]) then
    error(("req:invalidate: unknown target %s"):format(type(name) == "string" and ("'" .. name .. "'") or tostring(target)), 2)
  end
  if params ~= nil and (type(params) ~= "table" or getmetatable(params) == json.array_mt) then
    error("req:invalidate: params must be a table of param = value", 2)
  end
  list[#list + 1] = { target = name, params = params }
end

-- Handlers that never look at the query string share one empty, frozen table.
M.EMPTY_QUERY = setmetatable({}, { __newindex = function() error("req.query is read-only", 2) end })

--- Give the request its methods (idempotent).
function M.wrap(req) return setmetatable(req, MT) end

--- The request as handlers see it: the parsed query in place of the raw one.
function M.prepare(req, parsed_query)
  local qs = req.query
  req.query = parsed_query or (qs == "" and M.EMPTY_QUERY or query.parse(qs))
  return setmetatable(req, MT)
end

return M
