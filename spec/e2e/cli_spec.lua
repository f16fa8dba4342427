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

  it("fails to start, naming the path it looked in, when the app folder is missing or has no app.lua", function()
    local out, code = run(exe .. " schema /nonexistent-app")
    assert.equals(1, code)
    assert.matches("mizan schema: no app folder at /nonexistent%-app", out)
    out, code = run(exe .. " dev /tmp")
    assert.equals(1, code)
    assert.matches("mizan dev: no app.lua in /tmp", out)
    assert.is_nil(out:find("traceback", 1, true), out)
    out, code = run("cd /tmp && " .. exe .. " serve")
    assert.equals(1, code)
    assert.matches("mizan serve: no app.lua in /tmp", out)
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

describe("every command's command line", function()
  it("has --help with its own options, the same text as mizan help CMD", function()
    for _, cmd in ipairs { "new", "dev", "serve", "build", "schema", "codegen", "test", "lua", "version" } do
      local out, code = run(exe .. " " .. cmd .. " --help")
      assert.equals(0, code, cmd .. ": " .. out)
      assert.matches("^usage: mizan " .. cmd, out)
      local same = run(exe .. " help " .. cmd)
      assert.equals(out, same, "mizan help " .. cmd)
    end
    local dev = run(exe .. " dev --help")
    assert.matches("%-%-listen ADDR", dev)
    assert.matches("%-p, %-%-port N", dev)
    assert.matches("%-o, %-%-out FILE", (run(exe .. " build -h")))
    for _, cmd in ipairs { "migrate", "jobs", "users" } do
      local out, code = run(exe .. " help " .. cmd)
      assert.equals(0, code, cmd .. ": " .. out)
      assert.matches(cmd, out)
    end
    local list = run(exe .. " help")
    for _, cmd in ipairs { "new", "dev", "serve", "build", "migrate", "jobs", "users" } do
      assert.matches("mizan " .. cmd .. " ", list)
    end
  end)

  it("refuses an unknown option or an extra argument, naming it, with exit status 2", function()
    local cases = {
      { "dev --bogus", "mizan dev: unknown option '%-%-bogus'" },
      { "dev examples/todo 127.0.0.1:9000", "mizan dev: unexpected argument '127%.0%.0%.1:9000'" },
      { "serve --port", "mizan serve: option '%-%-port' needs a value" },
      { "serve --port 99999 examples/todo", "%-%-port wants a port number" },
      { "dev --listen 127.0.0.1:1 --port 2 examples/todo", "give %-%-listen or %-%-port, not both" },
      { "schema a b", "mizan schema: unexpected argument 'b'" },
      { "build examples/todo", "give %-o FILE" },
      { "codegen --target angular --out /tmp/x examples/todo", "unknown %-%-target 'angular' %(react, vue or svelte%)" },
      { "codegen --target react examples/todo", "give %-%-out DIR" },
      { "new", "which folder%?" },
      { "help nope", "mizan help: no command named 'nope'" },
      { "help config --html", "unexpected argument '%-%-html'" },
    }
    for _, case in ipairs(cases) do
      local out, code = run(exe .. " " .. case[1])
      assert.equals(2, code, case[1] .. ": " .. out)
      assert.matches(case[2], out)
    end
  end)

  it("takes --port and --listen on dev and serve", function()
    local port = kit.free_port()
    local srv = testing.server("examples/todo", { args = { "--port", tostring(port), "examples/todo" },
                                                    env = { MIZAN_LISTEN = "127.0.0.1:1" } })
    assert.equals(port, srv.port)
    srv:stop()
    port = kit.free_port()
    srv = testing.server("examples/todo", { command = "serve", env = { MIZAN_WORKERS = "1" },
                                            args = { "examples/todo", "--listen=127.0.0.1:" .. port } })
    assert.equals(port, srv.port)
    srv:stop()
  end)

  it("answers bare mizan users with its usage, not a load failure", function()
    local out, code = run("cd /tmp && " .. exe .. " users")
    assert.equals(2, code, out)
    assert.matches("usage", out)
    assert.is_nil(out:find("failed to load", 1, true), out)
  end)
end)
