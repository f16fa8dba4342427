-- The fixture app for the origin cache.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

local calls = {}
local function count(name)
  calls[name] = (calls[name] or 0) + 1
  return calls[name]
end
local data = { [1] = "one", [2] = "two" }

-- The "items" context: one shared entry and one per-user entry per id.
mizan.register(client { context = "items", input = { id = T.integer }, cache = { ttl = 60, shared = true } } (function(req, args)
  return { id = args.id, value = data[args.id] or mizan.null, calls = count("item") }
end), "item")

mizan.register(client { context = "items", input = { id = T.integer }, cache = { ttl = 60 } } (function(req, args)
  return { id = args.id, calls = count("item_meta") }
end), "item_meta")

mizan.register(client { query = true, cache = { ttl = 0.3 } } (function()
  return { calls = count("short") }
end), "short")

mizan.register(client { query = true, cache = { ttl = 60 }, input = { n = T.integer } } (function(req, args)
  mizan.sleep(0.3)
  return { calls = count("slow"), n = args.n }
end), "slow_cached")

mizan.register(client { query = true, cache = { ttl = 60, shared = true } } (function(req)
  local who = req.user -- a shared function must not look at who asks
  return { calls = count("leaky"), anonymous = who == nil }
end), "leaky")

mizan.register(client { query = true, cache = { ttl = 60 }, input = { size = T.integer, k = T.integer } } (function(req, args)
  return { blob = ("x"):rep(args.size), calls = count("big") }
end), "big")

mizan.register(client { query = true } (function()
  return { calls = calls, stats = mizan.stats() }
end), "calls")

mizan.register(client {
  input = { id = T.integer, value = T.string },
  affects = "items",
  affects_params = { id = "id" },
} (function(req, args)
  data[args.id] = args.value
  return true
end), "set_item")

mizan.register(client {} (function()
  mizan.cache.purge("short")
  return true
end), "purge_short")

-- A context every function of which is shared: an edge worker may cache it.
mizan.register(client { context = "public", cache = { ttl = 30, shared = true } } (function()
  return { headline = "hello", calls = count("headline") }
end), "headline")
mizan.register(client { context = "public", cache = { ttl = 10, shared = true } } (function()
  return { calls = count("banner") }
end), "banner")
mizan.register(client { affects = "public" } (function() return true end), "publish")
