-- mizan.types: schemas for function inputs and outputs.
--
-- A type works bare (T.string) or called with options (T.string { max_length = 9 }).
-- Containers take their parts first: T.array(T.string, { max_items = 10 }),
-- T.optional(T.integer), T.enum { "a", "b" }, T.object { x = T.number }.
-- A plain table where a type is expected means T.object of it.
--
-- Misuse never raises here: a bad option is recorded on the type, and
-- `types.problems` reports every one of them when the function is registered,
-- so the load error can name the function and the option.
local json = require "mizan.json"

local null = json.null
local ARRAY_MT = json.array_mt
local M = {}

local Type = {}
Type.__index = Type

local function is_type(v) return getmetatable(v) == Type end
M.is_type = is_type

-- Options each kind accepts, with a checker returning an error message or nil.
local function nonneg_int(v)
  if type(v) ~= "number" or v < 0 or v ~= math.floor(v) then return "must be a non-negative integer" end
end
local function number(v) if type(v) ~= "number" then return "must be a number" end end
local function str(v) if type(v) ~= "string" then return "must be a string" end end
local function pattern(v)
  if type(v) ~= "string" then return "must be a Lua pattern string" end
  local ok, err = pcall(string.find, "", v)
  if not ok then return "is not a valid Lua pattern: " .. tostring(err):gsub("^.-:%d+: ", "") end
end
local function anything() end

local STRING_OPTS = { min_length = nonneg_int, max_length = nonneg_int, pattern = pattern,
                      default = anything, description = str }
local OPTIONS = {
  string = STRING_OPTS, email = STRING_OPTS, url = STRING_OPTS, datetime = STRING_OPTS,
  integer = { min = number, max = number, default = anything, description = str },
  number = { min = number, max = number, default = anything, description = str },
  boolean = { default = anything, description = str },
  any = { default = anything, description = str },
  array = { max_items = nonneg_int, min_items = nonneg_int, default = anything, description = str },
  object = { description = str },
  enum = { default = anything, description = str },
  literal = { default = anything, description = str },
  optional = { description = str },
  nullable = { description = str },
}

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = tostring(k) end
  table.sort(ks)
  return ks
end

local function new(kind, fields)
  fields.kind = kind
  fields.opts = fields.opts or {}
  fields.problems = fields.problems or {}
  return setmetatable(fields, Type)
end

local function problem(t, msg) t.problems[#t.problems + 1] = msg end

-- Record option problems for a type of `kind` with options `opts`.
local function check_opts(t, opts)
  if opts == nil then return end
  if type(opts) ~= "table" or is_type(opts) then
    problem(t, ("T.%s: options must be a table, got %s"):format(t.kind, type(opts)))
    return
  end
  local allowed = OPTIONS[t.kind]
  for _, k in ipairs(sorted_keys(opts)) do
    local check = allowed[k]
    if not check then
      problem(t, ("T.%s has no option '%s'"):format(t.kind, k))
    else
      local err = check(opts[k])
      if err then problem(t, ("T.%s option '%s' %s"):format(t.kind, k, err)) end
    end
  end
  local lo, hi = opts.min_length or opts.min or opts.min_items, opts.max_length or opts.max or opts.max_items
  if type(lo) == "number" and type(hi) == "number" and lo > hi then
    problem(t, ("T.%s: the minimum (%s) is greater than the maximum (%s)"):format(t.kind, lo, hi))
  end
  t.opts = opts
end

-- Calling a type applies options: T.string { max_length = 9 }.
function Type.__call(self, opts)
  if self.configured then
    local t = new(self.kind, {})
    problem(t, ("T.%s was given options twice"):format(self.kind))
    return t
  end
  local t = new(self.kind, { inner = self.inner, fields = self.fields, order = self.order,
                              values = self.values, value = self.value,
                              problems = { unpack(self.problems) }, configured = true })
  check_opts(t, opts)
  return t
end

local function scalar(kind) M[kind] = new(kind, {}) end
for _, k in ipairs { "string", "integer", "number", "boolean", "email", "url", "datetime", "any" } do
  scalar(k)
end

-- Normalise a field spec: a type, or a plain table meaning an object.
local function as_type(v)
  if is_type(v) then return v end
  if type(v) == "table" then return M.object(v) end
  local t = new("any", {})
  problem(t, ("expected a type, got %s"):format(v == nil and "nil" or type(v)))
  return t
end
M.as_type = as_type

function M.object(fields, opts)
  local t = new("object", { fields = {}, order = {}, configured = opts ~= nil })
  if type(fields) ~= "table" or is_type(fields) then
    problem(t, "T.object expects a table of fields")
    return t
  end
  for _, k in ipairs(sorted_keys(fields)) do
    if type(k) ~= "string" then problem(t, "T.object field names must be strings") end
  end
  for k, v in pairs(fields) do
    if type(k) == "string" then t.fields[k] = as_type(v) end
  end
  t.order = sorted_keys(t.fields)
  check_opts(t, opts)
  return t
end

function M.array(item, opts)
  local t = new("array", { inner = as_type(item), configured = opts ~= nil })
  check_opts(t, opts)
  return t
end

function M.optional(inner)
  return new("optional", { inner = as_type(inner) })
end

function M.nullable(inner)
  return new("nullable", { inner = as_type(inner) })
end

function M.enum(values, opts)
  local t = new("enum", { values = {}, configured = opts ~= nil })
  if type(values) ~= "table" or #values == 0 then
    problem(t, "T.enum expects a non-empty list of values")
  else
    for i, v in ipairs(values) do
      if type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean" then
        problem(t, ("T.enum value #%d must be a string, number or boolean"):format(i))
      end
      t.values[i] = v
    end
  end
  check_opts(t, opts)
  return t
end

function M.literal(value, opts)
  local t = new("literal", { value = value, configured = opts ~= nil })
  if type(value) ~= "string" and type(value) ~= "number" and type(value) ~= "boolean" then
    problem(t, "T.literal expects a string, number or boolean")
  end
  check_opts(t, opts)
  return t
end

---------------------------------------------------------------- validation

local function utf8_len(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function is_integer(v)
  return type(v) == "number" and v == math.floor(v) and v >= -9007199254740992 and v <= 9007199254740992
end

local function valid_email(s)
  if #s > 254 then return false end
  local loc, dom = s:match("^([^%s@]+)@([^%s@]+)$")
  return loc ~= nil and #loc <= 64 and dom:find("^[%w%-]+%.[%w%-%.]*%w$") ~= nil and not dom:find("%.%.")
end

local function valid_url(s)
  return s:find("^[hH][tT][tT][pP][sS]?://[^%s/?#@]+[^%s]*$") ~= nil
end

local function valid_datetime(s)
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return false end
  mo, d, h, mi, sec = tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return false end
  rest = rest:gsub("^%.%d+", "")
  return rest == "Z" or rest == "z" or rest:find("^[+-]%d%d:%d%d$") ~= nil
end

local TYPE_WORD = { string = "a string", integer = "an integer", number = "a number",
                    boolean = "a boolean", array = "an array", object = "an object",
                    email = "a valid email address", url = "a valid URL",
                    datetime = "an ISO 8601 date-time" }

-- Validation never yields, so one module-level error table is safe; it is
-- made on the first error only, keeping the valid path allocation-free.
local errors

local function join(path, k)
  if path == "" then return tostring(k) end
  return path .. "." .. tostring(k)
end

-- A node's location is (parent path, key); the full path string is built
-- only when an error is reported there.
local function add(parent, key, msg)
  local path = key == nil and parent or join(parent, key)
  local name = path == "" and "__all__" or path
  errors = errors or {}
  local list = errors[name]
  if not list then list = {}; errors[name] = list end
  list[#list + 1] = msg
end

-- Query strings carry only text: turn "5" into 5 where the schema says so.
local function coerce(t, v)
  if type(v) ~= "string" then return v end
  local k = t.kind
  if k == "integer" or k == "number" then
    if v:find("^%-?%d+%.?%d*[eE]?[+-]?%d*$") then return tonumber(v) or v end
  elseif k == "boolean" then
    if v == "true" or v == "1" then return true end
    if v == "false" or v == "0" then return false end
  elseif k == "nullable" and v == "null" then
    return null
  elseif k == "array" then
    return { v }
  elseif k == "enum" or k == "literal" then
    for _, c in ipairs(t.values or { t.value }) do
      if tostring(c) == v then return c end
    end
  end
  return v
end

local validate

local function validate_string(t, v, parent, key)
  if type(v) ~= "string" then return add(parent, key, "must be a string") end
  local o = t.opts
  if o.min_length or o.max_length then
    local n = utf8_len(v)
    if o.min_length and n < o.min_length then
      add(parent, key, ("must be at least %d characters (it has %d)"):format(o.min_length, n))
    elseif o.max_length and n > o.max_length then
      add(parent, key, ("must be at most %d characters (it has %d)"):format(o.max_length, n))
    end
  end
  if o.pattern and not v:find(o.pattern) then
    add(parent, key, ("must match the pattern %s"):format(o.pattern))
  end
  local k = t.kind
  if k == "email" and not valid_email(v) then add(parent, key, "must be a valid email address") end
  if k == "url" and not valid_url(v) then add(parent, key, "must be a valid URL") end
  if k == "datetime" and not valid_datetime(v) then add(parent, key, "must be an ISO 8601 date-time") end
  return v
end

local function validate_number(t, v, parent, key)
  if t.kind == "integer" then
    if not is_integer(v) then return add(parent, key, "must be an integer") end
  elseif type(v) ~= "number" then
    return add(parent, key, "must be a number")
  end
  local o = t.opts
  if o.min and v < o.min then add(parent, key, ("must be at least %s"):format(o.min)) end
  if o.max and v > o.max then add(parent, key, ("must be at most %s"):format(o.max)) end
  return v
end

local function validate_object(t, v, parent, key, coerce_strings)
  if type(v) ~= "table" or getmetatable(v) == ARRAY_MT or v[1] ~= nil then
    return add(parent, key, "must be an object")
  end
  local here = key == nil and parent or join(parent, key)
  local out, fields = {}, t.fields
  for _, k in ipairs(t.order) do
    local fv = v[k]
    if fv == nil then
      local ft = fields[k]
      local d = ft.opts.default
      if d ~= nil then
        out[k] = d
      elseif ft.kind ~= "optional" then
        add(here, k, "is required")
      end
    else
      out[k] = validate(fields[k], fv, here, k, coerce_strings)
    end
  end
  return out
end

local function validate_array(t, v, parent, key, coerce_strings)
  if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then
    return add(parent, key, "must be an array")
  end
  local n, o = #v, t.opts
  if o.max_items and n > o.max_items then
    add(parent, key, ("must have at most %d items (it has %d)"):format(o.max_items, n))
  end
  if o.min_items and n < o.min_items then
    add(parent, key, ("must have at least %d items (it has %d)"):format(o.min_items, n))
  end
  local here = key == nil and parent or join(parent, key)
  local out, inner = json.array {}, t.inner
  for i = 1, n do out[i] = validate(inner, v[i], here, i - 1, coerce_strings) end
  return out
end

function validate(t, v, parent, key, coerce_strings)
  if coerce_strings then v = coerce(t, v) end
  local k = t.kind
  if k == "string" and type(v) == "string" then return validate_string(t, v, parent, key) end -- common case first
  if v == nil then
    if k == "optional" then return nil end
    if t.opts.default ~= nil then return t.opts.default end
    return add(parent, key, "is required")
  end
  if v == null then
    if k == "nullable" or k == "any" then return null end
    if k == "optional" then return validate(t.inner, v, parent, key, coerce_strings) end
    return add(parent, key, "must not be null")
  end
  if k == "optional" or k == "nullable" then return validate(t.inner, v, parent, key, coerce_strings) end
  if k == "string" or k == "email" or k == "url" or k == "datetime" then
    return validate_string(t, v, parent, key)
  elseif k == "integer" or k == "number" then
    return validate_number(t, v, parent, key)
  elseif k == "boolean" then
    if type(v) ~= "boolean" then return add(parent, key, "must be a boolean") end
    return v
  elseif k == "object" then
    return validate_object(t, v, parent, key, coerce_strings)
  elseif k == "array" then
    return validate_array(t, v, parent, key, coerce_strings)
  elseif k == "enum" then
    for _, c in ipairs(t.values) do if c == v then return v end end
    local shown = {}
    for i, c in ipairs(t.values) do shown[i] = tostring(c) end
    return add(parent, key, "must be one of: " .. table.concat(shown, ", "))
  elseif k == "literal" then
    if v ~= t.value then return add(parent, key, "must be exactly " .. tostring(t.value)) end
    return v
  end
  return v -- any
end

--- Validate `value` against type `t`.
-- Returns the cleaned value (declared fields only, defaults applied), or
-- nil and a table mapping each failing path ("items.0.name") to its messages.
-- With `coerce_strings`, query-string text is converted where the schema asks.
function M.validate(t, value, coerce_strings)
  errors = nil
  local out = validate(t, value, "", nil, coerce_strings)
  local errs = errors
  errors = nil
  if errs then return nil, errs end
  return out
end

--- Every problem with a type's declaration, as a list of { path =, message = }.
-- `path` is "" for the type itself, "text" or "items.[]" for its parts.
function M.problems(t, path, out)
  out = out or {}
  path = path or ""
  for _, p in ipairs(t.problems) do out[#out + 1] = { path = path, message = p } end
  if t.kind == "object" then
    for _, k in ipairs(t.order) do M.problems(t.fields[k], join(path, k), out) end
  elseif t.inner then
    M.problems(t.inner, t.kind == "array" and join(path, "[]") or path, out)
  end
  if #t.problems == 0 and t.opts.default ~= nil then
    local _, errs = M.validate(t, t.opts.default)
    for p, msgs in pairs(errs or {}) do
      out[#out + 1] = { path = path, message = ("the default %s"):format(
        p == "__all__" and msgs[1] or p .. " " .. msgs[1]) }
    end
  end
  if t.opts.pattern and #t.problems == 0 then
    local _, why = M.pattern_to_regex(t.opts.pattern)
    if why then
      out[#out + 1] = { path = path, message = ("pattern %q cannot be exported to JSON Schema: %s")
        :format(t.opts.pattern, why) }
    end
  end
  return out
end

---------------------------------------------------------------- JSON Schema

-- Lua pattern classes, as the inside of a regex character set.
local CLASS = { a = "A-Za-z", d = "0-9", l = "a-z", s = "\\t\\n\\v\\f\\r ", u = "A-Z",
                w = "A-Za-z0-9", x = "0-9A-Fa-f", p = "!-\\/:-@\\[-`{-~", c = "\\x00-\\x1f\\x7f" }
local REGEX_SPECIAL = "[%\\%{%}%|%/]"

local function escape_char(c)
  if c:find("^[%w]$") then return c end
  return "\\" .. c
end

--- Translate a Lua pattern to an ECMA-262 regex for JSON Schema's `pattern`,
-- or return nil and the reason it cannot be expressed.
function M.pattern_to_regex(p)
  local out, i, n = {}, 1, #p
  while i <= n do
    local c = p:sub(i, i)
    if c == "%" then
      local e = p:sub(i + 1, i + 1)
      if e == "b" or e == "f" or e:find("%d") then
        return nil, "%" .. e .. " has no regex equivalent"
      end
      local cls = CLASS[e:lower()]
      if cls then
        out[#out + 1] = (e == e:lower() and "[" or "[^") .. cls .. "]"
      else
        out[#out + 1] = escape_char(e)
      end
      i = i + 2
    elseif c == "[" then
      local j, set = i + 1, { "[" }
      if p:sub(j, j) == "^" then set[#set + 1] = "^"; j = j + 1 end
      if p:sub(j, j) == "]" then set[#set + 1] = "\\]"; j = j + 1 end
      while j <= n and p:sub(j, j) ~= "]" do
        local d = p:sub(j, j)
        if d == "%" then
          local e = p:sub(j + 1, j + 1)
          local cls = CLASS[e]
          if cls then set[#set + 1] = cls
          elseif CLASS[e:lower()] then return nil, "a negated class inside a set has no regex equivalent"
          else set[#set + 1] = escape_char(e) end
          j = j + 2
        else
          set[#set + 1] = (d == "\\" or d == "[") and "\\" .. d or d
          j = j + 1
        end
      end
      set[#set + 1] = "]"
      out[#out + 1] = table.concat(set)
      i = j + 1
    elseif c == "." then
      out[#out + 1] = "[\\s\\S]"; i = i + 1
    elseif c == "-" and i > 1 then
      out[#out + 1] = "*?"; i = i + 1
    elseif c == "(" and p:sub(i + 1, i + 1) == ")" then
      return nil, "position captures have no regex equivalent"
    elseif c == "^" and i == 1 or c == "$" and i == n or c:find("[%*%+%?%(%)]") then
      out[#out + 1] = c; i = i + 1
    elseif c:find(REGEX_SPECIAL) or c == "^" or c == "$" then
      out[#out + 1] = "\\" .. c; i = i + 1
    else
      out[#out + 1] = c; i = i + 1
    end
  end
  return table.concat(out)
end

local function schema_of(t)
  local k, o, s = t.kind, t.opts, nil
  if k == "string" or k == "email" or k == "url" or k == "datetime" then
    s = { type = "string", minLength = o.min_length, maxLength = o.max_length }
    if o.pattern then s.pattern = M.pattern_to_regex(o.pattern) end
    if k == "email" then s.format = "email" elseif k == "url" then s.format = "uri"
    elseif k == "datetime" then s.format = "date-time" end
  elseif k == "integer" or k == "number" then
    s = { type = k, minimum = o.min, maximum = o.max }
  elseif k == "boolean" then
    s = { type = "boolean" }
  elseif k == "array" then
    s = { type = "array", items = schema_of(t.inner), maxItems = o.max_items, minItems = o.min_items }
  elseif k == "object" then
    local props, req = json.object {}, json.array {}
    for _, name in ipairs(t.order) do
      local ft = t.fields[name]
      props[name] = schema_of(ft)
      if ft.kind ~= "optional" and ft.opts.default == nil then req[#req + 1] = name end
    end
    s = { type = "object", properties = props }
    if #req > 0 then s.required = req end
  elseif k == "optional" then
    s = schema_of(t.inner)
  elseif k == "nullable" then
    s = { anyOf = json.array { schema_of(t.inner), { type = "null" } } }
  elseif k == "enum" then
    s = { enum = json.array { unpack(t.values) } }
  elseif k == "literal" then
    s = { const = t.value }
  else
    s = json.object {}
  end
  if o.description then s.description = o.description end
  if o.default ~= nil then s.default = o.default end
  return s
end

--- The JSON Schema (draft 2020-12, as OpenAPI 3.1 uses) for type `t`.
function M.json_schema(t) return schema_of(t) end

-- A misspelt constructor (T.strnig) is nil inside a table constructor, where
-- nothing could notice it; fail at the access instead, with the app's line.
return setmetatable(M, { __index = function(_, k)
  error(("mizan.types has no type '%s'"):format(tostring(k)), 2)
end })
