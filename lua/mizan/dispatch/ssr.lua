-- mizan.dispatch.ssr: an HTML page from static_dir (C read it into
-- req.body and set req.page). The page gets the global context of the
-- requesting user as window.__MIZAN_SSR_DATA__, before </head> when there is
-- one, else at the very start; no-store, since it carries per-user data.
-- A page that asks for named contexts too, with
--   <meta name="mizan-contexts" content="lists, todos">
-- gets them as window.__MIZAN_SSR_CONTEXTS__ = [{ context, params, data }],
-- their params from the page's own query string; a context that fails (a
-- param missing, signed out) is left out and the client fetches it.
local request = require "mizan.dispatch.request"
local session = require "mizan.dispatch.session"
local bundle = require "mizan.dispatch.bundle"
local args_of = require "mizan.dispatch.args"
local json = require "mizan.json"

local M = {}

local registry
function M.configure(reg) registry = reg end

-- JSON inside <script>: nothing in it may close the tag or open a comment,
-- and the line separators JavaScript once treated as newlines are escaped.
local SCRIPT_ESCAPES = { ["<"] = "\\u003c", [">"] = "\\u003e", ["&"] = "\\u0026" }
function M.script_safe(text)
  return (text:gsub("[<>&]", SCRIPT_ESCAPES):gsub("\226\128\168", "\\u2028"):gsub("\226\128\169", "\\u2029"))
end

local HTML = { ["Content-Type"] = "text/html; charset=utf-8" } -- read only, shared

-- The named contexts the page asks for, known ones only, each once.
local function asked(page)
  local list, seen = {}, {}
  local content = page:match('<meta%s+name="mizan%-contexts"%s+content="([^"]*)"')
  for name in (content or ""):gmatch("[^%s,]+") do
    if name ~= "global" and registry.contexts[name] and not seen[name] then
      seen[name] = true
      list[#list + 1] = name
    end
  end
  return list
end

-- Each asked context as { context, params, data } JSON (params: the page
-- query's values for the context's params, as text), under the page's session.
local function named(r, d, names)
  local out = {}
  for _, name in ipairs(names) do
    local group = registry.contexts[name]
    r.name, r.method = name, "GET"
    local params, q = {}, args_of.query(r)
    for _, p in ipairs(group.order) do params[p] = q[p] end
    local ok, status, body = pcall(bundle.stage, r, d)
    if ok and status == 200 and type(body) == "string" then
      out[#out + 1] = ('{"context":%s,"params":%s,"data":%s}'):format(json.encode(name),
        next(params) and assert(json.encode(params)) or "{}", body)
    end
  end
  return "[" .. table.concat(out, ",") .. "]"
end

--- The page stage.
function M.stage(req, dev)
  local page = req.body
  req.body = ""
  local names = asked(page)
  local extra
  local ok, status, body = pcall(session.around, function(r, d)
    if #names > 0 then extra = named(r, d, names) end
    if not registry.contexts.global then return 200, "{}" end
    r.name, r.method = "global", "GET"
    return bundle.stage(r, d)
  end, req, dev)
  -- the page is served all the same: without data when the context failed
  if not ok or status ~= 200 or type(body) ~= "string" then body = "{}" end
  rawset(req, "_cache", nil) -- the page itself is not a cached answer
  request.set(req, "_label", "page")
  local lower = page:lower()
  local at = lower:find("</head>", 1, true)
  local head = at and at - 1 or 0
  local more = extra and ("window.__MIZAN_SSR_CONTEXTS__=" .. M.script_safe(extra) .. ";") or ""
  return 200, page:sub(1, head) .. "<script>window.__MIZAN_SSR_DATA__=" .. M.script_safe(body) .. ";" .. more .. "</script>"
    .. page:sub(head + 1), HTML
end

return M
