-- The mizan command line, and the binary standing on its own.
local kit = require "mizan.testkit"
local json = require "mizan.json"
local testing = require "mizan.testing"
local lfs = require "lfs"
local h = require "helpers"

local exe = kit.exe()
local run = h.run


describe("mizan CLI", function()
  it("prints its version", function()
    local out, code = run(exe .. " version")
    assert.equals(0, code)
    assert.matches("^mizan %d+%.%d+%.%d+", out)
  end)

  it("refuses an unknown command with usage and exit status 2", function()
    local out, code = run(exe .. " frobnicate")
    assert.equals(2, code)
    assert.matches("unknown command 'frobnicate'", out)
    assert.matches("usage:", out)
  end)

  it("runs from any directory, without the source tree, with the framework inside", function()
    local app = lfs.currentdir() .. "/examples/todo"
    local dir = os.tmpname()
    os.remove(dir)
    lfs.mkdir(dir)
    local copy = dir .. "/mizan"
    assert(os.execute(("cp %q %q"):format(exe, copy)) == 0)
    local out, code = run(("cd / && env -u LUA_PATH -u LUA_CPATH %q schema %q"):format(copy, app))
    assert.equals(0, code, out)
    assert.equals("3.1.0", json.decode(out).openapi)
    local srv = testing.server(app, { exe = copy })
    assert.equals("hi", srv:call("echo", { text = "hi" }).json.result.message)
    srv:stop()
    os.remove(copy)
    lfs.rmdir(dir)
  end)

  it("fails to start, naming the problem, when the app folder has no app.lua", function()
    local out, code = run(exe .. " schema /nonexistent-app")
    assert.equals(1, code)
    assert.matches("no app.lua in /nonexistent%-app", out)
  end)

  it("fails to start when the port is taken", function()
    local a = testing.server("examples/todo")
    local ok, err = pcall(testing.server, "examples/todo", { env = { MIZAN_LISTEN = "127.0.0.1:" .. a.port } })
    a:stop()
    assert.is_false(ok)
    assert.matches("cannot listen on 127.0.0.1:%d+: address already in use", tostring(err))
  end)

  it("refuses a malformed environment setting at load, naming the variable", function()
    local ok, err = pcall(testing.server, "examples/todo", { env = { MIZAN_MAX_BODY = "lots" } })
    assert.is_false(ok)
    assert.matches("MIZAN_MAX_BODY must be a positive number", tostring(err))
  end)

  it("writes a new app that serves and passes its own spec at once", function()
    local base = os.tmpname()
    os.remove(base)
    lfs.mkdir(base)
    local out, code = run(("cd %q && %q new demo"):format(base, exe))
    assert.equals(0, code, out)
    out, code = run(("cd %q && %q test demo/spec"):format(base, exe))
    assert.equals(0, code, out)
    assert.matches("3 successes / 0 failures", out)
    local srv = testing.server(base .. "/demo")
    assert.equals("Hello, world!", srv:call("hello", {}, { method = "GET" }).json.result.greeting)
    local res = srv:call("add_note", { text = "hi" })
    assert.equals("notes", res.headers["x-mizan-invalidate"])
    assert.equals(1, srv:context("notes").json.note_count.count)
    srv:stop()
    out, code = run(("cd %q && %q new demo"):format(base, exe))
    assert.equals(1, code)
    assert.matches("exists already", out)
    os.execute(("rm -rf %q"):format(base))
  end)
end)
