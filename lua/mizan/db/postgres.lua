-- mizan.db's Postgres engine: a pool of connections per worker on the loop
-- (core/pg.c). The interface is the one lua/mizan/db/sqlite.lua describes.
--
-- Pool: at most `pool` connections (MIZAN_DB_POOL), made when needed. A
-- statement takes an idle connection, or makes one while under the bound,
-- or waits for one (at most the timeout, MIZAN_DB_TIMEOUT). A transaction
-- keeps its connection (pinned to the task) until it ends. A connection
-- goes back to the pool only outside a transaction: one still inside
-- (the app ran BEGIN by hand, a COMMIT failed) is rolled back first, and
-- one that cannot be is closed. A connection the server dropped is closed
-- and replaced by a new one on the next need; while none can be made, calls
-- fail at once (kind "unavailable": 503) rather than wait.
--
-- Statements are prepared once per connection and reused by SQL text (at
-- most CACHE_MAX; then the connection's cache starts over with DEALLOCATE
-- ALL). `?` becomes `$n` outside literals, quoted identifiers and comments.
local pg = require "mizan.pg"
local core = require "mizan.core"

local E = {}
E.__index = E

local CACHE_MAX = 256
local NONE = { n = 0 }
-- after a failed connect, calls fail at once for this long instead of each
-- trying (and waiting on) a server that is down
local DOWN_SECONDS = 0.25

---------------------------------------------------------------- placeholders

local translated, ntranslated = {}, 0

--- `?` -> `$1`, `$2`, ... outside '...' and E'...' literals, "..."
-- identifiers, $tag$...$tag$ bodies, -- and /* */ comments. Returns the
-- SQL and the number of placeholders. (Postgres's own jsonb `?` operators
-- are placeholders here too: use jsonb_exists() and its kin instead.)
function E.translate(sql)
  local hit = translated[sql]
  if hit then return hit[1], hit[2] end
  local out, n, i, len = {}, 0, 1, #sql
  local start = 1
  while i <= len do
    local ch = sql:sub(i, i)
    if ch == "?" then
      n = n + 1
      out[#out + 1] = sql:sub(start, i - 1)
      out[#out + 1] = "$" .. n
      i = i + 1
      start = i
    elseif ch == "'" then
      -- E'...' takes backslash escapes; '' is a quote in every literal
      local escapes = i > 1 and sql:sub(i - 1, i - 1):lower() == "e"
        and not sql:sub(i - 2, i - 2):find("[%w_]")
      i = i + 1
      while i <= len do
        local c = sql:sub(i, i)
        if escapes and c == "\\" then
          i = i + 2
        elseif c == "'" then
          if sql:sub(i + 1, i + 1) == "'" then i = i + 2 else i = i + 1; break end
        else
          i = i + 1
        end
      end
    elseif ch == '"' then
      local close = sql:find('"', i + 1, true)
      while close and sql:sub(close + 1, close + 1) == '"' do close = sql:find('"', close + 2, true) end
      i = (close or len) + 1
    elseif ch == "-" and sql:sub(i + 1, i + 1) == "-" then
      i = (sql:find("\n", i + 2, true) or len) + 1
    elseif ch == "/" and sql:sub(i + 1, i + 1) == "*" then
      local depth = 1
      i = i + 2
      while i <= len and depth > 0 do
        local two = sql:sub(i, i + 1)
        if two == "/*" then depth, i = depth + 1, i + 2
        elseif two == "*/" then depth, i = depth - 1, i + 2
        else i = i + 1 end
      end
    elseif ch == "$" and (i == 1 or not sql:sub(i - 1, i - 1):find("[%w_]")) then
      local tag = sql:match("^%$([%a_][%w_]*)%$", i) or (sql:sub(i, i + 1) == "$$" and "")
      if tag then
        local delim = "$" .. tag .. "$"
        local close = sql:find(delim, i + #delim, true)
        i = close and close + #delim or len + 1
      else
        i = i + 1
      end
    else
      i = i + 1
    end
  end
  out[#out + 1] = sql:sub(start)
  local res = table.concat(out)
  if ntranslated >= 1000 then translated, ntranslated = {}, 0 end
  translated[sql], ntranslated = { res, n }, ntranslated + 1
  return res, n
end

---------------------------------------------------------------- errors

--- The engine-neutral kind of a failure, from the SQLSTATE and core/pg.c's
-- flag ("lost": the connection is gone; "timeout": cancelled at the timeout).
local function kind_of(state, flag)
  if flag == "lost" then return "unavailable" end
  if flag == "timeout" then return "timeout" end
  if not state then return "misuse" end -- refused before the server saw it
  local class = state:sub(1, 2)
  if class == "08" or class == "53" or state == "57P01" or state == "57P02" or state == "57P03" then
    return "unavailable"
  end
  if class == "23" then return "constraint" end
  if state == "40001" or state == "40P01" or state == "55P03" then return "busy" end
  if state == "57014" then return "timeout" end
  if state == "25006" then return "readonly" end
  return "error"
end
E.kind_of = kind_of

---------------------------------------------------------------- the pool

-- libpq's keywords from the parsed URL; the session settings that the
-- result typing in core/pg.c relies on (ISO dates in UTC, hex bytea).
local function keywords(t)
  local k = { client_encoding = "UTF8", application_name = "mizan", gssencmode = "disable",
              options = "-c DateStyle=ISO -c TimeZone=UTC -c bytea_output=hex -c IntervalStyle=iso_8601" }
  for key, v in pairs(t.params or {}) do k[key] = v end
  k.host, k.port, k.user, k.password, k.dbname = t.host, t.port, t.user, t.password, t.dbname
  return k
end

function E.new(target)
  return setmetatable({ keys = keywords(target), size = target.pool or 10, timeout = target.timeout or 30,
                        idle = {}, total = 0, waiters = {}, pinned = {}, down_until = 0 }, E)
end

-- A new connection record, or nil, err, kind, sqlstate.
function E:connect(seconds)
  local c, err, state, flag = pg.connect(self.keys, seconds)
  local ok = c
  if c then ok, err, state, flag = pg.ready(c) end
  if not ok then
    if c then pg.close(c) end
    self.down_until = core.monotonic() + DOWN_SECONDS
    core.log("warn", "mizan.db: cannot connect to postgres: " .. tostring(err):gsub("%s+$", ""))
    return nil, "postgres is unavailable: " .. tostring(err), kind_of(state, flag), state
  end
  self.down_until = 0
  return { c = c, stmts = {}, nstmts = 0, seq = 0 }
end

local function remove(list, x)
  for i = 1, #list do
    if list[i] == x then
      table.remove(list, i)
      return
    end
  end
end

-- Give a waiting task `value` (a connection, or false: "a place is free,
-- try again"). Returns whether one took it.
function E:hand(value)
  while #self.waiters > 0 do
    local w = table.remove(self.waiters, 1)
    if core.wake(w, value) then return true end
  end
  return false
end

--- A connection for the running task: its pinned one inside a transaction,
-- else one from the pool. Returns the record, or nil, err, kind, sqlstate.
function E:acquire()
  local me = core.current_task()
  local pinned = self.pinned[me]
  if pinned then return pinned end
  local deadline = core.monotonic() + self.timeout
  while true do
    local r = table.remove(self.idle)
    if r then
      if pg.status(r.c) == "idle" then return r end
      self:discard(r, true) -- the server dropped it while idle
    elseif self.total < self.size then
      if core.monotonic() < self.down_until then
        self:hand(false) -- and the next waiter fails fast too, rather than wait out its time
        return nil, "postgres is unavailable (a connection just failed)", "unavailable", "08001"
      end
      self.total = self.total + 1
      local rec, err, kind, state = self:connect(math.max(deadline - core.monotonic(), 0.001))
      if rec then return rec end
      self.total = self.total - 1
      self:hand(false) -- a waiter may try (and fail fast) itself
      return nil, err, kind, state
    else
      local left = deadline - core.monotonic()
      if left <= 0 then return nil, "timed out waiting for a database connection", "timeout" end
      self.waiters[#self.waiters + 1] = me
      local woken, got = core.wait(left)
      if not woken then
        remove(self.waiters, me)
        return nil, "timed out waiting for a database connection (MIZAN_DB_POOL is " .. self.size .. ")", "timeout"
      end
      if got then return got end
    end
  end
end

-- Close a connection for good; its place in the pool is free again.
function E:discard(r, quietly)
  pg.close(r.c)
  self.total = self.total - 1
  if not quietly then self:hand(false) end
end

--- Back to the pool, outside any transaction (see the header).
function E:release(r)
  if self.closed then
    self:discard(r)
    return
  end
  local status = pg.status(r.c)
  if status == "intrans" or status == "inerror" then
    local ok = pg.run(r.c, "ROLLBACK", NONE, false, false, nil, self.timeout)
    status = ok and pg.status(r.c) or "bad"
  end
  if status ~= "idle" then
    self:discard(r)
    return
  end
  if not self:hand(r) then self.idle[#self.idle + 1] = r end
end

---------------------------------------------------------------- statements

-- One statement on connection record r, prepared once and then reused.
function E:exec(r, sql, want_rows, params)
  local text = E.translate(sql)
  local st = r.stmts[sql]
  if not st and r.nstmts >= CACHE_MAX then
    local ok, err, state, flag = pg.run(r.c, "DEALLOCATE ALL", NONE, false, false, nil, self.timeout)
    if not ok then return nil, err, kind_of(state, flag), state end
    r.stmts, r.nstmts = {}, 0
  end
  local name
  if st then
    name = st.name
  else
    r.seq = r.seq + 1
    name = "mz" .. r.seq
  end
  local res, a, state, flag, formats = pg.run(r.c, text, params, want_rows, name, st and st.formats, self.timeout)
  if res then
    if not st then r.stmts[sql], r.nstmts = { name = name, formats = a }, r.nstmts + 1 end
    return res
  end
  if formats and not st then r.stmts[sql], r.nstmts = { name = name, formats = formats }, r.nstmts + 1 end
  if state == "26000" and st then -- the app deallocated it: prepare it anew next time
    r.stmts[sql], r.nstmts = nil, r.nstmts - 1
  end
  return nil, a, kind_of(state, flag), state
end

function E:run(sql, want_rows, params)
  local r, err, kind, state = self:acquire()
  if not r then return nil, err, kind, state end
  local pinned = self.pinned[core.current_task()] == r
  local ok, res, e, k, s = pcall(self.exec, self, r, sql, want_rows, params)
  if not pinned then self:release(r) end
  if not ok then error(res, 4) end -- misuse: a bad parameter type
  return res, e, k, s
end

--- A script in the simple protocol: no parameters, several statements
-- allowed (what a migration file holds). Returns true or nil, err, kind, sqlstate.
function E:script(sql)
  local r, err, kind, state = self:acquire()
  if not r then return nil, err, kind, state end
  local pinned = self.pinned[core.current_task()] == r
  local res, e, s, flag = pg.run(r.c, sql, NONE, false, false, nil, self.timeout)
  if not pinned then self:release(r) end
  if not res then return nil, e, kind_of(s, flag), s end
  return true
end

function E:transaction(fn, wrap)
  local me = core.current_task()
  local r = self.pinned[me]
  local function exec(sql)
    -- Postgres answers COMMIT in a failed transaction with a ROLLBACK, not
    -- an error: say that it failed
    if sql == "COMMIT" and pg.status(r.c) == "inerror" then
      return nil, "the transaction was rolled back: a statement in it failed", "error", "25P02"
    end
    local ok, err, state, flag = pg.run(r.c, sql, NONE, false, false, nil, self.timeout)
    if not ok then return nil, err, kind_of(state, flag), state end
    return ok
  end
  if r then -- nested: a SAVEPOINT on the pinned connection
    r.depth = r.depth + 1
    local ok, results, err, kind, state = pcall(wrap, exec, fn, r.depth, "BEGIN")
    r.depth = r.depth - 1
    if not ok then error(results, 0) end
    if not results then return nil, err, kind, state end
    if not results[1] then error(results[2], 0) end
    return unpack(results, 2, table.maxn(results))
  end
  local err, kind, state
  r, err, kind, state = self:acquire()
  if not r then return nil, err, kind, state end
  r.depth = 1
  self.pinned[me] = r
  local ok, results, werr, wkind, wstate = pcall(wrap, exec, fn, nil, "BEGIN")
  self.pinned[me] = nil
  self:release(r) -- rolls back whatever is still open
  if not ok then error(results, 0) end
  if not results then return nil, werr, wkind, wstate end
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, table.maxn(results))
end

--- Start-up check (blocking, before any request): "rw" | "ro" | nil, err, kind.
function E:probe()
  local k = {}
  for key, v in pairs(self.keys) do k[key] = v end
  k.connect_timeout = k.connect_timeout or "5"
  local state, err, sqlstate = pg.probe(k)
  if not state then return nil, tostring(err):gsub("%s+$", ""), kind_of(sqlstate, nil) end
  return state
end

--- Close the idle connections (a new configuration replaced this one);
-- those in use close when their task hands them back to this old pool.
function E:close()
  for _, r in ipairs(self.idle) do pg.close(r.c) end
  self.idle = {}
  self.closed = true
end

--- For the specs: connections open, idle, and tasks waiting.
function E:stats() return { total = self.total, idle = #self.idle, waiting = #self.waiters } end

return E
