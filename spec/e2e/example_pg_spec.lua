-- examples/todo unchanged on Postgres: example_spec.lua again, every server
-- on a fresh database of one real Postgres, its tables made by its migrations.
local postgres = require "postgres"

describe("on postgres:", function()
  local box = postgres.each_server("todo")
  postgres.include("spec/e2e/example_spec.lua")

  it("made the tables with the app's migrations", function()
    assert.equals("lists\ntodos", box.pg.psql("SELECT table_name FROM information_schema.tables "
      .. "WHERE table_schema = 'public' AND table_name IN ('lists', 'todos') ORDER BY 1", "todo_1"))
    assert.equals("0001|lists_and_todos\n0002|todos_by_list",
      box.pg.psql("SELECT id, name FROM mizan_migrations WHERE id NOT LIKE 'mizan/%' ORDER BY id", "todo_1"))
  end)
end)
