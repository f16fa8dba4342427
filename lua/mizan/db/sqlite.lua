-- mizan.db's SQLite engine: one connection per process (core/sqlite.c runs
-- each statement on the libuv thread pool while the task yields).
-- Statements take turns on the connection, and a transaction keeps it for
-- its whole body. The interface every engine has (lua/mizan/db.lua uses it):
--   E.new(target) -> engine      target: what db.parse returned
--   engine:run(sql, want_rows, params) -> rows | { changes, last_insert_id } | nil, err, kind
--   engine:transaction(fn, wrap) -> fn's results | nil, err, kind (fn's error re-raised after
--     ROLLBACK); wrap(run, fn, depth, begin) is db.lua's BEGIN/SAVEPOINT logic
--   engine:probe() -> "rw" | "ro" | nil, err, kind
--   engine:close()
local sqlite = require "mizan.sqlite"
local core = require "mizan.core"

local E = {}
E.__index = E

function E.new(target)
  return setmetatable({ path = target.path, handle = nil, gone_logged = false,
                        lock = { owner = nil, depth = 0, waiters = {} } }, E)
end

-- The connection, or nil, err, kind when the file cannot be opened.
function E:conn()
  if not self.handle then
    local h, err, kind = sqlite.open(self.path)
    if not h then return nil, "mizan.db: " .. err, kind end
    self.handle = h
  end
  return self.handle
end

function E:acquire()
  local lock, me = self.lock, core.current_task()
  if lock.owner == me then
    lock.depth = lock.depth + 1
  elseif lock.owner then
    lock.waiters[#lock.waiters + 1] = me
    core.suspend() -- release() hands the lock over before waking us
  else
    lock.owner, lock.depth = me, 1
  end
end

function E:release()
  local lock = self.lock
  lock.depth = lock.depth - 1
  if lock.depth > 0 then return end
  local nxt = table.remove(lock.waiters, 1)
  lock.owner = nxt
  if nxt then
    lock.depth = 1
    core.wakeup(nxt)
  end
end

function E:run(sql, want_rows, params)
  local h, herr, hkind = self:conn()
  if not h then return nil, herr, hkind end
  self:acquire()
  local ok, res, err, kind = pcall(sqlite.run, h, sql, params, want_rows)
  self:release()
  if not ok then error(res, 4) end -- misuse: a bad parameter type, outside a request
  if kind == "gone" and not self.gone_logged then
    self.gone_logged = true
    core.log("error", ("mizan.db: the database file %s was removed or replaced while serving; "
      .. "every write fails until the server restarts on a database file that is there"):format(self.path))
  end
  return res, err, kind
end

local NONE = { n = 0 }

--- BEGIN IMMEDIATE ... COMMIT around fn(); ROLLBACK and re-raise on an
-- error. Other requests' statements wait until it ends. A transaction
-- inside one is a SAVEPOINT of it (lua/mizan/db.lua's wrap()).
function E:transaction(fn, wrap)
  local h, herr, hkind = self:conn()
  if not h then return nil, herr, hkind end
  self:acquire()
  local function run(sql) return self:run(sql, false, NONE) end
  local results, err, kind = wrap(run, fn, self.lock.depth > 1 and self.lock.depth or nil, "BEGIN IMMEDIATE")
  self:release()
  if not results then return nil, err, kind end
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, table.maxn(results))
end

function E:probe()
  local h, err, kind = self:conn()
  if not h then return nil, err, kind end
  return sqlite.probe(h)
end

function E:close() self.handle = nil end

return E
