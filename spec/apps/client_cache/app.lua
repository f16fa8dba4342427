-- The fixture app for the client's cache (spec/js/codegen/cache.live.test.ts):
-- it counts what reaches it, so a cache hit shows as a read that never came.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

local reads, calls, values = {}, {}, {}

-- How many times the server answered `key`, and its value.
local counter = client {
  query = true,
  input = { key = T.string },
} (function(req, args)
  reads[args.key] = (reads[args.key] or 0) + 1
  return { reads = reads[args.key], value = values[args.key] or 0 }
end)
mizan.register(counter, "counter")

-- Fails the first `fails` calls for `key` with a 500 (a Lua error), or a 404
-- when `missing`; then answers how many calls it took.
mizan.register(client {
  query = true,
  input = { key = T.string, fails = T.integer, missing = T.optional(T.boolean) },
} (function(req, args)
  calls[args.key] = (calls[args.key] or 0) + 1
  if calls[args.key] <= args.fails then
    if args.missing then mizan.error("not_found", "not here (on purpose)") end
    error("flaky on purpose")
  end
  return { calls = calls[args.key] }
end), "flaky")

-- Set a counter's value; `refuse` makes it fail with a 404 after all.
mizan.register(client {
  input = { key = T.string, value = T.integer, refuse = T.optional(T.boolean) },
  affects = counter,
} (function(req, args)
  if args.refuse then mizan.error("not_found", "refused (on purpose)") end
  values[args.key] = args.value
  return { value = args.value }
end), "set_value")
