-- examples/chat works as its README walk-through says.
local testing = require "mizan.testing"
local h = require "helpers"

describe("examples/chat", function()
  local srv
  setup(function() srv = testing.server("examples/chat") end)
  teardown(function() srv:stop() end)

  local function member(name)
    local agent = srv:agent()
    assert.equals(200, agent:call("auth.signup", { username = name, password = name .. " password" }).status)
    local ws = assert(testing.websocket(srv.port, { headers = { "Cookie: mizan_session=" .. agent.cookie } }))
    return agent, ws
  end

  it("carries a room's messages to everyone in it, with the author from the session", function()
    local _, ana = member("ana")
    local _, ben = member("ben")
    local anon = assert(testing.websocket(srv.port))
    for _, ws in ipairs { ana, ben, anon } do
      ws:send_json { type = "subscribe", id = 1, channel = "chat", params = { room = "lobby" } }
      assert.equals("subscribed", ws:read_json().type)
    end
    ana:send_json { type = "send", id = 1, data = { text = "hello, lobby" } }
    for _, ws in ipairs { ana, ben, anon } do
      local m = ws:read_json()
      assert.equals("message", m.type)
      assert.equals("ana", m.data.author)
      assert.equals("hello, lobby", m.data.text)
    end
    anon:send_json { type = "send", id = 1, data = { text = "me too" } }
    local e = anon:read_json()
    assert.equals("unauthenticated", e.error.code)
    for _, ws in ipairs { ana, ben, anon } do ws:close() end
  end)

  it("keeps history in SQLite, and posts over HTTP too", function()
    local agent, ws = member("cid")
    ws:send_json { type = "subscribe", id = 1, channel = "chat", params = { room = "books" } }
    ws:read_json()
    local res = agent:call("post", { room = "books", text = "via HTTP" })
    assert.equals(200, res.status)
    assert.equals("via HTTP", ws:read_json().data.text)
    local history = srv:context("room", { room = "books" }).json.history
    assert.equals("via HTTP", history[#history].text)
    assert.equals("cid", history[#history].author)
    ws:close()
  end)

  it("keeps staff rooms for staff", function()
    local _, ws = member("dee")
    ws:send_json { type = "subscribe", id = 1, channel = "chat", params = { room = "staff-only" } }
    local e = ws:read_json()
    assert.equals("forbidden", e.error.code)
    assert.equals("staff rooms are for staff", e.error.message)
    ws:close()
  end)

  -- A staff room's history and its HTTP post answer exactly who the channel
  -- would let subscribe: one decision (the channel's authorize), not two.
  it("lets only those who may subscribe read a staff room's history or post into it", function()
    local staff_agent = srv:agent()
    local out, code = srv:users("create olga --staff", "olga password")
    assert.equals(0, code, out)
    assert.equals(200, staff_agent:call("auth.login", { username = "olga", password = "olga password" }).status)
    local res = staff_agent:call("post", { room = "staff-ops", text = "for staff eyes" })
    assert.equals(200, res.status)

    local e = h.assert_error(srv:context("room", { room = "staff-ops" }), 401, "unauthenticated")
    assert.equals("staff rooms are for staff", e.message)
    local agent = member("eli")
    e = h.assert_error(agent:context("room", { room = "staff-ops" }), 403, "forbidden")
    assert.equals("staff rooms are for staff", e.message)
    h.assert_error(agent:call("post", { room = "staff-ops", text = "let me in" }), 403, "forbidden")

    local history = staff_agent:context("room", { room = "staff-ops" })
    assert.equals(200, history.status)
    assert.equals(1, #history.json.history)
    assert.equals("for staff eyes", history.json.history[1].text)
    -- public rooms stay public
    assert.equals(200, srv:context("room", { room = "lobby" }).status)
  end)
end)

