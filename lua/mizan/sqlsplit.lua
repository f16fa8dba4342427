-- mizan.sqlsplit: a .sql migration file into its statements.
--
--   local list, err = require("mizan.sqlsplit").split(text, "sqlite" | "postgres")
--   -- list: { { sql = "CREATE TABLE ...", line = 3 }, ... }
--
-- Statements end at a `;` that is outside a quoted string ('...', "...",
-- `...`), a comment (-- to the end of the line, /* ... */, which nest on
-- Postgres), a dollar-quoted body ($$ ... $$, $tag$ ... $tag$, Postgres),
-- and the BEGIN ... END of a CREATE TRIGGER / FUNCTION / PROCEDURE body
-- (where CASE ... END nests too). A chunk holding only comments and blanks
-- is no statement. Both engines take one statement per call with bound
-- parameters, which is why a file is split here rather than sent whole.
local M = {}

local BLOCK_KINDS = { TRIGGER = true, FUNCTION = true, PROCEDURE = true }
local SKIP_WORDS = { OR = true, REPLACE = true, TEMP = true, TEMPORARY = true, CONSTRAINT = true }

local function line_of(text, pos)
  local _, n = text:sub(1, pos):gsub("\n", "")
  return n + 1
end

-- The $tag$ opening a dollar-quoted body at i, or nil ($1 is a parameter,
-- and a $ inside an identifier is part of it).
local function dollar_tag(text, i)
  if text:sub(i - 1, i - 1):find("[%w_]") then return nil end
  return text:match("^%$%$", i) or text:match("^%$[%a_][%w_]*%$", i)
end

--- Split `text` into statements. Returns the list, or nil and a message
-- naming the line of an unterminated quote, comment or body.
function M.split(text, engine)
  if type(text) ~= "string" then error("sqlsplit.split: the SQL must be a string", 2) end
  local pg = engine == "postgres"
  local out, n = {}, #text
  local i = 1
  local code_at      -- where the current statement's first code (not comment, not blank) is
  local words = {}   -- its first words, upper-cased, to tell a block statement
  local block        -- true: a CREATE TRIGGER/FUNCTION/PROCEDURE; false: not; nil: not known yet
  local depth = 0    -- BEGIN/CASE ... END nesting inside a block statement

  local function emit(stop)
    if code_at then
      local sql = text:sub(code_at, stop):gsub("%s+$", "") -- from its first code: no leading comment
      out[#out + 1] = { sql = sql, line = line_of(text, code_at) }
    end
    code_at, words, block, depth = nil, {}, nil, 0
  end

  local function word(w)
    w = w:upper()
    if block == nil then
      if #words == 0 and w ~= "CREATE" then block = false
      elseif #words > 0 and not SKIP_WORDS[w] then block = BLOCK_KINDS[w] or false end
      words[#words + 1] = w
    elseif block then
      if w == "BEGIN" or w == "CASE" then depth = depth + 1
      elseif w == "END" and depth > 0 then depth = depth - 1 end
    end
  end

  while i <= n do
    local c = text:sub(i, i)
    local c2 = text:sub(i, i + 1)
    if c2 == "--" then
      local e = text:find("\n", i, true)
      i = e and e + 1 or n + 1
    elseif c2 == "/*" then
      local level, j = 1, i + 2
      while level > 0 do
        local a, b = text:find("*/", j, true), pg and text:find("/*", j, true)
        if not a then return nil, ("unterminated /* comment starting at line %d"):format(line_of(text, i)) end
        if b and b < a then level, j = level + 1, b + 2 else level, j = level - 1, a + 2 end
      end
      i = j
    elseif c == "'" or c == '"' or c == "`" then
      code_at = code_at or i
      local j = i + 1
      while true do
        local k = text:find(c, j, true)
        if not k then return nil, ("unterminated %s quote starting at line %d"):format(c, line_of(text, i)) end
        if text:sub(k + 1, k + 1) == c then j = k + 2 else i = k + 1 break end -- '' is a quote inside
      end
    elseif pg and c == "$" and dollar_tag(text, i) then
      code_at = code_at or i
      local tag = dollar_tag(text, i)
      local e = text:find(tag, i + #tag, true)
      if not e then return nil, ("unterminated %s body starting at line %d"):format(tag, line_of(text, i)) end
      i = e + #tag
    elseif c == ";" then
      if depth == 0 then emit(i - 1) end
      i = i + 1
    elseif c:find("[%a_]") then
      code_at = code_at or i
      local w = text:match("^[%w_]+", i)
      word(w)
      i = i + #w
    else
      if not c:find("%s") then code_at = code_at or i end
      i = i + 1
    end
  end
  if depth > 0 then
    return nil, ("the statement starting at line %d never reaches its END"):format(line_of(text, code_at))
  end
  emit(n)
  return out
end

return M
