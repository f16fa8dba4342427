-- Migrations as a user meets them: `mizan migrate` (apply, --status, new,
-- help, bad arguments), `mizan serve` refusing pending ones unless
-- MIZAN_MIGRATE=auto, `mizan dev` applying them on start and on save, and
-- two processes migrating one database at once.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local core = require "mizan.core"
local lfs = require "lfs"
local h = require "helpers"

local exe = kit.exe()

local APP = [[
local mizan = require "mizan"
local client = mizan.client
local db = mizan.db
VERSION = "v1"
mizan.register(client { query = true } (function() return VERSION end), "version")
mizan.register(client { query = true } (function()
  local out = mizan.array {}
  for i, r in ipairs(assert(db.query("SELECT name FROM things ORDER BY id"))) do out[i] = r.name end
  return out
end), "things")
]]

-- the same SQL on SQLite and Postgres
local THINGS = "CREATE TABLE things (id INTEGER NOT NULL, name TEXT NOT NULL);\nINSERT INTO things VALUES (1, 'first');\n"

local counter = 0
-- a folder with app.lua of its own (helpers.app_dir numbers folders per
-- spec file, and busted loads it afresh for each file)
local function app_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(lfs.mkdir(dir))
  h.write(dir .. "/app.lua", APP)
  return dir
end

local function fresh_db()
  counter = counter + 1
  local path = ("/tmp/mizan-migrate-e2e-%d-%d.db"):format(core.getpid(), counter)
  os.remove(path)
  return "sqlite:" .. path
end

-- an app folder with migrations/0001_things.sql (and these other files)
local function app(files)
  local dir = app_dir()
  lfs.mkdir(dir .. "/migrations")
  h.write(dir .. "/migrations/0001_things.sql", THINGS)
  for name, text in pairs(files or {}) do h.write(dir .. "/migrations/" .. name, text) end
  return dir
end

-- `mizan ARGS` with this environment: output (stdout and stderr), status
local function mizan(env, args)
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = ("%s=%q"):format(k, v) end
  return h.run(("env %s %q %s"):format(table.concat(parts, " "), exe, args))
end

local function things(srv)
  local res = srv:call("things", {}, { method = "GET" })
  return res.json and res.json.result, res
end

-- Two `mizan migrate` processes on one database (the URL) at once: the first
-- to take the lock runs 0001_once and holds it until the spec has seen the
-- second one find 0001_once pending, so both did try to apply it. CREATE
-- TABLE without IF NOT EXISTS: a second run would fail. count_sql(sql) runs
-- SQL on that database and returns its output.
local function race(database, count_sql)
  local dir = app_dir()
  lfs.mkdir(dir .. "/migrations")
  local env = { MIZAN_DATABASE = database }
  -- the built-ins first, so the two race on the app's migration alone
  assert.equals(0, select(2, mizan(env, "migrate " .. dir)))
  h.write(dir .. "/migrations/0001_once.lua", ([[
return function(db)
  db.exec("CREATE TABLE once (pid INTEGER)")
  db.exec("INSERT INTO once VALUES (?)", require("mizan.core").getpid())
  local f = assert(io.open(%q, "w"))
  f:close()
  for _ = 1, 3000 do -- at most 30 s: only a broken spec waits that long
    local go = io.open(%q)
    if go then go:close() return end
    require("mizan.core").sleep(0.01)
  end
  error("never told to go on")
end
]]):format(dir .. "/holding", dir .. "/go"))
  local outs, pids = {}, {}
  local function start(i)
    outs[i] = dir .. "/out" .. i
    pids[i] = assert(kit.spawn({ exe, "migrate", dir }, env, outs[i], outs[i] .. ".err"))
  end
  start(1)
  assert.is_true(h.wait_until(function() return io.open(dir .. "/holding") ~= nil end, 20), "the first holds the lock")
  start(2)
  assert.is_true(h.wait_until(function()
    local f = io.open(outs[2])
    local text = f and f:read("*a") or ""
    if f then f:close() end
    return text:find("applying 0001_once", 1, true) ~= nil
  end, 20), "the second found 0001_once pending and went for the lock")
  h.write(dir .. "/go", "")
  local texts = {}
  for i = 1, 2 do
    local code = kit.wait(pids[i], 30)
    texts[i] = h.read(outs[i]) .. h.read(outs[i] .. ".err")
    assert.equals(0, code, texts[i])
  end
  assert.matches("applied 0001_once\n", texts[1], 1, true)
  assert.matches("0001_once was applied by another process meanwhile\n", texts[2], 1, true)
  assert.equals("1\n1", count_sql("SELECT count(*) FROM once; SELECT count(*) FROM mizan_migrations WHERE id = '0001';"))
end

describe("mizan migrate", function()
  it("lists what is pending, applies it in order, then has nothing to apply", function()
    local dir, env = app(), { MIZAN_DATABASE = fresh_db() }
    local out, code = mizan(env, "migrate --status " .. dir)
    assert.equals(0, code, out)
    assert.matches("pending%s+mizan/0001_users\n", out)
    assert.matches("pending%s+0001_things\n", out)
    assert.matches("0 applied, 5 pending", out, 1, true)
    out, code = mizan(env, "migrate " .. dir)
    assert.equals(0, code, out)
    assert.matches("applied mizan/0001_users\napplying mizan/0002_sessions\n", out, 1, true)
    assert.matches("\napplied 0001_things$", out)
    out, code = mizan(env, "migrate --status " .. dir)
    assert.equals(0, code, out)
    assert.matches("applied%s+%d%d%d%d%-%d%d%-%d%dT[%d:]+Z%s+0001_things\n", out)
    assert.matches("5 applied, 0 pending", out, 1, true)
    out, code = mizan(env, "migrate " .. dir)
    assert.equals(0, code, out)
    assert.equals("nothing to apply: every migration is applied", out)
  end)

  it("writes the next numbered file with new NAME (.sql, or .lua with --lua), and applies them", function()
    local dir, env = app { ["0007_later.sql"] = "SELECT 1;" }, { MIZAN_DATABASE = fresh_db() }
    local out, code = mizan(env, "migrate new add_color " .. dir)
    assert.equals(0, code, out)
    assert.equals(("created %s/migrations/0008_add_color.sql"):format(dir), out)
    assert.matches("^%-%- add_color: runs once", h.read(dir .. "/migrations/0008_add_color.sql"))
    out, code = mizan(env, "migrate new --lua seed " .. dir)
    assert.equals(0, code, out)
    assert.equals(("created %s/migrations/0009_seed.lua"):format(dir), out)
    assert.matches("\nreturn function%(db%)\nend\n$", h.read(dir .. "/migrations/0009_seed.lua"))
    out, code = mizan(env, "migrate " .. dir)
    assert.equals(0, code, out)
    assert.matches("applied 0008_add_color\napplying 0009_seed\napplied 0009_seed$", out)
    -- in the current folder when no APP is given
    out, code = h.run(("cd %q && %q migrate new third"):format(dir, exe))
    assert.equals(0, code, out)
    assert.equals("created ./migrations/0010_third.sql", out)
  end)

  it("prints its help (mizan help migrate, --help), and refuses bad arguments with exit 2", function()
    for _, args in ipairs { "help migrate", "migrate --help", "migrate -h" } do
      local out, code = h.run(("%q %s"):format(exe, args))
      assert.equals(0, code, out)
      assert.matches("mizan migrate new NAME [APP] [--lua]", out, 1, true)
    end
    local out = h.run(("%q help"):format(exe))
    assert.matches("mizan migrate [APP]", out, 1, true)
    local dir = app()
    for args, msg in pairs {
      ["migrate --bogus " .. dir] = "unknown option '--bogus'",
      ["migrate new"] = "new needs a NAME",
      ["migrate new bad-name " .. dir] = "'bad-name' is no migration name: use letters, digits and _",
      ["migrate new x " .. dir .. " extra"] = "too many arguments",
      ["migrate " .. dir .. " extra"] = "too many arguments (did you mean `mizan migrate new extra`?)",
      ["migrate --lua " .. dir] = "--lua goes with `new NAME`",
      ["migrate --status new x " .. dir] = "--status and new do not go together",
    } do
      local text, code = h.run(("%q %s"):format(exe, args))
      assert.equals(2, code, args .. ": " .. text)
      assert.matches("mizan migrate: " .. msg, text, 1, true)
      assert.matches("usage:", text, 1, true)
    end
    local text, code = h.run(("%q migrate /nonexistent/app"):format(exe))
    assert.equals(1, code, text)
    assert.matches("mizan migrate: no app.lua in /nonexistent/app", text, 1, true)
  end)

  it("stops at a failing migration with exit 1, naming the file and the error; it stays pending", function()
    local dir = app { ["0002_broken.sql"] = "INSERT INTO things VALUES (2, 'lost');\nINSERT INTO nowhere VALUES (1);" }
    local env = { MIZAN_DATABASE = fresh_db() }
    local out, code = mizan(env, "migrate " .. dir)
    assert.equals(1, code, out)
    assert.matches("applied 0001_things\n", out, 1, true)
    assert.matches("mizan migrate: migrations/0002_broken.sql failed and was rolled back: statement 2 (line 2): "
      .. "no such table: nowhere", out, 1, true)
    out = mizan(env, "migrate --status " .. dir)
    assert.matches("pending%s+0002_broken", out)
    -- a file that does not fit refuses everything, naming it
    h.write(dir .. "/migrations/0003_oops.txt", "")
    out, code = mizan(env, "migrate --status " .. dir)
    assert.equals(1, code, out)
    assert.matches("migrations/0003_oops.txt: a migration is named NNNN_name.sql or NNNN_name.lua", out, 1, true)
  end)

  it("applies each migration once when two processes migrate one database at the same moment", function()
    local database = fresh_db()
    race(database, function(sql)
      local file = os.tmpname()
      h.write(file, sql)
      local out = h.run(("sqlite3 %q < %q"):format(database:sub(8), file))
      os.remove(file)
      return out
    end)
  end)
end)

describe("mizan serve with pending migrations", function()
  it("refuses to start, naming them and how to apply them; starts once they are applied", function()
    local dir, db = app(), fresh_db()
    local env = { MIZAN_DATABASE = db, MIZAN_SECRET = "spec-secret", MIZAN_LISTEN = "127.0.0.1:0", MIZAN_WORKERS = "1" }
    local out, code = mizan(env, "serve " .. dir)
    assert.equals(1, code, out)
    assert.matches(("mizan: refusing to start: 5 migrations are pending (mizan/0001_users, mizan/0002_sessions, "
      .. "mizan/0003_login_attempts, mizan/0004_jobs, 0001_things): apply them with `mizan migrate %s`, or set MIZAN_MIGRATE=auto "
      .. "to apply them at start"):format(dir), out, 1, true)
    assert.equals(0, select(2, mizan({ MIZAN_DATABASE = db }, "migrate " .. dir)))
    local srv = testing.server(dir, { command = "serve", env = { MIZAN_DATABASE = db, MIZAN_MIGRATE = "check" } })
    assert.same({ "first" }, things(srv))
    srv:stop()
  end)

  it("applies them at start with MIZAN_MIGRATE=auto, once for all workers", function()
    local dir = app()
    local srv = testing.server(dir, { command = "serve", env = { MIZAN_MIGRATE = "auto", MIZAN_WORKERS = "2" } })
    assert.same({ "first" }, things(srv))
    local _, n = srv:log():gsub("applied migration 0001_things", "")
    assert.equals(1, n, srv:log())
    srv:stop()
  end)

  it("refuses a bad MIZAN_MIGRATE", function()
    local out, code = mizan({ MIZAN_DATABASE = fresh_db(), MIZAN_SECRET = "s", MIZAN_MIGRATE = "yes" }, "serve " .. app())
    assert.equals(1, code, out)
    assert.matches([[MIZAN_MIGRATE must be "check" or "auto", got 'yes']], out, 1, true)
  end)

  it("is what mizan users says too, on a database not migrated yet", function()
    local dir, db = app(), fresh_db()
    local out, code = mizan({ MIZAN_DATABASE = db, MIZAN_PASSWORD = "long enough" }, "users create ann --app " .. dir)
    assert.equals(1, code, out)
    assert.matches("mizan users: 5 migrations are pending", out, 1, true)
    mizan({ MIZAN_DATABASE = db }, "migrate " .. dir)
    out, code = mizan({ MIZAN_DATABASE = db, MIZAN_PASSWORD = "long enough" }, "users create ann --app " .. dir)
    assert.equals(0, code, out)
  end)
end)

describe("mizan dev and migrations", function()
  it("applies them on start, and on save; a failing one is shown while the old code keeps serving", function()
    local dir = app()
    local srv = testing.server(dir, { env = { MIZAN_MIGRATE = "check" } }) -- dev applies whatever this says
    assert.same({ "first" }, things(srv))
    assert.matches("applied migration 0001_things", srv:log(), 1, true)

    h.write(dir .. "/migrations/0002_second.sql", "INSERT INTO things VALUES (2, 'second');")
    assert.is_true(h.wait_until(function() return #(things(srv) or {}) == 2 end), "0002 applied on save")

    h.write(dir .. "/migrations/0003_bad.sql", "INSERT INTO things VALUES (3, 'third');\nINSERT INTO nowhere VALUES (1);")
    assert.is_true(h.wait_until(function() return srv:log():find("reload failed", 1, true) ~= nil end), "shown")
    assert.matches("migrations/0003_bad.sql failed and was rolled back: statement 2 (line 2): no such table: nowhere",
      srv:log(), 1, true)
    assert.same({ "first", "second" }, things(srv), "the old code keeps serving, 0003 rolled back")

    -- the fix is saved over it (never applied, so it may change)
    h.write(dir .. "/migrations/0003_bad.sql", "INSERT INTO things VALUES (3, 'third');")
    assert.is_true(h.wait_until(function() return #(things(srv) or {}) == 3 end), "the fixed 0003 applied")
    srv:stop()
  end)

  it("starts with a failing migration shown in the log and in every 500, until a save fixes it", function()
    local dir = app_dir()
    lfs.mkdir(dir .. "/migrations")
    h.write(dir .. "/migrations/0001_things.sql", "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nnot sql;")
    local srv = testing.server(dir)
    assert.matches("the migrations failed", srv:log(), 1, true)
    local _, res = things(srv)
    local err = h.assert_error(res, 500, "internal_error")
    assert.matches("migrations/0001_things.sql failed and was rolled back", err.message, 1, true)
    h.write(dir .. "/migrations/0001_things.sql", THINGS)
    assert.is_true(h.wait_until(function() return (things(srv) or {})[1] == "first" end), "applied after the fix")
    srv:stop()
  end)
end)

describe("a built executable", function()
  it("carries the app's migrations: FILE migrate [--status], and FILE serve refuses pending ones", function()
    local dir = app { ["0002_by_lua.lua"] = [[return function(db) db.exec("INSERT INTO things VALUES (2, 'lua')") end]] }
    local file = dir .. ".exe"
    local out, code = h.run(("%q build %q -o %q"):format(exe, dir, file))
    assert.equals(0, code, out)
    assert.matches("kept     migrations/0001_things.sql", out, 1, true)
    os.remove(dir .. "/migrations/0001_things.sql") -- inside the executable, not read from the folder
    local env = { MIZAN_DATABASE = fresh_db() }
    out = h.run(("env MIZAN_DATABASE=%q %q migrate --status"):format(env.MIZAN_DATABASE, file))
    assert.matches("pending%s+0001_things\npending%s+0002_by_lua\n", out)
    out, code = h.run(("env MIZAN_DATABASE=%q MIZAN_SECRET=s MIZAN_LISTEN=127.0.0.1:0 %q serve"):format(env.MIZAN_DATABASE, file))
    assert.equals(1, code, out)
    assert.matches("apply them with this executable's `migrate` command", out, 1, true)
    out, code = h.run(("env MIZAN_DATABASE=%q %q migrate new x"):format(env.MIZAN_DATABASE, file))
    assert.equals(1, code, out)
    assert.matches("a built executable carries its migrations", out, 1, true)
    out, code = h.run(("env MIZAN_DATABASE=%q %q migrate"):format(env.MIZAN_DATABASE, file))
    assert.equals(0, code, out)
    local srv = testing.server("", { exe = file, command = "serve", args = {},
                                     env = { MIZAN_DATABASE = env.MIZAN_DATABASE, MIZAN_MIGRATE = "check" } })
    assert.same({ "first", "lua" }, things(srv))
    srv:stop()
    os.remove(file)
  end)
end)

describe("on a real Postgres", function()
  local pg, n = nil, 0
  setup(function() pg = require("postgres").start() end)
  teardown(function() if pg then pg.stop() end end)

  local function database()
    n = n + 1
    local name = "migrate_e2e_" .. n
    pg.psql(("CREATE DATABASE %s OWNER %s"):format(name, pg.user))
    return (pg.url:gsub("/" .. pg.database .. "$", "/" .. name)), name
  end

  it("applies each migration once when two processes migrate one database at the same moment", function()
    local url, name = database()
    race(url, function(sql) return pg.psql(sql, name) end)
  end)

  it("serve refuses pending migrations; with MIZAN_MIGRATE=auto the first instance applies them, the next finds none", function()
    local dir, url = app(), database()
    local out, code = mizan({ MIZAN_DATABASE = url, MIZAN_SECRET = "s", MIZAN_LISTEN = "127.0.0.1:0", MIZAN_WORKERS = "1" },
      "serve " .. dir)
    assert.equals(1, code, out)
    assert.matches("refusing to start: 5 migrations are pending", out, 1, true)
    local a = testing.server(dir, { command = "serve", env = { MIZAN_DATABASE = url, MIZAN_WORKERS = "1" } })
    local b = testing.server(dir, { command = "serve", env = { MIZAN_DATABASE = url, MIZAN_WORKERS = "1" } })
    assert.same({ "first" }, things(a))
    assert.same({ "first" }, things(b))
    assert.matches("applied migration 0001_things", a:log(), 1, true)
    assert.is_nil(b:log():find("applied migration", 1, true), b:log())
    a:stop()
    b:stop()
  end)

  it("dev applies a saved migration; a failing one rolls back on Postgres too", function()
    local dir, url = app(), database()
    local srv = testing.server(dir, { env = { MIZAN_DATABASE = url } })
    assert.same({ "first" }, things(srv))
    h.write(dir .. "/migrations/0002_bad.sql", "INSERT INTO things VALUES (2, 'half');\nINSERT INTO nowhere VALUES (1);")
    assert.is_true(h.wait_until(function() return srv:log():find("reload failed", 1, true) ~= nil end), "shown")
    assert.matches('migrations/0002_bad.sql failed and was rolled back: statement 2 (line 2): relation "nowhere" does not exist',
      srv:log(), 1, true)
    assert.same({ "first" }, things(srv))
    srv:stop()
  end)
end)

