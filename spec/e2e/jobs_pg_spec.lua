-- Durable jobs on a real Postgres: spec/e2e/jobs_spec.lua again (every
-- server on a fresh database), and a schedule over 2 instances x 2 workers
-- sharing one database: once per period, not once per worker.
local testing = require "mizan.testing"
local postgres = require "postgres"
local h = require "helpers"

describe("on postgres:", function()
  local pg
  local n = 0
  local function new_database()
    n = n + 1
    local name = "jobs_" .. n
    pg.psql(("CREATE DATABASE %s OWNER %s"):format(name, pg.user))
    return (pg.url:gsub("/" .. pg.database .. "$", "/" .. name)), name
  end
  setup(function()
    pg = postgres.start()
    testing.new_database = function() return (new_database()) end
  end)
  teardown(function()
    testing.new_database = nil
    pg.stop()
  end)

  local specs = assert(loadfile("spec/e2e/jobs_spec.lua"))
  setfenv(specs, getfenv(1))
  specs()

  it("a schedule of 1 s over 2 instances x 2 workers runs once per second", function()
    local url, name = new_database()
    local env = { MIZAN_WORKERS = "2", MIZAN_DATABASE = url, JOBS_SCHEDULE = "1", MIZAN_JOBS_POLL = "0.2" }
    local a = testing.server("spec/apps/jobs", { command = "serve", env = env })
    local b = testing.server("spec/apps/jobs", { command = "serve", env = env })
    local ok, err = pcall(function()
      local function ticks()
        local out = pg.psql("SELECT note FROM job_runs WHERE job = 'tick' ORDER BY note", name)
        local list = {}
        for s in out:gmatch("[^\n]+") do list[#list + 1] = tonumber(s) end
        return list
      end
      assert.is_true(h.wait_until(function() return #ticks() >= 5 end, 30), "the schedule ran")
      local list = ticks()
      local seen = {}
      for _, slot in ipairs(list) do
        assert.is_nil(seen[slot], "slot " .. slot .. " ran twice")
        seen[slot] = true
      end
      -- once per period: never more runs than seconds (slots) it covered
      assert.is_true(#list <= list[#list] - list[1] + 1, ("%d runs over %d slots"):format(#list, list[#list] - list[1] + 1))
      assert.equals(0, tonumber(pg.psql("SELECT COUNT(*) FROM (SELECT slot FROM mizan_jobs WHERE name = 'tick' "
        .. "GROUP BY slot HAVING COUNT(*) > 1) d", name)))
    end)
    a:stop()
    b:stop()
    assert(ok, err)
  end)
end)
