-- The fixture app for workers and reloads: VERSION is rewritten by specs.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local VERSION = "v1"

mizan.register(client { query = true } (function() return VERSION end), "version")

mizan.register(client { query = true, input = { seconds = T.number } } (function(req, args)
  mizan.sleep(args.seconds)
  return { pid = require("mizan.core").getpid(), version = VERSION }
end), "slow")

mizan.register(client { query = true } (function() error("boom") end), "boom")

mizan.register(client { query = true, cache = { ttl = 60, shared = true } } (function() return VERSION end), "cached_version")

mizan.register(client { input = { value = T.string } } (function(req, args)
  req.session.value = args.value
  return true
end), "remember")

mizan.register(client { query = true } (function(req) return req.session.value or mizan.null end), "recall")

local ok, helper = pcall(require, "lib.helper")
mizan.register(client { query = true } (function() return ok and helper.word or mizan.null end), "helper_word")
