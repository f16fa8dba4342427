-- Local servers for the outbound HTTP specs, on 127.0.0.1 only.
--
--   local up = require("upstream").start()               -- plain HTTP (spec/support/http_upstream.mjs)
--   local up = require("upstream").start { cert = c, key = k }   -- HTTPS
--   up.url("/echo"), up.stats() -> { connections, inflight, max_inflight, requests }, up.stop()
--   local ca = require("upstream").ca(dir)   -- a CA and two server certificates made with openssl:
--     ca.pem, ca.good_cert/good_key (127.0.0.1, localhost), ca.wrong_cert/wrong_key (wrong.example)
--   local bh = require("upstream").blackhole()   -- a port whose connects never complete; bh.stop()
local kit = require "mizan.testkit"
local json = require "mizan.json"
local h = require "helpers"

local M = {}

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"#exit:$?\""))
  local out = p:read("*a")
  p:close()
  local body, code = out:match("^(.-)#exit:(%d+)%s*$")
  if code ~= "0" then error(("command failed (%s): %s\n%s"):format(code, cmd, body), 2) end
  return body
end

local function which(name) return (sh("command -v " .. name):gsub("%s+$", "")) end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  sh("mkdir -p " .. d)
  return d
end

-- Spawn argv; wait for it to write its port into portfile.
local function start_process(argv, portfile, log)
  local pid = assert(kit.spawn(argv, { PATH = os.getenv("PATH") or "/usr/bin:/bin" }, log, log))
  local port
  local up = h.wait_until(function()
    local f = io.open(portfile)
    if f then port = tonumber(f:read("*a")); f:close() end
    return port ~= nil or kit.wait(pid, 0) ~= nil
  end, 15)
  if not (up and port) then
    kit.kill(pid, "KILL")
    error("the local server did not start:\n" .. (h.read(log) or ""), 3)
  end
  return pid, port
end

function M.start(opts)
  opts = opts or {}
  local dir = tmpdir()
  local argv = { which("node"), "spec/support/http_upstream.mjs", dir .. "/port" }
  if opts.cert then argv[#argv + 1], argv[#argv + 2] = opts.cert, opts.key end
  local pid, port = start_process(argv, dir .. "/port", dir .. "/log")
  local scheme = opts.cert and "https" or "http"
  local self = { pid = pid, port = port, dir = dir }
  function self.url(path, host) return ("%s://%s:%d%s"):format(scheme, host or "127.0.0.1", port, path or "/") end
  function self.stats()
    local out = sh(("curl -sk %s"):format(self.url("/stats")))
    return assert(json.decode(out), out)
  end
  function self.stop()
    if self.pid then
      kit.kill(self.pid, "KILL")
      kit.wait(self.pid)
      self.pid = nil
    end
  end
  return self
end

function M.blackhole()
  local dir = tmpdir()
  -- listen(0) with its one queue slot taken (and never accepted): the
  -- kernel drops every further SYN, so a connect hangs until its timeout
  local py = "import socket,sys,time\n" ..
    "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(0)\n" ..
    "a=socket.create_connection(s.getsockname())\n" ..
    "b=socket.socket(); b.setblocking(False); b.connect_ex(s.getsockname())\n" ..
    "open(sys.argv[1]+'.tmp','w').write(str(s.getsockname()[1]))\n" ..
    "import os; os.rename(sys.argv[1]+'.tmp', sys.argv[1])\n" ..
    "time.sleep(600)\n"
  h.write(dir .. "/bh.py", py)
  local pid, port = start_process({ which("python3"), dir .. "/bh.py", dir .. "/port" }, dir .. "/port", dir .. "/log")
  return { port = port, pid = pid, stop = function() kit.kill(pid, "KILL"); kit.wait(pid) end }
end

function M.ca(dir)
  dir = dir or tmpdir()
  local function q(s) return "'" .. s .. "'" end
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  sh(("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj '/CN=mizan spec CA' "
    .. "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"):format(q(dir), ec))
  local function leaf(name, san)
    h.write(dir .. "/" .. name .. ".ext", "subjectAltName=" .. san .. "\nbasicConstraints=CA:FALSE\n")
    sh(("cd %s && openssl req %s -keyout %s.key -out %s.csr -subj '/CN=%s' && "
      .. "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out %s.pem -days 2 -extfile %s.ext")
      :format(q(dir), ec, name, name, name, name, name, name))
  end
  leaf("good", "IP:127.0.0.1,DNS:localhost")
  leaf("wrong", "DNS:wrong.example")
  return { dir = dir, pem = dir .. "/ca.pem", good_cert = dir .. "/good.pem", good_key = dir .. "/good.key",
           wrong_cert = dir .. "/wrong.pem", wrong_key = dir .. "/wrong.key" }
end

return M
