-- mizan.contexts: grouping reads into contexts, param elevation, and the
-- static side of `affects` (which targets a mutation invalidates).
--
-- A context's params are the union of its functions' inputs ("elevation").
-- A name used with two different types is a load error. Targets are names
-- unique across contexts and functions, resolved once the whole app loaded.
local json = require "mizan.json"
local types = require "mizan.types"

local M = {}

-- The type a param has, with optional() peeled off: the comparison key is
-- its JSON Schema without default and description, which do not change the
-- values a client may send.
local function base_type(t)
  while t.kind == "optional" do t = t.inner end
  return t
end

local function type_key(t)
  local s = types.json_schema(base_type(t))
  s.default, s.description = nil, nil
  return json.canonical(s)
end

local function type_words(t)
  local b = base_type(t)
  return "T." .. b.kind
end

local function is_required(t) return t.kind ~= "optional" and t.opts.default == nil end

--- Add a query with a context to its group, elevating its params. Problems
-- (a param typed two ways) are appended to `problems`.
function M.join(reg, spec, problems)
  local name = spec.context
  local group = reg.contexts[name]
  if not group then
    group = { name = name, functions = {}, params = {}, order = {} }
    reg.contexts[name] = group
    reg.context_order[#reg.context_order + 1] = name
  end
  for _, field in ipairs(spec.input.order) do
    local t = spec.input.fields[field]
    local p = group.params[field]
    if p and p.key ~= type_key(t) then
      problems[#problems + 1] = ("function '%s', option 'input.%s': context '%s' already has param '%s' "
        .. "with another type (%s in function '%s', %s here); a context's params are shared by its functions")
        :format(spec.name, field, name, field, type_words(p.type), p.functions[1], type_words(t))
    end
  end
  if #problems > 0 then return end
  group.functions[#group.functions + 1] = spec.name
  for _, field in ipairs(spec.input.order) do
    local t = spec.input.fields[field]
    local p = group.params[field]
    if not p then
      p = { type = base_type(t), key = type_key(t), required = false, functions = {} }
      group.params[field] = p
      group.order[#group.order + 1] = field
      table.sort(group.order)
    end
    p.required = p.required or is_required(t)
    p.functions[#p.functions + 1] = spec.name
  end
end

--- Check the shape of `affects` and `affects_params` when a function is
-- registered. Returns the declared targets (names and function references)
-- for resolve() to finish once every function is registered.
function M.check_affects(spec, opts, bad, is_fnref)
  local affects, params = opts.affects, opts.affects_params
  if affects == nil then
    if params ~= nil then bad("affects_params", "needs affects: it says which params of the targets to invalidate") end
    return nil
  end
  if opts.context ~= nil then
    bad("affects", "cannot be combined with context: a function either reads a context or changes data")
    return nil
  end
  if spec.kind == "query" then
    bad("affects", "is only for mutations, and this function is a query")
    return nil
  end
  local list = affects
  if type(affects) == "string" or is_fnref(affects) then list = { affects } end
  if type(list) ~= "table" or #list == 0 then
    bad("affects", "must be a context name, a function, or a non-empty list of them")
    return nil
  end
  local decl = {}
  for i, item in ipairs(list) do
    if (type(item) == "string" and item ~= "") or is_fnref(item) then
      decl[#decl + 1] = item
    else
      bad("affects", ("item #%d must be a context or function name, or a function made by mizan.client, got %s")
        :format(i, type(item)))
    end
  end
  if params ~= nil then
    if type(params) == "table" then
      for k, v in pairs(params) do
        if type(k) ~= "string" or type(v) ~= "string" then
          bad("affects_params", "must map target param names to argument names (strings)")
        elseif not spec.input.fields[v] then
          bad("affects_params", ("maps '%s' to argument '%s', which is not in this function's input"):format(k, v))
        end
      end
    elseif type(params) ~= "function" then
      bad("affects_params", ("must be a table { target_param = \"arg_name\" } or a function(req, args, result), got %s")
        :format(type(params)))
    end
    spec.affects_params = params
  end
  return decl
end

-- The params a target has: a context's elevated params, a function's inputs.
local function target_params(reg, name)
  local group = reg.contexts[name]
  if group then return group.params end
  return reg.functions[name].input.fields
end

--- Resolve every mutation's targets against the whole registry. Returns the
-- list of problems (empty when all is well).
function M.resolve(reg, is_fnref)
  local problems = {}
  for _, fname in ipairs(reg.order) do
    local spec = reg.functions[fname]
    local function bad(msg)
      problems[#problems + 1] = ("%s: function '%s', option 'affects': %s"):format(spec.where or "?", fname, msg)
    end
    if spec.affects_decl then
      local targets, seen, before = {}, {}, #problems
      for _, item in ipairs(spec.affects_decl) do
        local name = item
        if is_fnref(item) then
          name = item.name
          if not name then bad(("a target function (made at %s) was never registered"):format(item.where)) end
        end
        local fn, group = name and reg.functions[name], name and reg.contexts[name]
        if not name then
          -- reported above
        elseif fn and group and not (#group.functions == 1 and group.functions[1] == name) then
          bad(("target '%s' is both a context and a function; rename one of them"):format(name))
        elseif not fn and not group then
          bad(("unknown target '%s': no context or function has that name"):format(name))
        elseif fn and not group and fn.kind ~= "query" then
          bad(("target '%s' is a mutation; only contexts and queries hold data to invalidate"):format(name))
        elseif not seen[name] then
          seen[name] = true
          targets[#targets + 1] = { name = name, params = target_params(reg, name) }
        end
      end
      -- only judge affects_params against targets that all resolved
      if type(spec.affects_params) == "table" and #problems == before then
        for k in pairs(spec.affects_params) do
          local used = false
          for _, t in ipairs(targets) do used = used or t.params[k] ~= nil end
          if not used and #targets > 0 then
            problems[#problems + 1] = ("%s: function '%s', option 'affects_params': '%s' is not a param of any target")
              :format(spec.where or "?", fname, k)
          end
        end
      end
      spec.affects = targets
    end
  end
  return problems
end

return M
