-- The Postgres benchmark's app (spec/bench/pg.sh): one primary-key SELECT,
-- the statement pgbench -S runs, on whichever engine MIZAN_DATABASE names.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local db = mizan.db

mizan.register(client { query = true, input = { aid = T.number } } (function(req, args)
  return db.check("pk", db.row("SELECT abalance FROM pgbench_accounts WHERE aid = ?", args.aid))
end), "pk")

-- SQLite only: the same table as pgbench -i -s 1 (100000 accounts)
mizan.register(client {} (function()
  db.check("fill", db.exec("CREATE TABLE IF NOT EXISTS pgbench_accounts (aid INTEGER PRIMARY KEY, bid INTEGER, "
    .. "abalance INTEGER, filler TEXT)"))
  return db.check("fill", db.exec([[WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000)
    INSERT OR IGNORE INTO pgbench_accounts SELECT x, 1, 0, '' FROM n]])).changes
end), "fill")
