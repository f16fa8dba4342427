-- The fixture app for sessions, accounts, auth predicates and CSRF.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

mizan.register(client { auth = true, query = true } (function(req)
  return { me = req.user.username }
end), "whoami")

mizan.register(client { auth = "staff", query = true } (function() return "staff ok" end), "staff_only")
mizan.register(client { auth = "superuser", query = true } (function() return "root ok" end), "root_only")

mizan.register(client {
  query = true,
  auth = function(req)
    if req.user and req.user.username == "alice" then return true end
    return false, "only alice may read this"
  end,
} (function() return "alice ok" end), "alice_only")

mizan.register(client { input = { key = T.string, value = T.string } } (function(req, args)
  req.session[args.key] = args.value
  return true
end), "session_set")

-- a mutation with effects that also writes the session
mizan.register(client { affects = "mine", input = { key = T.string, value = T.string } } (function(req, args)
  req.session[args.key] = args.value
  return true
end), "session_set_mine")

mizan.register(client { query = true, input = { key = T.string } } (function(req, args)
  return req.session[args.key] or mizan.null
end), "session_get")

-- per-user cached: each user sees their own
mizan.register(client { context = "mine", cache = { ttl = 60 } } (function(req)
  return { user = req.user and req.user.username or mizan.null, at = mizan.now() }
end), "my_data")

mizan.register(client { context = "guarded_ctx", auth = true } (function() return 1 end), "g1")
mizan.register(client { context = "guarded_ctx" } (function() return 2 end), "g2")

mizan.register(client { input = { note = T.string } } (function(req, args) return args.note end), "post_note")

mizan.register(client { query = true } (function()
  return mizan.db.row("SELECT count(*) AS n FROM mizan_users").n
end), "user_count")
