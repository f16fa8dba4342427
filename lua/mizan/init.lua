-- mizan: the API an application writes against.
--
--   local mizan = require "mizan"
--   local client, T = mizan.client, mizan.types
--   local echo = client { input = { text = T.string } } (function(req, args) ... end)
--   mizan.register(echo, "echo")
--
-- client{} records options; register() checks them, so every misuse fails
-- while the app loads and names the function and the option.
local core = require "mizan.core"
local json = require "mizan.json"
local types = require "mizan.types"
local config = require "mizan.config"
local errors = require "mizan.errors"
local contexts = require "mizan.contexts"

local M = {
  types = types,
  json = json,
  null = json.null,
  array = json.array,
  object = json.object,
  version = core.version,
}

---------------------------------------------------------------- registry

local registry -- set by reset()

local FnRef = {}
FnRef.__index = FnRef
function FnRef.__call(self, ...) return self.handler(...) end
function FnRef.__tostring(self)
  return ("mizan function %s"):format(self.name or ("(unregistered, from " .. self.where .. ")"))
end

local function is_fnref(v) return getmetatable(v) == FnRef end
M.is_function = is_fnref

-- Options that belong to later parts of the protocol. They fail loudly
-- rather than being ignored.
local LATER = {}
local KNOWN = { input = true, output = true, query = true, description = true, context = true,
                affects = true, affects_params = true, cache = true, auth = true, errors = true }
local KNOWN_LIST = "affects, affects_params, auth, cache, context, description, errors, input, output, query"

local function caller_location(level)
  local info = debug.getinfo(level + 1, "Sl")
  if not info then return "?" end
  return ("%s:%d"):format(info.short_src, info.currentline or 0)
end

local function decorate(opts, handler, where)
  if type(handler) ~= "function" then
    error(("mizan.client{...} must decorate a function, got %s"):format(type(handler)), 3)
  end
  local ref = setmetatable({ opts = opts, handler = handler, where = where }, FnRef)
  registry.unregistered[ref] = true
  return ref
end

--- client { options } (handler), or client({ options }, handler): a function
-- reference to register. The second form cannot trip over Lua's rule that a
-- call's "(" must not start a new line.
function M.client(opts, handler)
  if type(opts) ~= "table" or is_fnref(opts) then
    error(("mizan.client expects a table of options, got %s"):format(type(opts)), 2)
  end
  local where = caller_location(2)
  if handler ~= nil then return decorate(opts, handler, where) end
  return function(fn) return decorate(opts, fn, where) end
end

-- Check one function's options; returns the compiled spec or a list of problems.
local function compile(name, opts)
  local problems = {}
  local function bad(option, msg)
    problems[#problems + 1] = ("function '%s', option '%s': %s"):format(name, option, msg)
  end
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if LATER[k] then
      bad(k, "not supported yet (" .. LATER[k] .. ")")
    elseif not KNOWN[k] then
      bad(k, "unknown option (known: " .. KNOWN_LIST .. ")")
    end
  end
  local spec = { name = name, description = opts.description }
  if opts.description ~= nil and type(opts.description) ~= "string" then
    bad("description", "must be a string")
  end
  if opts.query ~= nil and type(opts.query) ~= "boolean" then bad("query", "must be true or false") end
  if opts.context ~= nil then
    if type(opts.context) ~= "string" or opts.context == "" then
      bad("context", "must be a non-empty string naming the context")
    elseif opts.query == false then
      bad("query", "is false, but a function with a context is a query")
    else
      spec.context = opts.context == "local" and name or opts.context
      spec.local_context = opts.context == "local"
    end
  end
  if opts.auth ~= nil then
    local a = opts.auth
    if a == true or a == "staff" or a == "superuser" or type(a) == "function" then
      spec.auth = a
    else
      bad("auth", "must be true, \"staff\", \"superuser\" or function(req) -> ok[, message]")
    end
  end
  if opts.cache ~= nil then
    local c = opts.cache
    if type(c) ~= "table" then
      bad("cache", "must be a table { ttl = seconds, shared = false }")
    else
      for k in pairs(c) do
        if k ~= "ttl" and k ~= "shared" then bad("cache", ("has no option '%s' (known: shared, ttl)"):format(tostring(k))) end
      end
      if type(c.ttl) ~= "number" or c.ttl <= 0 or c.ttl ~= c.ttl then
        bad("cache", "needs ttl, a positive number of seconds")
      end
      if c.shared ~= nil and type(c.shared) ~= "boolean" then bad("cache", "shared must be true or false") end
      if opts.query == false then bad("query", "is false, but a function with a cache is a query") end
      spec.cache = { ttl = c.ttl, shared = c.shared == true }
    end
  end
  spec.kind = (opts.query or opts.context ~= nil or opts.cache ~= nil) and "query" or "mutation"

  local function typed(option, v, must_be_object)
    if v == nil then return nil end
    if not types.is_type(v) and type(v) ~= "table" then
      bad(option, ("must be a mizan.types schema or a table of fields, got %s"):format(type(v)))
      return nil
    end
    local t = types.as_type(v)
    for _, p in ipairs(types.problems(t)) do
      bad(p.path == "" and option or option .. "." .. p.path, p.message)
    end
    if must_be_object and t.kind ~= "object" then
      bad(option, "must be an object type: arguments arrive as a JSON object")
    end
    return t
  end
  spec.input = typed("input", opts.input, true) or types.object {}
  spec.output = typed("output", opts.output, false)
  spec.errors, spec.error_order = M._check_errors(opts.errors, bad, typed)
  spec.affects_decl = contexts.check_affects(spec, opts, bad, is_fnref)
  return spec, problems
end

local CODE = "^[a-z][a-z0-9_]*$"
local ERRORS_USAGE = "must be a table { code = T.object {...} | {fields...} | { status = 4xx, data = ... } | true }"

-- errors = { code = T | {fields} | { status = 4xx, data = T } | true }: the
-- errors a function may raise with mizan.error, and their data (true: none).
-- Returns { [code] = { status =, data = type|nil } } and the codes in order.
function M._check_errors(decl, bad, typed)
  if decl == nil then return nil, nil end
  if type(decl) ~= "table" or types.is_type(decl) then bad("errors", ERRORS_USAGE) return nil, nil end
  local out, order = {}, {}
  for code in pairs(decl) do order[#order + 1] = tostring(code) end
  table.sort(order)
  for _, code in ipairs(order) do
    local v, opt = decl[code], "errors." .. code
    if not code:find(CODE) then
      bad("errors", ("'%s' is not an error code: lower-case letters, digits and '_', starting with a letter"):format(code))
    elseif errors.status[code] and not errors.declarable[code] then
      bad(opt, "is one of the protocol's own codes, which only mizan raises: give the app's error a name of its own")
    else
      local status, data = nil, v
      if v == true then
        data = nil
      elseif type(v) == "table" and not types.is_type(v) and type(v.status) == "number" then
        status, data = v.status, v.data
        for k in pairs(v) do
          if k ~= "status" and k ~= "data" then bad(opt, ("has no option '%s' (known: data, status)"):format(tostring(k))) end
        end
        if status ~= math.floor(status) or status < 400 or status > 499 then
          bad(opt .. ".status", "must be an integer from 400 to 499 (a client error)")
        elseif errors.status[code] and status ~= errors.status[code] then
          bad(opt .. ".status", ("must be %d, the protocol's status for '%s'"):format(errors.status[code], code))
        end
      elseif type(v) ~= "table" then
        bad(opt, ERRORS_USAGE .. (", got %s"):format(type(v)))
        data = nil
      end
      out[code] = { status = status or errors.default_status(code), data = data ~= nil and typed(opt, data, false) or nil }
    end
  end
  return out, order
end

--- register(fnref, name): publish a function under `name`.
function M.register(ref, name)
  if not is_fnref(ref) then
    error(("mizan.register expects a function made by mizan.client{...}, got %s"):format(type(ref)), 2)
  end
  if type(name) ~= "string" or not name:find("^[%a_][%w_%.%-]*$") then
    error(("mizan.register: invalid function name %s (letters, digits, '_', '.', '-'; not starting with a digit)")
      :format(type(name) == "string" and ("'" .. name .. "'") or type(name)), 2)
  end
  if registry.functions[name] then
    error(("mizan.register: function '%s' is already registered (at %s)"):format(name, registry.functions[name].where), 2)
  end
  if ref.name then
    error(("mizan.register: this function is already registered as '%s'"):format(ref.name), 2)
  end
  local spec, problems = compile(name, ref.opts)
  if #problems == 0 and spec.context then contexts.join(registry, spec, problems) end
  if #problems > 0 then error(table.concat(problems, "\n"), 2) end
  spec.handler = ref.handler
  spec.where = ref.where
  if spec.local_context then
    core.log("warn", ("%s: function '%s': context = \"local\" is deprecated; write context = \"%s\" "
      .. "(a context of its own, named after the function) instead"):format(ref.where, name, name))
  end
  ref.name = name
  ref.spec = spec
  registry.unregistered[ref] = nil
  registry.functions[name] = spec
  registry.order[#registry.order + 1] = name
  if spec.cache then registry.cached[name] = spec end
  return ref
end

--- The registry: { functions = {name = spec}, order = {names...}, contexts = {name = group} }.
function M.registry() return registry end

--- The functions grouped by context: { [context] = { name=, functions = {names...},
-- params = { [p] = { type=, required=, functions = {...} } }, order = {params...} } }.
function M.context_groups() return registry.contexts end

function M._reset(mode)
  registry = { functions = {}, order = {}, contexts = {}, context_order = {}, cached = {},
               channels = {}, channel_order = {},
               unregistered = setmetatable({}, { __mode = "k" }), mode = mode or core.mode }
  config.reset()
end

--- Called by the host once app.lua has run: resolves what needs the whole
-- registry (affects targets). Raises the load error.
function M._finalize()
  local problems = contexts.resolve(registry, is_fnref)
  if #problems > 0 then error(table.concat(problems, "\n"), 0) end
end
M._reset()

---------------------------------------------------------------- runtime helpers

--- mizan.sleep(seconds): yield this request to the loop; other requests run meanwhile.
M.sleep = core.sleep
--- mizan.log(level, message): one line on stderr ("info", "warn", "error").
M.log = core.log

--- mizan.auth (user_loader, accounts), mizan.db (SQLite) and mizan.forms, loaded on first use.
setmetatable(M, { __index = function(t, k)
  if k == "auth" or k == "db" or k == "forms" or k == "channels" then
    local mod = require("mizan." .. k)
    rawset(t, k, mod)
    return mod
  end
end })

--- mizan.after(seconds, fn), mizan.every(seconds, fn): timers (mizan.timers).
local timers = require "mizan.timers"
M.after, M.every = timers.after, timers.every
--- mizan.now(): the clock timers and jobs obey (the test client's fake one under it).
M.now = timers.now

--- mizan.job "name" { ... }; mizan.jobs.enqueue / get / list / retry / cancel (mizan.jobs)
local jobs = require "mizan.jobs"
M.job = jobs.job
M.jobs = { enqueue = jobs.enqueue, get = jobs.get, list = jobs.list, retry = jobs.retry, cancel = jobs.cancel }

--- mizan.channel "name" { ... } (see mizan.channels)
function M.channel(name) return require("mizan.channels").channel(name) end

--- mizan.stats(): { requests = <entered Lua>, cache = { hits, misses, fast_hits, ... } }
function M.stats() return require("mizan.dispatch").stats() end

--- mizan.cache.purge(target, params), mizan.cache.stats()
M.cache = setmetatable({}, { __index = function(_, k) return require("mizan.cache")[k] end })

--- mizan.http.request{...}, mizan.http.get(url, opts), mizan.http.post(url, opts) (see mizan.http)
M.http = setmetatable({}, { __index = function(_, k) return require("mizan.http")[k] end })

--- mizan.config { listen=, secret=, base_path=, limits=, cache= }
M.config = function(t) config.set(t) end

local Response = {}
Response.__index = Response

--- mizan.response { status=, headers=, body= }: a raw HTTP response (the view path).
function M.response(t)
  if type(t) ~= "table" then error("mizan.response expects a table", 2) end
  local status = t.status or 200
  if type(status) ~= "number" or status ~= math.floor(status) or status < 200 or status > 599 then
    error("mizan.response: status must be an integer from 200 to 599", 2)
  end
  if t.headers ~= nil and type(t.headers) ~= "table" then error("mizan.response: headers must be a table", 2) end
  if t.body ~= nil and type(t.body) ~= "string" and type(t.body) ~= "table" then
    error("mizan.response: body must be a string or a table (sent as JSON)", 2)
  end
  return setmetatable({ status = status, headers = t.headers or {}, body = t.body }, Response)
end
function M.is_response(v) return getmetatable(v) == Response end

--- mizan.error(code[, message][, data]): stop the call with an error, e.g.
-- mizan.error("not_found", { id = 3 }) for a code the function declares
-- (client { errors = { not_found = { id = T.integer } } }), whose data is
-- checked against the declaration; or a protocol code as before,
-- mizan.error("validation_error", "message", fields). A code the function
-- does not declare and the protocol does not know answers 500 (logged).
function M.error(code, message, payload)
  if type(code) ~= "string" or not code:find(CODE) then
    error(("mizan.error: the code must be a name such as \"not_found\" (lower-case letters, digits, '_'), got %s")
      :format(type(code) == "string" and ("'" .. code .. "'") or type(code)), 2)
  end
  if type(message) == "table" and payload == nil then message, payload = nil, message end
  if message ~= nil and type(message) ~= "string" then
    error(("mizan.error: the message must be a string, got %s"):format(type(message)), 2)
  end
  error(errors.raised_by_app(code, message, payload), 2)
end

return M
