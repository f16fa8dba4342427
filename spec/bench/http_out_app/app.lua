-- The outbound benchmark's app: one GET to a local keep-alive server per
-- call (MIZAN_BENCH_UPSTREAM), its body handed back.
local mizan = require "mizan"
local client = mizan.client

local UPSTREAM = os.getenv("MIZAN_BENCH_UPSTREAM") or "http://127.0.0.1:18182/static"

mizan.register(client { query = true } (function()
  local res, err = mizan.http.get(UPSTREAM)
  if not res then mizan.error("unavailable", err) end
  return { status = res.status, body = res.body }
end), "out")
