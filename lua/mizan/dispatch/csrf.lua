-- mizan.dispatch.csrf: where a browser request comes from (DESIGN §2).
-- Judged by Sec-Fetch-Site, then by Origin against Host and the allowed
-- origins; a client that sends neither (curl, a server) is not a browser
-- and passes.
local errors = require "mizan.errors"

local M = {}

local allowed_origins = {}

function M.configure(cfg)
  allowed_origins = {}
  for _, o in ipairs(cfg.allowed_origins or {}) do allowed_origins[o:lower()] = true end
  -- a page the app lets call it across origins (CORS) may call its mutations too
  for _, o in ipairs(cfg.cors and cfg.cors.origins or {}) do allowed_origins[o:lower()] = true end
end

local function same_origin(origin, host)
  local o = origin:lower():match("^https?://([^/]+)$")
  return o ~= nil and host ~= nil and o == host:lower()
end

--- Does the request come from another site?
function M.cross_site(req)
  local h = req.headers
  local site, origin = h["sec-fetch-site"], h.origin
  if site == "same-origin" or site == "none" then return false end
  if origin and origin ~= "null" then
    return not (same_origin(origin, h.host) or allowed_origins[origin:lower()])
  end
  return site == "cross-site" or site == "same-site" or origin == "null"
end

--- Raise csrf_failed when the request is cross-site; `what` says what it may not do.
function M.check(req, what)
  if M.cross_site(req) then errors.fail("csrf_failed", "a cross-site " .. what) end
end

return M
