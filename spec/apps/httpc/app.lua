-- The fixture app for the outbound HTTP specs (spec/integration/http_client_spec.lua):
-- fetch does one mizan.http.request and reports what came back.
local mizan = require "mizan"
local json = require "mizan.json"
local client, T = mizan.client, mizan.types

VERSION = "v0"

mizan.register(client {
  input = { url = T.string, opts = T.optional(T.string) },
} (function(req, args)
  local opts = args.opts and assert(json.decode(args.opts)) or {}
  opts.url = args.url
  local res, err, kind = mizan.http.request(opts)
  if not res then
    -- said on stderr too: a drain's cancellation has no client left to tell
    if kind == "cancelled" then mizan.log("info", "fetch: " .. err) end
    return { ok = false, err = err, kind = kind }
  end
  local is_json = (res.headers["content-type"] or ""):find("json") ~= nil
  return { ok = true, status = res.status, headers = res.headers, url = res.url, length = #res.body,
           body = #res.body <= 4096 and res.body or nil, json = is_json and res.json or nil }
end), "fetch")

mizan.register(client { query = true } (function(req) return { version = VERSION } end), "version")
