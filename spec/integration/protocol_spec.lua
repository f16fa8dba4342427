-- The wire protocol (DESIGN §2) end to end: calls, the error model, and the
-- scheduling promise, over real HTTP and through the in-process client.
local testing = require "mizan.testing"
local json = require "mizan.json"

local APP = "spec/apps/basic"

local assert_error = require("helpers").assert_error

describe("protocol over HTTP (dev)", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  it("calls a function with POST", function()
    local res = srv:call("echo", { text = "hi" })
    assert.equals(200, res.status)
    assert.equals('{"result":{"message":"hi"}}', res.body)
    assert.equals("application/json", res.headers["content-type"])
    assert.equals("no-store", res.headers["cache-control"])
  end)

  it("calls a query with GET, converting query-string values by the schema", function()
    local res = srv:call("types", { n = "5", flag = "true", ratio = "0.25", tags = { "a", "b" } }, { method = "GET" })
    assert.equals(200, res.status)
    assert.same({ n = 5, flag = true, ratio = 0.25, tags = { "a", "b" } }, res.json.result)
  end)

  it("refuses GET on a mutation with 405 and an Allow header", function()
    local err = assert_error(srv:call("echo", { text = "x" }, { method = "GET" }), 405, "method_not_allowed")
    assert.matches("mutation", err.message)
    assert.equals("POST", srv:call("echo", {}, { method = "GET" }).headers.allow)
    assert_error(srv:request("PUT", "/api/mizan/call/echo/", { body = "{}" }), 405, "method_not_allowed")
    assert_error(srv:request("DELETE", "/api/mizan/call/fast/"), 405, "method_not_allowed")
  end)

  it("answers malformed JSON with 400 invalid_json", function()
    for _, body in ipairs { "{", '{"text":}', "nul", '{"a":1}x', '"\xff"', '{"text":"\\ud800"}',
                            '{"a":' .. ("["):rep(5000) .. ("]"):rep(5000) .. "}", "\xef\xbb\xbf{}" } do
      assert_error(srv:call("echo", nil, { raw_body = body }), 400, "invalid_json")
    end
  end)

  it("answers wrong argument types with 400 validation_error listing every field", function()
    local res = srv:call("types", { n = 1.5, flag = "yes", ratio = "x" })
    local err = assert_error(res, 400, "validation_error")
    assert.same({ "must be an integer" }, err.fields.n)
    assert.same({ "must be a boolean" }, err.fields.flag)
    assert.same({ "must be a number" }, err.fields.ratio)
    err = assert_error(srv:call("types", {}), 400, "validation_error")
    assert.same({ "is required" }, err.fields.n)
    assert.same({ "is required" }, err.fields.flag)
    assert.is_nil(err.fields.ratio)
    err = assert_error(srv:call("types", { n = 1, flag = true, tags = { "a", 2 } }), 400, "validation_error")
    assert.same({ "must be a string" }, err.fields["tags.1"])
  end)

  it("answers arguments that are not an object with validation_error", function()
    for _, body in ipairs { "[1,2]", "5", '"text"', "null" } do
      assert_error(srv:call("echo", nil, { raw_body = body }), 400, "validation_error")
    end
  end)

  it("answers a POST that is not application/json with 415", function()
    assert_error(srv:call("echo", nil, { headers = { ["Content-Type"] = "text/plain" }, raw_body = '{"text":"x"}' }),
                 415, "unsupported_media_type")
    assert_error(srv:call("echo", nil, { headers = {}, raw_body = '{"text":"x"}' }), 415, "unsupported_media_type")
    local ok = srv:call("echo", nil, { headers = { ["Content-Type"] = "Application/JSON; charset=utf-8" },
                                       raw_body = '{"text":"x"}' })
    assert.equals(200, ok.status)
  end)

  it("answers an unknown function with 404 not_found", function()
    local err = assert_error(srv:call("nope", {}), 404, "not_found")
    assert.matches("nope", err.message)
  end)

  it("answers a Lua error with 500, logs the traceback, and shows it in dev", function()
    local err = assert_error(srv:call("boom", {}), 500, "internal_error")
    assert.matches("kaboom", err.message)
    assert.matches("stack traceback", err.message)
    assert.matches("kaboom", srv:log())
    assert.matches("stack traceback", srv:log())
  end)

  it("answers an app's mizan.error with its status and code", function()
    local err = assert_error(srv:call("missing", { id = 7 }), 404, "not_found")
    assert.equals("no item 7", err.message)
  end)

  it("validates output in dev: a mismatch is a 500 naming the field", function()
    local err = assert_error(srv:call("bad_output", {}), 500, "internal_error")
    assert.matches("message must be a string", err.message)
  end)

  it("turns an unencodable result into a logged 500", function()
    assert_error(srv:call("unencodable", {}), 500, "internal_error")
    assert.matches("cannot encode", srv:log())
  end)

  it("sends a raw mizan.response as it is, with Cache-Control: no-store", function()
    local res = srv:call("raw", {})
    assert.equals(201, res.status)
    assert.equals("raw body", res.body)
    assert.equals("text/plain", res.headers["content-type"])
    assert.equals("yes", res.headers["x-thing"])
    assert.equals("no-store", res.headers["cache-control"])
  end)

  it("refuses response headers that would split the response, with a logged 500", function()
    local res = srv:call("header_injection", {})
    assert_error(res, 500, "internal_error")
    assert.is_nil(res.headers["set-cookie"])
    assert.matches("forbidden characters", srv:log())
  end)

  it("survives a client that disconnects while its call sleeps", function()
    local c = srv:connect()
    c:send(testing.request_bytes("POST", "/api/mizan/call/slow/", { "Content-Type: application/json" },
                                 '{"seconds":0.2}'))
    c:close()
    -- the call finishes after its client is gone; the server keeps serving
    local again = srv:call("slow", { seconds = 0.3 })
    assert.equals(200, again.status)
    assert.equals(200, srv:call("echo", { text = "still here" }).status)
  end)

  it("gives handlers the request: method, path, parsed query, lowercased headers, ip", function()
    local res = srv:request("GET", "/api/mizan/call/whoami/?a=1&b=x%20y", { headers = { "X-Agent: spec" } })
    local r = res.json.result
    assert.equals("GET", r.method)
    assert.equals("/api/mizan/call/whoami/", r.path)
    assert.same({ a = "1", b = "x y" }, r.query)
    assert.equals("spec", r.agent)
    assert.equals("127.0.0.1", r.ip)
  end)

  it("serves the OpenAPI document at schema/", function()
    local res = srv:request("GET", "/api/mizan/schema/")
    assert.equals(200, res.status)
    assert.equals("3.1.0", res.json.openapi)
    assert.is_table(res.json["x-mizan-functions"].echo)
  end)

  it("does not let a sleeping call block a second request on the same worker", function()
    -- Proven by ordering: the fast call starts and finishes inside the slow
    -- call's sleep. The slow call is sent first; if the loop happened to run
    -- the fast one before the slow one even started, try again.
    for _ = 1, 5 do
      local a = srv:connect()
      a:send(testing.request_bytes("POST", "/api/mizan/call/slow/", { "Content-Type: application/json" },
                                   '{"seconds":0.3}'))
      local b = srv:connect()
      b:send(testing.request_bytes("GET", "/api/mizan/call/fast/"))
      local fast = assert(b:read_response()).json.result
      local slow = assert(a:read_response()).json.result
      a:close()
      b:close()
      if slow.started < fast.started then
        assert.is_true(fast.finished < slow.finished)
        return
      end
    end
    error("the slow call never started before the fast one")
  end)
end)

describe("protocol over HTTP (production)", function()
  local srv
  setup(function() srv = testing.server(APP, { command = "serve" }) end)
  teardown(function() srv:stop() end)

  it("never returns a traceback, but logs it", function()
    local err = assert_error(srv:call("boom", {}), 500, "internal_error")
    assert.equals("internal error", err.message)
    assert.matches("stack traceback", srv:log())
  end)

  it("does not validate output in production", function()
    assert.equals(200, srv:call("bad_output", {}).status)
  end)
end)

describe("names and query strings that are not UTF-8 text", function()
  local srv, ctx_srv
  setup(function()
    srv = testing.server(APP)
    ctx_srv = testing.server("spec/apps/contexts")
  end)
  teardown(function()
    srv:stop()
    ctx_srv:stop()
  end)

  -- What the server wrote to stderr while fn ran: no error may be among it.
  local function quietly(server, fn)
    local before = #server:log()
    fn()
    local logged = server:log():sub(before + 1)
    assert.is_nil(logged:find("[error]", 1, true), "logged: " .. logged)
  end

  local JSON = { ["Content-Type"] = "application/json" }

  it("answers a name that is no text with 404 not_found, naming it as it came", function()
    quietly(srv, function()
      local err = assert_error(srv:request("GET", "/api/mizan/ctx/%ff/"), 404, "not_found")
      assert.equals("no context named '%ff'", err.message)
      err = assert_error(srv:request("POST", "/api/mizan/call/%ff/", { headers = JSON, body = "{}" }), 404, "not_found")
      assert.equals("no function named '%ff'", err.message)
      err = assert_error(srv:request("GET", "/api/mizan/call/%c3/"), 404, "not_found")
      assert.equals("no function named '%c3'", err.message)
      assert_error(srv:request("GET", "/api/mizan/ctx/%c3%28/"), 404, "not_found")
      assert_error(srv:request("GET", "/api/mizan/ctx/%ed%a0%80/"), 404, "not_found") -- a surrogate
      -- raw bytes, not percent-encoded: refused one way or another, never a 500
      local raw = srv:request("GET", "/api/mizan/ctx/\xff/")
      assert.is_true(raw.status == 400 or raw.status == 404, raw.status)
      assert.equals(raw.status == 400 and "bad_request" or "not_found", raw.json.error.code)
    end)
  end)

  it("decodes a percent-encoded name that is text", function()
    local res = srv:request("GET", "/api/mizan/call/f%61st/")
    assert.equals(200, res.status)
  end)

  it("answers a query string that is no text with 400 validation_error, naming the param", function()
    quietly(ctx_srv, function()
      local path = "/api/mizan/ctx/odd%20name%2Fwith%2C%20symbols/"
      assert.equals(200, ctx_srv:request("GET", path .. "?q=%c3%a9").status)
      local err = assert_error(ctx_srv:request("GET", path .. "?q=%ff"), 400, "validation_error")
      assert.same({ "is not valid UTF-8 text" }, err.fields.q)
    end)
    quietly(srv, function()
      local err = assert_error(srv:request("GET", "/api/mizan/call/types/?n=1&flag=true&tags=a&tags=%ff"), 400,
                               "validation_error")
      assert.same({ "is not valid UTF-8 text" }, err.fields.tags)
      -- a function that reads req.query itself, and a key that is no text
      err = assert_error(srv:request("GET", "/api/mizan/call/whoami/?%ff=1"), 400, "validation_error")
      assert.same({ "is not valid UTF-8 text" }, err.fields["%FF"])
      err = assert_error(srv:request("POST", "/api/mizan/call/echo/?x=%ff", { headers = JSON, body = '{"text":"a"}' }),
                         400, "validation_error")
      assert.same({ "is not valid UTF-8 text" }, err.fields.x)
    end)
  end)
end)

describe("in-process test client", function()
  local app
  setup(function() app = testing.app(APP) end)

  it("calls functions through the real dispatcher", function()
    local res = app:call("echo", { text = "in process" })
    assert.equals(200, res.status)
    assert.equals("in process", res.body.result.message)
  end)

  it("reports validation errors like the server", function()
    local res = app:call("echo", { text = ("x"):rep(201) })
    assert.equals(400, res.status)
    assert.same({ "must be at most 200 characters (it has 201)" }, res.body.error.fields.text)
  end)

  it("runs mizan.sleep on the real loop", function()
    local res = app:call("slow", { seconds = 0.01 })
    assert.equals(200, res.status)
    assert.is_true(res.body.result.finished > res.body.result.started)
  end)

  it("calls queries with GET", function()
    local res = app:call("types", { n = "3", flag = "false" }, { method = "GET" })
    assert.same({ n = 3, flag = false }, res.body.result)
  end)
end)
