-- Origin cache scenarios that the memory and the Redis specs both run
-- against a server of spec/apps/cached.
local testing = require "mizan.testing"
local assert = require "luassert"

local M = {}

local wait_until = require("helpers").wait_until

local function get(srv, name)
  local res = srv:call(name, {}, { method = "GET" })
  assert.equals(200, res.status, res.body)
  return res.json.result
end

--- A read that misses after a purge never joins a computation that began
-- before it: the leader reads "old", then waits on a gate the spec holds;
-- a mutation changes the value and answers; a read after that answer must
-- not wait for the leader, and must see "new".
function M.no_join_across_a_purge(srv)
  assert.equals(200, srv:call("set_gated", { value = "old" }).status)
  assert.equals(200, srv:call("arm_gate", {}).status)
  local leader = srv:connect()
  leader:send(testing.request_bytes("GET", "/api/mizan/call/gated/"))
  assert.is_true(wait_until(function() return get(srv, "gate_state").waiting == 1 end),
                 "the first read is waiting at the gate")

  local res = srv:call("set_gated", { value = "new" })
  assert.equals(200, res.status, res.body)

  local reader = srv:connect()
  reader:send(testing.request_bytes("GET", "/api/mizan/call/gated/"))
  -- the gate is still shut: only a reader that joined the leader's flight waits here
  local after, err = reader:read_response { timeout = 10 }
  assert.equals(200, srv:call("open_gate", {}).status)
  local first = assert(leader:read_response())
  leader:close()
  reader:close()
  assert(after, "the read after the mutation waited on a computation from before it (" .. tostring(err) .. ")")
  assert.equals(200, after.status, after.body)
  assert.equals("new", after.json.result.value)
  assert.equals("old", first.json.result.value, "the leader read before the mutation")
  -- what the leader computed before the purge was not kept as fresh
  assert.equals("new", get(srv, "gated").value)
  assert.equals("new", get(srv, "gated").value)
end

return M
