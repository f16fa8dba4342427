-- mizan.migrate in-process, against a real database: what runs, in which
-- order, what is recorded, and every refusal naming its file.
local core = require "mizan.core"
local db = require "mizan.db"
local migrate = require "mizan.migrate"
local h = require "helpers"
local lfs = require "lfs"

local BUILTINS = { "mizan/0001_users", "mizan/0002_sessions", "mizan/0003_login_attempts", "mizan/0004_jobs" }

-- an app folder with these migrations/ files
local function app(files)
  local dir = os.tmpname() -- a folder of its own (helpers.app_dir numbers them per spec file)
  os.remove(dir)
  assert(lfs.mkdir(dir))
  h.write(dir .. "/app.lua", "return nil")
  lfs.mkdir(dir .. "/migrations")
  for name, text in pairs(files) do h.write(dir .. "/migrations/" .. name, text) end
  return { dir = dir }
end

-- fn() as a task (the database is reached from one, as in a request)
local function task(fn, ...)
  local res = { core.run(fn, ...) }
  if not res[1] then error(res[2], 2) end
  return unpack(res, 2, table.maxn(res))
end

local function q(sql, ...) return assert(task(db.query, sql, ...)) end
local function apply(a) return task(migrate.apply, a) end
local function status(a) return task(migrate.status, a) end

local counter = 0
local function fresh_sqlite()
  counter = counter + 1
  local path = ("/tmp/mizan-migrate-spec-%d-%d.db"):format(core.getpid(), counter)
  os.remove(path)
  db.configure("sqlite:" .. path)
  return path
end

local function has_table(name)
  local sql = db.engine() == "postgres"
    and "SELECT table_name FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()"
    or "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"
  return #q(sql, name) == 1
end

-- the database's words for a missing table
local function no_table(name)
  if db.engine() == "postgres" then return ('relation "%s" does not exist'):format(name) end
  return "no such table: " .. name
end

local function labels(list)
  local out = {}
  for i, m in ipairs(list) do out[i] = m.label or m end
  return out
end

local function concat(a, b)
  local out = {}
  for _, v in ipairs(a) do out[#out + 1] = v end
  for _, v in ipairs(b) do out[#out + 1] = v end
  return out
end

-- The same cases on each engine: `fresh` points mizan.db at an empty database.
local function cases(engine, fresh)
describe("mizan.migrate on " .. engine, function()
  before_each(fresh)

  it("applies the built-ins, then the app's in number order, once, each recorded", function()
    local a = app {
      ["0002_more.sql"] = "INSERT INTO things VALUES (1, 'two;semicolon');\nINSERT INTO things VALUES (2, 'three');",
      ["0001_things.sql"] = "-- the first table\nCREATE TABLE things (n INTEGER NOT NULL, name TEXT NOT NULL);",
      ["0010_by_lua.lua"] = ([[return function(db)
        assert(db.engine() == %q)
        db.exec("INSERT INTO things VALUES (?, ?)", 3, "from lua")
        assert(db.row("SELECT count(*) AS n FROM things").n == 3)
      end]]):format(engine),
    }
    assert.same(concat(BUILTINS, { "0001_things", "0002_more", "0010_by_lua" }), labels(status(a).pending))
    assert.same(concat(BUILTINS, { "0001_things", "0002_more", "0010_by_lua" }), apply(a))
    assert.same({ "two;semicolon", "three", "from lua" }, (function()
      local out = {}
      for i, r in ipairs(q("SELECT name FROM things ORDER BY n")) do out[i] = r.name end
      return out
    end)())
    local rec = q("SELECT id, name, checksum, applied_at FROM mizan_migrations ORDER BY id")
    assert.equals(7, #rec)
    assert.same({ "0001", "things" }, { rec[1].id, rec[1].name })
    assert.matches("^%x+$", rec[1].checksum)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", rec[1].applied_at)
    assert.equals("mizan/0001", rec[4].id)
    -- the built-ins' tables are there, and nothing runs twice
    assert.equals(0, #q("SELECT * FROM mizan_users"))
    assert.same({}, apply(a))
    assert.equals(3, #q("SELECT * FROM things"))
    assert.equals(0, #status(a).pending)
  end)

  it("adopts a database whose built-in tables were made at first use, keeping their rows", function()
    -- what the code before migrations created on first use
    local pg = engine == "postgres"
    assert(task(db.exec, ([[CREATE TABLE mizan_users (id %s, username TEXT NOT NULL UNIQUE,
      email TEXT NOT NULL DEFAULT '', password TEXT NOT NULL, is_staff INTEGER NOT NULL DEFAULT 0,
      is_superuser INTEGER NOT NULL DEFAULT 0, is_active INTEGER NOT NULL DEFAULT 1, created_at %s NOT NULL)]]):format(
      pg and "BIGSERIAL PRIMARY KEY" or "INTEGER PRIMARY KEY AUTOINCREMENT", pg and "DOUBLE PRECISION" or "REAL")))
    assert(task(db.exec, "CREATE TABLE mizan_sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at REAL NOT NULL)"))
    assert(task(db.exec, "INSERT INTO mizan_users (username, password, created_at) VALUES ('old', 'x', 0)"))
    assert.same(BUILTINS, apply(app {}))
    assert.equals("old", q("SELECT username FROM mizan_users")[1].username)
  end)

  it("rolls a failing migration back, names its file and the database's error, and stops there", function()
    local a = app {
      ["0001_ok.sql"] = "CREATE TABLE kept (x INTEGER);",
      ["0002_bad.sql"] = "CREATE TABLE half (x INTEGER);\nINSERT INTO half VALUES (1);\n\nINSERT INTO nowhere VALUES (1);",
      ["0003_later.sql"] = "CREATE TABLE later (x INTEGER);",
    }
    local done, err, before = apply(a)
    assert.is_nil(done)
    assert.matches("migrations/0002_bad.sql failed and was rolled back: statement 3 (line 4): " .. no_table("nowhere"),
      err, 1, true)
    assert.same(concat(BUILTINS, { "0001_ok" }), before)
    assert.is_false(has_table("half"), "nothing of 0002")
    assert.is_false(has_table("later"), "nor of 0003")
    assert.is_true(has_table("kept"))
    assert.same({ "0002_bad", "0003_later" }, labels(status(a).pending))
  end)

  it("rolls back a Lua migration whose statement fails even when the code ignores the error", function()
    local a = app { ["0001_careless.lua"] = [[return function(db)
      db.exec("CREATE TABLE careless (x INTEGER)")
      db.exec("INSERT INTO missing VALUES (1)") -- no assert: the migration's db raises anyway
    end]] }
    local done, err = apply(a)
    assert.is_nil(done)
    assert.matches("migrations/0001_careless.lua failed and was rolled back: ", err, 1, true)
    assert.matches(no_table("missing"), err, 1, true)
    assert.is_false(has_table("careless"))
    assert.same({ "0001_careless" }, labels(status(a).pending))
  end)

  it("refuses bad names, duplicate numbers and a Lua file that returns no function, naming the files", function()
    local cases = {
      { { ["1_short.sql"] = "" }, "migrations/1_short.sql: a migration is named NNNN_name.sql or NNNN_name.lua" },
      { { ["0001_x.txt"] = "" }, "migrations/0001_x.txt: a migration is named" },
      { { ["0001-dash.sql"] = "" }, "migrations/0001-dash.sql: a migration is named" },
      { { ["0001_a.sql"] = "", ["0001_b.lua"] = "return function() end" },
        "migrations/0001_a.sql and migrations/0001_b.lua have the same number" },
      { { ["0001_a.sql"] = "", ["00001_b.sql"] = "" }, "migrations/00001_b.sql and migrations/0001_a.sql have the same number" },
      { { ["0001_nofn.lua"] = "return 42" }, "migrations/0001_nofn.lua must return a function(db) ... end (it returned number)" },
      { { ["0001_syntax.lua"] = "return function(" }, "migrations/0001_syntax.lua:1:" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(migrate.discover, app(c[1]))
      assert.is_false(ok)
      assert.matches(c[2], err, 1, true)
      assert.is_false(pcall(apply, app(c[1])), "apply refuses too")
    end
    assert.is_false(has_table("mizan_migrations"), "nothing ran")
    -- editors' dotfiles are no migrations
    assert.same(BUILTINS, apply(app { [".0001_x.sql.swp"] = "junk" }))
  end)

  it("refuses a recorded migration whose file changed or is gone, and applies nothing then", function()
    local a = app { ["0001_t.sql"] = "CREATE TABLE t (x INTEGER);", ["0002_u.sql"] = "CREATE TABLE u (x INTEGER);" }
    apply(a)
    h.write(a.dir .. "/migrations/0001_t.sql", "CREATE TABLE t (x INTEGER, y INTEGER);")
    h.write(a.dir .. "/migrations/0003_v.sql", "CREATE TABLE v (x INTEGER);")
    local st, err = status(a)
    assert.is_nil(st)
    assert.matches("migrations/0001_t.sql changed after it was applied (on ", err, 1, true)
    assert.matches("undo the edit, or put the change in a new migration", err, 1, true)
    local done = apply(a)
    assert.is_nil(done)
    assert.is_false(has_table("v"), "0003 did not run")

    h.write(a.dir .. "/migrations/0001_t.sql", "CREATE TABLE t (x INTEGER);")
    os.remove(a.dir .. "/migrations/0002_u.sql")
    st, err = status(a)
    assert.is_nil(st)
    assert.matches("0002_u was applied %(on .-%) but is no longer in migrations/: restore its file", err)
  end)

  it("lists what is pending in the message serve prints", function()
    local a = app { ["0001_t.sql"] = "CREATE TABLE t (x INTEGER);" }
    local msg = migrate.pending_message(status(a).pending, { app_dir = "my/app" })
    assert.equals("5 migrations are pending (mizan/0001_users, mizan/0002_sessions, mizan/0003_login_attempts, "
      .. "mizan/0004_jobs, 0001_t): "
      .. "apply them with `mizan migrate my/app`, or set MIZAN_MIGRATE=auto to apply them at start", msg)
  end)
end)
end

cases("sqlite", fresh_sqlite)

-- Postgres: one real server (spec/support/postgres.lua), a database of its
-- own for each case.
do
  local pg, n = nil, 0
  describe("on a real Postgres", function()
    setup(function() pg = require("postgres").start() end)
    teardown(function()
      if pg then pg.stop() end
      pg = nil
    end)
    cases("postgres", function()
      n = n + 1
      local name = "migrate_" .. n
      pg.psql(("CREATE DATABASE %s OWNER %s"):format(name, pg.user))
      db.configure((pg.url:gsub("/" .. pg.database .. "$", "/" .. name)))
    end)
  end)
end
