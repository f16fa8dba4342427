-- mizan.sqlsplit: a migration file into statements, `;` inside quotes,
-- comments, dollar-quoted bodies and trigger bodies left alone.
local sqlsplit = require "mizan.sqlsplit"

local function texts(sql, engine)
  local list = assert(sqlsplit.split(sql, engine or "sqlite"))
  local out = {}
  for i, s in ipairs(list) do out[i] = s.sql end
  return out, list
end

describe("mizan.sqlsplit", function()
  it("splits on ; and drops blanks, comment-only chunks and a missing final ;", function()
    assert.same({ "CREATE TABLE a (x INTEGER)", "INSERT INTO a VALUES (1)" },
      texts("CREATE TABLE a (x INTEGER);\n\n  INSERT INTO a VALUES (1)\n;;\n-- only a comment\n;"))
    assert.same({ "SELECT 1", "SELECT 2" }, texts("SELECT 1;SELECT 2"))
    assert.same({}, texts("-- nothing\n/* at all; */\n"))
  end)

  it("keeps ; inside strings, quoted identifiers and comments", function()
    assert.same({ "INSERT INTO t VALUES ('a;b', 'it''s; fine')", 'CREATE TABLE "odd;name" (`x;y` TEXT)',
                  "SELECT 1 -- trailing; comment", "SELECT /* a; b */ 2" },
      texts("INSERT INTO t VALUES ('a;b', 'it''s; fine');\n"
        .. 'CREATE TABLE "odd;name" (`x;y` TEXT);\n'
        .. "SELECT 1 -- trailing; comment\n;\nSELECT /* a; b */ 2;"))
  end)

  it("says where the first line of code of each statement is", function()
    local _, list = texts("-- header\n\nCREATE TABLE a (x INTEGER);\n\n/* c */\nSELECT 1;")
    assert.equals(3, list[1].line)
    assert.equals(6, list[2].line)
  end)

  it("keeps a trigger's BEGIN ... END body (and a CASE ... END inside it) whole", function()
    local trigger = "CREATE TEMP TRIGGER t AFTER INSERT ON a BEGIN\n"
      .. "  INSERT INTO log VALUES (CASE WHEN new.x > 0 THEN 'pos' ELSE 'neg' END);\n"
      .. "  UPDATE a SET x = x;\nEND"
    assert.same({ "CREATE TABLE a (x)", trigger, "SELECT 1" }, texts("CREATE TABLE a (x);\n" .. trigger .. ";\nSELECT 1;"))
    -- outside such a statement, BEGIN is a statement of its own
    assert.same({ "BEGIN", "SELECT 1", "END" }, texts("BEGIN; SELECT 1; END;"))
  end)

  it("keeps Postgres dollar-quoted bodies whole, and nested /* */ comments", function()
    local fn = "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
      .. "BEGIN\n  IF new.x THEN RAISE NOTICE 'x;'; END IF;\n  RETURN new;\nEND;\n$body$"
    assert.same({ fn, "SELECT $$a;b$$", "SELECT 3" },
      texts(fn .. ";\nSELECT $$a;b$$;\n/* outer /* inner; */ still comment; */ SELECT 3;", "postgres"))
    -- $1 is a parameter, not a dollar quote
    assert.same({ "SELECT $1", "SELECT 2" }, texts("SELECT $1; SELECT 2;", "postgres"))
  end)

  it("refuses an unterminated quote, comment, body or trigger, naming the line", function()
    local cases = {
      { "SELECT 1;\nSELECT 'open;", "unterminated ' quote starting at line 2" },
      { "SELECT 1; /* open", "unterminated /%* comment starting at line 1" },
      { "\n\nSELECT $x$ never closed;", "unterminated %$x%$ body starting at line 3", "postgres" },
      { "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;", "statement starting at line 1 never reaches its END" },
    }
    for _, c in ipairs(cases) do
      local list, err = sqlsplit.split(c[1], c[3] or "sqlite")
      assert.is_nil(list)
      assert.matches(c[2], err)
    end
    assert.has_error(function() sqlsplit.split(nil, "sqlite") end, "sqlsplit.split: the SQL must be a string")
  end)
end)
