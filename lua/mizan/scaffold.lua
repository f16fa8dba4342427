-- `mizan new NAME`: write an app that runs with `mizan dev NAME` at once:
-- one query, one context, one mutation with affects, and a passing spec.
local core = require "mizan.core"

local M = {}

local APP = [=[
-- %s: a Mizan app. Run it with `mizan dev %s`, test it with `mizan test %s/spec`.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

-- A plain query: GET or POST /api/mizan/call/hello/?name=you
mizan.register(client {
  query = true,
  input = { name = T.string { max_length = 50, default = "world" } },
  output = { greeting = T.string },
} (function(req, args)
  return { greeting = "Hello, " .. args.name .. "!" }
end), "hello")

-- A context: GET /api/mizan/ctx/notes/ returns every function of it at once.
local notes = {}

mizan.register(client {
  context = "notes",
  output = T.array { id = T.integer, text = T.string },
} (function(req)
  return mizan.array(notes)
end), "note_list")

mizan.register(client {
  context = "notes",
  output = { count = T.integer },
} (function(req)
  return { count = #notes }
end), "note_count")

-- A mutation that says what it affects: clients refetch the "notes" context.
mizan.register(client {
  input = { text = T.string { min_length = 1, max_length = 500 } },
  output = { id = T.integer, text = T.string },
  affects = "notes",
} (function(req, args)
  local note = { id = #notes + 1, text = args.text }
  notes[#notes + 1] = note
  return note
end), "add_note")
]=]

local SPEC = [=[
-- Run with: mizan test %s/spec
local testing = require "mizan.testing"

-- this file is <app>/spec/app_spec.lua: the app is one folder up
local here = debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$") or "."

describe("%s", function()
  local app = testing.app(here)

  it("greets", function()
    local res = app:call("hello", { name = "Ada" }, { method = "GET" })
    assert.equals(200, res.status)
    assert.equals("Hello, Ada!", res.body.result.greeting)
  end)

  it("adds a note and invalidates the notes context", function()
    local res = app:call("add_note", { text = "first" })
    assert.equals(200, res.status)
    assert.same({ "notes" }, res.body.invalidate)
    local bundle = app:context("notes").body
    assert.equals(1, bundle.note_count.count)
    assert.equals("first", bundle.note_list[1].text)
  end)

  it("refuses an empty note", function()
    local res = app:call("add_note", { text = "" })
    assert.equals(400, res.status)
    assert.equals("validation_error", res.body.error.code)
  end)
end)
]=]

local function write(path, text)
  local f = io.open(path, "r")
  if f then
    f:close()
    return nil, path .. " exists already"
  end
  f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return true
end

function M.create(dir)
  local name = dir:match("([^/]+)/*$")
  if not name or not name:find("^[%w_.-]+$") then
    io.stderr:write("mizan new: give a folder name, e.g. mizan new myapp\n")
    return 2
  end
  local ok, err = core.mkdir(dir)
  if not ok then
    io.stderr:write(("mizan new: cannot make %s: %s\n"):format(dir, err))
    return 1
  end
  core.mkdir(dir .. "/spec")
  for path, text in pairs {
    [dir .. "/app.lua"] = APP:format(name, dir, dir),
    [dir .. "/spec/app_spec.lua"] = SPEC:format(dir, name),
    [dir .. "/.gitignore"] = ".mizan/\n",
  } do
    local wrote, why = write(path, text)
    if not wrote then
      io.stderr:write("mizan new: " .. why .. "\n")
      return 1
    end
  end
  print(("created %s/app.lua and %s/spec/app_spec.lua"):format(dir, dir))
  print(("  mizan dev %s          serve it on http://%s%s"):format(dir, require("mizan.options").default("listen"),
                                                                     require("mizan.options").default("base_path")))
  print(("  mizan test %s/spec    run its spec"):format(dir))
  return 0
end

return M
