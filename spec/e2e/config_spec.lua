-- One source of configuration (lua/mizan/options.lua) and test code kept out
-- of production: what an app author sees of both.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local h = require "helpers"

local options = require "mizan.options"

local function load_fails(source)
  local dir = h.app_dir(source)
  local ok, err = pcall(testing.server, dir)
  assert.is_false(ok, "the app loaded")
  return tostring(err), dir
end

describe("configuration", function()
  it("reports a misspelt option at the app's own file and line", function()
    local err = load_fails('local mizan = require "mizan"\n\nmizan.config { limts = {} }\n')
    assert.matches("app.lua:3: mizan.config: unknown option 'limts' (did you mean 'limits'?)", err, 1, true)
    err = load_fails('local mizan = require "mizan"\nmizan.config { limits = { max_bdy = 1 } }\n')
    assert.matches("app.lua:2: mizan.config: limits has no option 'max_bdy' (did you mean 'max_body'?)", err, 1, true)
  end)

  it("names the option and the app's file and line for a value of the wrong type", function()
    local err = load_fails('local mizan = require "mizan"\n\n\nmizan.config { listen = 5 }\n')
    assert.matches("app.lua:4: mizan.config: option 'listen' must be a non-empty string", err, 1, true)
    err = load_fails('local mizan = require "mizan"\nmizan.config { limits = { max_body = "big" } }\n')
    assert.matches("app.lua:2: mizan.config: limits.max_body must be a positive number", err, 1, true)
  end)

  it("reads every option's environment variable back to the same value", function()
    local config = require "mizan.config"
    for _, o in ipairs(options.list) do
      local d = o.default
      if o.env and d ~= nil and d ~= 0 then
        local text = type(d) == "table" and table.concat(d, ",") or type(d) == "boolean" and (d and "on" or "off")
          or tostring(d)
        config.reset()
        local c = config.finalize(function(k) return k == o.env and text or nil end)
        local got -- not `a and b or c`: a grouped option may be false
        if o.group then got = c[o.group][o.key] else got = c[o.name] end
        assert.same(d, got, o.name)
      end
    end
    config.reset()
  end)

  it("lists every option and its environment variable in `mizan help config`", function()
    local out, code = h.run(kit.exe() .. " help config")
    assert.equals(0, code)
    for _, o in ipairs(options.list) do
      assert.matches(o.name, out, 1, true)
      if o.env then assert.matches(o.env, out, 1, true) end
    end
  end)

  it("keeps the README's options table equal to the table in the code", function()
    local readme = h.read("README.md")
    local copy = readme:match("<!%-%- options: mizan help config %-%-markdown %-%->\n(.-)<!%-%- /options %-%->")
    if not copy then
      pending("README.md has no generated options table yet (see mizan help config --markdown)")
      return
    end
    assert.equals(require("mizan.config").markdown(), copy)
  end)

  it("serves on the base path from the environment, and says so when it starts", function()
    for _, command in ipairs { "dev", "serve" } do
      local srv = testing.server("spec/apps/basic",
                                 { command = command, env = { MIZAN_BASE_PATH = "/v2/", MIZAN_WORKERS = "1" } })
      assert.matches("serving .- on http://127%.0%.0%.1:%d+/v2/", srv:log())
      assert.equals("/v2/", srv.base_path)
      assert.equals("hi", srv:call("echo", { text = "hi" }).json.result.message)
      assert.equals(404, srv:request("POST", "/api/mizan/call/echo/", { body = "{}" }).status)
      srv:stop()
    end
  end)

  it("routes in C the names mizan.options gives the test client and the TS kernel", function()
    local srv = testing.server("spec/apps/contexts")
    local base, R = srv.base_path, options.routes
    assert.equals(200, srv:request("GET", base .. R.health).status)
    assert.equals(200, srv:request("GET", base .. R.metrics).status)
    assert.equals(200, srv:request("GET", base .. R.ctx .. "global/").status)
    assert.equals(200, srv:request("GET", base .. R.call .. "current_user/").status)
    local ws = srv:request("GET", base .. R.ws)
    assert.is_true(ws.status == 400 or ws.status == 426, tostring(ws.status))
    assert.equals(404, srv:request("GET", base .. "nope/").status)
    srv:stop()
  end)

  it("names the session cookie from the option, in Lua and in C", function()
    local srv = testing.server("spec/apps/auth", { env = { MIZAN_SESSION_COOKIE = "app_sid" } })
    local agent = srv:agent()
    local res = agent:call("auth.signup", { username = "carol", password = "correct horse", email = "c@example.com" })
    assert.equals(200, res.status, res.body)
    assert.matches("^app_sid=", res.headers["set-cookie"])
    assert.equals("carol", agent:call("whoami", {}, { method = "GET" }).json.result.me)
    srv:stop()
    -- C's cache fast path must know the name too: else a caller with a
    -- session would get the answer cached for anonymous callers
    srv = testing.server("spec/apps/cached", { env = { MIZAN_SESSION_COOKIE = "app_sid" } })
    for _ = 1, 2 do assert.is_not.string(srv:call("whoami", {}, { method = "GET" }).json.result.name) end
    agent = srv:agent()
    assert.equals(200, agent:call("remember", { name = "dora" }).status)
    assert.equals("app_sid", agent.cookie_name)
    assert.equals("dora", agent:call("whoami", {}, { method = "GET" }).json.result.name)
    srv:stop()
  end)

  it("gives the generated TS kernel the app's base path and routes as its defaults", function()
    local dir = h.app_dir('local mizan = require "mizan"\nmizan.config { base_path = "/v1/" }\n')
    local out, code = h.run(("%s codegen --target react --out %s/web %s"):format(kit.exe(), dir, dir))
    assert.equals(0, code, out)
    local kernel = h.read(dir .. "/web/kernel.ts")
    assert.matches('opts.baseUrl ?? "/v1/"', kernel, 1, true)
    assert.matches('"' .. options.routes.call .. '" + name', kernel, 1, true)
    assert.matches('"' .. options.routes.ws .. '"', kernel, 1, true)
  end)
end)

describe("test code", function()
  local PROBE = [[
local mizan = require "mizan"
local core = require "mizan.core"
mizan.register(mizan.client { query = true } (function()
  local kit_ok, kit_err = pcall(require, "mizan.testkit")
  local testing_ok = pcall(require, "mizan.testing")
  return { kit = kit_ok, testing = testing_ok, err = tostring(kit_err), pid = core.getpid() }
end), "probe")
]]

  it("is not loadable in an app served by mizan dev or mizan serve; core.getpid is", function()
    local dir = h.app_dir(PROBE)
    for _, command in ipairs { "dev", "serve" } do
      local srv = testing.server(dir, { command = command, env = { MIZAN_WORKERS = "1" } })
      local r = srv:call("probe", {}, { method = "GET" }).json.result
      assert.is_false(r.kit, command)
      assert.is_false(r.testing, command)
      assert.matches("test code", r.err, 1, true)
      assert.is_number(r.pid)
      if command == "dev" then assert.equals(srv.pid, r.pid) end
      srv:stop()
    end
  end)

  it("is not loadable in a built executable either", function()
    local dir = h.app_dir(PROBE)
    local text, code = h.run(("%q build %q -o %q"):format(kit.exe(), dir, dir .. "/app"))
    assert.equals(0, code, text)
    local srv = testing.server("", { exe = dir .. "/app", command = "serve", args = {}, env = { MIZAN_WORKERS = "1" } })
    local r = srv:call("probe", {}, { method = "GET" }).json.result
    assert.is_false(r.kit)
    assert.is_false(r.testing)
    srv:stop()
  end)
end)
