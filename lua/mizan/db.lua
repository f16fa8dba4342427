-- mizan.db: a small SQLite API for apps.
--
--   local db = require("mizan").db
--   local rows = db.query("SELECT * FROM todos WHERE owner = ?", req.user.id)
--   local r = db.exec("INSERT INTO todos (title) VALUES (?)", args.title)   -- r.last_insert_id
--   db.transaction(function() ... end)
--
-- Statements run on the libuv thread pool (core/sqlite.c) while the calling
-- request's coroutine yields, so a query never stalls other requests.
-- Values are bound to `?` placeholders, never spliced into the SQL. NULL is
-- mizan.null. Failures return nil, err, kind (kind: "busy", "locked",
-- "readonly", "ioerr", "cantopen", "full", "gone", "constraint", ...); a
-- transaction re-raises after its rollback. db.check turns a failure into
-- the protocol error a client may see: never SQLite's own text.
--
-- A database file removed or replaced while serving ("gone") is logged, and
-- every write fails from then on instead of landing in an unlinked file.
local sqlite = require "mizan.sqlite"
local core = require "mizan.core"
local errors = require "mizan.errors"

local M = {}

local path, handle
-- One connection per process; statements take turns on it, and a
-- transaction keeps it for its whole body.
local lock = { owner = nil, depth = 0, waiters = {} }

--- Point the module at a database file (from MIZAN_DATABASE=sqlite:path).
-- It is opened on first use.
function M.configure(p)
  if p ~= path then
    path, handle = p, nil
  end
end

local gone_logged = false

function M.path() return path end

-- The connection, or nil, err, kind when the file cannot be opened.
local function conn()
  if not handle then
    if not path then error("mizan.db: no database configured", 3) end
    local h, err, kind = sqlite.open(path)
    if not h then return nil, "mizan.db: " .. err, kind end
    handle = h
  end
  return handle
end

local function acquire()
  local me = core.current_task()
  if lock.owner == me then
    lock.depth = lock.depth + 1
  elseif lock.owner then
    lock.waiters[#lock.waiters + 1] = me
    core.suspend() -- release() hands the lock over before waking us
  else
    lock.owner, lock.depth = me, 1
  end
end

local function release()
  lock.depth = lock.depth - 1
  if lock.depth > 0 then return end
  local nxt = table.remove(lock.waiters, 1)
  lock.owner = nxt
  if nxt then
    lock.depth = 1
    core.wakeup(nxt)
  end
end

local function run(sql, want_rows, ...)
  if type(sql) ~= "string" then error("mizan.db: the statement must be a string", 3) end
  local h, herr, hkind = conn()
  if not h then return nil, herr, hkind end
  acquire()
  local ok, res, err, kind = pcall(sqlite.run, h, sql, { n = select("#", ...), ... }, want_rows)
  release()
  if not ok then error(res, 3) end -- misuse: a bad parameter type, outside a request
  if kind == "gone" and not gone_logged then
    gone_logged = true
    core.log("error", ("mizan.db: the database file %s was removed or replaced while serving; "
      .. "every write fails until the server restarts on a database file that is there"):format(path))
  end
  return res, err, kind
end

--- Rows of a SELECT: a list of tables keyed by column name. nil, err on failure.
function M.query(sql, ...) return run(sql, true, ...) end

--- The first row, or nil.
function M.row(sql, ...)
  local rows, err = run(sql, true, ...)
  if not rows then return nil, err end
  return rows[1]
end

--- Run a statement: { changes = n, last_insert_id = id }, or nil, err.
function M.exec(sql, ...) return run(sql, false, ...) end

--- Run fn() inside BEGIN IMMEDIATE ... COMMIT; on an error, ROLLBACK and
-- re-raise it. Other requests' statements wait until it ends.
function M.transaction(fn)
  local h, herr, hkind = conn()
  if not h then return nil, herr, hkind end
  acquire()
  local _, err, kind = M.exec("BEGIN IMMEDIATE")
  if err then
    release()
    return nil, err, kind
  end
  local results = { pcall(fn) }
  if results[1] then
    local _, cerr, ckind = M.exec("COMMIT")
    if cerr then
      M.exec("ROLLBACK")
      release()
      return nil, cerr, ckind
    end
  else
    M.exec("ROLLBACK")
  end
  release()
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, table.maxn(results))
end

-- Failures that mean "the database cannot serve right now": 503, retryable.
local UNAVAILABLE = { busy = true, locked = true, readonly = true, ioerr = true, cantopen = true,
                      full = true, gone = true, nomem = true }

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

--- At start-up (on the loop, before requests): can the database be read,
-- and written? "rw" | "ro", or nil, err, kind.
function M.probe()
  local h, err, kind = conn()
  if not h then return nil, err, kind end
  return sqlite.probe(h)
end

return M
