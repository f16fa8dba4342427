-- examples/todo unchanged on Postgres: example_spec.lua again, every server
-- on a fresh database of one real Postgres, its tables made by its migrations.
local testing = require "mizan.testing"
local postgres = require "postgres"

describe("on postgres:", function()
  local pg
  setup(function()
    pg = postgres.start()
    local n = 0
    testing.new_database = function()
      n = n + 1
      local name = "todo_" .. n
      pg.psql(("CREATE DATABASE %s OWNER %s"):format(name, pg.user))
      return (pg.url:gsub("/" .. pg.database .. "$", "/" .. name))
    end
  end)
  teardown(function()
    testing.new_database = nil
    pg.stop()
  end)

  -- in this file's environment: busted's describe/it live there
  local specs = assert(loadfile("spec/e2e/example_spec.lua"))
  setfenv(specs, getfenv(1))
  specs()

  it("made the tables with the app's migrations", function()
    assert.equals("lists\ntodos", pg.psql("SELECT table_name FROM information_schema.tables "
      .. "WHERE table_schema = 'public' AND table_name IN ('lists', 'todos') ORDER BY 1", "todo_1"))
    assert.equals("0001|lists_and_todos\n0002|todos_by_list",
      pg.psql("SELECT id, name FROM mizan_migrations WHERE id NOT LIKE 'mizan/%' ORDER BY id", "todo_1"))
  end)
end)
