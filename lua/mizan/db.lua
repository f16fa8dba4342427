-- mizan.db: one database API for apps, on SQLite or Postgres.
--
--   local db = require("mizan").db
--   local rows = db.query("SELECT * FROM todos WHERE owner = ?", req.user.id)
--   local r = db.exec("UPDATE todos SET done = ? WHERE id = ?", true, id)   -- r.changes
--   local t = db.row("INSERT INTO todos (title) VALUES (?) RETURNING id", args.title)
--   db.transaction(function() ... end)
--
-- MIZAN_DATABASE (or mizan.config { database = ... }) picks the engine:
--   sqlite:path/to/file.db           SQLite on the libuv thread pool (lua/mizan/db/sqlite.lua)
--   postgres://user:pass@host:port/db[?host=/socket/dir&sslmode=...]   (also postgresql://)
--                                    Postgres on the loop (lua/mizan/db/postgres.lua)
-- A statement never stalls other requests: the calling request's coroutine
-- yields. Values are bound to `?` placeholders, never spliced into the SQL
-- (on Postgres `?` becomes `$n`, outside literals, identifiers and comments).
-- NULL is mizan.null. exec returns { changes = n }, plus last_insert_id on
-- SQLite; on Postgres use INSERT ... RETURNING with row/query.
-- Failures return nil, err, kind (and on Postgres the SQLSTATE fourth, e.g.
-- "23505"); a transaction re-raises after its rollback, and a transaction
-- inside another is a SAVEPOINT. db.check turns a failure into the protocol
-- error a client may see: never the database's own text.
local core = require "mizan.core"
local errors = require "mizan.errors"

local M = {}

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Parse a database URL: { engine = "sqlite", path } or { engine =
-- "postgres", user, password, host, port, dbname, params = { k = v } },
-- or nil, err.
function M.parse(url)
  if type(url) ~= "string" then return nil, "the database must be a string" end
  local path = url:match("^sqlite:(.+)$")
  if path then return { engine = "sqlite", path = path, url = url } end
  local rest = url:match("^postgres://(.*)$") or url:match("^postgresql://(.*)$")
  if not rest then return nil, "expected sqlite:path or postgres://user:pass@host:port/db" end
  local t = { engine = "postgres", url = url, params = {} }
  local query
  rest, query = rest:match("^([^?]*)%??(.*)$")
  local auth, hostport, dbname = rest:match("^([^@/]*)@([^/]*)/?(.*)$")
  if not auth then hostport, dbname = rest:match("^([^/]*)/?(.*)$") end
  if auth then
    local u, p = auth:match("^([^:]*):(.*)$")
    t.user, t.password = unescape(u or auth), p and unescape(p)
  end
  if hostport ~= "" then
    local h, port = hostport:match("^%[(.-)%]:?(%d*)$") -- [::1]:5432
    if not h then h, port = hostport:match("^([^:]*):?(%d*)$") end
    if not h then return nil, "bad host:port in the database URL" end
    if h ~= "" then t.host = unescape(h) end
    if port ~= "" then t.port = port end
  end
  if dbname ~= "" then t.dbname = unescape(dbname) end
  for k, v in query:gmatch("([^&=]+)=?([^&]*)") do
    k, v = unescape(k), unescape(v)
    if k == "host" then t.host = v
    elseif k == "port" then t.port = v
    elseif k == "user" then t.user = v
    elseif k == "password" then t.password = v
    elseif k == "dbname" then t.dbname = v
    else t.params[k] = v end
  end
  if t.port and not t.port:find("^%d+$") then return nil, "bad port in the database URL" end
  return t
end

local target, engine
local ENGINES = { sqlite = "mizan.db.sqlite", postgres = "mizan.db.postgres" }

--- Point the module at a database: a URL as above, or (as before) a bare
-- SQLite path. Opened on first use; a new target closes the old engine.
-- cfg (optional): the loaded config, for db_pool and db_timeout.
function M.configure(url, cfg)
  if type(url) == "string" and not url:find("^%a+:") then url = "sqlite:" .. url end
  local pool, timeout = cfg and cfg.db_pool or 10, cfg and cfg.db_timeout or 30
  if target and target.url == url and target.pool == pool and target.timeout == timeout then return end
  local t = assert(M.parse(url))
  t.pool, t.timeout = pool, timeout
  if engine then engine:close() end
  target, engine = t, nil
end

--- "sqlite" | "postgres" (nil before configure).
function M.engine() return target and target.engine end

--- The SQLite file, or nil on Postgres.
function M.path() return target and target.path end

local function current()
  if not engine then
    if not target then error("mizan.db: no database configured", 4) end
    engine = require(ENGINES[target.engine]).new(target)
  end
  return engine
end

local function run(sql, want_rows, ...)
  if type(sql) ~= "string" then error("mizan.db: the statement must be a string", 3) end
  return current():run(sql, want_rows, { n = select("#", ...), ... })
end

--- Rows of a SELECT: a list of tables keyed by column name. nil, err on failure.
function M.query(sql, ...) return run(sql, true, ...) end

--- The first row, or nil.
function M.row(sql, ...)
  local rows, err, kind, state = run(sql, true, ...)
  if not rows then return nil, err, kind, state end
  return rows[1]
end

--- Run a statement: { changes = n [, last_insert_id = id on SQLite] }, or nil, err.
function M.exec(sql, ...) return run(sql, false, ...) end

-- The transaction logic both engines share: BEGIN (or, nested at `depth`,
-- a SAVEPOINT) around pcall(fn); COMMIT (RELEASE) when it returned, ROLLBACK
-- (ROLLBACK TO + RELEASE) when it raised. Returns pcall's results as a
-- list, or nil, err, kind, sqlstate when BEGIN or COMMIT failed.
local function wrap(exec, fn, depth, begin)
  local sp = depth and ("mizan_sp_%d"):format(depth)
  local _, err, kind, state = exec(sp and "SAVEPOINT " .. sp or begin)
  if err then return nil, err, kind, state end
  local results = { pcall(fn) }
  if results[1] then
    local _, cerr, ckind, cstate = exec(sp and "RELEASE SAVEPOINT " .. sp or "COMMIT")
    if cerr then
      if sp then
        exec("ROLLBACK TO SAVEPOINT " .. sp)
        exec("RELEASE SAVEPOINT " .. sp)
      else
        exec("ROLLBACK")
      end
      return nil, cerr, ckind, cstate
    end
  elseif sp then
    exec("ROLLBACK TO SAVEPOINT " .. sp)
    exec("RELEASE SAVEPOINT " .. sp)
  else
    exec("ROLLBACK")
  end
  return results
end

--- Run fn() inside BEGIN ... COMMIT (BEGIN IMMEDIATE on SQLite) on one
-- connection; on an error, ROLLBACK and re-raise it. A transaction inside
-- fn is a SAVEPOINT: its failure rolls back only its own part.
function M.transaction(fn)
  if type(fn) ~= "function" then error("mizan.db.transaction: expected a function", 2) end
  return current():transaction(fn, wrap)
end

-- Failures that mean "the database cannot serve right now": 503, retryable.
local UNAVAILABLE = { busy = true, locked = true, readonly = true, ioerr = true, cantopen = true,
                      full = true, gone = true, nomem = true, unavailable = true, timeout = true }

--- The protocol error for a failed statement: `unavailable` (503) when the
-- database cannot serve now, else `internal_error` (500); both with a
-- generic message. The real text goes to the log, tagged with `what`.
function M.failure(what, err, kind)
  core.log("error", ("%s: database error (%s): %s"):format(what, tostring(kind), tostring(err)))
  if UNAVAILABLE[kind] then
    return errors.raised("unavailable", "the database is unavailable right now; try again shortly")
  end
  return errors.raised("internal_error", "internal error")
end

--- check(what, db.exec(...)): the result, or raise db.failure's error.
function M.check(what, res, err, kind)
  if res then return res end
  error(M.failure(what, err, kind), 0)
end

--- Run a script of several statements with no parameters (a migration's
-- SQL): true, or nil, err, kind[, sqlstate]. Postgres only for now (the
-- simple query protocol); SQLite raises.
function M.script(sql)
  if type(sql) ~= "string" then error("mizan.db.script: the script must be a string", 2) end
  local e = current()
  if not e.script then error("mizan.db.script: not supported on " .. target.engine, 2) end
  return e:script(sql)
end

--- Where the data is, for messages: the SQLite path, or the Postgres URL
-- without its password.
function M.describe()
  if not target then return "(no database)" end
  if target.engine == "sqlite" then return target.path end
  return (target.url:gsub("^(%a+://[^:/@]*):[^@]*@", "%1:***@"):gsub("([?&]password=)[^&]*", "%1***"))
end

--- At start-up (before requests): can the database be read, and written?
-- "rw" | "ro", or nil, err, kind.
function M.probe() return current():probe() end

return M
