-- mizan.testing: the test client for app authors and for Mizan's own specs.
--
--   local testing = require "mizan.testing"
--   local app = testing.app("examples/todo")           -- in-process
--   local res = app:call("echo", { text = "hi" })      -- res.status, res.body, res.headers
--
--   local srv = testing.server("examples/todo")        -- a real `mizan` process
--   local res = srv:call("echo", { text = "hi" })      -- over real HTTP
--   srv:stop()
--
-- In-process calls run the real dispatcher as a task on the real loop, so
-- mizan.sleep and every other yield behave as in a server.
local core = require "mizan.core"
local json = require "mizan.json"
local kit = require "mizan.testkit"
local options = require "mizan.options"
local respond = require "mizan.dispatch.respond"
local ROUTES = options.routes
local timers = require "mizan.timers"

local M = {}

---------------------------------------------------------------- in-process

local App = {}
App.__index = App

--- Load an app folder into this Lua state, its migrations applied to its
-- database (the built-ins' tables and the app's own), as serving would.
function M.app(dir, mode)
  local host = require "mizan.host"
  -- the test's clock: timers fire only from app:advance, jobs run only from
  -- app:run_jobs, and req:defer's work runs before app:call returns
  timers.use_fake_clock()
  timers.collect_deferred(true)
  local handler, cfg = host.load(dir, mode or "test")
  assert(host.migrate())
  return setmetatable({ handler = handler, config = cfg }, App)
end

local function in_process(self, req)
  req.headers = req.headers or {}
  req.ip = req.ip or "127.0.0.1"
  req.query = req.query or ""
  req.body = req.body or ""
  local res = { core.run(self.handler, req) }
  if not res[1] then error(res[2], 2) end
  -- the response is made: now the work the call deferred, to its end
  timers.drain_deferred()
  local rec = respond.read(unpack(res, 2, 7))
  -- the response record C would write (mizan.dispatch.respond), read as a
  -- client over HTTP would see it
  local headers = {}
  local list = rec.headers or {}
  for i = 1, #list, 2 do headers[list[i]] = list[i + 1] end
  local body = rec.body
  if type(body) == "table" then -- JSON data C would encode with the codec
    body = assert(json.decode(assert(json.encode(body))))
  elseif type(body) == "string" and (headers["Content-Type"] or ""):find("application/json", 1, true) then
    body = assert(json.decode(body))
  end
  return { status = rec.status, body = body, headers = headers, cache = rec.cache }
end

---------------------------------------------------------------- time and jobs
--
-- The in-process app runs on the test's clock (mizan.now(), timers, job
-- due times and backoff all read it): the real time plus an offset that
-- only app:advance moves. Nothing fires by itself:
--   app:advance(seconds)  move the clock, running each timer (mizan.after,
--                         mizan.every) that falls due on the way, in order;
--                         returns how many fired
--   app:run_jobs()        run every job attempt due now (schedules insert
--                         their current slot first), each to its end, until
--                         none is due; returns how many ran
--   app:now()             the test's clock
--   app:run(fn, ...)      fn(...) in a task (mizan.jobs.enqueue, mizan.db...):
--                         its results, or its error raised
-- req:defer's work runs before app:call returns (after the response is made).
M.clock = { now = timers.now, advance = function(s) return timers.advance(s) end }

function App:advance(seconds) return timers.advance(seconds) end
function App:now() return timers.now() end
function App:run_jobs(limit) return require("mizan.jobs").run_due(limit) end
function App:run(fn, ...)
  local res = { core.run(fn, ...) }
  if not res[1] then error(res[2], 2) end
  return unpack(res, 2, table.maxn(res))
end

--- app:call(name, args, opts) with POST; opts.method = "GET" sends args as a
-- query string; opts.user ({ id = ... }) calls as that user.
function App:call(name, args, opts)
  opts = opts or {}
  local method = opts.method or "POST"
  local req = { route = "call", name = name, method = method, path = self.config.base_path .. ROUTES.call .. name .. "/",
                headers = opts.headers, _user = opts.user }
  if method == "GET" or method == "HEAD" then
    req.query = M.encode_query(args or {})
  else
    req.headers = req.headers or { ["content-type"] = "application/json" }
    req.body = opts.raw_body or assert(json.encode(args or json.object {}))
  end
  return in_process(self, req)
end

--- app:context(name, params, opts): GET ctx/<name>/ in process. opts.user
-- ({ id = ... }) calls as that user, until sessions give a real way to.
function App:context(name, params, opts)
  return in_process(self, { route = "ctx", name = name, method = "GET", _user = opts and opts.user,
                            path = self.config.base_path .. ROUTES.ctx .. name .. "/",
                            query = M.encode_query(params or {}) })
end

function M.encode_query(t)
  local parts, keys = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local function esc(s)
    return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
  end
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do parts[#parts + 1] = esc(k) .. "=" .. esc(x) end
    else
      parts[#parts + 1] = esc(k) .. "=" .. esc(v)
    end
  end
  return table.concat(parts, "&")
end

---------------------------------------------------------------- raw HTTP

local Conn = {}
Conn.__index = Conn

--- A raw TCP connection to 127.0.0.1:port, for byte-exact HTTP specs.
function M.connect(port, timeout)
  local fd, err = kit.connect("127.0.0.1", port, timeout or 5)
  if not fd then return nil, err end
  return setmetatable({ fd = fd, buf = "" }, Conn)
end

function Conn:send(data) return kit.send(self.fd, data) end
function Conn:shutdown() kit.shutdown(self.fd) end
function Conn:close()
  if self.fd then kit.close(self.fd); self.fd = nil end
end

-- Read more bytes into the buffer. nil, "timeout" | "closed" when none came.
function Conn:fill(timeout)
  local data, err = kit.recv(self.fd, 65536, timeout or 5)
  if not data then return nil, err end
  self.buf = self.buf .. data
  return true
end

--- Read until the peer closes (or the timeout); returns everything unread.
function Conn:read_all(timeout)
  local deadline = core.monotonic() + (timeout or 5)
  while core.monotonic() < deadline do
    local ok, err = self:fill(deadline - core.monotonic())
    if not ok then
      local out = self.buf
      self.buf = ""
      return out, err
    end
  end
  local out = self.buf
  self.buf = ""
  return out, "timeout"
end

--- Is the connection closed by the peer? Waits up to `timeout` seconds.
function Conn:closed(timeout)
  local deadline = core.monotonic() + (timeout or 5)
  while true do
    local left = deadline - core.monotonic()
    if left <= 0 then return false end
    local ok, err = self:fill(left)
    if not ok then return err == "closed" end
  end
end

local function parse_head(head)
  local status_line, rest = head:match("^([^\r\n]*)\r\n(.*)$")
  local version, status = (status_line or head):match("^HTTP/(%d%.%d) (%d%d%d)")
  local headers = {}
  for line in (rest or ""):gmatch("([^\r\n]+)") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then
      k = k:lower()
      headers[k] = headers[k] and (headers[k] .. ", " .. v) or v
    end
  end
  return tonumber(status), headers, version
end

--- Read one response. opts.head = true for a response to HEAD (no body).
-- Returns { status, headers, body, json } or nil, err.
function Conn:read_response(opts)
  opts = opts or {}
  local timeout = opts.timeout or 10
  local deadline = core.monotonic() + timeout
  local function more()
    local left = deadline - core.monotonic()
    if left <= 0 then return nil, "timeout" end
    return self:fill(left)
  end
  while not self.buf:find("\r\n\r\n", 1, true) do
    local ok, err = more()
    if not ok then return nil, err end
  end
  local head_end = self.buf:find("\r\n\r\n", 1, true)
  local status, headers, version = parse_head(self.buf:sub(1, head_end - 1))
  self.buf = self.buf:sub(head_end + 4)
  if not status then return nil, "malformed status line" end
  local body = ""
  local len = tonumber(headers["content-length"] or "")
  if status >= 200 and status ~= 204 and status ~= 304 and not opts.head then
    if len then
      while #self.buf < len do
        local ok, err = more()
        if not ok then return nil, "body cut short: " .. tostring(err) end
      end
      body = self.buf:sub(1, len)
      self.buf = self.buf:sub(len + 1)
    elseif (headers.connection or ""):lower() == "close" then
      body = self:read_all(deadline - core.monotonic())
    end
  end
  local res = { status = status, headers = headers, body = body, version = version }
  if (headers["content-type"] or ""):find("application/json", 1, true) and body ~= "" then
    res.json = json.decode(body)
  end
  return res
end

--- Build a request's bytes: method, path, headers (a list of "K: V" or a map), body.
function M.request_bytes(method, path, headers, body)
  local lines = { ("%s %s HTTP/1.1"):format(method, path) }
  local has_host, has_len = false, false
  if headers then
    if #headers > 0 then
      for _, h in ipairs(headers) do lines[#lines + 1] = h end
    else
      for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
    end
    for _, l in ipairs(lines) do
      if l:lower():find("^host:") then has_host = true end
      if l:lower():find("^content%-length:") or l:lower():find("^transfer%-encoding:") then has_len = true end
    end
  end
  if not has_host then lines[#lines + 1] = "Host: localhost" end
  if body and not has_len then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

---------------------------------------------------------------- server process

local Server = {}
Server.__index = Server

local tmp_counter = 0
local function tmpname(tag)
  tmp_counter = tmp_counter + 1
  return ("/tmp/mizan-test-%d-%d-%s"):format(require("mizan.core").getpid(), tmp_counter, tag)
end

--- Start `mizan <command> <dir>` on a free port. opts.command ("dev" by default),
-- opts.env (extra environment), opts.exe (the binary; this one by default).
-- A spec that fails before its teardown must not leave its processes
-- running: a guard collected with its owner (at the latest when the test
-- run's Lua state closes) kills what is still there.
local function guard(owner)
  local g = newproxy(true)
  getmetatable(g).__gc = function()
    local pid = owner.pid
    if pid then
      kit.kill(pid, "CONT")
      kit.kill(pid, "KILL")
      kit.wait(pid, 5)
    end
  end
  owner._guard = g
end

function M.server(dir, opts)
  opts = opts or {}
  -- each server gets a database and a secret of its own unless told otherwise,
  -- so specs never write into the app folder nor share state by accident
  -- (M.new_database, when a spec sets it, makes that database instead: a
  -- fresh Postgres database per server, say); `serve` applies the
  -- migrations to that fresh database as `dev` does
  local database = M.new_database and M.new_database() or "sqlite:" .. tmpname("db.sqlite")
  local env = { MIZAN_LISTEN = "127.0.0.1:0", MIZAN_DATABASE = database, MIZAN_MIGRATE = "auto",
                MIZAN_SECRET = require("mizan.crypto").random_hex(32) }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local log = tmpname("server.log")
  local out = tmpname("server.out")
  local exe = opts.exe or assert(kit.exe())
  local argv = { exe, opts.command or "dev" }
  if opts.args then
    for _, a in ipairs(opts.args) do argv[#argv + 1] = a end
  else
    argv[#argv + 1] = dir
  end
  local pid = assert(kit.spawn(argv, env, out, log))
  local self = setmetatable({ pid = pid, log_path = log, out_path = out, dir = dir, env = env, exe = exe,
                              session_cookie = env.MIZAN_SESSION_COOKIE or options.default("session_cookie") }, Server)
  guard(self)
  local deadline = core.monotonic() + (opts.start_timeout or 15)
  while core.monotonic() < deadline do
    local text = self:log()
    -- the startup line says where: the port and the base path in effect
    local port, base = text:match("serving .- on http://[^:]+:(%d+)(/%S*)")
    if port then
      self.port = tonumber(port)
      self.base_path = base
      return self
    end
    local code = kit.wait(pid, 0)
    if code then
      self.pid = nil
      -- read the log again: what it wrote just before exiting came after `text`
      error(("mizan %s %s exited (%s) before listening:\n%s"):format(opts.command or "dev", dir, code, self:log()), 2)
    end
    kit.sleep(0.01)
  end
  self:stop("KILL")
  error("mizan did not start listening in time:\n" .. self:log(), 2)
end

--- Everything the server wrote to stdout so far (the access log).
function Server:stdout()
  local f = io.open(self.out_path, "r")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

--- Everything the server wrote to stderr so far.
function Server:log()
  local f = io.open(self.log_path, "r")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

function Server:connect() return assert(M.connect(self.port)) end

--- One request on a fresh connection. Returns the response table.
function Server:request(method, path, opts)
  opts = opts or {}
  local c = self:connect()
  c:send(M.request_bytes(method, path, opts.headers, opts.body))
  local res, err = c:read_response { head = method == "HEAD", timeout = opts.timeout }
  c:close()
  return assert(res, err)
end

--- server:call(name, args, opts): POST (or opts.method = "GET") to call/<name>/.
function Server:call(name, args, opts)
  opts = opts or {}
  local method = opts.method or "POST"
  local path = self.base_path .. ROUTES.call .. name .. "/"
  if method == "GET" or method == "HEAD" then
    local q = M.encode_query(args or {})
    return self:request(method, q ~= "" and path .. "?" .. q or path, opts)
  end
  return self:request(method, path, {
    headers = opts.headers or { ["Content-Type"] = "application/json" },
    body = opts.raw_body or assert(json.encode(args or json.object {})),
    timeout = opts.timeout,
  })
end

-- After the process exits: a sanitizer report in its log fails the spec,
-- so the sanitizer build checks the servers that specs start, too.
function Server:exited(code, how)
  self.pid, self.exit_code, self.exit_how = nil, code, how
  local log = self:log()
  os.remove(self.log_path)
  os.remove(self.out_path)
  if log:find("ERROR: AddressSanitizer", 1, true) or log:find("ERROR: LeakSanitizer", 1, true)
     or log:find("runtime error:", 1, true) then
    error("the server reported a sanitizer error:\n" .. log, 3)
  end
  return code, how
end

--- Run `mizan users ...` against this server's app and database. Returns
-- the output and the exit status.
function Server:users(args, password)
  local env = ("MIZAN_DATABASE=%q MIZAN_PASSWORD=%q"):format(self.env.MIZAN_DATABASE or "", password or "")
  local p = io.popen(("%s %q users %s --app %q 2>&1; echo \"#exit:$?\""):format(env, self.exe, args, self.dir))
  local out = p:read("*a")
  p:close()
  local body, code = out:match("^(.-)#exit:(%d+)%s*$")
  return body, tonumber(code)
end

---------------------------------------------------------------- a browser-like agent

local Agent = {}
Agent.__index = Agent

--- An agent keeps the session cookie between calls, like a browser would.
function Server:agent() return setmetatable({ srv = self, cookie = nil }, Agent) end

function Agent:remember(res)
  local sc = res.headers["set-cookie"]
  if sc then
    -- whatever the app names its session cookie (option session_cookie)
    local name, value = sc:match("^([^=;%s]+)=([^;]*)")
    local age = tonumber(sc:match("Max%-Age=(%d+)"))
    self.cookie = (value ~= "" and age ~= 0) and value or nil
    self.cookie_name = name
  end
  return res
end

function Agent:headers(extra)
  local h = { ["Content-Type"] = "application/json" }
  if self.cookie then h.Cookie = (self.cookie_name or self.srv.session_cookie) .. "=" .. self.cookie end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

--- agent:call(name, args, opts): as Server:call, with the session cookie.
function Agent:call(name, args, opts)
  opts = opts or {}
  local o = { method = opts.method, raw_body = opts.raw_body, headers = self:headers(opts.headers) }
  return self:remember(self.srv:call(name, args, o))
end

function Agent:context(name, params)
  return self:remember(self.srv:context(name, params, { headers = self:headers() }))
end

--- server:context(name, params): GET ctx/<name>/ over HTTP.
function Server:context(name, params, opts)
  local q = M.encode_query(params or {})
  local path = self.base_path .. ROUTES.ctx .. require("mizan.schema").path_segment(name) .. "/"
  return self:request("GET", q ~= "" and path .. "?" .. q or path, opts)
end

--- Wait for the process to exit by itself. Returns code, how.
function Server:wait(timeout)
  if not self.pid then return self.exit_code, self.exit_how end
  local code, how = kit.wait(self.pid, timeout or 15)
  if not code then return nil, how end
  return self:exited(code, how)
end

--- Send a signal (TERM by default) and wait for the exit. Returns code, how.
function Server:stop(signal, timeout)
  if not self.pid then return self.exit_code, self.exit_how end
  kit.kill(self.pid, signal or "TERM")
  local code, how = kit.wait(self.pid, timeout or 15)
  if not code then
    kit.kill(self.pid, "KILL")
    code, how = kit.wait(self.pid, 5)
  end
  return self:exited(code, how)
end

---------------------------------------------------------------- WebSocket client

local WS = {}
WS.__index = WS

local function ws_frame(opcode, payload, o)
  o = o or {}
  local fin = o.fin ~= false and 0x80 or 0
  local b1 = fin + (o.rsv or 0) * 16 + opcode
  local n = #payload
  local masked = o.masked ~= false
  local head
  if n < 126 then head = string.char(b1, (masked and 0x80 or 0) + n)
  elseif n < 65536 then head = string.char(b1, (masked and 0x80 or 0) + 126, math.floor(n / 256), n % 256)
  else
    local bytes = {}
    local v = n
    for i = 8, 1, -1 do bytes[i] = v % 256; v = math.floor(v / 256) end
    head = string.char(b1, (masked and 0x80 or 0) + 127) .. string.char(unpack(bytes))
  end
  if not masked then return head .. payload end
  local key = { math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255) }
  local out = {}
  for i = 1, n do out[i] = string.char(bit.bxor(payload:byte(i), key[(i - 1) % 4 + 1])) end
  return head .. string.char(unpack(key)) .. table.concat(out)
end
M.ws_frame = ws_frame

--- Open a WebSocket to `port` (raw frames; for specs). Returns the socket and
-- the handshake response, or nil and that response.
function M.websocket(port, opts)
  opts = opts or {}
  local c = assert(M.connect(port))
  local headers = { "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: " .. (opts.version or "13"),
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" }
  for _, h in ipairs(opts.headers or {}) do headers[#headers + 1] = h end
  c:send(M.request_bytes("GET", opts.path or options.default("base_path") .. ROUTES.ws, headers))
  local res = assert(c:read_response { head = true })
  if res.status ~= 101 then
    -- read the body of the refusal too
    local len = tonumber(res.headers["content-length"] or "0")
    while #c.buf < len do if not c:fill(5) then break end end
    res.body = c.buf:sub(1, len)
    res.json = json.decode(res.body)
    c:close()
    return nil, res
  end
  return setmetatable({ conn = c }, WS), res
end

function WS:send_frame(opcode, payload, o) return self.conn:send(ws_frame(opcode, payload or "", o)) end
function WS:send_raw(bytes) return self.conn:send(bytes) end
function WS:send_json(t) return self:send_frame(1, assert(json.encode(t))) end

--- Read one frame: { fin, opcode, payload } or nil, err ("closed", "timeout").
function WS:read_frame(timeout)
  local c = self.conn
  local deadline = core.monotonic() + (timeout or 5)
  local function need(n)
    while #c.buf < n do
      local left = deadline - core.monotonic()
      if left <= 0 then return nil, "timeout" end
      local ok, err = c:fill(left)
      if not ok then return nil, err end
    end
    return true
  end
  local ok, err = need(2)
  if not ok then return nil, err end
  local b1, b2 = c.buf:byte(1, 2)
  local len, hl = b2 % 128, 2
  if len == 126 then
    ok, err = need(4)
    if not ok then return nil, err end
    len, hl = c.buf:byte(3) * 256 + c.buf:byte(4), 4
  elseif len == 127 then
    ok, err = need(10)
    if not ok then return nil, err end
    len = 0
    for i = 3, 10 do len = len * 256 + c.buf:byte(i) end
    hl = 10
  end
  ok, err = need(hl + len)
  if not ok then return nil, err end
  local payload = c.buf:sub(hl + 1, hl + len)
  c.buf = c.buf:sub(hl + len + 1)
  return { fin = b1 >= 128, opcode = b1 % 16, payload = payload, masked = b2 >= 128 }
end

--- The next text message, decoded (pongs and pings are skipped).
function WS:read_json(timeout)
  while true do
    local f, err = self:read_frame(timeout)
    if not f then return nil, err end
    if f.opcode == 1 then return json.decode(f.payload) end
    if f.opcode == 8 then return nil, "close", f end
  end
end

--- Read until a close frame: its code, or nil and why.
function WS:read_close(timeout)
  while true do
    local f, err = self:read_frame(timeout)
    if not f then return nil, err end
    if f.opcode == 8 then
      if #f.payload < 2 then return 1005 end
      return f.payload:byte(1) * 256 + f.payload:byte(2), f.payload:sub(3)
    end
  end
end

function WS:close() self.conn:close() end

---------------------------------------------------------------- redis-server

local Redis = {}
Redis.__index = Redis

--- Start a throwaway redis-server on a free loopback port (no persistence).
-- redis:url(db), redis:kill(signal), redis:restart(), redis:stop().
function M.redis()
  local self = setmetatable({ port = assert(kit.free_port()), log_path = tmpname("redis.log") }, Redis)
  self:start()
  return self
end

function Redis:start()
  self.pid = assert(kit.spawn({ "redis-server", "--port", tostring(self.port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no" }, {}, self.log_path, self.log_path))
  guard(self)
  local deadline = core.monotonic() + 10
  while core.monotonic() < deadline do
    local fd = kit.connect("127.0.0.1", self.port, 0.2)
    if fd then
      kit.close(fd)
      return
    end
    kit.sleep(0.02)
  end
  error("redis-server did not start on port " .. self.port)
end

function Redis:url(db) return ("redis://127.0.0.1:%d/%d"):format(self.port, db or 0) end

function Redis:kill(signal)
  kit.kill(self.pid, signal or "KILL")
  if signal == nil or signal == "KILL" or signal == "TERM" then
    kit.wait(self.pid, 10)
    self.pid = nil
  end
end

function Redis:restart()
  if self.pid then self:kill("KILL") end
  self:start()
end

function Redis:stop()
  if self.pid then
    kit.kill(self.pid, "CONT")
    self:kill("KILL")
  end
  os.remove(self.log_path)
end

---------------------------------------------------------------- a TCP proxy

local Proxy = {}
Proxy.__index = Proxy

--- A TCP proxy in a child process from a fresh loopback port (proxy.port)
-- to 127.0.0.1:port, to cut one client off from a server while others
-- still reach it: proxy:freeze() stops all forwarding (connections stay
-- open and hang, like a dead network path), proxy:thaw() resumes it,
-- proxy:stop() ends it.
function M.proxy(port)
  local pid, listen_port = assert(kit.proxy(port))
  local self = setmetatable({ pid = pid, port = listen_port }, Proxy)
  guard(self)
  return self
end

function Proxy:freeze() assert(kit.kill(self.pid, "STOP")) end
function Proxy:thaw() assert(kit.kill(self.pid, "CONT")) end

function Proxy:stop()
  if not self.pid then return end
  kit.kill(self.pid, "KILL")
  kit.wait(self.pid, 10)
  self.pid = nil
end

---------------------------------------------------------------- runners

--- `mizan test`: busted inside the host. Returns the exit status, so the
-- host can close the Lua state (running every finaliser) before exiting.
function M.run_busted()
  local Exit = {}
  local real_exit = os.exit
  os.exit = function(code)
    if code == true or code == nil then code = 0 elseif code == false then code = 1 end
    error(setmetatable({ code = code }, Exit), 0)
  end
  local ok, err = pcall(require "busted.runner", { standalone = false })
  os.exit = real_exit
  if ok then return 0 end
  if getmetatable(err) == Exit then return err.code end
  -- under Lua 5.1 rules busted raises a nil error to report failure
  if err == nil then return 1 end
  error(err, 0)
end

--- `mizan lua FILE`: run a script with the framework available.
function M.run_script(file)
  local chunk = assert(loadfile(file))
  chunk(unpack(arg or {}, 1))
end

return M
