-- mizan.types: constructors, constraints, validation and JSON Schema export.
local T = require "mizan.types"
local json = require "mizan.json"

local function errors_of(t, v, coerce)
  local out, errs = T.validate(t, v, coerce)
  assert.is_nil(out)
  return errs
end

local function problems(t)
  local out = {}
  for _, p in ipairs(T.problems(t)) do out[#out + 1] = (p.path ~= "" and p.path .. ": " or "") .. p.message end
  return out
end

describe("mizan.types", function()
  it("works bare and called with options", function()
    assert.equals("hi", T.validate(T.string, "hi"))
    assert.equals("hi", T.validate(T.string { max_length = 9 }, "hi"))
    assert.same({ "must be at most 1 characters (it has 2)" }, errors_of(T.string { max_length = 1 }, "hi").__all__)
  end)

  it("has every constructor of DESIGN §3", function()
    for _, name in ipairs { "string", "integer", "number", "boolean", "array", "object", "enum", "literal",
                            "optional", "nullable", "email", "url", "datetime", "any" } do
      assert.is_not_nil(T[name], name)
    end
  end)

  it("checks strings: length in characters, pattern", function()
    local t = T.string { min_length = 2, max_length = 3, pattern = "^%a+$" }
    assert.equals("abc", T.validate(t, "abc"))
    assert.equals("éé", T.validate(T.string { min_length = 2, max_length = 2 }, "éé"))
    assert.same({ "must be at least 2 characters (it has 1)" }, errors_of(t, "a").__all__)
    assert.same({ "must match the pattern ^%a+$" }, errors_of(t, "a1").__all__)
    assert.same({ "must be a string" }, errors_of(t, 5).__all__)
  end)

  it("checks integers and numbers with min and max", function()
    local t = T.integer { min = 1, max = 10 }
    assert.equals(5, T.validate(t, 5))
    assert.same({ "must be an integer" }, errors_of(t, 1.5).__all__)
    assert.same({ "must be at least 1" }, errors_of(t, 0).__all__)
    assert.same({ "must be at most 10" }, errors_of(t, 11).__all__)
    assert.same({ "must be an integer" }, errors_of(T.integer, 2 ^ 60).__all__)
    assert.equals(0.5, T.validate(T.number { min = 0 }, 0.5))
    assert.same({ "must be a number" }, errors_of(T.number, "1").__all__)
  end)

  it("checks arrays with max_items and reports item paths from 0", function()
    local t = T.array(T.integer, { max_items = 2 })
    assert.same({ 1, 2 }, T.validate(t, { 1, 2 }))
    assert.is_true(json.is_array(T.validate(t, json.array {})))
    local errs = errors_of(t, { 1, "x", 3 })
    assert.same({ "must have at most 2 items (it has 3)" }, errs.__all__)
    assert.same({ "must be an integer" }, errs["1"])
    assert.same({ "must be an array" }, errors_of(t, { a = 1 }).__all__)
  end)

  it("checks objects: every failing field at once, nested paths, unknown fields dropped", function()
    local t = T.object { name = T.string, age = T.integer, address = { city = T.string } }
    local errs = errors_of(t, { age = "x", address = { city = 5 } })
    assert.same({ "is required" }, errs.name)
    assert.same({ "must be an integer" }, errs.age)
    assert.same({ "must be a string" }, errs["address.city"])
    assert.same({ name = "a", age = 1, address = { city = "c" } },
                T.validate(t, { name = "a", age = 1, address = { city = "c" }, extra = true }))
  end)

  it("handles enum, literal, optional, nullable, any and defaults", function()
    assert.equals("a", T.validate(T.enum { "a", "b" }, "a"))
    assert.same({ "must be one of: a, b" }, errors_of(T.enum { "a", "b" }, "c").__all__)
    assert.equals("x", T.validate(T.literal "x", "x"))
    assert.same({ "must be exactly x" }, errors_of(T.literal "x", "y").__all__)
    local t = T.object { a = T.optional(T.integer), b = T.nullable(T.string), c = T.integer { default = 7 } }
    assert.same({ b = json.null, c = 7 }, T.validate(t, { b = json.null }))
    assert.same({ "is required" }, errors_of(t, {}).b)
    assert.same({ "must not be null" }, errors_of(T.string, json.null).__all__)
    assert.equals(print, T.validate(T.any, print))
  end)

  it("checks email, url and datetime", function()
    assert.equals("a@b.co", T.validate(T.email, "a@b.co"))
    assert.is_not_nil(errors_of(T.email, "not-an-email").__all__)
    assert.is_not_nil(errors_of(T.email, "a@b").__all__)
    assert.equals("https://x.org/p?q=1", T.validate(T.url, "https://x.org/p?q=1"))
    assert.is_not_nil(errors_of(T.url, "ftp://x").__all__)
    assert.equals("2026-11-21T05:00:00Z", T.validate(T.datetime, "2026-11-21T05:00:00Z"))
    assert.equals("2026-11-21T05:00:00.123+01:00", T.validate(T.datetime, "2026-11-21T05:00:00.123+01:00"))
    assert.is_not_nil(errors_of(T.datetime, "2026-13-01T00:00:00Z").__all__)
    assert.is_not_nil(errors_of(T.datetime, "yesterday").__all__)
  end)

  it("converts query-string text only when asked", function()
    local t = T.object { n = T.integer, b = T.boolean, e = T.enum { 1, 2 }, l = T.array(T.integer) }
    assert.same({ n = 5, b = false, e = 2, l = { 3 } }, T.validate(t, { n = "5", b = "0", e = "2", l = "3" }, true))
    assert.same({ "must be an integer" }, errors_of(t, { n = "5", b = true, e = 1, l = {} }).n)
    assert.same({ "must be an integer" }, errors_of(t, { n = "5x", b = "true", e = "1", l = {} }, true).n)
  end)

  it("records misuse instead of raising, for the load error to report", function()
    assert.same({ "T.string has no option 'maxlen'" }, problems(T.string { maxlen = 3 }))
    assert.same({ "T.integer option 'min' must be a number" }, problems(T.integer { min = "1" }))
    assert.same({ "T.string: the minimum (5) is greater than the maximum (2)" },
                problems(T.string { min_length = 5, max_length = 2 }))
    assert.same({ "x: T.array has no option 'max_length'" },
                problems(T.object { x = T.array(T.string, { max_length = 1 }) }))
    assert.same({ "T.enum expects a non-empty list of values" }, problems(T.enum {}))
    assert.matches("not a valid Lua pattern", problems(T.string { pattern = "[a" })[1])
    assert.matches("default", problems(T.integer { default = "x" })[1])
    assert.same({ "f: expected a type, got string" }, problems(T.object { f = "string" }))
    assert.matches("%%b has no regex equivalent", problems(T.string { pattern = "%b()" })[1])
  end)

  describe("JSON Schema export", function()
    it("describes each type", function()
      local t = T.object {
        s = T.string { min_length = 1, max_length = 5, pattern = "^%d+$" },
        i = T.integer { min = 0 }, o = T.optional(T.boolean), n = T.nullable(T.number),
        a = T.array(T.email, { max_items = 3 }), e = T.enum { "x", "y" }, l = T.literal(3),
        d = T.datetime, u = T.url, any = T.any,
      }
      local s = T.json_schema(t)
      assert.equals("object", s.type)
      assert.same({ "a", "any", "d", "e", "i", "l", "n", "s", "u" }, s.required)
      assert.same({ type = "string", minLength = 1, maxLength = 5, pattern = "^[0-9]+$" }, s.properties.s)
      assert.same({ type = "integer", minimum = 0 }, s.properties.i)
      assert.same({ anyOf = { { type = "number" }, { type = "null" } } }, s.properties.n)
      assert.same({ type = "array", maxItems = 3, items = { type = "string", format = "email" } }, s.properties.a)
      assert.same({ enum = { "x", "y" } }, s.properties.e)
      assert.same({ const = 3 }, s.properties.l)
      assert.equals("date-time", s.properties.d.format)
      assert.equals("uri", s.properties.u.format)
      assert.equals("{}", json.encode(s.properties.any))
    end)

    it("translates Lua patterns to ECMA regexes", function()
      local cases = {
        ["^%a+$"] = "^[A-Za-z]+$", ["%d%d?"] = "[0-9][0-9]?", ["^[%w_]+$"] = "^[A-Za-z0-9_]+$",
        ["a.b"] = "a[\\s\\S]b", ["%.%-"] = "\\.\\-", ["x-"] = "x*?", ["%S+"] = "[^\\t\\n\\v\\f\\r ]+",
        ["{a|b}"] = "\\{a\\|b\\}", ["[^%d]"] = "[^0-9]",
      }
      for lua, regex in pairs(cases) do assert.equals(regex, T.pattern_to_regex(lua), lua) end
    end)
  end)
end)
