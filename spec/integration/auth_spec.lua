-- Sessions, accounts, auth predicates, CSRF and login throttling, over HTTP.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local h = require "helpers"

local APP = "spec/apps/auth"
local assert_error = h.assert_error

local function signup(srv, username, password)
  local agent = srv:agent()
  local res = agent:call("auth.signup", { username = username, password = password or "correct horse", email = username .. "@example.com" })
  assert.equals(200, res.status, res.body)
  return agent, res
end

describe("accounts and sessions", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  it("sign up, sign in the new user, and set a safe cookie", function()
    local agent, res = signup(srv, "alice")
    assert.equals("alice", res.json.result.username)
    assert.is_nil(res.json.result.password)
    local cookie = res.headers["set-cookie"]
    assert.matches("^mizan_session=%x+%.%x+; Path=/; HttpOnly; SameSite=Lax; Max%-Age=%d+$", cookie)
    assert.same({ "global" }, res.json.invalidate)
    assert.equals("alice", agent:call("whoami", {}, { method = "GET" }).json.result.me)
    local cu = agent:context("global").json.current_user
    assert.equals("alice", cu.username)
    assert.is_false(cu.is_staff)
    assert.is_nil(cu.password)
  end)

  it("marks the cookie Secure behind HTTPS", function()
    local res = srv:call("auth.signup", { username = "sam", password = "long enough" },
                         { headers = { ["Content-Type"] = "application/json", ["X-Forwarded-Proto"] = "https" } })
    assert.matches("; Secure$", res.headers["set-cookie"])
  end)

  it("refuse a taken username with the field error", function()
    signup(srv, "bob")
    local res = srv:agent():call("auth.signup", { username = "bob", password = "another one" })
    local err = assert_error(res, 400, "validation_error")
    assert.same({ "A user with that username already exists." }, err.fields.username)
  end)

  it("log in with the right password only, and never return the hash", function()
    signup(srv, "carol", "carol's password")
    local agent = srv:agent()
    local bad = agent:call("auth.login", { username = "carol", password = "wrong password" })
    assert_error(bad, 400, "validation_error")
    assert.is_nil(bad.headers["set-cookie"])
    local unknown = agent:call("auth.login", { username = "nobody", password = "whatever it is" })
    assert.equals(bad.json.error.message, unknown.json.error.message, "the same answer for an unknown user")
    local ok = agent:call("auth.login", { username = "carol", password = "carol's password" })
    assert.equals(200, ok.status)
    assert.is_nil(ok.body:find("scrypt", 1, true))
    assert.equals("carol", agent:call("whoami", {}, { method = "GET" }).json.result.me)
  end)

  it("rotate the session id on login, so a planted cookie is worthless", function()
    signup(srv, "dave", "dave's password")
    local agent = srv:agent()
    agent:call("session_set", { key = "cart", value = "3 apples" })
    local before = agent.cookie
    assert.is_string(before)
    agent:call("auth.login", { username = "dave", password = "dave's password" })
    assert.is_not.equals(before, agent.cookie)
    assert.equals("3 apples", agent:call("session_get", { key = "cart" }, { method = "GET" }).json.result,
                  "the session's data survives the rotation")
    local planted = srv:agent()
    planted.cookie = before
    assert_error(planted:call("whoami", {}, { method = "GET" }), 401, "unauthenticated")
  end)

  it("end the session on the server at logout: a copied cookie stops working", function()
    local agent = signup(srv, "erin")
    local copy = srv:agent()
    copy.cookie = agent.cookie
    assert.equals(200, copy:call("whoami", {}, { method = "GET" }).status)
    local res = agent:call("auth.logout", {})
    assert.equals(200, res.status)
    assert.matches("Max%-Age=0", res.headers["set-cookie"])
    assert_error(copy:call("whoami", {}, { method = "GET" }), 401, "unauthenticated")
  end)

  it("treat a tampered or unknown cookie as anonymous, never as an error", function()
    local agent = signup(srv, "frank")
    local id, sig = agent.cookie:match("^(%x+)%.(%x+)$")
    for _, forged in ipairs {
      id .. "." .. (sig:sub(1, -2) .. (sig:sub(-1) == "0" and "1" or "0")),
      (id:sub(1, -2) .. (id:sub(-1) == "0" and "1" or "0")) .. "." .. sig,
      ("0"):rep(32) .. "." .. sig, "garbage", "", ("a"):rep(5000),
    } do
      local a = srv:agent()
      a.cookie = forged
      local res = a:call("whoami", {}, { method = "GET" })
      assert_error(res, 401, "unauthenticated")
    end
  end)

  it("persist req.session when it changes", function()
    local agent = srv:agent()
    assert.equals(require("mizan.json").null, agent:call("session_get", { key = "k" }, { method = "GET" }).json.result)
    assert.is_nil(agent.cookie, "reading an empty session starts nothing")
    agent:call("session_set", { key = "k", value = "v" })
    assert.is_string(agent.cookie)
    assert.equals("v", agent:call("session_get", { key = "k" }, { method = "GET" }).json.result)
  end)

  it("gate staff and superuser functions", function()
    assert_error(srv:call("staff_only", {}, { method = "GET" }), 401, "unauthenticated")
    local plain = signup(srv, "gina")
    assert_error(plain:call("staff_only", {}, { method = "GET" }), 403, "forbidden")
    local out, code = srv:users("create sid --staff", "sid's password")
    assert.equals(0, code, out)
    out, code = srv:users("create root --superuser", "root's password")
    assert.equals(0, code, out)
    local staff, root = srv:agent(), srv:agent()
    assert.equals(200, staff:call("auth.login", { username = "sid", password = "sid's password" }).status)
    assert.equals(200, root:call("auth.login", { username = "root", password = "root's password" }).status)
    assert.equals("staff ok", staff:call("staff_only", {}, { method = "GET" }).json.result)
    assert_error(staff:call("root_only", {}, { method = "GET" }), 403, "forbidden")
    assert.equals("staff ok", root:call("staff_only", {}, { method = "GET" }).json.result)
    assert.equals("root ok", root:call("root_only", {}, { method = "GET" }).json.result)
    local list = srv:users("list")
    assert.matches("\tsid\t[^\n]*\tstaff", list)
  end)

  it("apply a callable predicate, with its message", function()
    assert_error(srv:call("alice_only", {}, { method = "GET" }), 401, "unauthenticated")
    local other = signup(srv, "hank")
    local err = assert_error(other:call("alice_only", {}, { method = "GET" }), 403, "forbidden")
    assert.equals("only alice may read this", err.message)
    local alice = srv:agent()
    alice:call("auth.login", { username = "alice", password = "correct horse" })
    assert.equals("alice ok", alice:call("alice_only", {}, { method = "GET" }).json.result)
  end)

  it("refuse a whole bundle when one of its functions refuses the caller", function()
    assert_error(srv:context("guarded_ctx", {}), 401, "unauthenticated")
    local a = signup(srv, "ivan")
    local res = a:context("guarded_ctx")
    assert.equals(200, res.status)
    assert.same({ g1 = 1, g2 = 2 }, res.json)
  end)

  it("never let a per-user cached context cross users", function()
    local a, b = signup(srv, "jane"), signup(srv, "kate")
    local anon = srv:agent()
    local ja, kb, an = a:context("mine").json, b:context("mine").json, anon:context("mine").json
    assert.equals("jane", ja.my_data.user)
    assert.equals("kate", kb.my_data.user)
    assert.equals(require("mizan.json").null, an.my_data.user)
    for _ = 1, 3 do -- cached now: still each their own
      assert.same(ja, a:context("mine").json)
      assert.same(kb, b:context("mine").json)
      assert.same(an, anon:context("mine").json)
    end
  end)

  it("export auth requirements, never function bodies", function()
    local doc = srv:request("GET", "/api/mizan/schema/").json
    local f = doc["x-mizan-functions"]
    assert.equals(true, f.whoami.auth)
    assert.equals("staff", f.staff_only.auth)
    assert.equals("superuser", f.root_only.auth)
    assert.equals("custom", f.alice_only.auth)
    assert.equals(false, f.post_note.auth)
    assert.equals("global", f.current_user.context)
    assert.same({ "global" }, f["auth.login"].affects)
  end)

  it("keeps users in SQLite, reachable through mizan.db", function()
    assert.is_true(srv:call("user_count", {}, { method = "GET" }).json.result >= 5)
  end)
end)

describe("session expiry", function()
  it("forgets an expired session", function()
    local srv = testing.server(APP, { env = { MIZAN_SESSION_TTL = "1" } })
    local agent = signup(srv, "lena")
    assert.equals(200, agent:call("whoami", {}, { method = "GET" }).status)
    -- on purpose: stay idle past the 1 s TTL (polling would renew a sliding session)
    kit.sleep(1.2)
    assert_error(agent:call("whoami", {}, { method = "GET" }), 401, "unauthenticated")
    srv:stop()
  end)
end)

describe("CSRF", function()
  local srv
  setup(function()
    srv = testing.server(APP, { env = { MIZAN_ALLOWED_ORIGINS = "https://app.example.com" } })
  end)
  teardown(function() srv:stop() end)

  local function post(headers, body)
    return srv:request("POST", "/api/mizan/call/post_note/", { headers = headers, body = body or '{"note":"x"}' })
  end

  it("refuses a form-encoded POST", function()
    assert_error(post({ "Content-Type: application/x-www-form-urlencoded" }, "note=x"), 415, "unsupported_media_type")
  end)

  it("refuses a text/plain POST", function()
    assert_error(post({ "Content-Type: text/plain" }, '{"note":"x"}'), 415, "unsupported_media_type")
  end)

  it("refuses a foreign Origin", function()
    assert_error(post({ "Content-Type: application/json", "Origin: https://evil.example" }), 403, "csrf_failed")
    assert_error(post({ "Content-Type: application/json", "Origin: null" }), 403, "csrf_failed")
  end)

  it("refuses Sec-Fetch-Site: cross-site", function()
    assert_error(post({ "Content-Type: application/json", "Sec-Fetch-Site: cross-site" }), 403, "csrf_failed")
  end)

  it("lets same-origin browsers, allowed origins and non-browser clients through", function()
    local host = "127.0.0.1:" .. srv.port
    assert.equals(200, post({ "Content-Type: application/json", "Host: " .. host,
                              "Origin: http://" .. host, "Sec-Fetch-Site: same-origin" }).status)
    assert.equals(200, post({ "Content-Type: application/json", "Host: " .. host, "Origin: http://" .. host }).status)
    assert.equals(200, post({ "Content-Type: application/json", "Origin: https://app.example.com",
                              "Sec-Fetch-Site: cross-site" }).status)
    assert.equals(200, post({ "Content-Type: application/json" }).status)
  end)
end)

describe("login throttling", function()
  it("answers 429 with Retry-After after repeated failures for a username", function()
    local srv = testing.server(APP)
    signup(srv, "mona", "mona's password")
    local a = srv:agent()
    for _ = 1, 5 do
      assert_error(a:call("auth.login", { username = "mona", password = "nope nope" }), 400, "validation_error")
    end
    local res = a:call("auth.login", { username = "mona", password = "mona's password" })
    assert_error(res, 429, "rate_limited")
    assert.is_true(tonumber(res.headers["retry-after"]) > 0)
    srv:stop()
  end)

  it("answers 429 after repeated failures from one address, whatever the usernames", function()
    local srv = testing.server(APP)
    local a = srv:agent()
    for i = 1, 20 do
      assert_error(a:call("auth.login", { username = "u" .. i, password = "nope nope" }), 400, "validation_error")
    end
    assert_error(a:call("auth.login", { username = "someone", password = "nope nope" }), 429, "rate_limited")
    srv:stop()
  end)
end)
