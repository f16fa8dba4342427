-- The accounts, sessions and login-throttle specs (auth_spec.lua) again,
-- with every server on a fresh database of one real Postgres: the built-ins'
-- tables and SQL work there as on SQLite.
local postgres = require "postgres"

describe("on postgres:", function()
  postgres.each_server("auth")
  postgres.include("spec/integration/auth_spec.lua")
end)
