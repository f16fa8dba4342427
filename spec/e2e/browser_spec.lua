-- The example UIs in a real browser: Debian's chromium driven by
-- playwright-core (spec/js/browser/*.mjs), against a live `mizan serve` with
-- two workers serving the Vite build. Screenshots go to build/screenshots/.
local testing = require "mizan.testing"
local lfs = require "lfs"
local h = require "helpers"

local run = h.run
local repo = lfs.currentdir()
local shots = repo .. "/build/screenshots"

-- Build an example's web UI into a scratch folder; returns that folder.
local function vite_build(example)
  local out = os.tmpname()
  os.remove(out)
  local text, code = run(("%s/node_modules/.bin/vite build %s/web --outDir %s --emptyOutDir --logLevel error")
    :format(repo, example, out))
  assert.equals(0, code, text)
  return out
end

local function in_browser(example, script)
  local dist = vite_build(example)
  local srv = testing.server(example, { command = "serve", env = { MIZAN_WORKERS = "2", MIZAN_STATIC_DIR = dist } })
  local text, code = run(("node spec/js/browser/%s http://127.0.0.1:%d/ %s"):format(script, srv.port, shots))
  srv:stop()
  run("rm -rf " .. dist)
  return text, code
end

describe("in a real browser", function()
  it("examples/todo: every error next to its field, lists load without another list's data, push and logout reach a second tab, axe-core", function()
    local text, code = in_browser("examples/todo", "todo.mjs")
    assert.equals(0, code, text)
    print(text:match("browser todo: [^\n]*"))
    assert.matches("browser todo: .* ok", text)
  end)

  it("examples/chat: two browser contexts chat with each other", function()
    local text, code = in_browser("examples/chat", "chat.mjs")
    assert.equals(0, code, text)
    assert.matches("browser chat: .* ok", text)
  end)

  it("the examples' Vite dev servers proxy the API and its WebSocket to mizan (ws: true)", function()
    for _, example in ipairs { "examples/todo", "examples/chat" } do
      local srv = testing.server(example)
      local text, code = run(("MIZAN_API_PORT=%d node spec/js/browser/vite-proxy.mjs %s/web"):format(srv.port, example))
      srv:stop()
      assert.equals(0, code, text)
      assert.matches("vite proxy .* ok", text)
    end
  end)
end)
