-- Contexts, param elevation and affects: the registry side, and every load error.
local h = require "helpers"

local PRELUDE = 'local mizan = require "mizan"\nlocal client, T = mizan.client, mizan.types\n'

local function load_error(body)
  local ok, err = h.try_load(PRELUDE .. body)
  assert.is_false(ok, "the app loaded but should not have")
  return tostring(err)
end

local function loads(body)
  local ok, err = h.try_load(PRELUDE .. body)
  assert.is_true(ok, tostring(err))
  return require("mizan").registry()
end

local function capture_log(fn)
  local core = require "mizan.core"
  local lines, real = {}, core.log
  core.log = function(level, msg) lines[#lines + 1] = level .. ": " .. msg end
  local ok, err = pcall(fn)
  core.log = real
  assert(ok, err)
  return lines
end

describe("contexts", function()
  it("accept any string, group functions by name, and make them queries", function()
    local reg = loads [[
      mizan.register(client { context = "global" } (function() end), "current_user")
      mizan.register(client { context = "todos", input = { list_id = T.integer } } (function() end), "todos")
      mizan.register(client { context = "todos", input = { list_id = T.integer, done = T.optional(T.boolean) } } (function() end), "todo_count")
      mizan.register(client { context = "a context with spaces & symbols!" } (function() end), "odd")
    ]]
    local groups = require("mizan").context_groups()
    assert.same({ "current_user" }, groups.global.functions)
    assert.same({ "todos", "todo_count" }, groups.todos.functions)
    assert.same({ "odd" }, groups["a context with spaces & symbols!"].functions)
    assert.equals("query", reg.functions.todos.kind)
  end)

  it("elevate params: the union of inputs, required when any function requires it", function()
    loads [[
      mizan.register(client { context = "c", input = { a = T.integer, b = T.optional(T.string) } } (function() end), "f")
      mizan.register(client { context = "c", input = { a = T.optional(T.integer), c = T.boolean { default = true } } } (function() end), "g")
    ]]
    local c = require("mizan").context_groups().c
    assert.same({ "a", "b", "c" }, c.order)
    assert.is_true(c.params.a.required)
    assert.same({ "f", "g" }, c.params.a.functions)
    assert.is_false(c.params.b.required)
    assert.is_false(c.params.c.required)
  end)

  it("refuse a param with two different types, naming both functions", function()
    local err = load_error [[
      mizan.register(client { context = "todos", input = { list_id = T.integer } } (function() end), "todos")
      mizan.register(client { context = "todos", input = { list_id = T.string } } (function() end), "todo_count")
    ]]
    assert.matches("app.lua:4:", err, 1, true)
    assert.matches("function 'todo_count', option 'input.list_id': context 'todos' already has param 'list_id' "
      .. "with another type (T.integer in function 'todos', T.string here)", err, 1, true)
  end)

  it("treat different constraints on one param as different types", function()
    local err = load_error [[
      mizan.register(client { context = "c", input = { n = T.integer { min = 1 } } } (function() end), "f")
      mizan.register(client { context = "c", input = { n = T.integer } } (function() end), "g")
    ]]
    assert.matches("already has param 'n'", err, 1, true)
  end)

  it("keep \"local\" working as a context of its own, with one deprecation warning", function()
    local lines = capture_log(function()
      loads [[ mizan.register(client { context = "local" } (function() end), "mine") ]]
    end)
    assert.same({ "mine" }, require("mizan").context_groups().mine.functions)
    local warnings = 0
    for _, l in ipairs(lines) do
      if l:find("deprecated", 1, true) then
        warnings = warnings + 1
        assert.matches("function 'mine': context = \"local\" is deprecated; write context = \"mine\"", l, 1, true)
      end
    end
    assert.equals(1, warnings)
  end)

  it("refuse a bad context option", function()
    assert.matches("option 'context': must be a non-empty string",
                   load_error [[ mizan.register(client { context = 5 } (function() end), "f") ]], 1, true)
    assert.matches("option 'context': must be a non-empty string",
                   load_error [[ mizan.register(client { context = "" } (function() end), "f") ]], 1, true)
    assert.matches("option 'query': is false, but a function with a context is a query",
                   load_error [[ mizan.register(client { context = "c", query = false } (function() end), "f") ]], 1, true)
  end)
end)

describe("affects", function()
  it("accepts a context name, a function reference, or a list mixing them", function()
    local reg = loads [[
      local todos = client { context = "todos", input = { list_id = T.integer } } (function() end)
      mizan.register(todos, "todos")
      local stats = client { query = true } (function() end)
      mizan.register(stats, "stats")
      mizan.register(client { affects = "todos" } (function() end), "a")
      mizan.register(client { affects = stats } (function() end), "b")
      mizan.register(client { affects = { "todos", stats, "todos" } } (function() end), "c")
    ]]
    local function names(fn)
      local out = {}
      for i, t in ipairs(reg.functions[fn].affects) do out[i] = t.name end
      return out
    end
    assert.same({ "todos" }, names "a")
    assert.same({ "stats" }, names "b")
    assert.same({ "todos", "stats" }, names "c")
  end)

  it("may name a target registered later in the app", function()
    loads [[
      mizan.register(client { affects = { "later" } } (function() end), "m")
      mizan.register(client { context = "later" } (function() end), "reader")
    ]]
  end)

  it("cannot be combined with context", function()
    local err = load_error [[ mizan.register(client { context = "c", affects = "c" } (function() end), "f") ]]
    assert.matches("function 'f', option 'affects': cannot be combined with context", err, 1, true)
  end)

  it("is refused on a query", function()
    local err = load_error [[
      mizan.register(client { context = "c" } (function() end), "r")
      mizan.register(client { query = true, affects = "c" } (function() end), "f")
    ]]
    assert.matches("function 'f', option 'affects': is only for mutations, and this function is a query", err, 1, true)
  end)

  it("refuses an unknown target, with the place it was declared", function()
    local err = load_error [[ mizan.register(client { affects = { "nope" } } (function() end), "f") ]]
    assert.matches("app.lua:3: function 'f', option 'affects': unknown target 'nope': no context or function has that name",
                   err, 1, true)
  end)

  it("refuses a target that is both a context and a function", function()
    local err = load_error [[
      mizan.register(client { context = "clash" } (function() end), "reader")
      mizan.register(client { query = true } (function() end), "clash")
      mizan.register(client { affects = "clash" } (function() end), "f")
    ]]
    assert.matches("function 'f', option 'affects': target 'clash' is both a context and a function", err, 1, true)
  end)

  it("refuses a mutation as a target, and a function that was never registered", function()
    local err = load_error [[
      mizan.register(client {} (function() end), "other")
      mizan.register(client { affects = "other" } (function() end), "f")
    ]]
    assert.matches("target 'other' is a mutation", err, 1, true)
    err = load_error [[
      local lost = client { query = true } (function() end)
      mizan.register(client { affects = lost } (function() end), "f")
    ]]
    assert.matches("a target function (made at", err, 1, true)
    assert.matches("was never registered", err, 1, true)
  end)

  it("refuses malformed affects and affects_params", function()
    assert.matches("option 'affects': must be a context name, a function, or a non-empty list",
                   load_error [[ mizan.register(client { affects = {} } (function() end), "f") ]], 1, true)
    assert.matches("option 'affects': item #2 must be a context or function name",
                   load_error [[ mizan.register(client { affects = { "a", 5 } } (function() end), "f") ]], 1, true)
    assert.matches("option 'affects_params': needs affects",
                   load_error [[ mizan.register(client { affects_params = {} } (function() end), "f") ]], 1, true)
    assert.matches("option 'affects_params': must be a table",
                   load_error [[ mizan.register(client { affects = "x", affects_params = 5 } (function() end), "f") ]], 1, true)
    assert.matches("option 'affects_params': maps 'list_id' to argument 'lst', which is not in this function's input",
                   load_error [[ mizan.register(client { affects = "x", affects_params = { list_id = "lst" } } (function() end), "f") ]],
                   1, true)
  end)

  it("refuses an affects_params key that no target has", function()
    local err = load_error [[
      mizan.register(client { context = "todos", input = { list_id = T.integer } } (function() end), "todos")
      mizan.register(client { affects = "todos", affects_params = { owner = "id" }, input = { id = T.integer } } (function() end), "f")
    ]]
    assert.matches("function 'f', option 'affects_params': 'owner' is not a param of any target", err, 1, true)
  end)
end)
