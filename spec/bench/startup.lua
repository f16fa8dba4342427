-- Time from exec to the first response of a built executable (mizan build),
-- and its size. Run: build/mizan lua spec/bench/startup.lua [runs]
local kit = require "mizan.testkit"
local core = require "mizan.core"
local testing = require "mizan.testing"

local runs = tonumber(arg and arg[1]) or 10
local dir = ("/tmp/mizan-startup-bench-%d"):format(kit.getpid())
os.execute(("rm -rf %q && mkdir -p %q/empty"):format(dir, dir))
assert(os.execute(("%q build examples/todo -o %q/todo 2>/dev/null"):format(kit.exe(), dir)) == 0)
local f = io.open(dir .. "/todo", "rb")
local size = f:seek("end")
f:close()
os.execute(("strip -o %q/todo.stripped %q/todo 2>/dev/null"):format(dir, dir))
f = io.open(dir .. "/todo.stripped", "rb")
local stripped = f and f:seek("end")
if f then f:close() end

-- the database's migrations once, before the runs: they measure a start, not a first deploy
assert(os.execute(("cd %q/empty && MIZAN_DATABASE=sqlite:%q/db ../todo migrate >/dev/null"):format(dir, dir)) == 0)

local times = {}
for _ = 1, runs do
  local port = kit.free_port()
  local t0 = core.monotonic()
  local pid = kit.spawn({ "/bin/sh", "-c", ("cd %q/empty && exec ../todo serve"):format(dir) },
                        { MIZAN_SECRET = "bench", MIZAN_WORKERS = "1", MIZAN_LISTEN = "127.0.0.1:" .. port,
                          MIZAN_ACCESS_LOG = "off", MIZAN_DATABASE = "sqlite:" .. dir .. "/db" }, "/dev/null", "/dev/null")
  while true do
    local c = testing.connect(port, 1)
    if c then
      c:send(testing.request_bytes("POST", "/api/mizan/call/echo/", { "Content-Type: application/json" }, '{"text":"x"}'))
      local res = c:read_response { timeout = 5 }
      c:close()
      if res and res.status == 200 then break end
    end
    kit.sleep(0.001)
  end
  times[#times + 1] = (core.monotonic() - t0) * 1000
  kit.kill(pid, "TERM")
  kit.wait(pid, 10)
end
os.execute(("rm -rf %q"):format(dir))
table.sort(times)
print(("built examples/todo: %.1f MB (%.1f MB stripped)"):format(size / 1048576, (stripped or size) / 1048576))
print(("exec -> first response, %d runs: p50 %.1f ms, min %.1f ms, max %.1f ms"):format(
  runs, times[math.ceil(#times / 2)], times[1], times[#times]))
