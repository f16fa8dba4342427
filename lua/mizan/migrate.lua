-- mizan.migrate: the schema of an app's database, as numbered migrations.
--
-- Two series, in this order: the framework's own tables ("mizan/0001_users",
-- lua/mizan/migrations_builtin.lua), then the app's `migrations/` folder:
--   NNNN_name.sql   statements separated by `;` (mizan.sqlsplit)
--   NNNN_name.lua   returns function(db) ... end
-- NNNN is a number of at least four digits, name is letters, digits and _.
--
-- Each pending migration runs in a transaction of its own, and is recorded
-- in that same transaction in mizan_migrations (id, name, checksum,
-- applied_at): it is applied whole or not at all. A failure rolls it back,
-- names the file and the database's error, and stops there.
--
-- Several processes may start at once (workers, instances): each
-- migration's transaction takes a lock first (SQLite: BEGIN IMMEDIATE;
-- Postgres: pg_try_advisory_xact_lock, tried until it is free), then looks
-- again whether another process recorded it meanwhile. So each migration
-- runs once.
--
-- Refused, naming the file: a name that is not NNNN_name.sql|lua, two files
-- with one number, a .lua file that does not return a function, a recorded
-- migration whose file is gone, and a recorded migration whose file changed
-- since (its checksum). A changed file is an error, not a warning: the
-- database holds what the old text did, and nothing would ever run the new
-- one. Undo the edit, or put the change in a new migration.
--
-- Misuse raises; a database that fails returns nil, err. Everything here
-- reaches the database, so it runs in a task (core.run outside a request).
local core = require "mizan.core"
local crypto = require "mizan.crypto"
local db = require "mizan.db"
local sqlsplit = require "mizan.sqlsplit"

local M = {}

M.TABLE = "mizan_migrations"
-- The Postgres advisory lock every migrating process takes (any constant
-- works, as long as it is this one everywhere).
local PG_LOCK = 7235501403
-- The checksum: HMAC-SHA256 of the text under a fixed key (the one hash
-- the crypto module has); the key is constant, so it is a plain digest.
local SUM_KEY = "mizan.migrate"
-- How long a process waits for another one's migration to finish (SQLite:
-- BEGIN IMMEDIATE answers "busy" once its own 5 s wait is over, and is
-- begun again; Postgres: the advisory lock is tried again). A long data
-- migration is normal.
M.WAIT = 600

local function engine() return db.engine() end

local function checksum(text) return crypto.hmac_sha256_hex(SUM_KEY, text) end

---------------------------------------------------------------- discovery

-- A Lua migration's function, or raise naming the file.
local function lua_migration(file, text)
  local chunk, err = loadstring(text, "@" .. file)
  if not chunk then error(err, 0) end
  local ok, fn = pcall(chunk)
  if not ok then error(("%s failed to load: %s"):format(file, tostring(fn)), 0) end
  if type(fn) ~= "function" then
    error(("%s must return a function(db) ... end (it returned %s)"):format(file, type(fn)), 0)
  end
  return fn
end

-- The built-in series for this engine.
local function builtins()
  local eng, out = engine(), {}
  for _, b in ipairs(require "mizan.migrations_builtin") do
    local text = assert(b[eng], eng)
    local id = ("mizan/%04d"):format(b.number)
    out[#out + 1] = { id = id, name = b.name, label = id .. "_" .. b.name, file = "(built in) " .. id .. "_" .. b.name,
                      kind = "sql", text = text, checksum = checksum(text) }
  end
  return out
end

-- { [file name] = text } of an app's migrations/ (nil when there is none).
local function read_folder(app)
  if app.embedded then
    local files, out = require("mizan.bundle").files() or {}, nil
    for path, text in pairs(files) do
      local name = path:match("^migrations/([^/]+)$")
      if name then
        out = out or {}
        out[name] = text
      end
    end
    return out
  end
  local dir = app.dir .. "/migrations"
  local entries = core.listdir(dir)
  if not entries then return nil end
  local out = {}
  for _, e in ipairs(entries) do
    if e.name:sub(1, 1) ~= "." then -- editors' swap and lock files
      if e.dir then error(("%s/%s: migrations/ holds files only"):format(dir, e.name), 0) end
      local f = assert(io.open(dir .. "/" .. e.name, "rb"))
      out[e.name] = f:read("*a")
      f:close()
    end
  end
  return out
end

--- The app's migrations in order: { id, name, label, file, kind, text,
-- checksum, fn? }. `app` is { dir = folder } or { embedded = true }.
-- Raises, naming the file, on a bad name, a duplicate number, or a Lua file
-- that does not return a function.
function M.discover(app)
  local files = read_folder(app)
  local list, by_number = {}, {}
  for name, text in pairs(files or {}) do
    local file = "migrations/" .. name
    local digits, base, ext = name:match("^(%d%d%d%d+)_([%w_]+)%.(%a+)$")
    if not digits or (ext ~= "sql" and ext ~= "lua") then
      error(("%s: a migration is named NNNN_name.sql or NNNN_name.lua (NNNN: four digits or more; "
        .. "name: letters, digits and _)"):format(file), 0)
    end
    local number = tonumber(digits)
    if by_number[number] then
      local a, b = by_number[number].file, file
      if a > b then a, b = b, a end
      error(("%s and %s have the same number: give each migration a number of its own"):format(a, b), 0)
    end
    local id = ("%04d"):format(number)
    local m = { id = id, number = number, name = base, label = id .. "_" .. base, file = file, kind = ext,
                text = text, checksum = checksum(text) }
    if ext == "lua" then m.fn = lua_migration(file, text) end
    by_number[number] = m
    list[#list + 1] = m
  end
  table.sort(list, function(a, b) return a.number < b.number end)
  return list
end

--- Every migration, built-ins first. Raises as discover does.
function M.all(app)
  local list = builtins()
  for _, m in ipairs(M.discover(app)) do list[#list + 1] = m end
  return list
end

---------------------------------------------------------------- the record

local function table_exists()
  local sql = engine() == "postgres"
    and "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()"
    or "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?"
  local rows, err = db.query(sql, M.TABLE)
  if not rows then return nil, err end
  return tonumber(rows[1].n) > 0
end

-- { [id] = { id, name, checksum, applied_at } } of what the database
-- recorded ({} before any migration ran), or nil, err.
local function recorded()
  local exists, err = table_exists()
  if exists == nil then return nil, err end
  if not exists then return {} end
  local rows, qerr = db.query("SELECT id, name, checksum, applied_at FROM " .. M.TABLE .. " ORDER BY id")
  if not rows then return nil, qerr end
  local out = {}
  for _, r in ipairs(rows) do out[r.id] = r end
  return out
end

-- The problems of a recorded history against the files: a list of lines.
local function mismatches(list, rec)
  local known, problems = {}, {}
  for _, m in ipairs(list) do
    known[m.id] = true
    local r = rec[m.id]
    if r and r.checksum ~= m.checksum then
      problems[#problems + 1] = ("%s changed after it was applied (on %s): undo the edit, or put the change "
        .. "in a new migration"):format(m.file, tostring(r.applied_at))
    end
  end
  local gone = {}
  for id, r in pairs(rec) do
    if not known[id] then gone[#gone + 1] = r end
  end
  table.sort(gone, function(a, b) return a.id < b.id end)
  for _, r in ipairs(gone) do
    local where = r.id:find("^mizan/") and "in this version of Mizan" or "in migrations/"
    problems[#problems + 1] = ("%s_%s was applied (on %s) but is no longer %s: restore its file"):format(
      r.id, r.name, tostring(r.applied_at), where)
  end
  return problems
end

--- Where the database stands: { list = all migrations, applied = { [id] =
-- record }, pending = list }, or nil, err (a database failure, or the
-- history does not match the files). Raises as discover does.
function M.status(app)
  local list = M.all(app)
  local rec, err = recorded()
  if not rec then return nil, "cannot read the migrations' record: " .. tostring(err) end
  local problems = mismatches(list, rec)
  if #problems > 0 then return nil, table.concat(problems, "\n") end
  local pending = {}
  for _, m in ipairs(list) do
    if not rec[m.id] then pending[#pending + 1] = m end
  end
  return { list = list, applied = rec, pending = pending }
end

---------------------------------------------------------------- applying

-- A raised failure inside a migration's transaction: the text to report.
local Failed = {}
local function fail(msg) error(setmetatable({ msg = msg }, Failed), 0) end

-- Postgres: the advisory lock, held until this transaction ends. Tried
-- rather than waited for, so that a long migration in another process is
-- waited out for M.WAIT seconds, not cut short by the statement timeout.
-- SQLite: BEGIN IMMEDIATE already holds the write lock.
local function lock()
  if engine() ~= "postgres" then return end
  local deadline = core.monotonic() + M.WAIT
  while true do
    local row, err = db.row("SELECT pg_try_advisory_xact_lock(" .. PG_LOCK .. ") AS locked")
    if not row then fail("cannot take the migration lock: " .. tostring(err)) end
    if row.locked == true then return end
    if core.monotonic() > deadline then
      fail(("another process held the migration lock for more than %d s"):format(M.WAIT))
    end
    core.sleep(0.05)
  end
end

-- What a Lua migration gets as `db`: mizan.db whose calls raise on failure
-- (a migration that ignored an error would be recorded as applied).
local strict = {
  engine = engine,
  exec = function(...)
    local r, err = db.exec(...)
    if not r then error(err, 2) end
    return r
  end,
  query = function(...)
    local r, err = db.query(...)
    if not r then error(err, 2) end
    return r
  end,
  row = function(...)
    local r, err = db.query(...)
    if not r then error(err, 2) end
    return r[1]
  end,
  transaction = function(fn) return db.transaction(fn) end, -- a SAVEPOINT inside the migration's own
}

local function run_one(m)
  if m.kind == "lua" then
    local ok, err = pcall(m.fn, strict)
    if not ok then fail(tostring(err)) end
    return
  end
  local stmts, err = sqlsplit.split(m.text, engine())
  if not stmts then fail(err) end
  for i, s in ipairs(stmts) do
    local _, serr = db.exec(s.sql)
    if serr then fail(("statement %d (line %d): %s"):format(i, s.line, tostring(serr))) end
  end
end

local function now_iso() return os.date("!%Y-%m-%dT%H:%M:%SZ") end


-- db.transaction(fn), begun again while the database says another process
-- holds the write lock (nothing ran then: BEGIN or COMMIT failed, and a
-- failed COMMIT rolled back). Returns what pcall(db.transaction, fn) does.
local function locked_transaction(fn)
  local deadline = core.monotonic() + M.WAIT
  while true do
    local res = { pcall(db.transaction, fn) }
    local busy = res[1] and res[2] == nil and (res[4] == "busy" or res[4] == "locked")
    if not busy or core.monotonic() > deadline then return unpack(res, 1, 4) end
    core.sleep(0.05)
  end
end

-- One migration in its transaction: "applied" | "skipped" (another process
-- did it first), or nil, err.
local function apply_one(m)
  local ok, res, err = locked_transaction(function()
    lock()
    local r, rerr = db.query("SELECT checksum FROM " .. M.TABLE .. " WHERE id = ?", m.id)
    if not r then fail(tostring(rerr)) end
    if r[1] then
      if r[1].checksum ~= m.checksum then fail("it changed after it was applied; undo the edit, or write a new migration") end
      return "skipped"
    end
    run_one(m)
    local _, ierr = db.exec("INSERT INTO " .. M.TABLE .. " (id, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                            m.id, m.name, m.checksum, now_iso())
    if ierr then fail("cannot record it: " .. tostring(ierr)) end
    return "applied"
  end)
  if not ok then
    local msg = getmetatable(res) == Failed and res.msg or tostring(res)
    return nil, ("%s failed and was rolled back: %s"):format(m.file, msg)
  end
  if res == nil then return nil, ("%s was not applied: %s"):format(m.file, tostring(err)) end
  return res
end

local function ensure_table()
  local exists, eerr = table_exists()
  if exists then return true end
  if exists == nil then return nil, tostring(eerr) end
  local ok, res, err = locked_transaction(function()
    lock()
    local _, cerr = db.exec("CREATE TABLE IF NOT EXISTS " .. M.TABLE .. " (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
      .. "checksum TEXT NOT NULL, applied_at TEXT NOT NULL)")
    if cerr then fail(tostring(cerr)) end
    return true
  end)
  if not ok then return nil, getmetatable(res) == Failed and res.msg or tostring(res) end
  if res == nil then return nil, tostring(err) end
  return true
end

--- Apply every pending migration, in order. `say(label, event)` (optional)
-- hears "applying" before each one takes the lock, then "applied", or
-- "skipped" when another process applied it meanwhile. Returns the labels
-- this process applied, or nil, err and those applied before the failure.
function M.apply(app, say)
  local st, err = M.status(app)
  if not st then return nil, err, {} end
  local done = {}
  if #st.pending == 0 then return done end
  local ok, terr = ensure_table()
  if not ok then return nil, "cannot create " .. M.TABLE .. ": " .. terr, done end
  for _, m in ipairs(st.pending) do
    if say then say(m.label, "applying") end
    local res, aerr = apply_one(m)
    if not res then return nil, aerr, done end
    if res == "applied" then done[#done + 1] = m.label end
    if say then say(m.label, res) end
  end
  return done
end

--- The `app` argument of the functions above, for a loaded configuration.
function M.app_of(cfg)
  if cfg.embedded then return { embedded = true } end
  return { dir = cfg.app_dir }
end

--- The sentence serve and the CLI say about pending migrations.
function M.pending_message(pending, cfg)
  local names = {}
  for i, m in ipairs(pending) do names[i] = m.label end
  local how = cfg.embedded and "this executable's `migrate` command" or ("`mizan migrate %s`"):format(cfg.app_dir)
  return ("%d migration%s pending (%s): apply %s with %s, or set MIZAN_MIGRATE=auto to apply them at start")
    :format(#pending, #pending == 1 and " is" or "s are", table.concat(names, ", "), #pending == 1 and "it" or "them", how)
end

return M
