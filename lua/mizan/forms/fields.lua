-- mizan.forms.fields: the field kinds of mizan.forms, validated the way
-- Django's form fields do, with Django's default messages.
--
-- Each kind has:
--   options    its own options, each with a checker (nil or an error message)
--   clean(f, v) -> cleaned value, or nil and a list of messages
-- `f` is the declared field: { kind, name, opts }.
local json = require "mizan.json"

local null = json.null
local M = {}

M.REQUIRED = "This field is required."

-- The values Django treats as "empty".
local function empty(v)
  return v == nil or v == null or v == "" or (type(v) == "table" and next(v) == nil)
end
M.empty = empty

local function utf8_len(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

-- Python's str.strip() (which Django applies): the whitespace code points,
-- ASCII and Unicode, off both ends. A scan, not repeated gsub, so a body of
-- whitespace costs one pass.
local WIDE = { ["\194\133"] = true, ["\194\160"] = true, ["\225\154\128"] = true, ["\226\128\168"] = true,
               ["\226\128\169"] = true, ["\226\128\175"] = true, ["\226\129\159"] = true, ["\227\128\128"] = true }
for c = 128, 138 do WIDE["\226\128" .. string.char(c)] = true end -- U+2000..U+200A

local function narrow(b) return b and ((b >= 9 and b <= 13) or b == 32 or (b >= 28 and b <= 31)) end

local function strip(s)
  local i, j = 1, #s
  while i <= j do
    if narrow(s:byte(i)) then i = i + 1
    elseif WIDE[s:sub(i, i + 1)] then i = i + 2
    elseif WIDE[s:sub(i, i + 2)] then i = i + 3
    else break end
  end
  while j >= i do
    if narrow(s:byte(j)) then j = j - 1
    elseif j - 1 >= i and WIDE[s:sub(j - 1, j)] then j = j - 2
    elseif j - 2 >= i and WIDE[s:sub(j - 2, j)] then j = j - 3
    else break end
  end
  return s:sub(i, j)
end
M.strip = strip

local function as_text(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return json.encode(v) end
  if type(v) == "boolean" then return v and "True" or "False" end
  return nil
end

---------------------------------------------------------------- option checkers

local function nonneg_int(v)
  if type(v) ~= "number" or v < 0 or v ~= math.floor(v) then return "must be a non-negative integer" end
end
local function number(v) if type(v) ~= "number" then return "must be a number" end end
local function boolean(v) if type(v) ~= "boolean" then return "must be true or false" end end

local function choices_check(v)
  if type(v) ~= "table" or #v == 0 then return "must be a non-empty list of {value, label} pairs" end
  for i, c in ipairs(v) do
    if type(c) ~= "table" or (type(c[1]) ~= "string" and type(c[1]) ~= "number") or type(c[2]) ~= "string" then
      return ("choice #%d must be a {value, label} pair"):format(i)
    end
  end
end

---------------------------------------------------------------- text

local function clean_text(f, v)
  local s = as_text(v)
  if not s then return nil, { "Enter a valid value." } end
  if f.opts.strip ~= false then s = strip(s) end
  if s:find("\0", 1, true) then return nil, { "Null characters are not allowed." } end
  return s
end

local function length_errors(f, s, errs)
  local o, n = f.opts, utf8_len(s)
  if o.min_length and n < o.min_length then
    errs[#errs + 1] = ("Ensure this value has at least %d characters (it has %d)."):format(o.min_length, n)
  end
  if o.max_length and n > o.max_length then
    errs[#errs + 1] = ("Ensure this value has at most %d characters (it has %d)."):format(o.max_length, n)
  end
end

local TEXT_OPTS = { min_length = nonneg_int, max_length = nonneg_int, strip = boolean }

M.char = {
  options = TEXT_OPTS,
  clean = function(f, v)
    local s, err = clean_text(f, v)
    if not s then return nil, err end
    local errs = {}
    length_errors(f, s, errs)
    if #errs > 0 then return nil, errs end
    return s
  end,
}
M.text = M.char

---------------------------------------------------------------- email (Django's EmailValidator)

local ATOM = "^[%-!#%$%%&'%*%+/=%?%^_`{}|~0-9A-Za-z]+$"

local function valid_user(u)
  if u:sub(1, 1) == '"' and u:sub(-1) == '"' and #u >= 2 then
    local inner = u:sub(2, -2)
    -- qtext or quoted pairs, ASCII only, no bare CR/LF
    local i = 1
    while i <= #inner do
      local c = inner:byte(i)
      if c == 92 then -- backslash: a quoted pair
        local d = inner:byte(i + 1)
        if not d or d == 10 or d == 13 or d > 127 or d == 0 then return false end
        i = i + 2
      elseif c == 0 or c == 9 or c == 10 or c == 13 or c == 34 or c > 127 then
        return false
      else
        i = i + 1
      end
    end
    return true
  end
  for atom in (u .. "."):gmatch("([^.]*)%.") do
    if not atom:find(ATOM) then return false end
  end
  return true
end

local function valid_ipv4(s)
  local parts = { s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #parts ~= 4 then return false end
  for _, p in ipairs(parts) do
    if tonumber(p) > 255 or (#p > 1 and p:sub(1, 1) == "0") then return false end
  end
  return true
end

local function valid_ipv6(s)
  if not s:find("^[%x:%.]+$") then return false end
  local groups, double = 0, select(2, s:gsub("::", ""))
  if double > 1 then return false end
  for g in s:gmatch("[^:]+") do
    if g:find("%.") then
      if not valid_ipv4(g) then return false end
      groups = groups + 2
    elseif #g > 4 then
      return false
    else
      groups = groups + 1
    end
  end
  return (double == 1 and groups < 8) or (double == 0 and groups == 8)
end

-- Labels of letters, digits and hyphens (non-ASCII letters stand for what
-- IDNA would encode); the last label, the TLD, is 2 to 63 characters.
local function valid_domain(d)
  if d == "localhost" then return true end
  local literal = d:match("^%[(.+)%]$")
  if literal then
    if literal:lower():find("^ipv6:") then return valid_ipv6(literal:sub(6)) end
    return valid_ipv4(literal) or valid_ipv6(literal)
  end
  local labels = {}
  for label in (d .. "."):gmatch("([^.]*)%.") do labels[#labels + 1] = label end
  if #labels < 2 then return false end
  for i, label in ipairs(labels) do
    local ascii = label:gsub("[\128-\255]+", "x")
    local n = #ascii
    if not ascii:find("^[%w%-]+$") or ascii:sub(-1) == "-" then return false end
    if i < #labels then
      if n > 63 or ascii:sub(1, 1) == "-" then return false end
    elseif n < 2 or n > 63 then
      return false
    end
  end
  return true
end

function M.valid_email(s)
  if s == "" or #s > 320 then return false end
  local user, domain = s:match("^(.*)@([^@]*)$")
  if not user or user == "" then return false end
  return valid_user(user) and valid_domain(domain)
end

M.email = {
  options = { max_length = nonneg_int, min_length = nonneg_int },
  clean = function(f, v)
    local s, err = clean_text(f, v)
    if not s then return nil, err end
    local errs = {}
    if not M.valid_email(s) then errs[1] = "Enter a valid email address." end
    length_errors(f, s, errs)
    if #errs > 0 then return nil, errs end
    return s
  end,
}

---------------------------------------------------------------- url (Django's URLValidator, simplified)

function M.valid_url(s)
  local scheme, rest = s:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return false end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" and scheme ~= "ftp" and scheme ~= "ftps" then return false end
  if rest:find("%s") then return false end
  local netloc = rest:match("^([^/?#]*)")
  netloc = netloc:gsub("^[^@]*@", "") -- user:password@
  local host, port = netloc:match("^(.-):(%d+)$")
  if not host then host = netloc end
  if port and tonumber(port) > 65535 then return false end
  if host == "" then return false end
  local v6 = host:match("^%[(.+)%]$")
  if v6 then return valid_ipv6(v6) end
  return valid_ipv4(host) or valid_domain(host)
end

M.url = {
  options = { max_length = nonneg_int, min_length = nonneg_int },
  clean = function(f, v)
    local s, err = clean_text(f, v)
    if not s then return nil, err end
    -- like Django's URLField: no scheme means http
    if not s:find("^%a[%w+.-]*://") then s = "http://" .. s end
    local errs = {}
    if not M.valid_url(s) then errs[1] = "Enter a valid URL." end
    length_errors(f, s, errs)
    if #errs > 0 then return nil, errs end
    return s
  end,
}

---------------------------------------------------------------- numbers

local function range_errors(f, n, errs)
  local o = f.opts
  if o.min_value and n < o.min_value then
    errs[#errs + 1] = ("Ensure this value is greater than or equal to %s."):format(json.encode(o.min_value))
  end
  if o.max_value and n > o.max_value then
    errs[#errs + 1] = ("Ensure this value is less than or equal to %s."):format(json.encode(o.max_value))
  end
end

M.integer = {
  options = { min_value = number, max_value = number },
  clean = function(f, v)
    local n
    if type(v) == "number" then
      n = v == math.floor(v) and v or nil
    elseif type(v) == "string" then
      -- Python's int() after Django drops a trailing ".0"
      local s = strip(v):gsub("%.0*$", "")
      if s:find("^[+-]?%d+$") then n = tonumber(s) end
    end
    if not n or math.abs(n) > 9007199254740991 then return nil, { "Enter a whole number." } end
    local errs = {}
    range_errors(f, n, errs)
    if #errs > 0 then return nil, errs end
    return n
  end,
}

M.decimal = {
  options = { max_digits = nonneg_int, decimal_places = nonneg_int, min_value = number, max_value = number },
  clean = function(f, v)
    local s = type(v) == "number" and json.encode(v) or (type(v) == "string" and strip(v) or nil)
    local sign, whole, frac = (s or ""):match("^([+-]?)(%d*)%.?(%d*)$")
    if not sign or (whole == "" and frac == "") or (s:find("%.") and frac == "" and whole == "") then
      return nil, { "Enter a number." }
    end
    local o, errs = f.opts, {}
    -- digits as Django's DecimalValidator counts them on Python's Decimal:
    -- the digit tuple has no leading zeros; the exponent is -#frac
    local w = whole:gsub("^0+", "")
    local tuple = (w .. frac):gsub("^0+", "")
    if tuple == "" then tuple = "0" end
    local decimals = #frac
    local digits = math.max(#tuple, decimals)
    local whole_digits = digits - decimals
    -- Django's DecimalValidator reports the first of its checks that fails
    if o.max_digits and digits > o.max_digits then
      errs[#errs + 1] = ("Ensure that there are no more than %d digits in total."):format(o.max_digits)
    elseif o.decimal_places and decimals > o.decimal_places then
      errs[#errs + 1] = ("Ensure that there are no more than %d decimal places."):format(o.decimal_places)
    elseif o.max_digits and o.decimal_places and whole_digits > o.max_digits - o.decimal_places then
      errs[#errs + 1] = ("Ensure that there are no more than %d digits before the decimal point.")
        :format(o.max_digits - o.decimal_places)
    end
    range_errors(f, tonumber(s), errs)
    if #errs > 0 then return nil, errs end
    -- a decimal stays text, so no digit is lost to binary floating point
    return (sign == "-" and "-" or "") .. (whole == "" and "0" or whole) .. (frac ~= "" and "." .. frac or "")
  end,
}

---------------------------------------------------------------- boolean

M.boolean = {
  options = {},
  clean = function(f, v)
    if v == false or v == null or v == nil or v == 0 then return false end
    if type(v) == "string" then
      local s = v:lower()
      if s == "false" or s == "0" or s == "" or s == "off" or s == "no" then return false end
    end
    return true
  end,
}

---------------------------------------------------------------- choices

local function choice_value(f, v)
  local s = as_text(v)
  if not s then return nil end
  for _, c in ipairs(f.opts.choices) do
    if tostring(c[1]) == s then return c[1] end
  end
end

M.choice = {
  options = { choices = choices_check },
  clean = function(f, v)
    local c = choice_value(f, v)
    if c == nil then
      return nil, { ("Select a valid choice. %s is not one of the available choices."):format(as_text(v) or "That") }
    end
    return c
  end,
}

M.multiple_choice = {
  options = { choices = choices_check },
  clean = function(f, v)
    if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then return nil, { "Enter a list of values." } end
    local out, errs = json.array {}, {}
    for _, item in ipairs(v) do
      local c = choice_value(f, item)
      if c == nil then
        errs[#errs + 1] = ("Select a valid choice. %s is not one of the available choices."):format(as_text(item) or "That")
        break
      end
      out[#out + 1] = c
    end
    if #errs > 0 then return nil, errs end
    return out
  end,
}

---------------------------------------------------------------- dates

local function leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
local MDAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function valid_date(y, m, d)
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if y < 1 or m < 1 or m > 12 or d < 1 then return false end
  local max = MDAYS[m] + ((m == 2 and leap(y)) and 1 or 0)
  return d <= max
end

M.date = {
  options = {},
  clean = function(f, v)
    local s = type(v) == "string" and strip(v) or ""
    local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not y or not valid_date(y, m, d) then return nil, { "Enter a valid date." } end
    return s
  end,
}

M.datetime = {
  options = {},
  clean = function(f, v)
    local s = type(v) == "string" and strip(v) or ""
    local y, m, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
    local ok = y and valid_date(y, m, d)
    if ok and rest ~= "" then
      local hh, mm, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
      ok = hh and tonumber(hh) < 24 and tonumber(mm) < 60
      if ok and tail ~= "" then
        local ss, tail2 = tail:match("^:(%d%d)(.*)$")
        if ss then
          ok = tonumber(ss) < 60
          tail = tail2:gsub("^%.%d+", "")
        end
        ok = ok and (tail == "" or tail == "Z" or tail:find("^[+-]%d%d:?%d%d$") ~= nil)
      end
    end
    if not ok then return nil, { "Enter a valid date/time." } end
    return s
  end,
}

--- The value of an empty optional field, as Django cleans it.
function M.empty_value(kind)
  if kind == "char" or kind == "text" or kind == "email" or kind == "url" then return "" end
  if kind == "boolean" then return false end
  if kind == "multiple_choice" then return json.array {} end
  return null
end

return M
