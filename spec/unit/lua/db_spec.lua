-- mizan.db's pure parts: the database URL, and the `?` -> `$n` translation
-- of the Postgres engine (what is a placeholder and what is not).
local db = require "mizan.db"
local pgdb = require "mizan.db.postgres"

describe("mizan.db.parse", function()
  it("reads sqlite:path", function()
    assert.same({ engine = "sqlite", path = "data/app.db", url = "sqlite:data/app.db" }, db.parse("sqlite:data/app.db"))
  end)

  it("reads postgres:// and postgresql:// with user, password, host, port, database and parameters", function()
    local t = assert(db.parse("postgres://app:s%40cret@db.internal:6543/shop?sslmode=require&application_name=x"))
    assert.same({ engine = "postgres", url = t.url, user = "app", password = "s@cret", host = "db.internal",
                  port = "6543", dbname = "shop", params = { sslmode = "require", application_name = "x" } }, t)
    local u = assert(db.parse("postgresql://me@/shop?host=/run/postgresql"))
    assert.equals("me", u.user)
    assert.is_nil(u.password)
    assert.equals("/run/postgresql", u.host)
    assert.equals("shop", u.dbname)
    local v = assert(db.parse("postgres://[::1]:5433/x"))
    assert.equals("::1", v.host)
    assert.equals("5433", v.port)
    assert.same({ engine = "postgres", url = "postgres://", params = {} }, db.parse("postgres://"))
  end)

  it("refuses anything else, with the reason", function()
    for _, bad in ipairs { "mysql://x", "data.db", "", "postgres://h:port/x", "sqlite:" } do
      local t, err = db.parse(bad)
      assert.is_nil(t, bad)
      assert.is_string(err)
    end
  end)

  it("describes a Postgres target without its password", function()
    db.configure("postgres://u:hunter2@127.0.0.1:5/d?password=again")
    assert.equals("postgres", db.engine())
    local d = db.describe()
    assert.is_nil(d:find("hunter2", 1, true))
    assert.is_nil(d:find("again", 1, true))
    db.configure("sqlite:/tmp/x.db")
    assert.equals("sqlite", db.engine())
    assert.equals("/tmp/x.db", db.describe())
  end)
end)

describe("the Postgres engine's placeholders", function()
  local t = pgdb.translate
  it("numbers each ? in order", function()
    assert.same({ "SELECT $1, $2 FROM t WHERE a = $3", 3 }, { t("SELECT ?, ? FROM t WHERE a = ?") })
    assert.same({ "SELECT 1", 0 }, { t("SELECT 1") })
  end)

  it("leaves literals, identifiers, dollar quotes and comments alone", function()
    local cases = {
      { "SELECT '?', ?", "SELECT '?', $1" },
      { "SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1" },
      { [[SELECT E'\'?', ?]], [[SELECT E'\'?', $1]] },
      { [[SELECT '\', ?]], [[SELECT '\', $1]] }, -- standard strings: a backslash is just a backslash
      { 'SELECT "a?b", "x""?", ?', 'SELECT "a?b", "x""?", $1' },
      { "SELECT $$?$$, $tag$ ? $$ ? $tag$, ?", "SELECT $$?$$, $tag$ ? $$ ? $tag$, $1" },
      { "SELECT ? -- ? here\n, ?", "SELECT $1 -- ? here\n, $2" },
      { "SELECT /* ? /* ? */ ? */ ?", "SELECT /* ? /* ? */ ? */ $1" },
      { "SELECT $1", "SELECT $1" },
      { "SELECT ?::int, a$b FROM t", "SELECT $1::int, a$b FROM t" },
    }
    for _, c in ipairs(cases) do assert.equals(c[2], (t(c[1])), c[1]) end
  end)

  it("does not run past an unterminated literal or comment", function()
    assert.same({ "SELECT '?", 0 }, { t("SELECT '?") })
    assert.same({ "SELECT /* ?", 0 }, { t("SELECT /* ?") })
    assert.same({ "SELECT $x$ ?", 0 }, { t("SELECT $x$ ?") })
  end)
end)

describe("the Postgres engine's error kinds", function()
  it("maps SQLSTATEs to the engine-neutral kinds db.failure answers by", function()
    local k = pgdb.kind_of
    assert.equals("constraint", k("23505"))
    assert.equals("constraint", k("23503"))
    assert.equals("unavailable", k("08006"))
    assert.equals("unavailable", k("57P01"))
    assert.equals("unavailable", k("53300"))
    assert.equals("unavailable", k(nil, "lost"))
    assert.equals("timeout", k("57014", "timeout"))
    assert.equals("busy", k("40001"))
    assert.equals("error", k("42P01"))
  end)
end)
