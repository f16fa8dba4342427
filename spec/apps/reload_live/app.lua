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

-- A mutation that broadcasts once the spec creates its gate file: a reload
-- can land while it waits, so it broadcasts from a retired state.
mizan.register(client { input = { gate = T.string, headline = T.string } } (function(req, args)
  while true do
    local f = io.open(args.gate)
    if f then f:close() break end
    mizan.sleep(0.01)
  end
  return mizan.channels.send("news", {}, { headline = args.headline, version = VERSION })
end), "publish_at_gate")
