-- mizan.config: the app's settings, from mizan.config{} and the environment.
-- The environment wins, so one build runs anywhere.
local M = {}

local current, set_by_app

local LIMITS = {
  max_head = "MIZAN_MAX_HEAD", max_body = "MIZAN_MAX_BODY",
  header_timeout = "MIZAN_HEADER_TIMEOUT", body_timeout = "MIZAN_BODY_TIMEOUT",
  keepalive_timeout = "MIZAN_KEEPALIVE_TIMEOUT", send_timeout = "MIZAN_SEND_TIMEOUT",
  drain_timeout = "MIZAN_DRAIN_TIMEOUT", ws_buffer = "MIZAN_WS_BUFFER",
}
-- Byte sizes must be whole numbers; timeouts may be fractions of a second.
local BYTES = { max_head = true, max_body = true, ws_buffer = true }

local function check_limit(name, v)
  if type(v) ~= "number" or v <= 0 then return "must be a positive number" end
  if BYTES[name] and v ~= math.floor(v) then return "must be a whole number of bytes" end
  if BYTES[name] and name == "max_head" and v < 1024 then return "must be at least 1024 bytes" end
end

local LATER = {}

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

-- trusted_proxies: a list of addresses; the error names where it came from.
local function check_proxies(list, where)
  for _, a in ipairs(list) do
    if not M.is_ip(a) then
      return ("%s: '%s' is not an IP address (list the proxies' own addresses, like \"127.0.0.1\")")
        :format(where, tostring(a))
    end
  end
end

local function check_header_name(v) return type(v) == "string" and v:find("^[%w%-]+$") ~= nil end

function M.reset()
  current = { listen = "127.0.0.1:8080", base_path = "/api/mizan/", limits = {}, cache = "memory",
              cache_size = 64 * 1024 * 1024, accounts = true, sessions = "sqlite", allowed_origins = {},
              session_ttl = 14 * 24 * 3600, session_secure = false, metrics = true, health = true,
              trusted_proxies = {}, proxy_header = "x-forwarded-for" }
  set_by_app = false
end

local function check_base_path(v)
  return type(v) == "string" and v:find("^/[%w%-%._~/]*$") and v:sub(-1) == "/"
end

--- mizan.config { ... } from app code. Errors name the option.
function M.set(t, level)
  level = (level or 1) + 1
  if type(t) ~= "table" then error("mizan.config expects a table", level) end
  if set_by_app then error("mizan.config was already called; call it once", level) end
  set_by_app = true
  for k, v in pairs(t) do
    if LATER[k] then
      error(("mizan.config: option '%s' is not supported yet (%s arrives in a later release)"):format(k, LATER[k]), level)
    elseif k == "listen" or k == "secret" then
      if type(v) ~= "string" or v == "" then error(("mizan.config: option '%s' must be a non-empty string"):format(k), level) end
      current[k] = v
    elseif k == "access_log" then
      if v ~= "off" and v ~= "text" and v ~= "json" then
        error("mizan.config: option 'access_log' must be \"off\", \"text\" or \"json\"", level)
      end
      current.access_log = v
    elseif k == "static_dir" then
      if type(v) ~= "string" or v == "" then error("mizan.config: option 'static_dir' must be a folder path", level) end
      current.static_dir = v
    elseif k == "observe_listen" then
      if type(v) ~= "string" or not v:find(":%d+$") then
        error("mizan.config: option 'observe_listen' must look like \"127.0.0.1:9100\"", level)
      end
      current.observe_listen = v
    elseif k == "accounts" or k == "session_secure" or k == "metrics" or k == "health" then
      if type(v) ~= "boolean" then error(("mizan.config: option '%s' must be true or false"):format(k), level) end
      current[k] = v
    elseif k == "session_ttl" then
      if type(v) ~= "number" or v <= 0 then error("mizan.config: option 'session_ttl' must be a positive number of seconds", level) end
      current.session_ttl = v
    elseif k == "database" then
      if type(v) ~= "string" or not v:find("^sqlite:.") then
        error("mizan.config: option 'database' must look like \"sqlite:path/to/file.db\"", level)
      end
      current.database = v
    elseif k == "sessions" then
      if type(v) ~= "string" or not (v == "sqlite" or v:find("^redis://")) then
        error("mizan.config: option 'sessions' must be \"sqlite\" or \"redis://host:port/db\"", level)
      end
      current.sessions = v
    elseif k == "allowed_origins" then
      if type(v) ~= "table" then error("mizan.config: option 'allowed_origins' must be a list of origins", level) end
      for _, o in ipairs(v) do
        if type(o) ~= "string" or not o:find("^https?://[^/]+$") then
          error(("mizan.config: allowed_origins: '%s' is not an origin like https://app.example.com"):format(tostring(o)), level)
        end
      end
      current.allowed_origins = v
    elseif k == "trusted_proxies" then
      if type(v) ~= "table" then
        error("mizan.config: option 'trusted_proxies' must be a list of IP addresses, like { \"127.0.0.1\" }", level)
      end
      local bad = check_proxies(v, "mizan.config: trusted_proxies")
      if bad then error(bad, level) end
      current.trusted_proxies = v
    elseif k == "proxy_header" then
      if not check_header_name(v) then
        error("mizan.config: option 'proxy_header' must be a header name, like \"x-forwarded-for\"", level)
      end
      current.proxy_header = v:lower()
    elseif k == "cache" then
      if type(v) ~= "string" or not (v == "memory" or v:find("^redis://")) then
        error("mizan.config: option 'cache' must be \"memory\" or \"redis://host:port/db\"", level)
      end
      current.cache = v
    elseif k == "cache_size" then
      if type(v) ~= "number" or v < 1024 * 1024 or v ~= math.floor(v) then
        error("mizan.config: option 'cache_size' must be a whole number of bytes, at least 1 MiB", level)
      end
      current.cache_size = v
    elseif k == "base_path" then
      if not check_base_path(v) then error("mizan.config: option 'base_path' must look like '/api/mizan/' (leading and trailing slash)", level) end
      current.base_path = v
    elseif k == "limits" then
      if type(v) ~= "table" then error("mizan.config: option 'limits' must be a table", level) end
      for lk, lv in pairs(v) do
        if not LIMITS[lk] then error(("mizan.config: limits has no option '%s'"):format(tostring(lk)), level) end
        local bad = check_limit(lk, lv)
        if bad then error(("mizan.config: limits.%s %s"):format(lk, bad), level) end
        current.limits[lk] = lv
      end
    else
      error(("mizan.config: unknown option '%s'"):format(tostring(k)), level)
    end
  end
end

--- The effective configuration: app settings overridden by the environment.
function M.finalize(getenv)
  getenv = getenv or os.getenv
  local c = current
  c.listen = getenv("MIZAN_LISTEN") or c.listen
  c.secret = getenv("MIZAN_SECRET") or c.secret
  c.base_path = getenv("MIZAN_BASE_PATH") or c.base_path
  if not check_base_path(c.base_path) then error("MIZAN_BASE_PATH must look like '/api/mizan/'", 0) end
  for k, var in pairs(LIMITS) do
    local v = getenv(var)
    if v then
      local n = tonumber(v)
      local bad
      if n then bad = check_limit(k, n) else bad = "must be a positive number" end
      if bad then error(("%s %s, got '%s'"):format(var, bad, v), 0) end
      c.limits[k] = n
    end
  end
  c.cache = getenv("MIZAN_CACHE") or c.cache
  if c.cache == "memory" then
    c.cache_backend = "memory"
  elseif c.cache:find("^redis://") then
    c.cache_backend = "redis"
  else
    error(("MIZAN_CACHE must be \"memory\" or \"redis://host:port/db\", got '%s'"):format(c.cache), 0)
  end
  local size = getenv("MIZAN_CACHE_SIZE")
  if size then
    local n = tonumber(size)
    if not n or n < 1024 * 1024 or n ~= math.floor(n) then
      error(("MIZAN_CACHE_SIZE must be a whole number of bytes, at least 1 MiB, got '%s'"):format(size), 0)
    end
    c.cache_size = n
  end
  local pto = getenv("MIZAN_CACHE_PURGE_TIMEOUT")
  if pto then
    local n = tonumber(pto)
    if not n or n <= 0 or n > 60 then
      error(("MIZAN_CACHE_PURGE_TIMEOUT must be a number of seconds above 0 and at most 60, got '%s'"):format(pto), 0)
    end
    c.cache_purge_timeout = n
  end
  c.database = getenv("MIZAN_DATABASE") or c.database
  if c.database and not c.database:find("^sqlite:.") then
    error(("MIZAN_DATABASE must look like sqlite:path/to/file.db, got '%s'"):format(c.database), 0)
  end
  c.sessions = getenv("MIZAN_SESSIONS") or c.sessions
  if not (c.sessions == "sqlite" or c.sessions:find("^redis://")) then
    error(("MIZAN_SESSIONS must be \"sqlite\" or \"redis://host:port/db\", got '%s'"):format(c.sessions), 0)
  end
  local log = getenv("MIZAN_ACCESS_LOG")
  if log then
    if log ~= "off" and log ~= "text" and log ~= "json" then
      error(("MIZAN_ACCESS_LOG must be off, text or json, got '%s'"):format(log), 0)
    end
    c.access_log = log
  end
  for _, k in ipairs { "metrics", "health" } do
    local v = getenv("MIZAN_" .. k:upper())
    if v then
      if v ~= "on" and v ~= "off" then error(("MIZAN_%s must be on or off, got '%s'"):format(k:upper(), v), 0) end
      c[k] = v == "on"
    end
  end
  c.observe_listen = getenv("MIZAN_OBSERVE_LISTEN") or c.observe_listen
  c.channels = getenv("MIZAN_CHANNELS") or c.channels
  c.static_dir = getenv("MIZAN_STATIC_DIR") or c.static_dir
  if c.channels and not c.channels:find("^redis://") then
    error(("MIZAN_CHANNELS must be redis://host:port/db, got '%s'"):format(c.channels), 0)
  end
  local workers = getenv("MIZAN_WORKERS")
  if workers then
    local n = tonumber(workers)
    if not n or n < 1 or n ~= math.floor(n) or n > 256 then
      error(("MIZAN_WORKERS must be a whole number from 1 to 256, got '%s'"):format(workers), 0)
    end
    c.workers = n
  end
  local sttl = getenv("MIZAN_SESSION_TTL")
  if sttl then
    local n = tonumber(sttl)
    if not n or n <= 0 then error(("MIZAN_SESSION_TTL must be a positive number of seconds, got '%s'"):format(sttl), 0) end
    c.session_ttl = n
  end
  local origins = getenv("MIZAN_ALLOWED_ORIGINS")
  if origins then
    c.allowed_origins = {}
    for o in origins:gmatch("[^,%s]+") do
      if not o:find("^https?://[^/]+$") then
        error(("MIZAN_ALLOWED_ORIGINS: '%s' is not an origin like https://app.example.com"):format(o), 0)
      end
      c.allowed_origins[#c.allowed_origins + 1] = o
    end
  end
  local proxies = getenv("MIZAN_TRUSTED_PROXIES")
  if proxies then
    local list = {}
    for a in proxies:gmatch("[^,%s]+") do list[#list + 1] = a end
    local bad = check_proxies(list, "MIZAN_TRUSTED_PROXIES")
    if bad then error(bad, 0) end
    c.trusted_proxies = list
  end
  local header = getenv("MIZAN_PROXY_HEADER")
  if header then
    if not check_header_name(header) then
      error(("MIZAN_PROXY_HEADER must be a header name like x-forwarded-for, got '%s'"):format(header), 0)
    end
    c.proxy_header = header:lower()
  end
  return c
end

function M.get() return current end

M.reset()
return M
