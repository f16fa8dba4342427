-- The fixture app for mizan.db on Postgres (spec/integration/pg_spec.lua).
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local db = mizan.db

local ready = false
local function schema()
  if ready then return end
  assert(db.exec([[CREATE TABLE IF NOT EXISTS kinds (
    id serial PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, b boolean, n numeric,
    j json, jb jsonb, by bytea, ts timestamp, tz timestamptz, d date, t text, nul text)]]))
  assert(db.exec("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text UNIQUE)"))
  ready = true
end

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

local function typed(row)
  local out = {}
  for k, v in pairs(row) do
    out[k] = { type = v == mizan.null and "null" or type(v), value = type(v) == "string" and k == "by" and hex(v) or v }
  end
  return out
end

-- literals of every type, straight from the server
mizan.register(client { query = true } (function()
  return typed(assert(db.row([[SELECT 32767::int2 AS i2, (-2147483648)::int4 AS i4, 9007199254740992::int8 AS i8,
    9007199254740993::int8 AS i8big, (-9223372036854775808)::int8 AS i8min, 1.5::float4 AS f4, 0.1::float8 AS f8,
    true AS b, false AS bf, 12345678901234567890.000000001::numeric AS n, '{"a":[1,2,null]}'::json AS j,
    '{"k":"v","n":1.25}'::jsonb AS jb, '\x00ff41'::bytea AS by, '2024-02-29 23:59:58.25'::timestamp AS ts,
    '2024-02-29 23:59:58.25+02'::timestamptz AS tz, '2024-02-29'::date AS d, 'héllo'::text AS t, NULL::text AS nul,
    'NaN'::float8 = 'NaN'::float8 AS nan_eq]])))
end), "literals")

-- the same values through parameters, stored and read back
mizan.register(client { input = { bytes_hex = T.string } } (function(req, args)
  schema()
  local bytes = args.bytes_hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  local row = assert(db.row([[INSERT INTO kinds (i2, i4, i8, f4, f8, b, n, j, jb, by, ts, tz, d, t, nul)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *]],
    -32768, 2147483647, "9223372036854775807", 0.5, 1e300, false, "3.14159265358979323846264338327950288",
    { list = { 1, 2, 3 } }, { nested = { ok = true } }, bytes, "2001-02-03T04:05:06.789", "2001-02-03T04:05:06Z",
    "2001-02-03", "it's \"quoted\" ? -- not a comment", mizan.null))
  local again = assert(db.row("SELECT * FROM kinds WHERE id = ? AND by = ? AND i8 = ?", row.id, bytes, row.i8))
  return { stored = typed(row), found = again.id == row.id }
end), "roundtrip")

mizan.register(client { input = { body = T.string } } (function(req, args)
  schema()
  local r, err, kind, state = db.exec("INSERT INTO notes (body) VALUES (?)", args.body)
  if not r then return { err = err, kind = kind, sqlstate = state } end
  return { changes = r.changes, has_last_id = r.last_insert_id ~= nil }
end), "add_note")

mizan.register(client { query = true, input = { body = T.string } } (function(req, args)
  schema()
  return db.query("SELECT id, body FROM notes WHERE body = ? ORDER BY id", args.body)
end), "find_notes")

mizan.register(client { query = true } (function()
  schema()
  return assert(db.row("SELECT count(*) AS n FROM notes")).n
end), "count_notes")

-- `?` inside literals, identifiers and comments is left alone
mizan.register(client { query = true, input = { v = T.string } } (function(req, args)
  return assert(db.row([[SELECT '?' AS lit, E'\'?' AS esc, $$?$$ AS dollar, $x$ ? $x$ AS tagged, "?" AS ident,
    ? AS param /* ? /* nested ? */ ? */ -- ? trailing
    FROM (SELECT 1 AS "?") s]], args.v))
end), "placeholders")

mizan.register(client { input = { body = T.string } } (function(req, args)
  schema()
  local ok, err = pcall(db.transaction, function()
    assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body))
    error("changed my mind")
  end)
  local n = db.row("SELECT count(*) AS n FROM notes WHERE body = ?", args.body).n
  return { ok = ok, err = tostring(err):match("changed my mind") or tostring(err), left = n }
end), "aborted")

-- a failing statement inside a transaction, its error ignored: COMMIT must not pretend
mizan.register(client { input = { body = T.string } } (function(req, args)
  schema()
  local res, err, kind, state = db.transaction(function()
    assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body .. "-1"))
    db.exec("INSERT INTO nope VALUES (1)") -- fails; the app ignores it
    return "returned"
  end)
  local n = db.row("SELECT count(*) AS n FROM notes WHERE body = ?", args.body .. "-1").n
  return { res = res or mizan.null, kind = kind or mizan.null, sqlstate = state or mizan.null, left = n }
end), "ignored_failure")

-- nested transactions are savepoints: the inner failure undoes only its part
mizan.register(client { input = { body = T.string } } (function(req, args)
  schema()
  return db.transaction(function()
    assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body .. "-outer"))
    local ok = pcall(db.transaction, function()
      assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body .. "-inner"))
      error("inner fails")
    end)
    local inner = db.row("SELECT count(*) AS n FROM notes WHERE body = ?", args.body .. "-inner").n
    return { inner_ok = ok, inner_left = inner }
  end)
end), "nested")

local seq = 0
local function next_seq() seq = seq + 1; return seq end

mizan.register(client { query = true, input = { seconds = T.number } } (function(req, args)
  local started = next_seq()
  local row, err, kind = db.row("SELECT pg_sleep(?) AS slept, 1 AS one", args.seconds)
  if not row then error(db.failure("sleep", err, kind), 0) end
  return { started = started, finished = next_seq() }
end), "sleep")

mizan.register(client { query = true } (function()
  local started = next_seq()
  return { started = started, finished = next_seq() }
end), "tick")

-- one primary-key read (the spec makes the table): the unit of the
-- 200-concurrent check, the outage check and the benchmark
mizan.register(client { query = true, input = { id = T.number } } (function(req, args)
  return db.check("pk", db.row("SELECT id, name FROM items WHERE id = ?", args.id))
end), "pk")

-- a transaction that outlives its client: it sleeps, then writes
mizan.register(client { input = { body = T.string } } (function(req, args)
  schema()
  return db.check("slow_tx", db.transaction(function()
    assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body))
    mizan.sleep(0.5)
    return db.row("SELECT count(*) AS n FROM notes WHERE body = ?", args.body).n
  end))
end), "slow_tx")

-- BEGIN by hand, never finished: the pool must not keep it open
mizan.register(client { input = { body = T.string } } (function(req, args)
  schema()
  assert(db.exec("BEGIN"))
  assert(db.exec("INSERT INTO notes (body) VALUES (?)", args.body))
  return true
end), "leaky")

mizan.register(client { query = true } (function()
  return require("mizan.db.postgres") and { engine = db.engine() }
end), "engine")
