-- mizan.dispatch.session: the stage that loads the caller's session and
-- user before the call, and persists what changed after it (the cookie goes
-- on the answer, error answers included).
local core = require "mizan.core"
local errors = require "mizan.errors"
local session = require "mizan.session"
local auth = require "mizan.auth"

local M = {}

-- The session store or the user table could not answer: that is no
-- logout. 503, and no Set-Cookie, so a valid cookie survives the outage.
-- After a call ran (its session could not be saved), what it invalidated
-- still goes with the answer.
local function store_down(err, body, headers)
  core.log("error", "session store: " .. tostring(err))
  errors.fail_unavailable("sessions are unavailable right now; try again shortly", body, headers)
end

-- Headers with Set-Cookie added, without touching a shared table.
local function with_cookie(headers, cookie)
  if not cookie then return headers end
  local out = {}
  for k, v in pairs(headers or {}) do out[k] = v end
  out["Set-Cookie"] = cookie
  return out
end

--- Load the request's session and user (when a cookie came); raises 503
-- when the store cannot answer.
function M.identify(req)
  if req.headers.cookie then
    local ok, err = session.load(req)
    if not ok then store_down(err) end
  end
  local uid = rawget(req, "_user_id")
  if uid ~= nil then
    local user, err = auth.load(uid)
    if err then store_down(err) end
    rawset(req, "_user", user)
  end
end

--- Run fn(req, dev) inside the request's session.
function M.around(fn, req, dev)
  M.identify(req)
  local ok, status, body, headers = pcall(fn, req, dev)
  local cookie, cerr = session.commit(req)
  if cerr then
    if not ok and errors.is_raised(status) then store_down(cerr, status.extra, status.headers) end
    store_down(cerr, body, headers)
  end
  if not ok then
    -- a raised error may be shared (single-flight hands the leader's to
    -- every waiter): the cookie goes on a copy, never on the shared value
    if cookie and errors.is_raised(status) then
      status = errors.raised(status.code, status.message, status.fields, with_cookie(status.headers, cookie),
                             status.extra)
    end
    error(status, 0)
  end
  return status, body, with_cookie(headers, cookie)
end

return M
