-- The fixture app for reloads with live resources: a Redis cache, channels
-- relayed through Redis, WebSockets. VERSION is rewritten by specs.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local VERSION = "v0"

mizan.register(client { query = true } (function() return VERSION end), "version")

mizan.register(client { query = true, input = { seconds = T.number } } (function(req, args)
  mizan.sleep(args.seconds)
  return { version = VERSION }
end), "slow")

mizan.register(client { query = true, cache = { ttl = 600, shared = true } } (function() return VERSION end),
               "cached_version")

mizan.channel "news" {
  server_message = { headline = T.string, version = T.string },
  group = function() return "news" end,
}

mizan.register(client { input = { headline = T.string } } (function(req, args)
  return mizan.channels.send("news", {}, { headline = args.headline, version = VERSION })
end), "publish")
