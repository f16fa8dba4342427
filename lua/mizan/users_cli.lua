-- `mizan users`: manage built-in accounts from the command line.
--   mizan users create USERNAME [--email E] [--staff] [--superuser] [--app DIR]
--   mizan users set-password USERNAME [--app DIR]
--   mizan users list [--app DIR]
-- The password comes from MIZAN_PASSWORD, or the first line of stdin.
local core = require "mizan.core"
local auth = require "mizan.auth"

local M = {}

local function parse(argv)
  local o = { flags = {}, words = {} }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--app" or a == "--email" then
      o[a:sub(3)] = argv[i + 1]
      i = i + 2
    elseif a:sub(1, 2) == "--" then
      o.flags[a:sub(3)] = true
      i = i + 1
    else
      o.words[#o.words + 1] = a
      i = i + 1
    end
  end
  return o
end

local function password()
  local p = os.getenv("MIZAN_PASSWORD") or io.stdin:read("*l")
  if not p or #p < 8 then
    io.stderr:write("mizan users: a password of at least 8 characters is needed (MIZAN_PASSWORD or stdin)\n")
    return nil
  end
  return p
end

local function fail(msg)
  io.stderr:write("mizan users: ", msg, "\n")
  return 1
end

local function run(o)
  local cmd, name = o.words[1], o.words[2]
  if cmd == "list" then
    for _, u in ipairs(auth.list_users()) do
      print(("%d\t%s\t%s%s%s%s"):format(u.id, u.username, u.email, u.is_staff and "\tstaff" or "",
        u.is_superuser and "\tsuperuser" or "", u.is_active and "" or "\tinactive"))
    end
    return 0
  elseif cmd == "create" and name then
    local p = password()
    if not p then return 1 end
    local user, errs = auth.create_user { username = name, password = p, email = o.email,
                                          is_staff = o.flags.staff, is_superuser = o.flags.superuser }
    if not user then
      local msgs = {}
      for field, list in pairs(errs) do msgs[#msgs + 1] = field .. ": " .. table.concat(list, " ") end
      return fail(table.concat(msgs, "; "))
    end
    print(("created user %d (%s)"):format(user.id, user.username))
    return 0
  elseif cmd == "set-password" and name then
    local p = password()
    if not p then return 1 end
    local ok, err = auth.set_password(name, p)
    if not ok then return fail(err or ("no user named '%s'"):format(name)) end
    print(("password of %s changed"):format(name))
    return 0
  end
  return fail("usage: mizan users create USERNAME [--email E] [--staff] [--superuser] | "
    .. "set-password USERNAME | list   [--app DIR]")
end

function M.main()
  local o = parse(arg or {})
  -- the accounts' table comes from a migration: none may be pending
  local ready, merr = require("mizan.host").check_migrations()
  if not ready then return fail(merr) end
  -- the database is reached from a task, as in a request
  local ok, code = core.run(run, o)
  if not ok then return fail(tostring(code)) end
  return code
end

return M
