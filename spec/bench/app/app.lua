-- The benchmark app: the same job as the `/echo` location of
-- shared/bench/openresty.conf (text must be a string, or 400).
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

mizan.register(client {
  input = { text = T.string },
  output = { message = T.string },
} (function(req, args)
  return { message = args.text }
end), "echo")

-- A context served from the cache (C answers it), and its uncached twin.
mizan.register(client { context = "hello", cache = { ttl = 3600, shared = true } } (function()
  return { message = "hello world" }
end), "greeting")

mizan.register(client { context = "hello_live" } (function()
  return { message = "hello world" }
end), "greeting_live")

mizan.register(client { query = true } (function()
  return mizan.stats()
end), "bench_stats")

-- Broadcast benchmark: every subscriber is in one group.
mizan.channel "bench" {
  server_message = { n = T.integer },
  group = function() return "all" end,
}

mizan.register(client { input = { n = T.integer } } (function(req, args)
  return mizan.channels.send("bench", {}, { n = args.n })
end), "fanout")
