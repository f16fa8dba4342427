-- How mizan reaches Postgres: over TCP with a password, over the Unix
-- socket (?host=/dir), with TLS (sslmode=require; OpenSSL is linked into
-- the binary), and what it says when it cannot.
local testing = require "mizan.testing"
local h = require "helpers"
local postgres = require "postgres"

local APP = "spec/apps/pg"

local function engine_ok(srv)
  local res = srv:call("engine", {}, { method = "GET" })
  assert.equals(200, res.status, res.body)
  assert.equals("postgres", res.json.result.engine)
end

describe("connecting to postgres", function()
  local pg
  setup(function() pg = postgres.start { ssl = true } end)
  teardown(function() pg.stop() end)

  it("goes through the Unix socket with ?host=/dir", function()
    local srv = testing.server(APP, { env = { MIZAN_DATABASE = pg.socket_url } })
    engine_ok(srv)
    srv:call("count_notes", {}, { method = "GET" })
    -- a backend of ours with no client address is on the socket
    assert.equals("1", pg.psql("SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'mizan' "
      .. "AND client_addr IS NULL"):gsub("t", "1"))
    srv:stop()
  end)

  it("looks a host name up off the loop (localhost), and connects", function()
    local url = ("postgres://%s:%s@localhost:%d/%s"):format(pg.user, pg.password, pg.port, pg.database)
    local srv = testing.server(APP, { env = { MIZAN_DATABASE = url } })
    engine_ok(srv)
    assert.equals(200, srv:call("count_notes", {}, { method = "GET" }).status)
    srv:stop()
  end)

  it("uses TLS with sslmode=require", function()
    local srv = testing.server(APP, { env = { MIZAN_DATABASE = pg.url .. "?sslmode=require" } })
    engine_ok(srv)
    srv:call("count_notes", {}, { method = "GET" })
    assert.equals("t", pg.psql("SELECT bool_and(s.ssl) AND count(*) > 0 FROM pg_stat_ssl s "
      .. "JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'mizan'"))
    srv:stop()
  end)

  it("refuses to start on a wrong password, saying why, without printing the password", function()
    local url = ("postgres://%s:not-the-password@127.0.0.1:%d/%s"):format(pg.user, pg.port, pg.database)
    local ok, err = pcall(testing.server, APP, { env = { MIZAN_DATABASE = url } })
    assert.is_false(ok)
    assert.matches("password authentication failed", tostring(err), 1, true)
    assert.is_nil(tostring(err):find("not-the-password", 1, true))
  end)

  it("refuses a database URL it cannot read, with the option's message", function()
    local ok, err = pcall(testing.server, APP, { env = { MIZAN_DATABASE = "mysql://x/y" } })
    assert.is_false(ok)
    assert.matches("MIZAN_DATABASE must look like sqlite:path/to/file.db or postgres://", tostring(err), 1, true)
  end)

  it("starts while Postgres is unreachable only to refuse, naming the target (no hang)", function()
    local port = assert(require("mizan.testkit").free_port())
    local ok, err = pcall(testing.server, APP, { env = { MIZAN_DATABASE = ("postgres://u@127.0.0.1:%d/x"):format(port) } })
    assert.is_false(ok)
    assert.matches("127.0.0.1:" .. port, tostring(err), 1, true)
  end)
end)
