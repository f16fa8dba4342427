-- Hot reload benchmark: the time from saving a file of examples/todo to the
-- first response served by the new code, under `mizan dev`.
--   build/mizan lua spec/bench/reload.lua [saves]
-- Prints p50 and p95; never a pass/fail test.
local testing = require "mizan.testing"
local kit = require "mizan.testkit"
local core = require "mizan.core"

local saves = tonumber(arg and arg[1]) or 30
local dir = ("/tmp/mizan-reload-bench-%d"):format(kit.getpid())
os.execute(("rm -rf %q && mkdir -p %q && cp examples/todo/app.lua %q/"):format(dir, dir, dir))
local f = assert(io.open(dir .. "/app.lua"))
local base = f:read("*a")
f:close()

local function save(n)
  local out = assert(io.open(dir .. "/app.lua", "w"))
  out:write(base, ("\nmizan.register(client { query = true } (function() return %d end), \"bench_mark\")\n"):format(n))
  out:close()
end

save(0)
local srv = testing.server(dir)
local times = {}
for n = 1, saves do
  local t0 = core.monotonic()
  save(n)
  while true do
    local res = srv:call("bench_mark", {}, { method = "GET" })
    if res.json and res.json.result == n then break end
    if core.monotonic() - t0 > 10 then error("the new code never served") end
    kit.sleep(0.001)
  end
  times[#times + 1] = (core.monotonic() - t0) * 1000
  kit.sleep(0.05)
end
srv:stop()
os.execute(("rm -rf %q"):format(dir))
table.sort(times)
local function pct(p) return times[math.max(1, math.ceil(#times * p))] end
print(("reload: save -> first response from the new code, %d saves of examples/todo"):format(saves))
print(("  p50 %.1f ms   p95 %.1f ms   min %.1f ms   max %.1f ms"):format(pct(0.5), pct(0.95), times[1], times[#times]))
