-- The fixture app for mizan.db.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local db = mizan.db

local ready = false
local function schema()
  if ready then return end
  assert(db.exec("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT, score REAL, extra TEXT)"))
  ready = true
end

local seq = 0
local function next_seq() seq = seq + 1; return seq end

mizan.register(client { input = { body = T.string, score = T.optional(T.number) } } (function(req, args)
  schema()
  local r = assert(db.exec("INSERT INTO notes (body, score, extra) VALUES (?, ?, ?)", args.body, args.score, nil))
  return { id = r.last_insert_id, changes = r.changes }
end), "add_note")

mizan.register(client { query = true, input = { body = T.string } } (function(req, args)
  schema()
  return db.query("SELECT id, body, score, extra FROM notes WHERE body = ? ORDER BY id", args.body)
end), "find_notes")

-- a transaction that fails half-way leaves nothing behind
mizan.register(client { input = { body = T.string } } (function(req, args)
  schema()
  local ok, err = pcall(db.transaction, function()
    assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body))
    error("changed my mind")
  end)
  local n = db.row("SELECT count(*) AS n FROM notes WHERE body = ?", args.body).n
  return { ok = ok, err = tostring(err):match("changed my mind") and "changed my mind" or tostring(err), left = n }
end), "aborted")

mizan.register(client { input = { body = T.string } } (function(req, args)
  schema()
  return db.transaction(function()
    assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body))
    assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body))
    return db.row("SELECT count(*) AS n FROM notes WHERE body = ?", args.body).n
  end)
end), "committed")

-- bound, never spliced: a hostile value is just a value
mizan.register(client { query = true, input = { body = T.string } } (function(req, args)
  schema()
  return db.row("SELECT count(*) AS n FROM notes WHERE body = ?", args.body).n
end), "count_body")

mizan.register(client { query = true } (function()
  return { db.query("SELECT * FROM nope") }
end), "bad_sql")

-- a slow statement (a long recursive count) runs off the loop
mizan.register(client { query = true } (function()
  local started = next_seq()
  local row = db.row([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)
                       SELECT count(*) AS n FROM c]])
  return { n = row.n, started = started, finished = next_seq() }
end), "slow_count")

mizan.register(client { query = true } (function()
  local started = next_seq()
  return { started = started, finished = next_seq() }
end), "tick")
