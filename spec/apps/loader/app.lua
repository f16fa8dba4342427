-- An app with its own user source and no built-in accounts.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

mizan.config { accounts = false }

local people = { [7] = { id = 7, username = "seven", is_staff = true }, [8] = { id = 8, username = "eight", is_active = false } }
mizan.auth.user_loader(function(id) return people[id] end)

mizan.register(client { input = { id = T.integer } } (function(req, args)
  req:login({ id = args.id })
  return true
end), "login_as")

mizan.register(client { auth = true, query = true } (function(req)
  return req.user.username
end), "who")

mizan.register(client { auth = "staff", query = true } (function() return "staff" end), "staff_only")
