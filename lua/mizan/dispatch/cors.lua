-- mizan.dispatch.cors: cross-origin calls from the origins the app lists
-- (cors.origins). A preflight (OPTIONS with Access-Control-Request-Method)
-- from one of them is answered 204 with exactly the method the route takes
-- and the request headers the protocol uses; any other OPTIONS is refused.
-- An answer to one of them carries Access-Control-Allow-Origin (and
-- -Credentials when cors.credentials); an answer to any other origin
-- carries no CORS header at all, so the browser keeps it from the page.
local errors = require "mizan.errors"

local M = {}

local origins, credentials, max_age = {}, false, "600"
local registry

-- The request headers a generated client sends (lower case, as asked).
local ALLOWED_HEADERS = { ["content-type"] = true, ["x-mizan-client"] = true, ["x-mizan-fn"] = true }

function M.configure(reg, cfg)
  registry = reg
  origins = {}
  local c = cfg.cors or {}
  for _, o in ipairs(c.origins or {}) do origins[o:lower()] = true end
  credentials = c.credentials == true
  max_age = tostring(c.max_age or 600)
end

--- Is `origin` one of the listed ones?
function M.allowed(origin) return origin ~= nil and origins[origin:lower()] == true end

-- The one method a route takes from a page: a mutation is POSTed, a query
-- and a context are read with GET (a query's POST needs no preflight of
-- its own: the same answer).
local function method_of(req)
  if req.route == "ctx" then return "GET" end
  if req.route == "call" then
    local spec = req.name and registry.functions[req.name]
    if spec then return spec.kind == "mutation" and "POST" or "GET, POST" end
  end
  return nil
end

--- OPTIONS: the preflight's answer (status, body, headers), or raise.
function M.preflight(req)
  local origin, want = req.headers.origin, req.headers["access-control-request-method"]
  if not M.allowed(origin) or not want then
    errors.fail("forbidden", "no cross-origin calls from here")
  end
  local methods = method_of(req)
  if not methods or not methods:find(want:upper(), 1, true) then
    errors.fail("method_not_allowed", ("this route does not take %s from another origin"):format(want),
                nil, { Allow = methods or "" })
  end
  local asked, ok = req.headers["access-control-request-headers"], {}
  for name in (asked or ""):gmatch("[^,%s]+") do
    name = name:lower()
    if not ALLOWED_HEADERS[name] then
      errors.fail("forbidden", ("the request header '%s' is not allowed from another origin"):format(name))
    end
    ok[#ok + 1] = name
  end
  local headers = { ["Access-Control-Allow-Origin"] = origin, ["Access-Control-Allow-Methods"] = methods,
                    ["Access-Control-Max-Age"] = max_age, Vary = "Origin" }
  if #ok > 0 then headers["Access-Control-Allow-Headers"] = table.concat(ok, ", ") end
  if credentials then headers["Access-Control-Allow-Credentials"] = "true" end
  return 204, "", headers
end

--- The CORS headers an answer to `req` carries: added to `headers` (a map,
-- copied), or `headers` as it is when the caller is no listed origin.
function M.headers(req, headers)
  local origin = req.headers.origin
  if not M.allowed(origin) then return headers end
  local out = {}
  for k, v in pairs(headers or {}) do out[k] = v end
  out["Access-Control-Allow-Origin"] = origin
  out.Vary = "Origin"
  out["Access-Control-Expose-Headers"] = "X-Mizan-Invalidate, X-Mizan-Schema"
  if credentials then out["Access-Control-Allow-Credentials"] = "true" end
  return out
end

return M
