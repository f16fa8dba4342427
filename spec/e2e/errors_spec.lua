-- Typed errors (client { errors = ... }, mizan.error) and version skew
-- (X-Mizan-Schema, 409 stale_client), DESIGN §2.
local json = require "mizan.json"
local kit = require "mizan.testkit"
local testing = require "mizan.testing"
local h = require "helpers"

local APP = "spec/apps/errors"

local function load_error(opts_src)
  local ok, err = h.try_load(([[
local mizan = require "mizan"
local T = mizan.types
mizan.register(mizan.client { errors = %s } (function() return 1 end), "f")
]]):format(opts_src))
  assert.is_false(ok, "the app should fail to load")
  return tostring(err)
end

describe("typed errors", function()
  it("are declared and checked at load, naming the function and the option", function()
    assert.matches("function 'f', option 'errors': must be a table", load_error("5"))
    assert.matches("function 'f', option 'errors': 'NotFound' is not an error code", load_error("{ NotFound = true }"))
    assert.matches("function 'f', option 'errors.validation_error': is one of the protocol's own codes",
                   load_error("{ validation_error = true }"))
    assert.matches("function 'f', option 'errors.stale_client'", load_error("{ stale_client = true }"))
    assert.matches("function 'f', option 'errors.gone.status': must be an integer from 400 to 499",
                   load_error("{ gone = { status = 500, data = { x = T.integer } } }"))
    assert.matches("function 'f', option 'errors.not_found.status': must be 404",
                   load_error("{ not_found = { status = 400 } }"))
    assert.matches("function 'f', option 'errors.gone': has no option 'dta'",
                   load_error("{ gone = { status = 410, dta = {} } }"))
    assert.matches("function 'f', option 'errors.gone': must be a table", load_error("{ gone = 5 }"))
    -- a bad type inside the data: the path into it
    assert.matches("option 'errors.gone.x'", load_error("{ gone = { x = 5 } }"))
  end)

  it("mizan.error refuses a code that is no name at all (misuse raises)", function()
    local mizan = require "mizan"
    assert.has_error(function() mizan.error("Not Found") end)
    assert.has_error(function() mizan.error(5) end)
    assert.has_error(function() mizan.error("gone", 5) end)
  end)

  describe("in test mode (in process)", function()
    local app
    setup(function() app = testing.app(APP) end)
    local function get(case) return app:call("get_todo", { id = 3, case = case }) end
    -- in process there is no C to add Cache-Control: only the body is the app's
    local assert_error = function(res, status, code)
      res.headers["cache-control"] = "no-store"
      return h.assert_error(res, status, code)
    end

    it("answer a declared code with its status and typed data", function()
      local e = assert_error(get("not_found"), 404, "not_found")
      assert.same({ id = 3 }, e.data)
      assert.equals("not_found", e.message)
      e = assert_error(get("conflict"), 409, "conflict")
      assert.same({ with_id = 7 }, e.data)
      assert.equals("it clashes with another", e.message)
      e = assert_error(get("archived"), 422, "archived")
      assert.same({ since = "2026-01-01" }, e.data)
      e = assert_error(get("locked"), 400, "locked")
      assert.is_nil(e.data)
      assert.is_nil(e.fields)
    end)

    it("answer 500 internal_error for an undeclared code or data that does not match, naming function and code", function()
      local e = assert_error(get("undeclared"), 500, "internal_error")
      assert.matches("function 'get_todo' raised error 'teapot'", e.message)
      assert.matches("does not declare", e.message)
      e = assert_error(get("bad_data"), 500, "internal_error")
      assert.matches("function 'get_todo' raised error 'not_found', with data that does not match", e.message)
      assert.matches("id", e.message)
      e = assert_error(get("data_for_none"), 500, "internal_error")
      assert.matches("'locked', with data, but its declaration has none", e.message)
      assert.is_nil(e.data)
    end)

    it("keep the protocol's own codes working as before (fields, no data)", function()
      local e = assert_error(get("protocol"), 400, "validation_error")
      assert.same({ id = { "must be even" } }, e.fields)
      assert.is_nil(e.data)
      -- a declared code raised without its data breaks the declaration
      e = assert_error(get("plain"), 500, "internal_error")
      assert.matches("'not_found' without the data its declaration has", e.message)
    end)
  end)

  describe("over HTTP", function()
    local srv
    setup(function() srv = testing.server(APP, { command = "serve", env = { MIZAN_MODE = "production" } }) end)
    teardown(function() srv:stop() end)

    it("carry data in the body; production answers an undeclared code 500 without saying why, and logs it", function()
      local res = srv:call("get_todo", { id = 3, case = "not_found" }, { method = "GET" })
      local e = h.assert_error(res, 404, "not_found")
      assert.same({ id = 3 }, e.data)
      res = srv:call("get_todo", { id = 3, case = "undeclared" }, { method = "GET" })
      e = h.assert_error(res, 500, "internal_error")
      assert.equals("internal error", e.message)
      assert.is_true(h.wait_until(function() return srv:log():find("function 'get_todo' raised error 'teapot'", 1, true) ~= nil end))
    end)
  end)
end)

describe("the schema", function()
  local doc
  setup(function()
    local text, code = h.run(kit.exe() .. " schema " .. APP)
    assert.equals(0, code, text)
    doc = assert(json.decode(text))
  end)

  it("lists a function's declared errors in x-mizan-functions, with status and data", function()
    local f = doc["x-mizan-functions"].get_todo
    assert.same({ status = 404, data = { type = "object", properties = { id = { type = "integer" } }, required = { "id" } } },
                f.errors.not_found)
    assert.equals(409, f.errors.conflict.status)
    assert.equals(422, f.errors.archived.status)
    assert.same({ status = 400, data = json.null }, f.errors.locked)
    assert.matches("^%x+$", f.hash)
    assert.same({}, doc["x-mizan-functions"].stable.errors)
  end)

  it("has them as OpenAPI responses, each code's body typed, beside the protocol's", function()
    local r = doc.paths["/api/mizan/call/get_todo/"].get.responses
    local s404 = r["404"].content["application/json"].schema
    assert.equals("#/components/schemas/Error", s404.anyOf[1]["$ref"])
    local nf = s404.anyOf[2].properties.error
    assert.same({ const = "not_found" }, nf.properties.code)
    assert.same({ "code", "message", "data" }, nf.required)
    local s409 = r["409"].content["application/json"].schema
    assert.same({ const = "stale_client" }, s409.anyOf[1].properties.error.properties.code)
    assert.same({ const = "conflict" }, s409.anyOf[2].properties.error.properties.code)
    assert.same({ const = "archived" }, r["422"].content["application/json"].schema.properties.error.properties.code)
    -- every function may answer stale_client
    assert.equals("#/components/responses/StaleClient", doc.paths["/api/mizan/call/stable/"].get.responses["409"]["$ref"])
  end)

  it("stays deterministic and passes the OpenAPI validator", function()
    local a = h.run(kit.exe() .. " schema " .. APP)
    assert.equals(a, (h.run(kit.exe() .. " schema " .. APP)))
    local path = os.tmpname()
    h.write(path, a)
    local out, code = h.run("node spec/js/validate-openapi.mjs " .. path)
    os.remove(path)
    assert.equals(0, code, out)
  end)
end)

describe("version skew", function()
  local srv, dir, hashes
  local function headers(fn)
    return { ["X-Mizan-Client"] = "0123456789abcdef", ["X-Mizan-Fn"] = fn }
  end
  setup(function()
    dir = h.app_dir(h.read(APP .. "/app.lua"))
    srv = testing.server(dir)
    local res = srv:request("GET", srv.base_path .. "schema/")
    local doc = assert(json.decode(res.body))
    hashes = {}
    for name, f in pairs(doc["x-mizan-functions"]) do hashes[name] = f.hash end
  end)
  teardown(function()
    srv:stop()
    h.run("rm -rf " .. dir)
  end)

  it("every answer carries X-Mizan-Schema, errors and cache hits too", function()
    local ok = srv:call("stable", {}, { method = "GET" })
    local schema = ok.headers["x-mizan-schema"]
    assert.matches("^%x+$", schema)
    assert.equals(schema, srv:call("nope", {}).headers["x-mizan-schema"])
    assert.equals(schema, srv:call("get_todo", { id = 1, case = "not_found" }, { method = "GET" }).headers["x-mizan-schema"])
    -- the fast path (C answers a cached GET): a client of this schema gets it too
    local cur = { ["X-Mizan-Client"] = schema }
    srv:call("cached_version", {}, { method = "GET", headers = cur })
    local hit = srv:call("cached_version", {}, { method = "GET", headers = cur })
    assert.equals(200, hit.status)
    assert.equals(schema, hit.headers["x-mizan-schema"])
  end)

  it("answers 409 stale_client, with the new hash, to a client whose function changed or is gone", function()
    local res = srv:call("changing", { a = 1 }, { method = "GET", headers = headers("ffffffffffffffff") })
    local e = h.assert_error(res, 409, "stale_client")
    assert.equals(res.headers["x-mizan-schema"], e.data.schema)
    e = h.assert_error(srv:call("removed_fn", {}, { headers = headers("ffffffffffffffff") }), 409, "stale_client")
    assert.matches("gone", e.message)
    -- the same function as the client knew it: it goes on, whatever else changed
    assert.equals(200, srv:call("changing", { a = 1 }, { method = "GET", headers = headers(hashes.changing) }).status)
    -- a caller that says nothing of its version is never judged
    assert.equals(404, srv:call("removed_fn", {}).status)
  end)

  it("judges a reload per function: a changed function is stale, an added one changes nothing else", function()
    local before = srv:call("stable", {}, { method = "GET" }).headers["x-mizan-schema"]
    local old = { ["X-Mizan-Client"] = before }
    local src = h.read(dir .. "/app.lua")
    -- an added function (a compatible change): the schema hash moves, calls of the old client go on
    h.write(dir .. "/app.lua", src .. '\nmizan.register(client { query = true } (function() return 1 end), "added")\n')
    assert.is_true(h.wait_until(function()
      return srv:call("stable", {}, { method = "GET" }).headers["x-mizan-schema"] ~= before
    end, 10), srv:log())
    local function as_old(fn, args)
      local hd = { ["X-Mizan-Client"] = old["X-Mizan-Client"], ["X-Mizan-Fn"] = hashes[fn] }
      return srv:call(fn, args, { method = "GET", headers = hd })
    end
    assert.equals(200, as_old("stable", {}).status)
    assert.equals(200, as_old("changing", { a = 1 }).status)
    -- a changed input: that function is stale for the old client, the others are not
    h.write(dir .. "/app.lua", (src:gsub("input = { a = T.integer }", "input = { a = T.string }"))) -- changing and cached_changing
    assert.is_true(h.wait_until(function() return as_old("changing", { a = 1 }).status == 409 end, 10), srv:log())
    h.assert_error(as_old("changing", { a = 1 }), 409, "stale_client")
    assert.equals(200, as_old("stable", {}).status)
    assert.equals(200, as_old("cached_version", {}).status)
    -- a cached query C's fast path answers (the alias made by a caller of
    -- the new schema) never answers the old client: its staleness is judged
    local hit
    for _ = 1, 3 do hit = srv:call("cached_changing", { a = 1 }, { method = "GET" }) end
    assert.equals(200, hit.status)
    assert.is_true(h.wait_until(function() return srv:stdout():find("call/cached_changing/ 200 [^\n]*cache=hit") ~= nil end),
                   srv:stdout())
    h.assert_error(as_old("cached_changing", { a = 1 }), 409, "stale_client")
  end)
end)

describe("the generated TypeScript client", function()
  local lfs = require "lfs"
  local repo = lfs.currentdir()
  local dir
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    lfs.mkdir(dir)
    lfs.link(repo .. "/node_modules", dir .. "/node_modules", true)
    local text, code = h.run(("%s codegen --target react --out %s/client %s"):format(kit.exe(), dir, APP))
    assert.equals(0, code, text)
    for _, f in ipairs { "typed.ok.ts", "typed.bad.ts", "errors.live.test.ts" } do
      h.write(dir .. "/client/" .. f, h.read("spec/js/errors/" .. f))
    end
  end)
  teardown(function() h.run("rm -rf " .. dir) end)

  local function tsc(files)
    local cfg = assert(json.decode(h.read("spec/js/codegen/tsconfig.json")))
    cfg.files = files
    h.write(dir .. "/client/tsconfig.json", assert(json.encode(cfg)))
    return h.run(("cd %s/client && %s/node_modules/.bin/tsc -p ."):format(dir, repo))
  end

  it("types errors under tsc --strict: narrowing on a declared code compiles", function()
    local text, code = tsc { "typed.ok.ts", "react.ts" }
    assert.equals(0, code, text)
  end)

  it("and reading an undeclared code's data does not: every BAD line fails to compile", function()
    local text, code = tsc { "typed.bad.ts" }
    assert.equals(2, code, text)
    local src, n = h.read("spec/js/errors/typed.bad.ts"), 0
    local line = 0
    for l in (src .. "\n"):gmatch("([^\n]*)\n") do
      line = line + 1
      if l:find("// BAD", 1, true) then
        n = n + 1
        assert.matches(("typed%%.bad%%.ts%%(%d,%%d+%%): error TS"):format(line), text)
      end
    end
    assert.equals(4, n)
    -- and nothing else fails there
    local errors_seen = select(2, text:gsub("error TS", ""))
    assert.is_true(errors_seen >= n, text)
  end)

  it("passes Vitest against a live server: typed errors, and version skew across reloads", function()
    local live = h.app_dir(h.read(APP .. "/app.lua"))
    local srv = testing.server(live)
    local text, code = h.run(("cd %s/client && NO_COLOR=1 FORCE_COLOR=0 MIZAN_ERRORS_PORT=%d MIZAN_ERRORS_APP=%s "
      .. "%s/node_modules/.bin/vitest run --root . --reporter verbose errors.live.test.ts")
      :format(dir, srv.port, live .. "/app.lua", repo))
    srv:stop()
    h.run("rm -rf " .. live)
    assert.equals(0, code, text)
    assert.matches("Tests%s+6 passed", text)
  end)
end)
