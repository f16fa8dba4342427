-- Context bundles and the invalidation transports, over real HTTP.
local testing = require "mizan.testing"
local json = require "mizan.json"
local inv = require "mizan.invalidate"
local h = require "helpers"

local APP = "spec/apps/contexts"
local assert_error = h.assert_error

-- The header the body's invalidate array stands for, encoded independently.
local function header_of(body_list)
  local entries = {}
  for i, e in ipairs(body_list) do
    entries[i] = type(e) == "string" and { target = e } or { target = e.target, params = e.params }
  end
  return inv.header(entries)
end

describe("context bundles", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  it("answer GET ctx/<name>/ with the raw bundle, each function given its own params, converted", function()
    local res = srv:request("GET", "/api/mizan/ctx/todos/?list_id=1&done=false&ignored=x")
    assert.equals(200, res.status)
    assert.equals("no-store", res.headers["cache-control"])
    assert.is_nil(res.json.result, "a bundle is not wrapped in result")
    assert.equals(1, res.json.todo_list.list_id)
    assert.equals("first", res.json.todo_list.items[1].title)
    assert.equals(1, res.json.todo_count)
  end)

  it("accept any string as a context name, percent-encoded in the path", function()
    local path = "/api/mizan/ctx/" .. require("mizan.schema").path_segment("odd name/with, symbols") .. "/?q=a+b%26c"
    local res = srv:request("GET", path)
    assert.equals(200, res.status)
    assert.equals("a b&c", res.json.odd)
  end)

  it("answer the global context", function()
    local res = srv:request("GET", "/api/mizan/ctx/global/")
    assert.equals(200, res.status)
    assert.equals(json.null, res.json.current_user.user)
  end)

  it("list a missing required param once, even when several functions need it", function()
    local err = assert_error(srv:request("GET", "/api/mizan/ctx/todos/"), 400, "validation_error")
    assert.same({ "is required" }, err.fields.list_id)
    err = assert_error(srv:request("GET", "/api/mizan/ctx/todos/?list_id=x&done=maybe"), 400, "validation_error")
    assert.same({ "must be an integer" }, err.fields.list_id)
    assert.same({ "must be a boolean" }, err.fields.done)
  end)

  it("answer 404 for an unknown context and 405 for a POST", function()
    assert_error(srv:request("GET", "/api/mizan/ctx/nope/"), 404, "not_found")
    assert_error(srv:request("GET", "/api/mizan/ctx/"), 404, "not_found")
    local res = srv:request("POST", "/api/mizan/ctx/todos/", { headers = { "Content-Type: application/json" }, body = "{}" })
    assert_error(res, 405, "method_not_allowed")
    assert.equals("GET, HEAD", res.headers.allow)
  end)

  it("answer with a function's refusal for the whole bundle", function()
    local err = assert_error(srv:request("GET", "/api/mizan/ctx/guarded/"), 403, "forbidden")
    assert.equals("not yours", err.message)
  end)

  it("refuse a raw response inside a bundle with a 500 that says why", function()
    local err = assert_error(srv:request("GET", "/api/mizan/ctx/rawctx/"), 500, "internal_error")
    assert.matches("returned mizan.response", err.message)
  end)

  it("leave a context's functions callable one by one", function()
    local res = srv:call("todo_count", { list_id = 1 }, { method = "GET" })
    assert.equals(200, res.status)
    assert.equals(1, res.json.result)
  end)
end)

describe("invalidation transports", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  it("carry declared targets with params from an affects_params mapping, in the body and the header", function()
    local res = srv:call("add_todo", { list_id = 2, title = "second" })
    assert.equals(200, res.status)
    assert.same({ { target = "todos", params = { list_id = 2 } }, "stats" }, res.json.invalidate)
    assert.equals("todos;list_id=2, stats", res.headers["x-mizan-invalidate"])
    assert.equals(header_of(res.json.invalidate), res.headers["x-mizan-invalidate"])
  end)

  it("take params from an affects_params function, keeping only the target's own params", function()
    local res = srv:call("toggle", { id = 1 })
    assert.equals(200, res.status)
    assert.same({ { target = "todos", params = { list_id = 1 } } }, res.json.invalidate)
    assert.equals("todos;list_id=1", res.headers["x-mizan-invalidate"])
  end)

  it("add run-time targets after the declared ones, deduplicated", function()
    local res = srv:call("runtime", {})
    -- todos (whole, declared) covers todos;list_id=9 added at run time
    assert.same({ "todos", "stats", { target = "todo_count", params = { list_id = 3 } } }, res.json.invalidate)
    assert.equals("todos, stats, todo_count;list_id=3", res.headers["x-mizan-invalidate"])
  end)

  it("send only the header for a raw response (the view path)", function()
    local res = srv:call("view_path", { list_id = 7 })
    assert.equals(303, res.status)
    assert.equals("/lists/7", res.headers.location)
    assert.equals("todos;list_id=7", res.headers["x-mizan-invalidate"])
    assert.is_nil(res.json)
  end)

  it("send neither the key nor the header for an empty set", function()
    local res = srv:call("no_affects", {})
    assert.equals(200, res.status)
    assert.is_nil(res.json.invalidate)
    assert.is_nil(res.headers["x-mizan-invalidate"])
  end)

  it("send nothing when the mutation fails", function()
    local res = srv:call("toggle", { id = 999 })
    assert_error(res, 404, "not_found")
    assert.is_nil(res.headers["x-mizan-invalidate"])
    res = srv:call("add_todo", { list_id = 1, title = "" })
    assert_error(res, 400, "validation_error")
    assert.is_nil(res.headers["x-mizan-invalidate"])
  end)

  it("refuse req:invalidate in a query, and an unknown run-time target", function()
    local err = assert_error(srv:call("query_invalidates", {}), 500, "internal_error")
    assert.matches("req:invalidate is for mutations", err.message)
    err = assert_error(srv:call("bad_runtime", {}), 500, "internal_error")
    assert.matches("req:invalidate: unknown target 'nope'", err.message)
  end)

  it("make the next bundle read fresh", function()
    srv:call("add_todo", { list_id = 1, title = "fresh" })
    local res = srv:request("GET", "/api/mizan/ctx/todos/?list_id=1")
    assert.equals("fresh", res.json.todo_list.items[#res.json.todo_list.items].title)
  end)
end)

describe("test clients for contexts", function()
  it("fetch a bundle in process and over HTTP alike", function()
    local app = testing.app(APP)
    local a = app:context("todos", { list_id = 1 })
    assert.equals(200, a.status)
    assert.equals(1, a.body.todo_count)
    local res = app:call("add_todo", { list_id = 1, title = "x" })
    assert.equals("todos;list_id=1, stats", res.headers["X-Mizan-Invalidate"])
    local srv = testing.server(APP)
    local b = srv:context("todos", { list_id = 1 })
    srv:stop()
    assert.equals(200, b.status)
    assert.equals(1, b.json.todo_count)
  end)
end)
