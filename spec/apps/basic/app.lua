-- The fixture app for the protocol and HTTP specs.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

mizan.register(client {
  input = { text = T.string { max_length = 200 } },
  output = { message = T.string },
} (function(req, args) return { message = args.text } end), "echo")

-- A per-worker sequence, so specs can prove ordering without timing.
local seq = 0
local function next_seq() seq = seq + 1; return seq end

mizan.register(client {
  input = { seconds = T.number { min = 0, max = 30 } },
} (function(req, args)
  local started = next_seq()
  mizan.sleep(args.seconds)
  return { started = started, finished = next_seq() }
end), "slow")

mizan.register(client { query = true } (function(req)
  local started = next_seq()
  return { started = started, finished = next_seq() }
end), "fast")

mizan.register(client { query = true } (function(req)
  error("kaboom")
end), "boom")

mizan.register(client {
  query = true,
  input = { n = T.integer, flag = T.boolean, ratio = T.optional(T.number), tags = T.optional(T.array(T.string)) },
} (function(req, args) return args end), "types")

mizan.register(client { query = true } (function(req)
  return mizan.response { status = 201, headers = { ["Content-Type"] = "text/plain", ["X-Thing"] = "yes" },
                          body = "raw body" }
end), "raw")

mizan.register(client { query = true, output = { message = T.string } } (function(req)
  return { message = 42 }
end), "bad_output")

mizan.register(client {
  input = { id = T.integer },
} (function(req, args) mizan.error("not_found", "no item " .. args.id) end), "missing")

mizan.register(client { query = true } (function(req)
  return { method = req.method, path = req.path, query = req.query, ip = req.ip,
           host = req.headers.host, agent = req.headers["x-agent"] }
end), "whoami")

mizan.register(client {
  input = { data = T.string },
} (function(req, args) return { length = #args.data } end), "upload")

mizan.register(client { query = true } (function(req)
  return { unencodable = print }
end), "unencodable")

mizan.register(client { query = true } (function(req)
  return mizan.response { status = 200, headers = { ["X-Evil"] = "a\r\nSet-Cookie: pwned=1" }, body = "x" }
end), "header_injection")

-- 512 KiB of JSON, for the slow-reader spec.
local big = ("x"):rep(512 * 1024)
mizan.register(client { query = true } (function(req) return { data = big } end), "big")
