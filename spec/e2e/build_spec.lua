-- mizan build: one executable, statically linked, with the app inside.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local h = require "helpers"

describe("mizan build", function()
  local exe = kit.exe()
  local dir, out

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    require("lfs").mkdir(dir)
    -- an app with a module of its own, to prove require() works inside
    out = h.app_dir(h.read("spec/apps/reload/app.lua"), { ["greeting.lua"] = 'return "from a module"' })
    h.write(out .. "/app.lua", h.read(out .. "/app.lua") .. [[
mizan.register(client { query = true } (function() return require "greeting" end), "greeting")
]])
  end)

  it("writes one executable with the app inside, showing progress", function()
    local text, code = h.run(("%q build %q -o %q"):format(exe, out, dir .. "/app"))
    assert.equals(0, code, text)
    assert.matches("compiled app.lua", text, 1, true)
    assert.matches("compiled greeting.lua", text, 1, true)
    assert.matches("wrote .* MB runtime", text)
  end)

  it("links only the libc family dynamically", function()
    -- the sanitizer build links its libraries dynamically (MIZAN_STATIC=OFF);
    -- a built app is a copy of the running binary, so only the release build can pass this
    if h.run(("ldd %q"):format(exe)):find("luajit", 1, true) then
      pending("this mizan is built with MIZAN_STATIC=OFF (the sanitizer build)")
      return
    end
    local text = h.run(("ldd %q"):format(dir .. "/app"))
    for _, lib in ipairs { "luajit", "libuv", "libssl", "libcrypto", "hiredis", "sqlite" } do
      assert.is_nil(text:find(lib, 1, true), lib .. " is linked dynamically:\n" .. text)
    end
    assert.matches("libc%.so", text)
  end)

  it("serves the app from an empty folder, with no library path to lean on", function()
    local empty = dir .. "/empty"
    require("lfs").mkdir(empty)
    -- FILE serve is the app; run from an empty folder with the library path pointing nowhere
    local srv = testing.server("", { exe = "/bin/sh", command = "-c", env = { LD_LIBRARY_PATH = "/nonexistent" },
      args = { ("cd %q && exec %q serve"):format(empty, dir .. "/app") } })
    assert.equals("v1", srv:call("version", {}, { method = "GET" }).json.result)
    assert.equals("from a module", srv:call("greeting", {}, { method = "GET" }).json.result)
    assert.equals(0, (srv:stop()))
  end)

  it("explains itself when run without a command", function()
    local text, code = h.run(("%q"):format(dir .. "/app"))
    assert.equals(0, code)
    assert.matches("a Mizan app, built with mizan build", text, 1, true)
  end)
end)
