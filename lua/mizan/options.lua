-- mizan.options: every setting of a Mizan app, described once.
--
-- mizan.config (the engine) reads this table for everything: what
-- mizan.config{} accepts, which environment variable overrides an option,
-- the default, the check, and which fields C receives (mz_config, filled in
-- one call by mz_host_config in core/config.c). `mizan help config` prints
-- it. Add an option here and nowhere else.
--
-- An entry:
--   name     the key in mizan.config{} ("limits.max_body": the field max_body
--            of the table `limits`)
--   type     "string" | "number" | "boolean" | "list" (of strings)
--   env      the environment variable (nil: app code only). Booleans read
--            on/off; lists read comma- or space-separated items.
--   default  the value when neither app code nor the environment sets it
--   must     what a valid value is, said to whoever got it wrong
--   check    optional fn(v) -> nil, or a phrase ("must ...") for a value of
--            the right type that is still wrong
--   item     lists: fn(s) -> nil, or a phrase about that one item
--   c        the mz_config field C reads it into (nil: C does not need it)
--   to_c     optional fn(v, cfg) -> the value in C's units
--   doc      one line for `mizan help config`
local M = {}

--- Does `s` look like one IP address (IPv4 dotted quad, or IPv6)?
function M.is_ip(s)
  if type(s) ~= "string" then return false end
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a then
    for _, n in ipairs { a, b, c, d } do
      if #n > 3 or tonumber(n) > 255 then return false end
    end
    return true
  end
  return s:find(":", 1, true) ~= nil and s:find("^[%x:%.]+$") ~= nil and #s <= 45
end

-- The routes under the base path (DESIGN §2). C matches the same names in
-- core/http.c; the test client and the TS kernel build their URLs from here.
M.routes = { call = "call/", ctx = "ctx/", ws = "ws/", health = "health", metrics = "metrics" }

local function nonempty(v) if v == "" then return "must be a non-empty string" end end
local function positive(v) if v <= 0 then return "must be a positive number" end end
local function bytes(min)
  return function(v)
    if v <= 0 then return "must be a positive number" end
    if v ~= math.floor(v) then return "must be a whole number of bytes" end
    if min and v < min then return ("must be at least %d bytes"):format(min) end
  end
end
local function ms(v) return math.floor(v * 1000 + 0.5) end
local function redis_or(word)
  return function(v) if not (v == word or v:find("^redis://")) then return true end end
end
local function origin(o)
  if not o:find("^https?://[^/]+$") then return ("'%s' is not an origin like https://app.example.com"):format(o) end
end
local function ip(a)
  if not M.is_ip(a) then
    return ("'%s' is not an IP address (list the proxies' own addresses, like \"127.0.0.1\")"):format(a)
  end
end

M.list = {
  { name = "listen", type = "string", env = "MIZAN_LISTEN", default = "127.0.0.1:8080", c = "listen",
    must = "must be a non-empty string", check = nonempty, doc = "address:port to serve on" },
  { name = "base_path", type = "string", env = "MIZAN_BASE_PATH", default = "/api/mizan/", c = "base_path",
    must = "must look like '/api/mizan/' (leading and trailing slash)",
    check = function(v) if not (v:find("^/[%w%-%._~/]*$") and v:sub(-1) == "/") then return true end end,
    doc = "URL prefix of every route (call/, ctx/, ws/, health, metrics)" },
  { name = "secret", type = "string", env = "MIZAN_SECRET", c = "secret_configured",
    to_c = function(_, cfg) return cfg.secret_configured == true end,
    must = "must be a non-empty string", check = nonempty,
    doc = "signs sessions and cache keys; required by mizan serve, shared by every instance" },
  { name = "workers", type = "number", env = "MIZAN_WORKERS", default = 0, c = "workers",
    must = "must be a whole number from 1 to 256",
    check = function(v) if v ~= math.floor(v) or v < 1 or v > 256 then return true end end,
    doc = "worker processes of mizan serve (default: one per core)" },
  { name = "access_log", type = "string", env = "MIZAN_ACCESS_LOG", c = "access_log", to_c = function(v) return v or "" end,
    must = "must be \"off\", \"text\" or \"json\"",
    check = function(v) if v ~= "off" and v ~= "text" and v ~= "json" then return true end end,
    doc = "off, text or json (default: json in serve, text in dev)" },
  { name = "metrics", type = "boolean", env = "MIZAN_METRICS", default = true, c = "metrics",
    must = "must be true or false", doc = "serve GET metrics under the base path (Prometheus text)" },
  { name = "health", type = "boolean", env = "MIZAN_HEALTH", default = true,
    must = "must be true or false", doc = "serve GET health under the base path" },
  { name = "observe_listen", type = "string", env = "MIZAN_OBSERVE_LISTEN", c = "observe_listen",
    to_c = function(v) return v or "" end, must = "must look like \"127.0.0.1:9100\"",
    check = function(v) if not v:find(":%d+$") then return true end end,
    doc = "a separate address for health and metrics" },
  { name = "static_dir", type = "string", env = "MIZAN_STATIC_DIR", c = "static_dir",
    to_c = function(v) return v or "" end, must = "must be a folder path", check = nonempty,
    doc = "folder of the built front end (relative to the app)" },
  { name = "database", type = "string", env = "MIZAN_DATABASE",
    must = "must look like sqlite:path/to/file.db or postgres://user:pass@host:port/db",
    check = function(v) if not require("mizan.db").parse(v) then return true end end,
    doc = "sqlite:path or postgres://user:pass@host:port/db (default: sqlite:.mizan/mizan.db in the app folder)" },
  { name = "db_pool", type = "number", env = "MIZAN_DB_POOL", default = 10,
    must = "must be a whole number from 1 to 1000",
    check = function(v) if v ~= math.floor(v) or v < 1 or v > 1000 then return true end end,
    doc = "Postgres connections per worker" },
  { name = "db_timeout", type = "number", env = "MIZAN_DB_TIMEOUT", default = 30,
    must = "must be a positive number of seconds", check = positive,
    doc = "seconds a Postgres statement (or a wait for a connection) may take; then it is cancelled" },
  { name = "jobs_poll", type = "number", env = "MIZAN_JOBS_POLL", default = 1,
    must = "must be a number of seconds from 0.05 to 3600",
    check = function(v) if v < 0.05 or v > 3600 then return true end end,
    doc = "seconds between a worker's polls for due jobs (an enqueue in the same worker runs at once)" },
  { name = "migrate", type = "string", env = "MIZAN_MIGRATE", default = "check",
    must = "must be \"check\" or \"auto\"", check = function(v) if v ~= "check" and v ~= "auto" then return true end end,
    doc = "pending migrations at mizan serve: check refuses to start and names them, auto applies them "
      .. "(mizan dev always applies them)" },
  { name = "cache", type = "string", env = "MIZAN_CACHE", default = "memory",
    must = "must be \"memory\" or \"redis://host:port/db\"", check = redis_or("memory"),
    doc = "where cached answers live" },
  { name = "cache_size", type = "number", env = "MIZAN_CACHE_SIZE", default = 64 * 1024 * 1024,
    must = "must be a whole number of bytes, at least 1 MiB",
    check = function(v) if v < 1024 * 1024 or v ~= math.floor(v) then return true end end,
    doc = "bytes of the memory cache, shared by the workers" },
  { name = "cache_purge_timeout", type = "number", env = "MIZAN_CACHE_PURGE_TIMEOUT", default = 2,
    must = "must be a number of seconds above 0 and at most 60",
    check = function(v) if v <= 0 or v > 60 then return true end end,
    doc = "seconds a Redis cache purge may take before the mutation fails" },
  { name = "channels", type = "string", env = "MIZAN_CHANNELS", must = "must be redis://host:port/db",
    check = function(v) if not v:find("^redis://") then return true end end,
    doc = "Redis for channel messages between instances (default: this instance only)" },
  { name = "sessions", type = "string", env = "MIZAN_SESSIONS", default = "sqlite",
    must = "must be \"sqlite\" or \"redis://host:port/db\"", check = redis_or("sqlite"),
    doc = "where sessions live" },
  { name = "session_cookie", type = "string", env = "MIZAN_SESSION_COOKIE", default = "mizan_session",
    c = "session_cookie", must = "must be a cookie name of letters, digits, '_' and '-'",
    check = function(v) if not v:find("^[%w_%-]+$") or #v > 63 then return true end end,
    doc = "name of the session cookie" },
  { name = "session_ttl", type = "number", env = "MIZAN_SESSION_TTL", default = 14 * 24 * 3600,
    must = "must be a positive number of seconds", check = positive, doc = "seconds a session lives" },
  { name = "session_secure", type = "boolean", default = false, must = "must be true or false",
    doc = "mark the session cookie Secure (HTTPS only)" },
  { name = "accounts", type = "boolean", default = true, must = "must be true or false",
    doc = "the built-in login, logout and me functions" },
  { name = "allowed_origins", type = "list", env = "MIZAN_ALLOWED_ORIGINS", default = {},
    must = "must be a list of origins", item = origin,
    doc = "other origins allowed to call mutations with the session cookie" },
  { name = "cors.origins", type = "list", env = "MIZAN_CORS_ORIGINS", default = {},
    must = "must be a list of origins", item = origin,
    doc = "origins whose pages may call the API from the browser (CORS); they also pass the CSRF check" },
  { name = "cors.credentials", type = "boolean", env = "MIZAN_CORS_CREDENTIALS", default = false,
    must = "must be true or false",
    doc = "let those pages send the session cookie (Access-Control-Allow-Credentials)" },
  { name = "cors.max_age", type = "number", env = "MIZAN_CORS_MAX_AGE", default = 600,
    must = "must be a number of seconds (0 or more)", check = function(v) if v < 0 or v % 1 ~= 0 then return true end end,
    doc = "seconds a browser may keep a preflight's answer" },
  { name = "trusted_proxies", type = "list", env = "MIZAN_TRUSTED_PROXIES", default = {},
    must = "must be a list of IP addresses, like { \"127.0.0.1\" }", item = ip,
    doc = "proxies whose client-address header is believed" },
  { name = "proxy_header", type = "string", env = "MIZAN_PROXY_HEADER", default = "x-forwarded-for",
    must = "must be a header name, like \"x-forwarded-for\"",
    check = function(v) if not v:find("^[%w%-]+$") then return true end end, transform = string.lower,
    doc = "the header a trusted proxy puts the client address in" },
  -- outbound HTTP (mizan.http)
  { name = "http.ca_file", type = "string", env = "MIZAN_HTTP_CA_FILE", default = "",
    must = "must be the path of a PEM file of CA certificates",
    doc = "a PEM file of CA certificates that mizan.http trusts besides the system store (\"\": none)" },
  -- limits: bytes are whole numbers, timeouts may be fractions of a second
  { name = "limits.max_head", type = "number", env = "MIZAN_MAX_HEAD", default = 16 * 1024, c = "max_head",
    must = "must be a positive number", check = bytes(1024), doc = "bytes of request line and headers (431)" },
  { name = "limits.max_body", type = "number", env = "MIZAN_MAX_BODY", default = 1024 * 1024, c = "max_body",
    must = "must be a positive number", check = bytes(), doc = "bytes of a request body (413)" },
  { name = "limits.header_timeout", type = "number", env = "MIZAN_HEADER_TIMEOUT", default = 60,
    c = "header_timeout_ms", to_c = ms, must = "must be a positive number", check = positive,
    doc = "seconds to receive the whole head (408)" },
  { name = "limits.body_timeout", type = "number", env = "MIZAN_BODY_TIMEOUT", default = 60,
    c = "body_timeout_ms", to_c = ms, must = "must be a positive number", check = positive,
    doc = "seconds to receive the whole body (408)" },
  { name = "limits.keepalive_timeout", type = "number", env = "MIZAN_KEEPALIVE_TIMEOUT", default = 75,
    c = "keepalive_timeout_ms", to_c = ms, must = "must be a positive number", check = positive,
    doc = "idle seconds between requests" },
  { name = "limits.send_timeout", type = "number", env = "MIZAN_SEND_TIMEOUT", default = 60,
    c = "send_timeout_ms", to_c = ms, must = "must be a positive number", check = positive,
    doc = "seconds a client may take to read an answer" },
  { name = "limits.drain_timeout", type = "number", env = "MIZAN_DRAIN_TIMEOUT", default = 10,
    c = "drain_timeout_ms", to_c = ms, must = "must be a positive number", check = positive,
    doc = "seconds a graceful shutdown waits for requests in flight" },
  { name = "limits.ws_buffer", type = "number", env = "MIZAN_WS_BUFFER", default = 64 * 1024 * 1024, c = "ws_buffer",
    must = "must be a positive number", check = bytes(),
    doc = "bytes of unfinished WebSocket input a worker holds (then 1013), and apart, of unsent output (then 1008)" },
}

M.by_name = {}
for _, o in ipairs(M.list) do
  M.by_name[o.name] = o
  o.group, o.key = o.name:match("^([%w_]+)%.([%w_]+)$")
end

--- The default of an option, by name (a fresh copy for lists).
function M.default(name)
  local o = assert(M.by_name[name], name)
  if type(o.default) == "table" then
    local t = {}
    for i, v in ipairs(o.default) do t[i] = v end
    return t
  end
  return o.default
end

return M
