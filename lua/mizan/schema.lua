-- mizan.schema: the OpenAPI 3.1 document of an app (DESIGN §5).
-- One path per function, JSON Schema for requests and responses, and the
-- x-mizan-functions extension that the client generator reads.
local json = require "mizan.json"
local types = require "mizan.types"
local mizan = require "mizan"

local M = {}
local arr, obj = json.array, json.object

local ERROR_SCHEMA = {
  type = "object",
  required = arr { "error" },
  properties = {
    error = {
      type = "object",
      required = arr { "code", "message" },
      properties = {
        code = { type = "string" },
        message = { type = "string" },
        fields = {
          type = "object",
          additionalProperties = { type = "array", items = { type = "string" } },
        },
      },
    },
  },
}

local ERROR_RESPONSES = {
  ["400"] = "invalid_json or validation_error",
  ["404"] = "not_found",
  ["405"] = "method_not_allowed",
  ["413"] = "payload_too_large",
  ["415"] = "unsupported_media_type",
  ["500"] = "internal_error",
}

-- The body of one error code: `code` fixed, `data` typed when it has any.
local function error_body(code, data_schema)
  local props = { code = { const = code }, message = { type = "string" } }
  local required = arr { "code", "message" }
  if data_schema then
    props.data = data_schema
    required[3] = "data"
  end
  return { type = "object", required = arr { "error" },
           properties = { error = { type = "object", required = required, properties = props } } }
end

local STALE = error_body("stale_client", { type = "object", required = arr { "schema" },
                                           properties = { schema = { type = "string" } } })

--- A function's declared errors as exported: { code = { status, data } }.
function M.errors_export(spec)
  local out = obj {}
  for _, code in ipairs(spec.error_order or {}) do
    local d = spec.errors[code]
    out[code] = { status = d.status, data = d.data and types.json_schema(d.data) or json.null }
  end
  return out
end

-- The error responses of an operation: the protocol's (one shared Error),
-- 409 stale_client, and per status the function's declared codes, each
-- with its typed data beside the protocol's body when they share a status.
local function error_refs(extra, spec)
  local r = {}
  for status in pairs(ERROR_RESPONSES) do r[status] = { ["$ref"] = "#/components/responses/Error" } end
  r["409"] = { ["$ref"] = "#/components/responses/StaleClient" }
  local by_status, statuses = {}, {}
  for _, code in ipairs(spec and spec.error_order or {}) do
    local d, st = spec.errors[code], tostring(spec.errors[code].status)
    if not by_status[st] then
      by_status[st] = arr {}
      statuses[#statuses + 1] = st
      if st == "409" then by_status[st][1] = STALE
      elseif r[st] then by_status[st][1] = { ["$ref"] = "#/components/schemas/Error" } end
    end
    local list = by_status[st]
    list[#list + 1] = error_body(code, d.data and types.json_schema(d.data))
  end
  for _, st in ipairs(statuses) do
    local list, codes = by_status[st], {}
    for _, code in ipairs(spec.error_order) do
      if tostring(spec.errors[code].status) == st then codes[#codes + 1] = code end
    end
    r[st] = { description = "declared errors: " .. table.concat(codes, ", "),
              content = { ["application/json"] = { schema = #list == 1 and list[1] or { anyOf = list } } } }
  end
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local function success(spec)
  local result = spec.output and types.json_schema(spec.output) or obj {}
  return {
    description = "the function's result",
    content = { ["application/json"] = { schema = {
      type = "object", required = arr { "result" },
      properties = { result = result, invalidate = { type = "array" } },
    } } },
  }
end

-- GET carries the arguments in the query string, one parameter per field.
local function query_parameters(spec)
  local params = arr {}
  for _, name in ipairs(spec.input.order) do
    local ft = spec.input.fields[name]
    params[#params + 1] = {
      name = name, ["in"] = "query",
      required = ft.kind ~= "optional" and ft.opts.default == nil,
      schema = types.json_schema(ft),
    }
  end
  return params
end

local function operation(spec, method)
  local op = {
    operationId = method == "get" and spec.name .. ".get" or spec.name,
    summary = spec.description or ("%s %s"):format(spec.kind, spec.name),
    tags = arr { spec.kind == "query" and "queries" or "mutations" },
    responses = error_refs({ ["200"] = success(spec) }, spec),
  }
  if method == "post" then
    op.requestBody = {
      required = true,
      content = { ["application/json"] = { schema = types.json_schema(spec.input) } },
    }
  else
    op.parameters = query_parameters(spec)
  end
  return op
end

local function names(list)
  local out = arr {}
  for i, v in ipairs(list) do out[i] = v end
  return out
end

-- GET ctx/<name>/: the elevated params in, the raw bundle out.
local function context_operation(reg, group)
  local params, props, required = arr {}, obj {}, arr {}
  for _, p in ipairs(group.order) do
    local info = group.params[p]
    params[#params + 1] = { name = p, ["in"] = "query", required = info.required,
                            schema = types.json_schema(info.type) }
  end
  for _, fname in ipairs(group.functions) do
    local spec = reg.functions[fname]
    props[fname] = spec.output and types.json_schema(spec.output) or obj {}
    required[#required + 1] = fname
  end
  return { get = {
    operationId = "ctx." .. group.name,
    summary = ("the '%s' context: every function of it in one bundle"):format(group.name),
    tags = arr { "contexts" },
    parameters = params,
    responses = error_refs { ["200"] = {
      description = "the raw bundle, one key per function",
      content = { ["application/json"] = { schema = { type = "object", properties = props, required = required } } },
    } },
  } }
end

-- x-mizan-contexts: {name: {functions, params: {p: {schema, required, functions}}}}
local function contexts_extension(reg)
  local out = obj {}
  for _, cname in ipairs(reg.context_order) do
    local group = reg.contexts[cname]
    local params = obj {}
    for _, p in ipairs(group.order) do
      local info = group.params[p]
      params[p] = { schema = types.json_schema(info.type), required = info.required,
                    functions = names(info.functions) }
    end
    out[cname] = { functions = names(group.functions), params = params, global = cname == "global",
                   hash = M.context_hash(reg, group) }
  end
  return out
end

--- A context name as it appears in a URL path (any string names a context).
function M.path_segment(name)
  return (name:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- x-mizan-edge: contexts an edge worker may cache for everyone: every
-- function shared-cached. Their TTL is the shortest of their functions'; the
-- mutations that affect them are what purges them.
local function edge_extension(reg)
  local out = obj {}
  for _, cname in ipairs(reg.context_order) do
    local group = reg.contexts[cname]
    local ttl, ok = math.huge, true
    for _, fname in ipairs(group.functions) do
      local c = reg.functions[fname].cache
      if not (c and c.shared) then ok = false break end
      ttl = math.min(ttl, c.ttl)
    end
    if ok then
      local purged_by = arr {}
      for _, fname in ipairs(reg.order) do
        for _, t in ipairs(reg.functions[fname].affects or {}) do
          if t.name == cname then purged_by[#purged_by + 1] = fname end
        end
      end
      out[cname] = { ttl = ttl, public = true, functions = names(group.functions), purged_by = purged_by }
    end
  end
  return out
end

-- x-mizan-channels: each channel's params and message schemas.
local function channels_extension(reg)
  local out = obj {}
  for _, name in ipairs(reg.channel_order or {}) do
    local c = reg.channels[name]
    out[name] = {
      params = types.json_schema(c.params),
      server_message = c.server_message and types.json_schema(c.server_message) or obj {},
      client_message = c.client_message and types.json_schema(c.client_message) or json.null,
      description = c.description,
    }
  end
  return out
end

-- x-mizan-forms: every form's full field spec, in declared order.
local function forms_extension(reg)
  local out = obj {}
  for _, name in ipairs(reg.forms and reg.forms.list or {}) do out[name] = reg.forms[name] end
  return out
end

--- The document as a Lua table, ready for mizan.json.
function M.document(reg, cfg)
  local base = (cfg and cfg.base_path) or require("mizan.options").default("base_path")
  local paths, fns = obj {}, obj {}
  for _, name in ipairs(reg.order) do
    local spec = reg.functions[name]
    local item = { post = operation(spec, "post") }
    if spec.kind == "query" then item.get = operation(spec, "get") end
    paths[base .. "call/" .. name .. "/"] = item
    local affects = arr {}
    for i, t in ipairs(spec.affects or {}) do affects[i] = t.name end
    fns[name] = {
      kind = spec.kind,
      context = spec.context or json.null,
      affects = affects,
      auth = require("mizan.auth").export(spec.auth),
      cache = spec.cache and { ttl = spec.cache.ttl, shared = spec.cache.shared } or json.null,
      input = types.json_schema(spec.input),
      output = spec.output and types.json_schema(spec.output) or obj {},
      errors = M.errors_export(spec),
      hash = M.function_hash(spec),
      description = spec.description,
    }
  end
  for _, cname in ipairs(reg.context_order) do
    paths[base .. "ctx/" .. M.path_segment(cname) .. "/"] = context_operation(reg, reg.contexts[cname])
  end
  local app = cfg and cfg.app_dir and cfg.app_dir:match("([^/]+)$") or "app"
  return {
    openapi = "3.1.0",
    info = { title = app, version = mizan.version,
             description = "Server functions served by mizan " .. mizan.version },
    jsonSchemaDialect = "https://spec.openapis.org/oas/3.1/dialect/base",
    paths = paths,
    components = {
      schemas = { Error = ERROR_SCHEMA },
      responses = {
        Error = {
          description = "an error (DESIGN §2)",
          content = { ["application/json"] = { schema = { ["$ref"] = "#/components/schemas/Error" } } },
        },
        StaleClient = {
          description = "stale_client: the client was built against a version of this function that changed "
            .. "or is gone; data.schema is the server's schema hash",
          content = { ["application/json"] = { schema = STALE } },
        },
      },
    },
    ["x-mizan-functions"] = fns,
    ["x-mizan-contexts"] = contexts_extension(reg),
    ["x-mizan-edge"] = edge_extension(reg),
    ["x-mizan-forms"] = forms_extension(reg),
    ["x-mizan-channels"] = channels_extension(reg),
  }
end

---------------------------------------------------------------- version skew

-- A hash of canonical JSON, `n` hex digits: 16 for the schema; 8 for a
-- function or context, which only tell one version of it from the next
-- (a change going unseen is a 1 in 4e9 chance) and which every generated
-- client carries, one per function.
local function hash_of(v, n)
  return require("mizan.crypto").hmac_sha256_hex("mizan-schema", assert(json.canonical(v))):sub(1, n or 8)
end

--- What a client depends on in a function: its kind, input, output and
-- errors. Any change to them is incompatible (no subtyping is judged);
-- a new description or cache setting is not.
function M.function_hash(spec)
  return hash_of { kind = spec.kind, input = types.json_schema(spec.input),
                   output = spec.output and types.json_schema(spec.output) or obj {},
                   errors = M.errors_export(spec) }
end

--- A context's bundle: its params and each function's hash.
function M.context_hash(reg, group)
  local fns, params = obj {}, obj {}
  for _, f in ipairs(group.functions) do fns[f] = M.function_hash(reg.functions[f]) end
  for _, p in ipairs(group.order) do
    local info = group.params[p]
    params[p] = { schema = types.json_schema(info.type), required = info.required }
  end
  return hash_of { functions = fns, params = params }
end

--- The hashes of the app's exported schema: { schema = hash of the whole
-- document but its info (the folder's name and mizan's version change
-- nothing a client depends on), functions = {name = hash}, contexts = {...} }.
function M.hashes(reg, cfg)
  local doc = M.document(reg, cfg)
  doc.info = nil
  local out = { schema = hash_of(doc, 16), functions = {}, contexts = {} }
  for name, f in pairs(doc["x-mizan-functions"]) do out.functions[name] = f.hash end
  for name, c in pairs(doc["x-mizan-contexts"]) do out.contexts[name] = c.hash end
  return out
end

--- Print the loaded app's document as canonical JSON (stable across runs).
function M.print()
  local cfg = require("mizan.config").get()
  local doc = M.document(mizan.registry(), cfg)
  local text = assert(json.canonical(doc))
  io.stdout:write(text, "\n")
end

return M
