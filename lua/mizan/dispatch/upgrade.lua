-- mizan.dispatch.upgrade: the WebSocket handshake, once C checked its
-- protocol part: same origin rules as CSRF, and the session of this request
-- becomes the socket's.
local request = require "mizan.dispatch.request"
local csrf = require "mizan.dispatch.csrf"
local session = require "mizan.dispatch.session"

local M = {}

--- The upgrade stage: 101 (respond makes it the upgrade record), or raises.
function M.stage(req)
  request.set(req, "_label", "ws")
  csrf.check(req, "page may not open this WebSocket")
  session.identify(req)
  -- a session that points at no (active) user is followed all the same
  require("mizan.channels").opened(req.ws_id, rawget(req, "_user"), rawget(req, "_session"),
                                   rawget(req, "_session_id"), rawget(req, "_session_expires"))
  return 101
end

return M
