-- mizan.dispatch.auth: a function's auth requirement (true, "staff",
-- "superuser" or a predicate), checked before its arguments; a refusal is
-- raised (401 for nobody signed in, 403 otherwise).
local errors = require "mizan.errors"
local run = require "mizan.dispatch.run"

local M = {}

--- Raise when `req` may not call `spec`; `what` names it in logs.
function M.check(spec, req, dev, what)
  local requirement = spec.auth
  if requirement == nil then return end
  local user = req.user
  if requirement == true or requirement == "staff" or requirement == "superuser" then
    if not user then errors.fail("unauthenticated", "sign in first") end
    if requirement ~= true and not (user.is_superuser or (requirement == "staff" and user.is_staff)) then
      errors.fail("forbidden", ("only %s users may do this"):format(requirement))
    end
    return
  end
  local verdict = run.app(what .. " (auth predicate)", dev, function(r) return { requirement(r) } end, req)
  local allowed, message = verdict[1], verdict[2]
  if allowed then return end
  if not user then errors.fail("unauthenticated", message or "sign in first") end
  errors.fail("forbidden", message or "you may not do this")
end

return M
