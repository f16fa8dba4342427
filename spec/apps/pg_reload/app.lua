-- mizan dev reloads with Postgres connections open (spec/e2e/postgres_spec.lua):
-- the spec rewrites VERSION to reload it.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local db = mizan.db

VERSION = "v0"

mizan.register(client { query = true } (function() return VERSION end), "version")

-- holds a connection for a while: in flight across a reload
mizan.register(client { query = true, input = { seconds = T.number } } (function(req, args)
  local row = db.check("hold", db.row("SELECT pg_sleep(?) AS slept, ? AS version", args.seconds, VERSION))
  return row.version
end), "hold")

-- several statements at once: the pool opens more than one connection
mizan.register(client { query = true } (function()
  return db.check("pk", db.row("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'mizan'")).n
end), "count")
