-- mizan.dispatch.ssr: an HTML page from static_dir (C read it into
-- req.body and set req.page). The page gets the global context of the
-- requesting user as window.__MIZAN_SSR_DATA__, before </head> when there is
-- one, else at the very start; no-store, since it carries per-user data.
local request = require "mizan.dispatch.request"
local session = require "mizan.dispatch.session"
local bundle = require "mizan.dispatch.bundle"

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

--- The page stage.
function M.stage(req, dev)
  local page = req.body
  req.body = ""
  local ok, status, body = pcall(session.around, function(r, d)
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
  return 200, page:sub(1, head) .. "<script>window.__MIZAN_SSR_DATA__=" .. M.script_safe(body) .. ";</script>"
    .. page:sub(head + 1), HTML
end

return M
