-- The channel protocol over a real WebSocket: subscribe, send, broadcast,
-- errors, auth from the session cookie, and the invalidation push.
local testing = require "mizan.testing"
local json = require "mizan.json"
local h = require "helpers"
local kit = require "mizan.testkit"

local APP = "spec/apps/channels"

describe("channels", function()
  local srv
  setup(function() srv = testing.server(APP) end)
  teardown(function() srv:stop() end)

  local function open(headers)
    local ws, res = testing.websocket(srv.port, { headers = headers })
    assert(ws, res and res.body)
    return ws
  end

  local function subscribe(ws, id, channel, params)
    ws:send_json { type = "subscribe", id = id, channel = channel, params = params }
    return ws:read_json()
  end

  it("carries many subscriptions on one socket, and broadcasts to a group", function()
    local a, b = open(), open()
    assert.same({ type = "subscribed", id = 1 }, subscribe(a, 1, "chat", { room = "lobby" }))
    assert.same({ type = "subscribed", id = 2 }, subscribe(a, 2, "chat", { room = "other" }))
    assert.same({ type = "subscribed", id = 9 }, subscribe(b, 9, "chat", { room = "lobby" }))
    a:send_json { type = "send", id = 1, data = { text = "hello" } }
    assert.same({ type = "message", id = 1, data = { text = "hello", author = "anon" } }, a:read_json())
    assert.same({ type = "message", id = 9, data = { text = "hello", author = "anon" } }, b:read_json())
    a:send_json { type = "send", id = 2, data = { text = "elsewhere" } }
    assert.same({ type = "message", id = 2, data = { text = "elsewhere", author = "anon" } }, a:read_json())
    local none, err = b:read_json(0.3)
    assert.is_nil(none, "b is not in room 'other'")
    assert.equals("timeout", err)
    a:close()
    b:close()
  end)

  it("lets any server function broadcast with mizan.channels.send", function()
    local ws = open()
    subscribe(ws, "n", "news")
    assert.equals(1, srv:call("publish", { headline = "extra" }).json.result)
    assert.same({ type = "message", id = "n", data = { headline = "extra" } }, ws:read_json())
    ws:close()
  end)

  it("stops delivering after unsubscribe", function()
    local ws = open()
    subscribe(ws, 1, "news")
    ws:send_json { type = "unsubscribe", id = 1 }
    assert.same({ type = "unsubscribed", id = 1 }, ws:read_json())
    assert.equals(0, srv:call("publish", { headline = "gone" }).json.result)
    ws:close()
  end)

  it("answers errors with the error codes of DESIGN §2, and the socket stays open", function()
    local ws = open()
    local function err_of(frame)
      if type(frame) == "string" then ws:send_frame(1, frame) else ws:send_json(frame) end
      local r = ws:read_json()
      assert.equals("error", r.type)
      return r
    end
    assert.equals("invalid_json", err_of("{nope").error.code)
    assert.equals("validation_error", err_of({ type = "dance", id = 1 }).error.code)
    assert.equals("not_found", err_of({ type = "subscribe", id = 1, channel = "nope" }).error.code)
    local r = err_of { type = "subscribe", id = 2, channel = "chat", params = { room = ("x"):rep(60) } }
    assert.equals("validation_error", r.error.code)
    assert.equals(2, r.id)
    assert.same({ "must be at most 50 characters (it has 60)" }, r.error.fields.room)
    r = err_of { type = "subscribe", id = 3, channel = "chat", params = {} }
    assert.same({ "is required" }, r.error.fields.room)
    subscribe(ws, 4, "chat", { room = "r" })
    r = err_of { type = "send", id = 4, data = { text = 5 } }
    assert.same({ "must be a string" }, r.error.fields.text)
    assert.equals("not_found", err_of({ type = "send", id = 99, data = {} }).error.code)
    r = err_of { type = "send", id = 4, data = { text = "boom" } }
    assert.equals("internal_error", r.error.code)
    assert.matches("receive exploded", srv:log())
    -- still open and working
    assert.same({ type = "subscribed", id = 5 }, subscribe(ws, 5, "news"))
    ws:close()
  end)

  it("runs authorize with ctx.user from the session cookie of the upgrade", function()
    local anon = open()
    local r = subscribe(anon, 1, "chat", { room = "private" })
    assert.equals("error", r.type)
    assert.equals("unauthenticated", r.error.code)
    anon:close()
    local agent = srv:agent()
    assert.equals(200, agent:call("auth.signup", { username = "wendy", password = "wendy password" }).status)
    local ws = open { "Cookie: mizan_session=" .. agent.cookie }
    assert.same({ type = "subscribed", id = 1 }, subscribe(ws, 1, "chat", { room = "private" }))
    ws:send_json { type = "send", id = 1, data = { text = "hi" } }
    assert.same({ text = "hi", author = "wendy" }, ws:read_json().data)
    ws:close()
  end)

  it("validates server messages in dev", function()
    local res = srv:call("bad_broadcast", { room = "r", text = "x" })
    h.assert_error(res, 500, "internal_error")
    assert.matches("does not match server_message", res.json.error.message)
  end)

  it("pushes invalidations: shared targets to all who asked, per-user ones only to that user", function()
    local agent = srv:agent()
    agent:call("auth.signup", { username = "ivy", password = "ivy password" })
    local mine = open { "Cookie: mizan_session=" .. agent.cookie }
    local other = open()
    local silent = open()
    for _, ws in ipairs { mine, other } do
      ws:send_json { type = "subscribe_invalidations" }
      assert.equals("subscribed", ws:read_json().type)
    end
    agent:call("post_board", {})
    assert.same({ type = "invalidate", invalidate = { "board" } }, mine:read_json())
    assert.same({ type = "invalidate", invalidate = { "board" } }, other:read_json())
    agent:call("post_mine", {})
    assert.same({ type = "invalidate", invalidate = { "mine" } }, mine:read_json())
    assert.is_nil((other:read_json(0.3)), "never another user's per-user data")
    assert.is_nil((silent:read_json(0.3)), "only sockets that opted in")
    for _, ws in ipairs { mine, other, silent } do ws:close() end
  end)

  it("pushes an anonymous caller's per-user invalidations to its own session's sockets only", function()
    local ana, ben = srv:agent(), srv:agent()
    assert.equals(200, ana:call("remember", { v = "ana's cart" }).status)
    assert.equals(200, ben:call("remember", { v = "ben's cart" }).status)
    assert.is_string(ana.cookie)
    assert.is_string(ben.cookie)
    local a1, a2 = open { "Cookie: mizan_session=" .. ana.cookie }, open { "Cookie: mizan_session=" .. ana.cookie }
    local b, none = open { "Cookie: mizan_session=" .. ben.cookie }, open()
    for _, ws in ipairs { a1, a2, b, none } do
      ws:send_json { type = "subscribe_invalidations" }
      assert.equals("subscribed", ws:read_json().type)
    end
    assert.equals(200, ana:call("post_mine", {}).status)
    assert.same({ type = "invalidate", invalidate = { "mine" } }, a1:read_json())
    assert.same({ type = "invalidate", invalidate = { "mine" } }, a2:read_json())
    assert.is_nil((b:read_json(0.3)), "another visitor's session never hears of it")
    assert.is_nil((none:read_json(0.3)), "nor a socket without a session")
    -- a caller without a session changed what every caller without one sees
    assert.equals(200, srv:call("post_mine", {}).status)
    assert.same({ type = "invalidate", invalidate = { "mine" } }, none:read_json())
    assert.is_nil((a1:read_json(0.3)), "a session's own entries did not change")
    assert.is_nil((b:read_json(0.3)))
    for _, ws in ipairs { a1, a2, b, none } do ws:close() end
  end)

  it("exports x-mizan-channels", function()
    local doc = srv:request("GET", "/api/mizan/schema/").json
    local chat = doc["x-mizan-channels"].chat
    assert.same({ "room" }, chat.params.required)
    assert.equals("string", chat.server_message.properties.author.type)
    assert.equals(200, chat.client_message.properties.text.maxLength)
  end)

  it("works with a real client: npm ws", function()
    local out, code = h.run(("node spec/js/ws-client.mjs %d"):format(srv.port))
    assert.equals(0, code, out)
    assert.matches("ws client: subscribed, sent, received", out, 1, true)
  end)
end)

describe("channel load errors", function()
  local PRELUDE = 'local mizan = require "mizan"\nlocal T = mizan.types\n'
  local function load_error(body)
    local ok, err = h.try_load(PRELUDE .. body)
    assert.is_false(ok)
    return tostring(err)
  end

  it("names the channel and the option", function()
    assert.matches("channel 'c', option 'group': is required",
                   load_error [[mizan.channel "c" { params = { a = T.string } }]], 1, true)
    assert.matches("channel 'c', option 'params.a': T.string has no option 'maxlen'",
                   load_error [[mizan.channel "c" { params = { a = T.string { maxlen = 1 } }, group = function() return "g" end }]], 1, true)
    assert.matches("channel 'c', option 'authorize': must be a function",
                   load_error [[mizan.channel "c" { authorize = true, group = function() return "g" end }]], 1, true)
    assert.matches("channel 'c', option 'nope': unknown option",
                   load_error [[mizan.channel "c" { nope = 1, group = function() return "g" end }]], 1, true)
  end)
end)

describe("groups across processes", function()
  local function subscribers(port, n)
    local list = {}
    for i = 1, n do
      local ws = assert(testing.websocket(port))
      ws:send_json { type = "subscribe", id = i, channel = "news" }
      assert.equals("subscribed", ws:read_json().type)
      list[i] = ws
    end
    return list
  end

  it("span the workers of one instance with no server", function()
    local srv = testing.server(APP, { command = "serve", env = { MIZAN_WORKERS = "2" } })
    local subs = subscribers(srv.port, 8) -- spread over both workers by accept
    for _ = 1, 3 do assert.is_number(srv:call("publish", { headline = "everyone" }).json.result) end
    for i, ws in ipairs(subs) do
      for _ = 1, 3 do
        local m = ws:read_json()
        assert.same({ type = "message", id = i, data = { headline = "everyone" } }, m)
      end
      ws:close()
    end
    srv:stop()
  end)

  it("span instances through Redis pub/sub: subscribe on A, send from B", function()
    local redis = testing.redis()
    local env = { MIZAN_CHANNELS = redis:url(0), MIZAN_SECRET = "shared" }
    local a = testing.server(APP, { env = env })
    local b = testing.server(APP, { env = env })
    local ws = assert(testing.websocket(a.port))
    ws:send_json { type = "subscribe", id = 1, channel = "news" }
    assert.equals("subscribed", ws:read_json().type)
    b:call("publish", { headline = "from B" })
    assert.same({ type = "message", id = 1, data = { headline = "from B" } }, ws:read_json())
    local again, err = ws:read_json(0.3)
    assert.is_nil(again, "delivered once")
    assert.equals("timeout", err)
    ws:close()
    a:stop()
    b:stop()
    redis:stop()
  end)
end)

describe("a socket follows its session", function()
  local function open(port, cookie)
    local ws, res = testing.websocket(port, { headers = cookie and { "Cookie: mizan_session=" .. cookie } or nil })
    assert(ws, res and res.body)
    return ws
  end

  local function subscribe(ws, id, channel, params)
    ws:send_json { type = "subscribe", id = id, channel = channel, params = params }
    return ws:read_json()
  end

  local function signed_up(srv, name)
    local agent = srv:agent()
    assert.equals(200, agent:call("auth.signup", { username = name, password = name .. " password" }).status)
    return agent
  end

  -- The frames a socket gets when its session ends, for a subscription the
  -- signed-out socket may not keep: why, then that it is over.
  local function assert_revoked(ws, sub)
    local e = ws:read_json(15)
    assert.same("error", e and e.type, json.encode(e))
    assert.equals(sub, e.id)
    assert.equals("unauthenticated", e.error.code)
    assert.equals("members only", e.error.message)
    assert.same({ type = "unsubscribed", id = sub }, ws:read_json(15))
  end

  -- Signed out now: a public room keeps working, as anonymous.
  local function assert_anonymous(ws, sub)
    ws:send_json { type = "send", id = sub, data = { text = "who am i" } }
    assert.same({ type = "message", id = sub, data = { text = "who am i", author = "anon" } }, ws:read_json())
    local r = subscribe(ws, 99, "chat", { room = "private" })
    assert.equals("error", r.type)
    assert.equals("unauthenticated", r.error.code)
  end

  describe("on one server", function()
    local srv
    setup(function() srv = testing.server(APP) end)
    teardown(function() srv:stop() end)

    it("decides a subscribe again when the session ends while authorize is still deciding it", function()
      local ivan = signed_up(srv, "ivan")
      assert.equals(200, srv:call("set_gate", { open = false }).status)
      local ws = open(srv.port, ivan.cookie)
      ws:send_json { type = "subscribe", id = 1, channel = "gated" }
      assert.is_true(h.wait_until(function() return srv:call("gate_waiting", {}).json.result == 1 end))
      assert.equals(200, ivan:call("auth.logout", {}).status) -- authorize saw ivan; ivan is gone now
      assert.equals(200, srv:call("set_gate", { open = true }).status)
      local r = ws:read_json(10)
      assert.equals("error", r and r.type, json.encode(r))
      assert.equals("unauthenticated", r.error.code)
      assert.is_nil((ws:read_json(0.3)), "never subscribed for a user who left")
      ws:close()
    end)

    it("after a logout over HTTP: its members-only subscription ends, and it is anonymous", function()
      local alice = signed_up(srv, "alice")
      local ws = open(srv.port, alice.cookie)
      assert.same({ type = "subscribed", id = 1 }, subscribe(ws, 1, "chat", { room = "private" }))
      assert.same({ type = "subscribed", id = 2 }, subscribe(ws, 2, "chat", { room = "lobby" }))
      assert.equals(200, alice:call("auth.logout", {}).status)
      assert_revoked(ws, 1)
      assert_anonymous(ws, 2)
      -- the members-only room reaches it no more
      local member = signed_up(srv, "amy")
      local other = open(srv.port, member.cookie)
      assert.equals("subscribed", subscribe(other, 1, "chat", { room = "private" }).type)
      other:send_json { type = "send", id = 1, data = { text = "secret" } }
      assert.equals("secret", other:read_json().data.text)
      ws:send_json { type = "send", id = 2, data = { text = "after" } }
      assert.equals("after", ws:read_json().data.text, "the next frame is its own, not the secret")
      ws:close()
      other:close()
    end)

    it("after a login that rotates its session, it keeps none of the old one", function()
      local bob = signed_up(srv, "bob")
      local ws = open(srv.port, bob.cookie)
      assert.equals("subscribed", subscribe(ws, 1, "chat", { room = "private" }).type)
      assert.equals("subscribed", subscribe(ws, 2, "chat", { room = "lobby" }).type)
      signed_up(srv, "carl")
      -- bob's browser signs in as carl: bob's session id dies with the rotation
      local res = srv:call("auth.login", { username = "carl", password = "carl password" },
                           { headers = { ["Content-Type"] = "application/json", Cookie = "mizan_session=" .. bob.cookie } })
      assert.equals(200, res.status)
      assert_revoked(ws, 1)
      assert_anonymous(ws, 2)
      ws:close()
    end)

    it("anonymous sockets do not get another user's logout invalidation; that user's sockets do", function()
      local dana = signed_up(srv, "dana")
      local mine = open(srv.port, dana.cookie)
      local anon = open(srv.port)
      for _, ws in ipairs { mine, anon } do
        ws:send_json { type = "subscribe_invalidations" }
        assert.equals("subscribed", ws:read_json().type)
      end
      assert.equals(200, dana:call("auth.logout", {}).status)
      assert.same({ type = "invalidate", invalidate = { "global" } }, mine:read_json())
      signed_up(srv, "eve") -- a login is not the anonymous sockets' business either
      -- a shared target reaches everyone: it must be the anonymous socket's next frame
      srv:call("post_board", {})
      assert.same({ type = "invalidate", invalidate = { "board" } }, anon:read_json())
      mine:close()
      anon:close()
    end)
    -- The next frame that is not an invalidation (the call's own push may come first).
    local function after_invalidations(ws)
      local f = ws:read_json()
      while f and f.type == "invalidate" do f = ws:read_json() end
      return f
    end

    it("tells the user's other sockets of a login and a logout, and the ended session's sockets too", function()
      local kim = signed_up(srv, "kim")
      local laptop = srv:agent() -- kim's second device: a session of its own
      assert.equals(200, laptop:call("auth.login", { username = "kim", password = "kim password" }).status)
      local other = open(srv.port, laptop.cookie)
      local mine = open(srv.port, kim.cookie)
      local anon = open(srv.port)
      for _, ws in ipairs { other, mine, anon } do
        ws:send_json { type = "subscribe_invalidations" }
        assert.equals("subscribed", ws:read_json().type)
      end
      assert.equals(200, kim:call("auth.logout", {}).status)
      assert.same({ type = "identity" }, after_invalidations(other), "the other device hears of the logout")
      assert.same({ type = "identity" }, after_invalidations(mine), "the signed-out socket is told")
      local phone = srv:agent()
      assert.equals(200, phone:call("auth.login", { username = "kim", password = "kim password" }).status)
      assert.same({ type = "identity" }, after_invalidations(other), "and of a login")
      assert.is_nil((mine:read_json(0.3)), "an anonymous socket is no longer kim's")
      -- nobody else's business: a shared target must be the anonymous socket's next frame
      srv:call("post_board", {})
      assert.same({ type = "invalidate", invalidate = { "board" } }, anon:read_json())
      for _, ws in ipairs { other, mine, anon } do ws:close() end
    end)
  end)

  it("checks the account on every frame: one that lost staff leaves a staff channel; a deactivated one is anonymous", function()
    local srv = testing.server(APP)
    local ida = signed_up(srv, "ida")
    assert.equals(200, srv:call("set_account", { username = "ida", is_active = true, is_staff = true }).status)
    local ws = open(srv.port, ida.cookie)
    assert.same({ type = "subscribed", id = 1 }, subscribe(ws, 1, "staff"))
    assert.equals("subscribed", subscribe(ws, 2, "chat", { room = "private" }).type)
    assert.equals("subscribed", subscribe(ws, 3, "chat", { room = "lobby" }).type)

    assert.equals(200, srv:call("set_account", { username = "ida", is_active = true, is_staff = false }).status)
    ws:send_json { type = "send", id = 3, data = { text = "still me" } }
    local e = ws:read_json()
    assert.equals(1, e.id)
    assert.equals("forbidden", e.error.code)
    assert.equals("staff only", e.error.message)
    assert.same({ type = "unsubscribed", id = 1 }, ws:read_json())
    assert.same({ type = "message", id = 3, data = { text = "still me", author = "ida" } }, ws:read_json())

    assert.equals(200, srv:call("set_account", { username = "ida", is_active = false, is_staff = false }).status)
    ws:send_json { type = "send", id = 3, data = { text = "who am i" } }
    assert_revoked(ws, 2)
    assert.same({ type = "message", id = 3, data = { text = "who am i", author = "anon" } }, ws:read_json())
    ws:close()
    srv:stop()
  end)

  it("when the logout is served by another worker (mizan serve, two workers)", function()
    local srv = testing.server(APP, { command = "serve", env = { MIZAN_WORKERS = "2" } })
    local alice = signed_up(srv, "alice")
    -- sockets until both workers hold some (accept spreads them); each says its pid
    local socks, pids, npids = {}, {}, 0
    for i = 1, 40 do
      local ws = open(srv.port, alice.cookie)
      assert.equals("subscribed", subscribe(ws, "w", "where", { tag = tostring(i) }).type)
      ws:send_json { type = "send", id = "w", data = {} }
      local pid = ws:read_json().data.pid
      assert.equals("subscribed", subscribe(ws, 1, "chat", { room = "private" }).type)
      assert.equals("subscribed", subscribe(ws, 2, "chat", { room = "lobby-" .. i }).type)
      socks[i] = ws
      if not pids[pid] then pids[pid], npids = true, npids + 1 end
      if npids == 2 and i >= 4 then break end
    end
    assert.equals(2, npids, "the sockets reached both workers")
    assert.equals(200, alice:call("auth.logout", {}).status)
    for _, ws in ipairs(socks) do assert_revoked(ws, 1) end
    for _, ws in ipairs(socks) do
      ws:send_json { type = "send", id = 2, data = { text = "who am i" } }
      assert.same({ type = "message", id = 2, data = { text = "who am i", author = "anon" } }, ws:read_json())
      ws:close()
    end
    srv:stop()
  end)

  it("when the session expires, with nothing sent on the socket", function()
    local srv = testing.server(APP, { env = { MIZAN_SESSION_TTL = "2" } })
    local fay = signed_up(srv, "fay")
    local ws = open(srv.port, fay.cookie)
    assert.equals("subscribed", subscribe(ws, 1, "chat", { room = "private" }).type)
    assert.equals("subscribed", subscribe(ws, 2, "chat", { room = "lobby" }).type)
    assert_revoked(ws, 1) -- within 15 s; the session lives 2
    assert_anonymous(ws, 2)
    ws:close()
    srv:stop()
  end)

  -- Two instances on one redis-server (env(redis) says what they share);
  -- `name` signs up on A, a socket on A holds a members-only (1) and a
  -- public (2) subscription, and the logout is served by B. Returns the
  -- socket, and what stops it all.
  local function signed_out_elsewhere(name, env)
    local redis = testing.redis()
    local e = env(redis)
    e.MIZAN_SECRET = "shared"
    local a = testing.server(APP, { env = e })
    local b = testing.server(APP, { env = e })
    local agent = signed_up(a, name)
    local ws = open(a.port, agent.cookie)
    assert.equals("subscribed", subscribe(ws, 1, "chat", { room = "private" }).type)
    assert.equals("subscribed", subscribe(ws, 2, "chat", { room = "lobby" }).type)
    local res = b:call("auth.logout", {}, { headers = { ["Content-Type"] = "application/json",
                                                         Cookie = "mizan_session=" .. agent.cookie } })
    assert.equals(200, res.status)
    return ws, function()
      ws:close()
      a:stop()
      b:stop()
      redis:stop()
    end
  end

  it("when the logout is served by another instance (sessions and channels through Redis)", function()
    local ws, stop = signed_out_elsewhere("hal", function(redis)
      return { MIZAN_SESSIONS = redis:url(0), MIZAN_CHANNELS = redis:url(1) }
    end)
    assert_revoked(ws, 1) -- told by B, with nothing sent on the socket
    assert_anonymous(ws, 2)
    stop()
  end)

  it("checks the store on every frame: a logout on an instance that shares only the sessions", function()
    -- two instances share the session store (Redis) but no channel relay:
    -- no event can reach A, so only A's own look at the store can tell
    local ws, stop = signed_out_elsewhere("gus", function(redis) return { MIZAN_SESSIONS = redis:url(0) } end)
    ws:send_json { type = "send", id = 2, data = { text = "who am i" } }
    assert_revoked(ws, 1)
    assert.same({ type = "message", id = 2, data = { text = "who am i", author = "anon" } }, ws:read_json())
    stop()
  end)

  it("checks the store again by itself: a listen-only socket leaves a session that ended elsewhere", function()
    -- as above, but the socket sends nothing: the sweep looks at the store
    -- every quarter of the session lifetime (here 5 s of 20); assert_revoked
    -- waits 15 s at most, before the session would have expired
    local ws, stop = signed_out_elsewhere("ike", function(redis)
      return { MIZAN_SESSIONS = redis:url(0), MIZAN_SESSION_TTL = "20" }
    end)
    assert_revoked(ws, 1)
    stop()
  end)
end)

describe("a WebSocket handshake whose connection closes while Lua decides", function()
  it("leaves no socket behind in the channels layer", function()
    local redis = testing.redis()
    local proxy = testing.proxy(redis.port)
    local srv = testing.server(APP, { env = { MIZAN_SESSIONS = ("redis://127.0.0.1:%d/0"):format(proxy.port) } })
    local agent = srv:agent()
    assert.equals(200, agent:call("remember", { v = "x" }).status) -- an anonymous session, in Redis
    local cookie = assert(agent.cookie)
    local function count() return srv:call("socket_count", {}, { method = "GET" }).json.result end
    local baseline = count()
    assert.is_number(baseline)
    -- the session lookup of the handshake waits on the frozen store; a
    -- large answer before it, which the client does not read, is still
    -- being written, so the server sees the client go (a reset) meanwhile.
    -- 4.5 MB: more than the kernel buffers (tcp_wmem's 4 MB at most), and
    -- what is left (under the 1 MiB output limit) lets the handshake in.
    proxy:freeze()
    local c = srv:connect()
    c:send(testing.request_bytes("GET", "/api/mizan/call/blob/?n=4500000")
      .. testing.request_bytes("GET", "/api/mizan/ws/", {
        "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Cookie: mizan_session=" .. cookie }))
    kit.sleep(0.1) -- on purpose: the server reads both requests before the client goes
    c:close()
    kit.sleep(0.1) -- on purpose, and briefly: a store that stays silent longer is down, and the handshake is refused
    proxy:thaw()
    assert.is_true(h.wait_until(function() return count() == baseline end), "the socket was let go")
    -- the store answered in time: Lua took the socket in (a refusal would prove nothing)
    assert.is_nil(srv:log():find("timed out", 1, true))
    srv:stop()
    proxy:stop()
    redis:stop()
  end)
end)
