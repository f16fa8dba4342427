-- `mizan schema`: OpenAPI 3.1, checked by real consumers from npm.
local json = require "mizan.json"
local kit = require "mizan.testkit"
local h = require "helpers"


local exe = kit.exe()
local run = h.run

local function validate(doc_text)
  local path = os.tmpname()
  h.write(path, doc_text)
  local out, code = run("node spec/js/validate-openapi.mjs " .. path)
  os.remove(path)
  return code, out
end

describe("mizan schema", function()
  local text, doc
  setup(function()
    local code
    text, code = run(exe .. " schema spec/apps/basic")
    assert.equals(0, code, text)
    doc = assert(json.decode(text))
  end)

  it("prints OpenAPI 3.1 with one path per function", function()
    assert.equals("3.1.0", doc.openapi)
    local n = 0
    for path in pairs(doc.paths) do
      if path:find("/call/", 1, true) then n = n + 1 end
    end
    require("mizan.testing").app("spec/apps/basic")
    assert.equals(#require("mizan").registry().order, n)
    assert.is_true(n >= 10)
    local echo = doc.paths["/api/mizan/call/echo/"]
    assert.is_table(echo.post)
    assert.is_nil(echo.get, "a mutation has no GET")
    assert.is_table(doc.paths["/api/mizan/call/fast/"].get, "a query has GET")
    assert.same({ type = "string", maxLength = 200 },
                echo.post.requestBody.content["application/json"].schema.properties.text)
  end)

  it("exports x-mizan-functions", function()
    local f = doc["x-mizan-functions"]
    assert.equals("mutation", f.echo.kind)
    assert.equals("query", f.fast.kind)
    assert.same({ type = "object", properties = { message = { type = "string" } }, required = { "message" } }, f.echo.output)
    assert.equals(json.null, f.echo.context)
  end)

  it("is deterministic", function()
    assert.equals(text, (run(exe .. " schema spec/apps/basic")))
  end)

  it("passes a real OpenAPI validator, openapi-typescript and tsc --strict", function()
    local code, out = validate(text)
    assert.equals(0, code, out)
    for _, app in ipairs { "examples/todo", "spec/apps/contexts", "spec/apps/forms", "spec/apps/auth" } do
      code, out = validate((run(exe .. " schema " .. app)))
      assert.equals(0, code, app .. ": " .. tostring(out))
    end
  end)

  it("exports the example app's contexts and functions", function()
    local out, code = run(exe .. " schema examples/todo")
    assert.equals(0, code, out)
    local d = json.decode(out)
    local ctx = d["x-mizan-contexts"]
    assert.same({ "current_user" }, ctx.global.functions)
    assert.is_true(ctx.global.global)
    assert.same({ "todo_list", "todo_summary" }, ctx.todos.functions)
    assert.same({ schema = { type = "integer", minimum = 1 }, required = true,
                  functions = { "todo_list", "todo_summary" } }, ctx.todos.params.list_id)
    assert.same({ schema = { type = "boolean" }, required = false, functions = { "todo_list" } },
                ctx.todos.params.done)
    local fns = d["x-mizan-functions"]
    assert.equals("todos", fns.todo_list.context)
    assert.equals("query", fns.todo_list.kind)
    assert.equals("global", fns.current_user.context)
    assert.same({ "todos" }, fns.add_todo.affects)
    assert.equals("mutation", fns.add_todo.kind)
    assert.equals(json.null, fns.add_todo.context)
    assert.same({}, fns.delete_todo.affects)
    local get = d.paths["/api/mizan/ctx/todos/"].get
    assert.equals("ctx.todos", get.operationId)
    local params = {}
    for _, p in ipairs(get.parameters) do params[p.name] = p.required end
    assert.same({ list_id = true, done = false }, params)
    assert.same({ "todo_list", "todo_summary" },
                get.responses["200"].content["application/json"].schema.required)
  end)

  it("exports cache policies and the edge-cacheable contexts", function()
    local out, code = run(exe .. " schema spec/apps/cached")
    assert.equals(0, code, out)
    local d = json.decode(out)
    assert.same({ ttl = 60, shared = true }, d["x-mizan-functions"].item.cache)
    assert.same({ ttl = 60, shared = false }, d["x-mizan-functions"].item_meta.cache)
    assert.equals(json.null, d["x-mizan-functions"].set_item.cache)
    assert.same({ public = { ttl = 10, public = true, functions = { "headline", "banner" }, purged_by = { "publish" } } },
                d["x-mizan-edge"])
    code, out = validate(out)
    assert.equals(0, code, out)
  end)

  it("is checked by a validator that does reject a broken document", function()
    local broken = json.decode(text)
    broken.info = nil
    broken.paths["/api/mizan/call/echo/"].post.responses = "nope"
    local code = validate(json.encode(broken))
    assert.is_not.equals(0, code)
  end)

  it("fails with the load error for a broken app", function()
    local dir = h.app_dir('local mizan = require "mizan"\n' ..
      'mizan.register(mizan.client { auth = 5 } (function() end), "guarded")\n')
    local out, code = run(exe .. " schema " .. dir)
    assert.is_not.equals(0, code)
    assert.matches("function 'guarded', option 'auth': must be true", out, 1, true)
  end)
end)
