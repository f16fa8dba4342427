-- mizan.dispatch.skew: version skew between a generated client and the
-- server (DESIGN §2). Every answer carries X-Mizan-Schema, the hash of the
-- exported schema. The generated client sends the hash it was built from
-- (X-Mizan-Client) and the hash of the function or context it calls as it
-- knew it (X-Mizan-Fn). The server judges per target, with no memory of
-- past versions: a client of another schema whose target's hash differs
-- now, or whose target is gone, gets 409 stale_client with the new schema
-- hash; any other call (a compatible change, such as a new function
-- elsewhere) goes on.
local errors = require "mizan.errors"

local M = {}

local current = { schema = "", functions = {}, contexts = {} }

--- Compute the hashes of a loaded registry (once per load).
function M.configure(reg, cfg)
  current = require("mizan.schema").hashes(reg, cfg)
end

--- The schema hash, sent on every answer.
function M.schema() return current.schema end

--- Whether a request's client was built from this very schema (its
-- fast-path aliases may be recorded): true too for a caller that sends no
-- X-Mizan-Client (curl, an edge, a hand-written client).
function M.current(req)
  local client = req.headers["x-mizan-client"]
  return client == nil or client == current.schema
end

--- Raise 409 stale_client when the caller's view of `name` (a function,
-- kind "functions", or a context, "contexts"; nil when the route names
-- nothing the server has) is out of date.
function M.check(req, kind, name)
  local client = req.headers["x-mizan-client"]
  if client == nil or client == current.schema then return end
  local have = name and current[kind][name]
  if have then
    local want = req.headers["x-mizan-fn"]
    if want == nil or want == have then return end
  end
  local what = kind == "functions" and "function" or "context"
  local e = errors.raised_declared("stale_client",
    ("this client was built against another version of %s '%s'%s: reload it"):format(what, tostring(name or req.name),
      have and "" or ", which is gone"),
    { schema = current.schema }, 409)
  error(e, 0)
end

return M
