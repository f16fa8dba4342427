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

-- Per-user entries read req.session: per session for anonymous callers.
mizan.register(client { input = { name = T.string } } (function(req, args)
  req.session.name = args.name
  return true
end), "remember")
mizan.register(client { query = true, cache = { ttl = 60 } } (function(req)
  return { name = req.session.name or mizan.null, calls = count("whoami") }
end), "whoami")
-- A query that starts a session: its result belongs to no shared scope.
mizan.register(client { query = true, cache = { ttl = 60 } } (function(req)
  req.session.visits = (req.session.visits or 0) + 1
  return { visits = req.session.visits, calls = count("visit") }
end), "visit")

-- Single-flight against a purge: once armed, the next call of `gated` reads
-- its data, then waits until the spec opens the gate (no timing involved).
local gate = { armed = false, open = false, waiting = 0 }
local gated_value = "old"
mizan.register(client { query = true, cache = { ttl = 60 } } (function()
  local v = gated_value
  if gate.armed then
    gate.armed = false
    gate.waiting = gate.waiting + 1
    while not gate.open do mizan.sleep(0.005) end
    gate.waiting = gate.waiting - 1
  end
  return { value = v, calls = count("gated") }
end), "gated")
mizan.register(client {} (function()
  gate.armed, gate.open = true, false
  return true
end), "arm_gate")
mizan.register(client {} (function()
  gate.open = true
  return true
end), "open_gate")
mizan.register(client { query = true } (function() return { waiting = gate.waiting } end), "gate_state")
mizan.register(client { input = { value = T.string }, affects = "gated" } (function(req, args)
  gated_value = args.value
  return true
end), "set_gated")

-- Data every instance shares (one SQLite file), for the specs of more than
-- one instance.
local db = mizan.db
local function notes()
  assert(db.exec("CREATE TABLE IF NOT EXISTS cache_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
end
local function read_note(id)
  notes()
  local row = db.row("SELECT body FROM cache_notes WHERE id = ?", id)
  return row and row.body or mizan.null
end
mizan.register(client { query = true, cache = { ttl = 60, shared = true }, input = { id = T.integer } } (function(req, args)
  return { body = read_note(args.id), calls = count("note") }
end), "note")
mizan.register(client { query = true, input = { id = T.integer } } (function(req, args)
  return { body = read_note(args.id) }
end), "note_uncached")
mizan.register(client { input = { id = T.integer, body = T.string }, affects = "note", affects_params = { id = "id" } } (function(req, args)
  notes()
  assert(db.exec("INSERT OR REPLACE INTO cache_notes (id, body) VALUES (?, ?)", args.id, args.body))
  return true
end), "set_note")

-- A shared cached query that fails, once its gate opens: concurrent callers
-- share the leader's error (single-flight), and nothing of one caller's
-- answer (its Set-Cookie) may reach another.
local egate = { open = false, waiting = 0 }
mizan.register(client { query = true, cache = { ttl = 60, shared = true } } (function()
  egate.waiting = egate.waiting + 1
  while not egate.open do mizan.sleep(0.005) end
  egate.waiting = egate.waiting - 1
  mizan.error("not_found", "nothing here")
end), "gated_missing")
mizan.register(client { input = { open = T.boolean } } (function(req, args)
  egate.open = args.open
  return egate.waiting
end), "set_missing_gate")
