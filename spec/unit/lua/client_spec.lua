-- client{} and register(): misuse fails when the app loads, naming the
-- function and the option.
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
end

describe("client{} and register()", function()
  it("loads a correct app", function()
    loads [[
      -- note: Lua refuses a call whose "(" starts a new line, so the
      -- decorated function stays on the line of the options
      mizan.register(client { input = { a = T.integer }, output = T.integer, query = true } (function(req, args)
        return args.a
      end), "double")
    ]]
  end)

  it("names the function and the option for an unknown type option", function()
    local err = load_error [[
      mizan.register(client { input = { text = T.string { maxlen = 3 } } } (function() end), "echo")
    ]]
    assert.matches("app.lua:3:", err)
    assert.matches("function 'echo', option 'input.text': T.string has no option 'maxlen'", err, 1, true)
  end)

  it("rejects an unknown client option", function()
    local err = load_error [[ mizan.register(client { inptu = {} } (function() end), "f") ]]
    assert.matches("function 'f', option 'inptu': unknown option", err, 1, true)
  end)

  it("checks the auth option", function()
    for _, v in ipairs { '"admin"', "5", "false", "{}" } do
      local err = load_error(("mizan.register(client { auth = %s } (function() end), \"guarded\")"):format(v))
      assert.matches("function 'guarded', option 'auth': must be true, \"staff\", \"superuser\" or function(req)", err, 1, true)
    end
  end)

  it("lists every problem at once", function()
    local err = load_error [[
      mizan.register(client { input = { a = T.integer { min = "x" }, b = T.string { max = 1 } }, auth = 5 } (function() end), "multi")
    ]]
    assert.matches("option 'auth'", err, 1, true)
    assert.matches("option 'input.a': T.integer option 'min' must be a number", err, 1, true)
    assert.matches("option 'input.b': T.string has no option 'max'", err, 1, true)
  end)

  it("fails at once on a type that does not exist", function()
    local err = load_error [[ local t = { b = T.strnig } ]]
    assert.matches("app.lua:3: mizan.types has no type 'strnig'", err, 1, true)
  end)

  it("requires input to be an object type", function()
    local err = load_error [[ mizan.register(client { input = T.string } (function() end), "s") ]]
    assert.matches("function 's', option 'input': must be an object type", err, 1, true)
  end)

  it("checks query is a boolean and description a string", function()
    assert.matches("option 'query': must be true or false",
                   load_error [[ mizan.register(client { query = "yes" } (function() end), "q") ]], 1, true)
    assert.matches("option 'description': must be a string",
                   load_error [[ mizan.register(client { description = 5 } (function() end), "q") ]], 1, true)
  end)

  it("rejects bad registrations", function()
    assert.matches("expects a table of options", load_error [[ client "x" ]])
    assert.matches("must decorate a function", load_error [[ client {} (5) ]])
    assert.matches("expects a function made by mizan.client", load_error [[ mizan.register(function() end, "x") ]])
    assert.matches("invalid function name", load_error [[ mizan.register(client {} (function() end), "1x") ]])
    assert.matches("already registered", load_error [[
      mizan.register(client {} (function() end), "dup")
      mizan.register(client {} (function() end), "dup")
    ]])
  end)

  it("reports syntax and runtime errors in app.lua with file and line", function()
    assert.matches("app.lua:4:", load_error "\nlocal x = = 1")
    assert.matches("app.lua:4: boom", load_error "\nerror('boom')")
  end)

  it("follows the query/mutation rule", function()
    loads [[
      mizan.register(client { query = true } (function() end), "q")
      mizan.register(client {} (function() end), "m")
    ]]
    local reg = require("mizan").registry()
    assert.equals("query", reg.functions.q.kind)
    assert.equals("mutation", reg.functions.m.kind)
  end)

  it("checks mizan.response and mizan.error arguments", function()
    local mizan = require "mizan"
    assert.has_error(function() mizan.response { status = 99 } end)
    assert.has_error(function() mizan.response { body = 5 } end)
    assert.is_true(mizan.is_response(mizan.response { body = "x" }))
    assert.has_error(function() mizan.error("no_such_code", "x") end)
  end)

  it("refuses config options that arrive later, and unknown ones", function()
    assert.matches("option 'static_dir' must be a folder path", load_error [[ mizan.config { static_dir = 5 } ]], 1, true)
    assert.matches("option 'sessions' must be \"sqlite\" or \"redis://", load_error [[ mizan.config { sessions = "x" } ]], 1, true)
    assert.matches("unknown option 'lissen'", load_error [[ mizan.config { lissen = ":1" } ]], 1, true)
    assert.matches("limits has no option 'max_bdy'", load_error [[ mizan.config { limits = { max_bdy = 1 } } ]], 1, true)
  end)

  it("checks limits from app code and from the environment", function()
    assert.matches("limits.max_body must be a whole number of bytes",
                   load_error [[ mizan.config { limits = { max_body = 1.5 } } ]], 1, true)
    assert.matches("limits.max_head must be at least 1024 bytes",
                   load_error [[ mizan.config { limits = { max_head = 100 } } ]], 1, true)
    local config = require "mizan.config"
    local function env(t) return function(k) return t[k] end end
    config.reset()
    local c = config.finalize(env { MIZAN_BODY_TIMEOUT = "0.25", MIZAN_MAX_BODY = "2048", MIZAN_LISTEN = "127.0.0.1:9" })
    assert.equals(0.25, c.limits.body_timeout)
    assert.equals(2048, c.limits.max_body)
    assert.equals("127.0.0.1:9", c.listen)
    for var, want in pairs { MIZAN_MAX_BODY = "whole number", MIZAN_HEADER_TIMEOUT = "positive number",
                             MIZAN_CACHE = "must be \"memory\" or \"redis://host:port/db\"", MIZAN_DATABASE = "must look like sqlite:" } do
      config.reset()
      local bad = { MIZAN_MAX_BODY = "1.5", MIZAN_HEADER_TIMEOUT = "-1", MIZAN_CACHE = "memcached://x",
                    MIZAN_DATABASE = "mysql://x" } -- (postgres:// is a database now)
      local ok, err = pcall(config.finalize, env { [var] = bad[var] })
      assert.is_false(ok)
      assert.matches(var, err, 1, true)
      assert.matches(want, err, 1, true)
    end
    config.reset()
  end)
end)
