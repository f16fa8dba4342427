-- mizan.forms: Django-style forms declared in Lua.
--
--   forms.form "contact" {
--     title = "Contact Us",
--     fields = { forms.char "name" { max_length = 100 }, forms.email "email" {} },
--     clean = function(data) if ... then return { email = "...", __all__ = { "..." } } end end,
--     on_submit_success = function(req, data) return { sent = true } end,
--     auth = ..., affects = ..., affects_params = ...,
--   }
--
-- registers contact.schema (the fields, for rendering), contact.validate
-- ({valid, errors} without submitting) and contact.submit (validate, then
-- on_submit_success). Errors have Django's shape and wording.
local mizan = require "mizan"
local json = require "mizan.json"
local fields = require "mizan.forms.fields"

local M = {}
local T = mizan.types

local COMMON = { required = true, label = true, help_text = true, initial = true, disabled = true }
local KINDS = { "char", "text", "email", "url", "integer", "decimal", "boolean", "choice", "multiple_choice",
                "date", "datetime" }

local Field = {}
Field.__index = Field

-- forms.char "name" { options }: a field declaration (checked when the form is).
for _, kind in ipairs(KINDS) do
  M[kind] = function(name)
    return function(opts)
      return setmetatable({ kind = kind, name = name, opts = opts or {} }, Field)
    end
  end
end

-- "first_name" -> "First name", as Django labels a field.
local function label_of(name)
  local s = name:gsub("_", " ")
  return s:sub(1, 1):upper() .. s:sub(2)
end

-- Every problem with one field's declaration.
local function field_problems(f)
  local out = {}
  local spec = fields[f.kind]
  if type(f.opts) ~= "table" then return { "options must be a table" } end
  local keys = {}
  for k in pairs(f.opts) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = f.opts[k]
    if COMMON[k] then
      if (k == "required" or k == "disabled") and type(v) ~= "boolean" then
        out[#out + 1] = ("option '%s' must be true or false"):format(k)
      elseif (k == "label" or k == "help_text") and type(v) ~= "string" then
        out[#out + 1] = ("option '%s' must be a string"):format(k)
      end
    elseif spec.options[k] then
      local err = spec.options[k](v)
      if err then out[#out + 1] = ("option '%s' %s"):format(k, err) end
    else
      out[#out + 1] = ("%s fields have no option '%s'"):format(f.kind, k)
    end
  end
  if (f.kind == "choice" or f.kind == "multiple_choice") and f.opts.choices == nil then
    out[#out + 1] = "a choice field needs choices, a list of {value, label} pairs"
  end
  local o = f.opts
  local lo, hi = o.min_length or o.min_value, o.max_length or o.max_value
  if type(lo) == "number" and type(hi) == "number" and lo > hi then
    out[#out + 1] = ("the minimum (%s) is greater than the maximum (%s)"):format(lo, hi)
  end
  if type(o.max_digits) == "number" and type(o.decimal_places) == "number" and o.decimal_places > o.max_digits then
    out[#out + 1] = "decimal_places is greater than max_digits"
  end
  if o.initial ~= nil and #out == 0 then
    local _, errs = fields[f.kind].clean(f, o.initial)
    if errs then out[#out + 1] = "the initial value is not valid: " .. errs[1] end
  end
  return out
end

---------------------------------------------------------------- validation

local function add(errors, field, msg)
  errors[field] = errors[field] or {}
  table.insert(errors[field], msg)
end

--- Validate `data` (a table of submitted values) against a form. Returns the
-- cleaned data and nil, or nil and the errors in Django's shape.
function M.validate(form, data)
  local cleaned, errors = {}, {}
  for _, f in ipairs(form.fields) do
    local v = data[f.name]
    if f.opts.disabled then v = f.opts.initial end -- a disabled field keeps its initial value
    local required = f.opts.required ~= false
    local is_empty = fields.empty(v) or (type(v) == "string" and f.opts.strip ~= false and
      (f.kind == "char" or f.kind == "text" or f.kind == "email" or f.kind == "url") and fields.strip(v) == "")
    if f.kind == "boolean" then
      local b = fields.boolean.clean(f, v)
      if required and not b then add(errors, f.name, fields.REQUIRED) else cleaned[f.name] = b end
    elseif is_empty then
      if required then add(errors, f.name, fields.REQUIRED) else cleaned[f.name] = fields.empty_value(f.kind) end
    else
      local value, errs = fields[f.kind].clean(f, v)
      if errs then
        for _, m in ipairs(errs) do add(errors, f.name, m) end
      else
        cleaned[f.name] = value
      end
    end
  end
  if form.clean then
    -- cross-field checks see what validated; they may change it, or return
    -- errors: { field = "msg" | { "msg", ... }, __all__ = ... }
    local extra = form.clean(cleaned)
    if type(extra) == "table" then
      for field, msgs in pairs(extra) do
        if type(msgs) == "string" then msgs = { msgs } end
        for _, m in ipairs(msgs) do add(errors, field, m) end
        if field ~= "__all__" then cleaned[field] = nil end
      end
    end
  end
  if next(errors) then return nil, errors end
  return cleaned
end

---------------------------------------------------------------- export

-- The full spec of a field: enough for a client to validate exactly alike.
local function field_export(f)
  local o = f.opts
  local out = {
    name = f.name, kind = f.kind, label = o.label or label_of(f.name),
    required = o.required ~= false, help_text = o.help_text or "",
    initial = o.initial == nil and json.null or o.initial, disabled = o.disabled == true,
    constraints = json.object {},
  }
  for k in pairs(fields[f.kind].options) do
    if k ~= "choices" and o[k] ~= nil then out.constraints[k] = o[k] end
  end
  if f.kind == "char" or f.kind == "text" or f.kind == "email" or f.kind == "url" then
    out.constraints.strip = o.strip ~= false
  end
  if o.choices then
    out.choices = json.array {}
    for i, c in ipairs(o.choices) do out.choices[i] = { value = c[1], label = c[2] } end
  end
  return out
end

---------------------------------------------------------------- declaring

local function caller(level)
  local info = debug.getinfo(level + 1, "Sl")
  return info and ("%s:%d"):format(info.short_src, info.currentline or 0) or "?"
end

local FORM_KEYS = { title = true, fields = true, clean = true, on_submit_success = true, auth = true,
                    affects = true, affects_params = true, description = true }

--- forms.form "name" { ... }
function M.form(name)
  if type(name) ~= "string" or not name:find("^[%a_][%w_%-]*$") then
    error("forms.form: a form needs a name (letters, digits, '_', '-')", 2)
  end
  return function(def)
    local where = caller(2)
    local problems = {}
    local function bad(field, msg)
      problems[#problems + 1] = field and ("form '%s', field '%s': %s"):format(name, field, msg)
        or ("form '%s': %s"):format(name, msg)
    end
    if type(def) ~= "table" then error(("forms.form '%s' expects a table"):format(name), 2) end
    for k in pairs(def) do
      if not FORM_KEYS[k] then bad(nil, ("unknown option '%s'"):format(tostring(k))) end
    end
    if type(def.fields) ~= "table" or #def.fields == 0 then bad(nil, "fields must be a non-empty list") end
    if def.clean ~= nil and type(def.clean) ~= "function" then bad(nil, "clean must be a function") end
    if type(def.on_submit_success) ~= "function" then
      bad(nil, "on_submit_success must be a function(req, data)")
    end
    local seen, declared = {}, {}
    for i, f in ipairs(type(def.fields) == "table" and def.fields or {}) do
      if getmetatable(f) ~= Field then
        bad(nil, ("field #%d is not a field (write forms.char \"name\" { ... })"):format(i))
      elseif type(f.name) ~= "string" or not f.name:find("^[%a_][%w_]*$") then
        bad(nil, ("field #%d has an invalid name"):format(i))
      elseif seen[f.name] then
        bad(f.name, "a duplicate field name")
      else
        seen[f.name] = true
        for _, p in ipairs(field_problems(f)) do bad(f.name, p) end
        declared[#declared + 1] = f
      end
    end
    if #problems > 0 then error(table.concat(problems, "\n"), 2) end

    local form = { name = name, title = def.title or label_of(name), fields = declared, clean = def.clean }
    local exported = { name = name, title = form.title, fields = json.array {} }
    local input = {}
    for i, f in ipairs(declared) do
      exported.fields[i] = field_export(f)
      input[f.name] = T.optional(T.any) -- the form validates; unknown fields are dropped
    end
    form.export = exported

    local client = mizan.client
    local function publish(fname, opts, fn)
      local ref = client(opts, fn)
      ref.where = where -- load errors point at the form, not at this file
      mizan.register(ref, fname)
    end

    publish(name .. ".schema", { query = true, auth = def.auth,
                                 description = ("The fields of the %s form."):format(name) }, function()
      return exported
    end)

    publish(name .. ".validate", { query = true, auth = def.auth, input = input,
                                   description = ("Validate the %s form without submitting it."):format(name) },
      function(req, args)
        local _, errors = M.validate(form, args)
        return { valid = errors == nil, errors = errors or json.object {} }
      end)

    publish(name .. ".submit", { auth = def.auth, input = input, affects = def.affects,
                                 affects_params = def.affects_params,
                                 description = def.description or ("Submit the %s form."):format(name) },
      function(req, args)
        local cleaned, errors = M.validate(form, args)
        if not cleaned then mizan.error("validation_error", "the form has errors", errors) end
        return def.on_submit_success(req, cleaned)
      end)

    local reg = mizan.registry()
    reg.forms = reg.forms or { list = {} }
    exported.auth = require("mizan.auth").export(def.auth)
    exported.functions = { schema = name .. ".schema", validate = name .. ".validate", submit = name .. ".submit" }
    reg.forms[name] = exported
    reg.forms.list[#reg.forms.list + 1] = name
    form.where = where
    return form
  end
end

return M
