-- mizan.bundle: the app archive inside a built executable (`mizan build`).
--
-- Format: "MZAPP1\n", then for each file "<path>\n<length>\n<bytes>", where
-- bytes are LuaJIT bytecode of the file (string.dump, debug info kept so
-- tracebacks name the file and line). The files of migrations/ (.sql and
-- .lua) are kept as their text: a migration's checksum is of its text, so
-- the executable and the folder it was built from agree on it.
local core = require "mizan.core"

local M = {}
local MAGIC = "MZAPP1\n"

-- Every .lua file under dir (relative paths), skipping folders that start with "."
local function lua_files(dir, prefix, out)
  local entries = assert(core.listdir(dir))
  table.sort(entries, function(a, b) return a.name < b.name end)
  for _, e in ipairs(entries) do
    if e.name:sub(1, 1) ~= "." then
      local rel = prefix .. e.name
      if e.dir then
        if e.name ~= "spec" then lua_files(dir .. "/" .. e.name, rel .. "/", out) end
      elseif e.name:find("%.lua$") or (prefix == "migrations/" and e.name:find("%.sql$")) then
        out[#out + 1] = rel
      end
    end
  end
  return out
end

--- Compile an app folder into an archive. Returns the archive and the file list.
function M.pack(dir, progress)
  local files = lua_files(dir, "", {})
  local parts = { MAGIC }
  for _, rel in ipairs(files) do
    local code
    if rel:find("^migrations/[^/]+$") then
      local f = assert(io.open(dir .. "/" .. rel, "rb"))
      code = f:read("*a")
      f:close()
    else
      local fn, err = loadfile(dir .. "/" .. rel)
      if not fn then error(err, 0) end
      code = string.dump(fn)
    end
    if progress then progress(rel, #code, rel:find("^migrations/[^/]+$") ~= nil) end
    parts[#parts + 1] = ("%s\n%d\n"):format(rel, #code)
    parts[#parts + 1] = code
  end
  return table.concat(parts), files
end

--- The files of the archive this executable carries: { [path] = bytecode }, or nil.
function M.files()
  local data = core.embedded_app()
  if not data or data:sub(1, #MAGIC) ~= MAGIC then return nil end
  local files, pos = {}, #MAGIC + 1
  while pos <= #data do
    local name, len, after = data:match("^([^\n]+)\n(%d+)\n()", pos)
    if not name then error("the app archive inside this executable is damaged", 0) end
    files[name] = data:sub(after, after + tonumber(len) - 1)
    pos = after + tonumber(len)
  end
  return files
end

return M
