-- examples/todo works as its README walk-through says.
local testing = require "mizan.testing"
local h = require "helpers"

describe("examples/todo", function()
  local srv
  setup(function() srv = testing.server("examples/todo") end)
  teardown(function() srv:stop() end)

  local function signup(name)
    local a = srv:agent()
    assert.equals(200, a:call("auth.signup", { username = name, password = name .. " password" }).status)
    return a
  end

  it("answers echo", function()
    assert.equals('{"result":{"message":"hi"}}', srv:call("echo", { text = "hi" }).body)
  end)

  it("keeps each user's todos their own", function()
    local alice, bob = signup("alice"), signup("bob")
    local list = alice:call("create_list", { name = "Inbox" }).json.result
    local res = alice:call("add_todo", { list_id = list.id, title = "Buy milk" })
    assert.equals("todos;list_id=" .. list.id, res.headers["x-mizan-invalidate"])
    local bundle = alice:context("todos", { list_id = list.id }).json
    assert.equals("Buy milk", bundle.todo_list[1].title)
    assert.same({ name = "Inbox", open = 1, done = 0 }, bundle.todo_summary)
    h.assert_error(bob:context("todos", { list_id = list.id }), 404, "not_found")
    h.assert_error(srv:context("todos", { list_id = list.id }), 401, "unauthenticated")
    h.assert_error(bob:call("set_done", { id = res.json.result.id }), 404, "not_found")
  end)

  it("purges the cached summary when a todo changes", function()
    local carol = signup("carol")
    local list = carol:call("create_list", { name = "Work" }).json.result
    local t = carol:call("add_todo", { list_id = list.id, title = "Ship it" }).json.result
    assert.same({ name = "Work", open = 1, done = 0 }, carol:context("todos", { list_id = list.id }).json.todo_summary)
    carol:call("set_done", { id = t.id })
    assert.same({ name = "Work", open = 0, done = 1 }, carol:context("todos", { list_id = list.id }).json.todo_summary)
    carol:call("delete_todo", { id = t.id })
    assert.same({ name = "Work", open = 0, done = 0 }, carol:context("todos", { list_id = list.id }).json.todo_summary)
  end)

  it("keeps admin functions for staff", function()
    local dave = signup("dave")
    h.assert_error(dave:call("admin.stats", {}, { method = "GET" }), 403, "forbidden")
    local out, code = srv:users("create staffer --staff", "staffer password")
    assert.equals(0, code, out)
    local staff = srv:agent()
    staff:call("auth.login", { username = "staffer", password = "staffer password" })
    local stats = staff:call("admin.stats", {}, { method = "GET" }).json.result
    assert.is_true(stats.users >= 2)
  end)

  it("has a contact form and a new-list form that affects the lists and todos contexts", function()
    local err = h.assert_error(srv:call("contact.submit", { name = "Ada", email = "nope", message = "hi" }), 400, "validation_error")
    assert.same({ "Enter a valid email address." }, err.fields.email)
    assert.same({ "Ensure this value has at least 10 characters (it has 2)." }, err.fields.message)
    assert.same({ "This field is required." }, err.fields.topic)
    local ok = srv:call("contact.submit", { name = "Ada", email = "ada@lovelace.dev", topic = "help", message = "A question for you." })
    assert.same({ sent = true }, ok.json.result)
    local fay = signup("fay")
    h.assert_error(fay:call("new_list.submit", { name = "inbox" }), 400, "validation_error")
    local res = fay:call("new_list.submit", { name = "Groceries", tags = { "home" } })
    assert.equals(200, res.status)
    assert.equals("lists, todos", res.headers["x-mizan-invalidate"])
    assert.equals("Groceries", fay:context("lists").json.my_lists[1].name)
  end)

  it("signs out", function()
    local erin = signup("erin")
    assert.equals(200, erin:call("auth.logout", {}).status)
    h.assert_error(erin:call("create_list", { name = "x" }), 401, "unauthenticated")
  end)
end)
