-- CORS (cors = { origins, credentials, max_age }): a listed origin's
-- preflight is answered 204 with exactly the route's method and the
-- protocol's request headers; its calls carry Access-Control-Allow-Origin
-- and pass the CSRF check; any other origin gets no CORS header and stays
-- refused for mutations. Answers C's cache would give are left to Lua then.
local testing = require "mizan.testing"
local h = require "helpers"

local PAGE, OTHER = "https://app.example.com", "https://evil.example.com"

describe("CORS", function()
  local srv
  setup(function()
    srv = testing.server("spec/apps/cached", { env = { MIZAN_CORS_ORIGINS = PAGE, MIZAN_CORS_CREDENTIALS = "on",
                                                       MIZAN_CORS_MAX_AGE = "120" } })
  end)
  teardown(function() srv:stop() end)

  local function preflight(path, origin, method, headers)
    local list = { "Origin: " .. origin, "Access-Control-Request-Method: " .. method }
    if headers then list[#list + 1] = "Access-Control-Request-Headers: " .. headers end
    return srv:request("OPTIONS", "/api/mizan/" .. path, { headers = list })
  end

  it("answers a listed origin's preflight with 204, the route's method and the protocol's headers", function()
    local res = preflight("call/publish/", PAGE, "POST", "Content-Type, X-Mizan-Client")
    assert.equals(204, res.status)
    assert.equals(PAGE, res.headers["access-control-allow-origin"])
    assert.equals("POST", res.headers["access-control-allow-methods"])
    assert.equals("content-type, x-mizan-client", res.headers["access-control-allow-headers"])
    assert.equals("true", res.headers["access-control-allow-credentials"])
    assert.equals("120", res.headers["access-control-max-age"])
    assert.equals("Origin", res.headers.vary)
    assert.equals("GET", preflight("ctx/public/", PAGE, "GET").headers["access-control-allow-methods"])
    assert.equals("GET, POST", preflight("call/short/", PAGE, "GET").headers["access-control-allow-methods"])
  end)

  it("refuses a preflight from another origin, for another method, or asking for other headers", function()
    local other = preflight("call/publish/", OTHER, "POST")
    assert.equals(403, other.status)
    assert.is_nil(other.headers["access-control-allow-origin"]) -- no CORS header at all for it
    for _, res in ipairs {
      preflight("call/publish/", PAGE, "DELETE"),
      preflight("call/publish/", PAGE, "POST", "X-Secret"),
      srv:request("OPTIONS", "/api/mizan/call/publish/", { headers = { "Origin: " .. PAGE } }),
    } do
      assert.is_true(res.status == 403 or res.status == 405, tostring(res.status))
      assert.is_nil(res.headers["access-control-allow-methods"]) -- the browser refuses the call
    end
  end)

  it("lets a listed origin call mutations (CSRF passes) and read the answer; another origin gets neither", function()
    local ok = srv:request("POST", "/api/mizan/call/publish/", { headers = { "Origin: " .. PAGE,
      "Content-Type: application/json" }, body = "{}" })
    assert.equals(200, ok.status)
    assert.equals(PAGE, ok.headers["access-control-allow-origin"])
    assert.matches("X%-Mizan%-Invalidate", ok.headers["access-control-expose-headers"])
    local bad = srv:request("POST", "/api/mizan/call/publish/", { headers = { "Origin: " .. OTHER,
      "Content-Type: application/json" }, body = "{}" })
    h.assert_error(bad, 403, "csrf_failed")
    assert.is_nil(bad.headers["access-control-allow-origin"])
  end)

  it("answers a listed origin's cached read from Lua, with its CORS headers, after C cached it", function()
    assert.equals(200, srv:request("GET", "/api/mizan/ctx/public/").status) -- Lua stores it and its alias
    assert.equals(200, srv:request("GET", "/api/mizan/ctx/public/").status) -- C answers
    local res = srv:request("GET", "/api/mizan/ctx/public/", { headers = { "Origin: " .. PAGE } })
    assert.equals(200, res.status)
    assert.equals(PAGE, res.headers["access-control-allow-origin"])
    local other = srv:request("GET", "/api/mizan/ctx/public/", { headers = { "Origin: " .. OTHER } })
    assert.equals(200, other.status)
    assert.is_nil(other.headers["access-control-allow-origin"])
  end)

  it("refuses a bad setting by name", function()
    local ok, err = pcall(testing.server, "spec/apps/cached", { env = { MIZAN_CORS_ORIGINS = "app.example.com" } })
    assert.is_false(ok)
    assert.matches("MIZAN_CORS_ORIGINS", tostring(err))
  end)
end)
