-- The fixture app for channels.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

mizan.channel "chat" {
  params = { room = T.string { max_length = 50 } },
  server_message = { text = T.string, author = T.string },
  client_message = { text = T.string { max_length = 200 } },
  authorize = function(ctx, params)
    if params.room == "private" then return ctx.user ~= nil, "members only" end
    return true
  end,
  group = function(ctx, params) return "chat_" .. params.room end,
  receive = function(ctx, params, msg)
    if msg.text == "boom" then error("receive exploded") end
    mizan.channels.send("chat", params, { text = msg.text, author = ctx.user and ctx.user.username or "anon" })
  end,
}

mizan.channel "news" {
  server_message = { headline = T.string },
  group = function() return "news" end,
}

mizan.register(client { input = { headline = T.string } } (function(req, args)
  return mizan.channels.send("news", {}, { headline = args.headline })
end), "publish")

mizan.register(client { input = { room = T.string, text = T.string } } (function(req, args)
  return mizan.channels.send("chat", { room = args.room }, { text = args.text, author = 5 })
end), "bad_broadcast")

-- invalidation push: a shared context and a per-user one
mizan.register(client { context = "board", cache = { ttl = 60, shared = true } } (function() return 1 end), "board_items")
mizan.register(client { context = "mine" } (function(req) return req.user and req.user.id or mizan.null end), "my_items")
mizan.register(client { affects = "board" } (function() return true end), "post_board")
mizan.register(client { affects = "mine" } (function() return true end), "post_mine")
-- an anonymous visitor's session (a cart, say): writing into it starts one
mizan.register(client { input = { v = T.string } } (function(req, args)
  req.session.v = args.v
  return true
end), "remember")

-- Which worker a socket is on: a send is answered with that worker's pid,
-- so specs spanning workers can tell they reached both.
local pid = require("mizan.testkit").getpid()
mizan.channel "where" {
  params = { tag = T.string },
  server_message = { pid = T.integer },
  group = function(ctx, params) return "where_" .. params.tag end,
  receive = function(ctx, params) mizan.channels.send("where", params, { pid = pid }) end,
}

-- An admin's change to an account, as the specs need it.
mizan.register(client { input = { username = T.string, is_active = T.boolean, is_staff = T.boolean } } (function(req, args)
  assert(mizan.db.exec("UPDATE mizan_users SET is_active = ?, is_staff = ? WHERE username = ?",
                       args.is_active, args.is_staff, args.username))
  return true
end), "set_account")

mizan.channel "staff" {
  authorize = function(ctx) return ctx.user ~= nil and ctx.user.is_staff, "staff only" end,
  group = function() return "staff" end,
}

-- A members-only channel whose authorize waits on a gate the spec opens:
-- a logout can land while a subscribe is being decided (no timing involved).
local gate = { open = false, waiting = 0 }
mizan.channel "gated" {
  authorize = function(ctx)
    local member = ctx.user ~= nil
    gate.waiting = gate.waiting + 1
    while not gate.open do mizan.sleep(0.005) end
    gate.waiting = gate.waiting - 1
    return member, "members only" -- decided for who asked, as an authorize doing I/O would
  end,
  group = function() return "gated" end,
}
mizan.register(client { input = { open = T.boolean } } (function(req, args)
  gate.open = args.open
  return true
end), "set_gate")
mizan.register(client { query = true } (function() return gate.waiting end), "gate_waiting")
