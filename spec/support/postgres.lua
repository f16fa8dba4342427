-- A throwaway Postgres 15 for the specs: its own cluster in a temporary
-- folder, run as an unprivileged user (postgres refuses to run as root), on
-- a free loopback port, with its Unix socket in that folder.
--
--   local pg = require("postgres").start()     -- in setup(); start { ssl = true }: TLS on too
--   pg.url          postgres://mizan:<pw>@127.0.0.1:<port>/mizan (password auth over TCP)
--   pg.socket_url   postgres://mizan@/mizan?host=<socket_dir>&port=<port> (the Unix socket)
--   pg.port, pg.socket_dir, pg.pid, pg.user, pg.password, pg.database
--   pg.psql(sql)    run SQL as the superuser over the socket; returns the output
--                   (unaligned, tuples only: `psql -At`), raises on failure
--   pg.stop()       stop the server (fast shutdown) and remove the folder
--   pg.kill()       stop the server only (the data stays): an outage
--   pg.restart()    start it again on the same port and data (after kill or not)
--
-- stop() is idempotent: call it in teardown(). If a spec forgets or dies
-- before its teardown, the cluster is still stopped and removed when the Lua
-- state closes (a finaliser; `mizan test` closes the state before it exits).
-- Specs depend on postgresql-15 being installed (scripts/deps.sh test): a
-- missing server is an error, never a silent skip.
local kit = require "mizan.testkit"
local core = require "mizan.core"

local M = {}

local BIN = os.getenv("MIZAN_PG_BIN") or "/usr/lib/postgresql/15/bin"
-- the unprivileged account the server runs as (exists on every Debian system)
local RUN_AS = os.getenv("MIZAN_PG_USER") or "nobody"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"\n#exit:$?\"")
  local out = p:read("*a")
  p:close()
  local body, code = out:match("^(.-)\n?\n#exit:(%d+)\n$")
  return body or out, tonumber(code)
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local is_root
local function root_user()
  if is_root == nil then
    local p = io.popen("id -u")
    is_root = p:read("*l") == "0"
    p:close()
  end
  return is_root
end

-- a command line run as RUN_AS when we are root
local function as_user(cmd)
  if not root_user() then return cmd end
  return ("setpriv --reuid=%s --regid=nogroup --clear-groups -- %s"):format(RUN_AS, cmd)
end

local counter = 0

local Pg = {}

local function start_server(self)
  local argv = { BIN .. "/postgres", "-D", self.data_dir, "-p", tostring(self.port), "-k", self.socket_dir,
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=64MB" }
  if self.ssl then
    for _, a in ipairs { "-c", "ssl=on", "-c", "ssl_cert_file=" .. self.root .. "/server.crt",
                         "-c", "ssl_key_file=" .. self.root .. "/server.key" } do argv[#argv + 1] = a end
  end
  if root_user() then
    local wrapped = { "setpriv", "--reuid=" .. RUN_AS, "--regid=nogroup", "--clear-groups", "--" }
    for _, a in ipairs(argv) do wrapped[#wrapped + 1] = a end
    argv = wrapped
  end
  -- setpriv execs postgres in place: the pid is the postmaster's
  self.pid = assert(kit.spawn(argv, { LANG = "C", LC_ALL = "C" }, self.log_path, self.log_path))
  local deadline = core.monotonic() + 30
  while core.monotonic() < deadline do
    local _, code = sh(("%s/pg_isready -q -h %s -p %d"):format(BIN, q(self.socket_dir), self.port))
    if code == 0 then return end
    if kit.wait(self.pid, 0) then
      self.pid = nil
      break
    end
    kit.sleep(0.05)
  end
  local f = io.open(self.log_path)
  local log = f and f:read("*a") or ""
  if f then f:close() end
  error("postgres did not start on port " .. self.port .. ":\n" .. log, 3)
end

--- Make a cluster, start it, create the role and the database; returns the handle.
function M.start(opts)
  opts = opts or {}
  counter = counter + 1
  local root = ("/tmp/mizan-pg-%d-%d"):format(kit.getpid(), counter)
  local self = setmetatable({ root = root, data_dir = root .. "/data", socket_dir = root,
                              log_path = root .. "/server.log", port = assert(kit.free_port()),
                              user = "mizan", password = "spec-pw-" .. counter, database = opts.database or "mizan" },
                            {})
  local probe = io.open(BIN .. "/initdb")
  if probe then probe:close() else
    error("postgresql-15 is not installed (" .. BIN .. "/initdb missing): run scripts/deps.sh test", 2)
  end
  sh("rm -rf " .. q(root))
  sh("mkdir -p " .. q(root))
  if opts.ssl then -- a self-signed certificate: enough for sslmode=require
    local out, code = sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout %s -out %s")
      :format(q(root .. "/server.key"), q(root .. "/server.crt")))
    if code ~= 0 then error("openssl failed:\n" .. out, 2) end
    sh("chmod 600 " .. q(root .. "/server.key"))
    self.ssl = true
  end
  if root_user() then sh(("chown -R %s:nogroup %s"):format(RUN_AS, q(root))) end
  local out, code = sh(as_user(("%s/initdb -D %s -U postgres --auth-local=trust --auth-host=scram-sha-256 "
    .. "--no-sync -E UTF8 --locale=C"):format(BIN, q(self.data_dir))))
  if code ~= 0 then error("initdb failed:\n" .. out, 2) end
  -- the documented shape: pg.psql(sql), pg.stop(), ... (plain functions of
  -- the handle; the colon form works as well)
  for _, name in ipairs { "psql", "kill", "restart", "stop" } do
    local f = Pg[name]
    self[name] = function(a, ...)
      if a == self then return f(self, ...) end
      return f(self, a, ...)
    end
  end
  start_server(self)
  -- the finaliser: a cluster nobody stopped goes with the Lua state
  self._guard = newproxy(true)
  getmetatable(self._guard).__gc = function() self:stop() end
  self.psql(("CREATE ROLE %s LOGIN PASSWORD '%s'"):format(self.user, self.password))
  self.psql(("CREATE DATABASE %s OWNER %s"):format(self.database, self.user))
  self.url = ("postgres://%s:%s@127.0.0.1:%d/%s"):format(self.user, self.password, self.port, self.database)
  self.socket_url = ("postgres://%s@/%s?host=%s&port=%d"):format(self.user, self.database, self.socket_dir, self.port)
  return self
end

--- psql as the superuser over the socket: the output (psql -At), or raise.
-- pg.psql(sql, db) runs in database `db` (the spec database by default).
function Pg.psql(self, sql, db)
  local out, code = sh(("%s/psql -X -q -At -v ON_ERROR_STOP=1 -h %s -p %d -U postgres -d %s -c %s"):format(
    BIN, q(self.socket_dir), self.port, q(db or (self.url and self.database or "postgres")), q(sql)))
  if code ~= 0 then error("psql failed: " .. out, 3) end
  return out
end

--- Stop the server, keep the data: what "Postgres went down" looks like.
-- Idempotent.
function Pg.kill(self)
  if not self.pid then return end
  kit.kill(self.pid, "CONT")
  kit.kill(self.pid, "INT") -- fast shutdown: clients are disconnected
  if not kit.wait(self.pid, 20) then
    kit.kill(self.pid, "KILL")
    kit.wait(self.pid, 10)
  end
  self.pid = nil
end

--- Inside a describe block: from setup to teardown, one Postgres, and every
-- testing.server gets a fresh database of it (`prefix_1`, `prefix_2`, ...).
-- Returns a table whose `pg` field is the server once setup has run.
function M.each_server(prefix)
  local testing = require "mizan.testing"
  local busted = getfenv(2) -- the caller's: where busted's setup and teardown live
  local box = {}
  busted.setup(function()
    local pg = M.start()
    box.pg = pg
    local n = 0
    testing.new_database = function()
      n = n + 1
      local name = prefix .. "_" .. n
      pg.psql(("CREATE DATABASE %s OWNER %s"):format(name, pg.user))
      return (pg.url:gsub("/" .. pg.database .. "$", "/" .. name))
    end
  end)
  busted.teardown(function()
    testing.new_database = nil
    if box.pg then box.pg.stop() end
  end)
  return box
end

--- Run the specs of another file here (in the caller's environment, where
-- busted's describe and it live), e.g. inside M.each_server's block.
function M.include(file)
  local specs = assert(loadfile(file))
  setfenv(specs, getfenv(2))
  specs()
end

--- Start it again on the same port and data.
function Pg.restart(self)
  Pg.kill(self)
  start_server(self)
end

--- Stop the server and remove its folder. Idempotent.
function Pg.stop(self)
  if self.stopped then return end
  Pg.kill(self)
  self.stopped = true
  sh("rm -rf " .. q(self.root))
end

return M
