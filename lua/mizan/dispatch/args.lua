-- mizan.dispatch.args: what the URL and the body say: the name in
-- call/<name>/ or ctx/<name>/, the query string, and a call's arguments,
-- validated against the function's input. Bad input is raised.
local json = require "mizan.json"
local types = require "mizan.types"
local errors = require "mizan.errors"
local query = require "mizan.query"
local utf8 = require "mizan.utf8"
local request = require "mizan.dispatch.request"

local ARRAY_MT = json.array_mt
local M = {}

local function is_json(ct)
  if ct == "application/json" then return true end -- the common case, without patterns
  if not ct then return false end
  local base = ct:match("^%s*([^;%s]+)")
  return base ~= nil and base:lower() == "application/json"
end

--- The name in call/<name>/ or ctx/<name>/, percent-decoded: the name, or
-- nil and how to show it when it is no text (invalid UTF-8 names nothing).
function M.route_name(req)
  local raw = req.name
  if not raw then return nil, "" end
  local name = query.unescape_path(raw)
  if not utf8.valid(name) then return nil, utf8.printable(raw) end
  return name
end

--- The query string, parsed once for the whole request; raises when a key
-- or a value is not UTF-8 text (a query carries text; the bytes would fail
-- later, in JSON, as a 500).
function M.query(req)
  local qs = req.query
  if qs == "" then return request.EMPTY_QUERY end
  local params, bad = query.parse(qs), nil
  for k, v in pairs(params) do
    local ok = utf8.valid(k)
    if type(v) == "table" then
      for _, x in ipairs(v) do ok = ok and utf8.valid(x) end
    else
      ok = ok and utf8.valid(v)
    end
    if not ok then
      bad = bad or {}
      bad[utf8.printable(k)] = { "is not valid UTF-8 text" }
    end
  end
  if bad then errors.fail("validation_error", "the query string is not valid UTF-8 text", bad) end
  return params
end

local function not_allowed(name, method, kind)
  local allow = kind == "query" and "GET, HEAD, POST" or "POST"
  local why = kind == "query" and "call it with GET or POST" or "it is a mutation: call it with POST"
  errors.fail("method_not_allowed", ("'%s' does not accept %s: %s"):format(name, method, why), nil, { Allow = allow })
end

--- The validated arguments of a call (POST: the JSON body; a query's GET:
-- the params); raises when they are not acceptable.
function M.of_call(spec, req, params)
  local method = req.method
  if method == "POST" then
    if not is_json(req.headers["content-type"]) then
      errors.fail("unsupported_media_type", "a call must send Content-Type: application/json")
    end
    local args, err = {}, nil
    if req.body ~= "" then
      args, err = json.decode(req.body)
      if args == nil then errors.fail("invalid_json", "the body is not valid JSON: " .. err) end
    end
    if type(args) ~= "table" or getmetatable(args) == ARRAY_MT then
      errors.fail("validation_error", "the arguments must be a JSON object", { __all__ = { "must be an object" } })
    end
    local out, errs = types.validate(spec.input, args)
    if errs then errors.fail("validation_error", "the arguments are not valid", errs) end
    return out
  elseif (method == "GET" or method == "HEAD") and spec.kind == "query" then
    local out, errs = types.validate(spec.input, params, true)
    if errs then errors.fail("validation_error", "the arguments are not valid", errs) end
    return out
  end
  not_allowed(spec.name, method, spec.kind)
end

-- Merge one function's validation errors into the bundle's, without
-- repeating a message two functions share for one elevated param.
local function merge_errors(into, errs)
  for path, msgs in pairs(errs) do
    local list = into[path] or {}
    into[path] = list
    for _, m in ipairs(msgs) do
      local dup = false
      for _, have in ipairs(list) do dup = dup or have == m end
      if not dup then list[#list + 1] = m end
    end
  end
end

--- The arguments of each function of a context, from the shared params;
-- raises with every function's errors merged.
function M.of_context(group, functions, params)
  local argsets, all = {}, nil
  for _, fname in ipairs(group.functions) do
    local spec = functions[fname]
    local sub = {}
    for _, field in ipairs(spec.input.order) do sub[field] = params[field] end
    local args, errs = types.validate(spec.input, sub, true)
    if errs then
      all = all or {}
      merge_errors(all, errs)
    end
    argsets[fname] = args
  end
  if all then errors.fail("validation_error", "the context params are not valid", all) end
  return argsets
end

return M
