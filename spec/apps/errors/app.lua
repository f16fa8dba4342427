-- The fixture app for typed errors (client { errors = ... }) and version
-- skew. VERSION and the shape of `changing` are rewritten by specs.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local VERSION = "v0"

-- a declared error per case the spec calls: `case` says which to raise
mizan.register(client {
  query = true,
  input = { id = T.integer, case = T.optional(T.string) },
  output = { id = T.integer, title = T.string },
  errors = {
    not_found = { id = T.integer },                                  -- 404 (the protocol's)
    conflict = T.object { with_id = T.integer },                     -- 409 (the default for conflict)
    archived = { status = 422, data = { since = T.string } },          -- 422 (declared)
    locked = true,                                                   -- 400, no data
  },
} (function(req, args)
  local c = args.case
  if c == "not_found" then mizan.error("not_found", { id = args.id }) end
  if c == "conflict" then mizan.error("conflict", "it clashes with another", { with_id = 7 }) end
  if c == "archived" then mizan.error("archived", { since = "2026-01-01" }) end
  if c == "locked" then mizan.error("locked", "it is locked") end
  if c == "undeclared" then mizan.error("teapot", { short = true }) end
  if c == "bad_data" then mizan.error("not_found", { id = "three" }) end
  if c == "data_for_none" then mizan.error("locked", { why = "x" }) end
  if c == "protocol" then mizan.error("validation_error", "the id is odd", { id = { "must be even" } }) end
  if c == "plain" then mizan.error("not_found", "old style, no data") end
  return { id = args.id, title = "todo " .. args.id }
end), "get_todo")

-- a function whose input the skew spec changes (and one it never changes)
mizan.register(client { query = true, input = { a = T.integer } } (function(req, args)
  return VERSION
end), "changing")

mizan.register(client { query = true } (function() return VERSION end), "stable")

mizan.register(client { query = true, cache = { ttl = 600, shared = true } } (function() return VERSION end),
               "cached_version")

-- cached (C's fast path answers it), and changed by the skew spec
mizan.register(client { query = true, input = { a = T.integer }, cache = { ttl = 600, shared = true } } (function(req, args)
  return VERSION
end), "cached_changing")
