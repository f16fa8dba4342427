-- The accounts, sessions and login-throttle specs (auth_spec.lua) again,
-- with every server on a fresh database of one real Postgres: the built-ins'
-- tables and SQL work there as on SQLite.
local testing = require "mizan.testing"
local postgres = require "postgres"

describe("on postgres:", function()
  local pg
  setup(function()
    pg = postgres.start()
    local n = 0
    testing.new_database = function()
      n = n + 1
      local name = "auth_" .. n
      pg.psql(("CREATE DATABASE %s OWNER %s"):format(name, pg.user))
      return (pg.url:gsub("/" .. pg.database .. "$", "/" .. name))
    end
  end)
  teardown(function()
    testing.new_database = nil
    pg.stop()
  end)

  -- in this file's environment: busted's describe/it live there
  local specs = assert(loadfile("spec/integration/auth_spec.lua"))
  setfenv(specs, getfenv(1))
  specs()
end)
