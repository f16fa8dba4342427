-- Postgres with the whole product: two `mizan serve` instances sharing one
-- Postgres share users and sessions (no Redis), and `mizan dev` reloads with
-- Postgres connections open and in flight: each reload's old state closes
-- its connections (the count on the server stays flat), its calls in flight
-- finish, and under the ASan build Server:stop fails the spec on any
-- sanitizer report in the server's log.
local testing = require "mizan.testing"
local h = require "helpers"
local postgres = require "postgres"

local function get(srv, name, args)
  local res = srv:call(name, args or {}, { method = "GET", timeout = 30 })
  assert.equals(200, res.status, res.body)
  return res.json.result
end

-- Backends of mizan's (psql's own not counted).
local function connections(pg)
  return tonumber(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mizan'"))
end

describe("two mizan serve instances on one Postgres", function()
  local pg, a, b
  setup(function()
    pg = postgres.start()
    local env = { MIZAN_DATABASE = pg.url, MIZAN_SECRET = "spec-secret", MIZAN_WORKERS = "2" }
    a = testing.server("spec/apps/auth", { command = "serve", env = env })
    b = testing.server("spec/apps/auth", { command = "serve", env = env })
  end)
  teardown(function()
    if a then a:stop() end
    if b then b:stop() end
    pg.stop()
  end)

  it("share users and sessions: sign up on A, be signed in on B, log in on B", function()
    local on_a = a:agent()
    local res = on_a:call("auth.signup", { username = "dora", password = "dora's password" })
    assert.equals(200, res.status, res.body)
    -- the same cookie on B: the session lives in Postgres
    local on_b = b:agent()
    on_b.cookie = on_a.cookie
    assert.equals("dora", on_b:call("whoami", {}, { method = "GET" }).json.result.me)
    local fresh = b:agent()
    assert.equals(200, fresh:call("auth.login", { username = "dora", password = "dora's password" }).status)
    assert.equals("dora", fresh:call("whoami", {}, { method = "GET" }).json.result.me)
    -- logging out on B ends the session on A too
    assert.equals(200, on_b:call("auth.logout", {}).status)
    h.assert_error(on_a:call("whoami", {}, { method = "GET" }), 401, "unauthenticated")
  end)
end)

describe("examples/todo on two mizan serve instances sharing Postgres and a Redis cache", function()
  local pg, redis, a, b
  setup(function()
    pg = postgres.start()
    redis = testing.redis()
    local env = { MIZAN_DATABASE = pg.url, MIZAN_CACHE = redis:url(0), MIZAN_SECRET = "spec-secret",
                  MIZAN_WORKERS = "2", MIZAN_MIGRATE = "auto" }
    a = testing.server("examples/todo", { command = "serve", env = env })
    b = testing.server("examples/todo", { command = "serve", env = env })
  end)
  teardown(function()
    if a then a:stop() end
    if b then b:stop() end
    redis:stop()
    pg.stop()
  end)

  local function summary(agent, list_id)
    local res = agent:context("todos", { list_id = list_id })
    assert.equals(200, res.status, res.body)
    return res.json.todo_summary
  end

  it("sign up on A, read on B; a mutation on A purges B's cached read before A answers", function()
    local on_a = a:agent()
    assert.equals(200, on_a:call("auth.signup", { username = "erin", password = "erin's password" }).status)
    local on_b = b:agent()
    assert.equals(200, on_b:call("auth.login", { username = "erin", password = "erin's password" }).status)
    local list = on_a:call("create_list", { name = "Inbox" }).json.result
    local todo = on_a:call("add_todo", { list_id = list.id, title = "Buy milk" }).json.result
    assert.same({ name = "Inbox", open = 1, done = 0 }, summary(on_b, list.id))
    -- the summary is cached: a change behind mizan's back (no mutation, no purge) is not seen
    pg.psql(("UPDATE todos SET title = 'x', done = 1 WHERE id = %d"):format(todo.id))
    assert.same({ name = "Inbox", open = 1, done = 0 }, summary(on_b, list.id))
    pg.psql(("UPDATE todos SET done = 0 WHERE id = %d"):format(todo.id))
    -- a mutation on A: by the time A answers, B's entry is gone
    local res = on_a:call("set_done", { id = todo.id, done = true })
    assert.equals(200, res.status, res.body)
    assert.equals("todos;list_id=" .. list.id, res.headers["x-mizan-invalidate"])
    assert.same({ name = "Inbox", open = 0, done = 1 }, summary(on_b, list.id))
  end)
end)

describe("mizan dev reloading with Postgres connections open", function()
  local pg, dir, srv
  setup(function()
    pg = postgres.start()
    dir = h.app_dir(h.read("spec/apps/pg_reload/app.lua"))
    srv = testing.server(dir, { env = { MIZAN_DATABASE = pg.url, MIZAN_DB_POOL = "3" } })
  end)
  teardown(function()
    if srv then srv:stop() end
    pg.stop()
  end)

  local version = 0
  local function reload()
    version = version + 1
    local want = "v" .. version
    h.write(dir .. "/app.lua", (h.read(dir .. "/app.lua"):gsub('VERSION = "[^"]*"', ('VERSION = "%s"'):format(want))))
    assert.is_true(h.wait_until(function() return get(srv, "version") == want end, 30), "reloaded to " .. want)
  end

  it("closes the old state's connections at every reload, and lets calls in flight finish", function()
    assert.is_true(get(srv, "count") >= 1)
    local baseline
    for round = 1, 5 do
      -- a call in flight on the old state while it is replaced
      local c = srv:connect()
      c:send(testing.request_bytes("GET", "/api/mizan/call/hold/?" .. testing.encode_query { seconds = 0.5 }))
      local before = "v" .. version
      reload()
      local res = assert(c:read_response { timeout = 30 }, "the call in flight answered")
      c:close()
      assert.equals(200, res.status, res.body)
      assert.equals(before, res.json.result, "it finished on the state that took it")
      get(srv, "count") -- the new state opens its own connection
      -- the old state closes once its last call is done: the count comes back down
      assert.is_true(h.wait_until(function() return connections(pg) <= 1 end),
                     "round " .. round .. ": only the new state's connection is left (" .. connections(pg) .. ")")
      baseline = baseline or connections(pg)
      assert.equals(baseline, connections(pg))
    end
  end)
end)
