-- The C JSON codec: conformance, value mapping, and canonical encoding.
local json = require "mizan.json"
local h = require "helpers"

local null = json.null

describe("JSON codec", function()
  describe("JSONTestSuite", function()
    local dir = h.shared("conformance/JSONTestSuite/test_parsing")
    local files = h.list(dir, "%.json$")

    it("has the whole suite", function()
      assert.equals(318, #files)
    end)

    it("accepts all 95 y_ files", function()
      local n, failed = 0, {}
      for _, f in ipairs(files) do
        if f:find("^y_") then
          n = n + 1
          local v, err = json.decode(h.read(dir .. "/" .. f))
          if v == nil and err then failed[#failed + 1] = f .. ": " .. err end
        end
      end
      assert.equals(95, n)
      assert.same({}, failed)
    end)

    it("rejects all 188 n_ files", function()
      local n, accepted = 0, {}
      for _, f in ipairs(files) do
        if f:find("^n_") then
          n = n + 1
          local v, err = json.decode(h.read(dir .. "/" .. f))
          if v ~= nil or not err then accepted[#accepted + 1] = f end
        end
      end
      assert.equals(188, n)
      assert.same({}, accepted)
    end)

    it("answers every i_ file with a value or an error, never a crash", function()
      for _, f in ipairs(files) do
        if f:find("^i_") then
          local v, err = json.decode(h.read(dir .. "/" .. f))
          assert.is_true(v ~= nil or type(err) == "string", f)
        end
      end
    end)
  end)

  describe("value mapping", function()
    it("keeps null as the mizan.null sentinel", function()
      local v = json.decode('{"a":null,"b":[null]}')
      assert.equals(null, v.a)
      assert.equals(null, v.b[1])
      assert.equals(require("mizan").null, null)
      assert.equals('{"a":null}', json.encode { a = null })
    end)

    it("keeps empty arrays and empty objects distinct through a round trip", function()
      assert.equals("[]", json.encode(json.decode("[]")))
      assert.equals("{}", json.encode(json.decode("{}")))
      assert.equals('{"a":[],"b":{}}', json.canonical(json.decode('{"b":{},"a":[]}')))
      assert.equals("{}", json.encode {})
      assert.equals("[]", json.encode(json.array {}))
      assert.equals("{}", json.encode(json.object {}))
      assert.equals("[1,2]", json.encode { 1, 2 })
    end)

    it("keeps integers up to 2^53 as integers", function()
      assert.equals("9007199254740991", json.encode(9007199254740991))
      assert.equals("-9007199254740992", json.encode(-9007199254740992))
      assert.equals(9007199254740991, json.decode("9007199254740991"))
      assert.equals("[0,-17,1000000]", json.encode { 0, -17, 1e6 })
    end)

    it("decodes every number to the double strtod gives, fast path or not", function()
      -- the fast path (at most 15 digits, a power of ten up to 1e22) and the
      -- fallback must agree with C's strtod (Lua's tonumber) bit for bit
      local cases = { "0", "-0", "0.5", "-0.0", "0.1", "0.3", "1.5", "2.675", "123.456", "1e22", "1e23",
                      "1e-22", "1e-23", "4.35", "9007199254740993", "123456789012345", "1234567890123456",
                      "0.000001", "1.7976931348623157e308", "5e-324", "2.2250738585072014e-308", "1E+2",
                      "12.5e-3", "999999999999999.9", "100000000000000000000000", "3.0e0", "-17.25e1" }
      for _, text in ipairs(cases) do
        local got = json.decode("[" .. text .. "]")[1]
        local want = tonumber(text)
        assert.is_true(got == want and 1 / got == 1 / want, text .. " decoded as " .. ("%.17g"):format(got))
      end
    end)

    it("prints other numbers in the shortest form that round-trips, as JSON.stringify does", function()
      local cases = {
        [0.1] = "0.1", [0.5] = "0.5", [1 / 3] = "0.3333333333333333", [1e21] = "1e+21",
        [1e-7] = "1e-7", [123.456] = "123.456", [5e-324] = "5e-324",
        [1.7976931348623157e308] = "1.7976931348623157e+308", [0.000001] = "0.000001",
        [2 ^ 60] = "1152921504606847000", [-1.5] = "-1.5", [100.25] = "100.25",
      }
      for n, text in pairs(cases) do
        assert.equals(text, json.encode(n))
        assert.equals(n, json.decode(text))
      end
      for _ = 1, 2000 do
        local x = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
        assert.equals(x, json.decode(json.encode(x)))
      end
    end)

    it("refuses NaN and infinity with an error, not a crash", function()
      local v, err = json.encode(0 / 0)
      assert.is_nil(v)
      assert.matches("NaN", err)
      v, err = json.encode { x = math.huge }
      assert.is_nil(v)
      assert.matches("infinity", err)
    end)

    it("rejects invalid UTF-8 and lone surrogates", function()
      for _, bad in ipairs {
        '"\xff"', '"\xc0\xaf"', '"\xed\xa0\x80"', '"\xf4\x90\x80\x80"', '"\xe2\x82"',
        '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"\\ud800x"',
      } do
        local v, err = json.decode(bad)
        assert.is_nil(v, bad)
        assert.is_string(err)
      end
      assert.equals("\xf0\x9f\x98\x80", json.decode('"\\ud83d\\ude00"'))
      assert.is_nil((json.encode("\xff")))
    end)

    it("escapes what JSON requires and nothing else", function()
      assert.equals('"a\\"b\\\\c\\n\\t\\u0001\\u001f</script>é"', json.encode('a"b\\c\n\t\1\31</script>é'))
      assert.equals("a\0b", json.decode('"a\\u0000b"'))
    end)

    it("limits nesting depth when decoding and encoding", function()
      assert.is_table(json.decode(("["):rep(1000) .. ("]"):rep(1000)))
      local v, err = json.decode(("["):rep(1001) .. ("]"):rep(1001))
      assert.is_nil(v)
      assert.matches("nesting", err)
      v, err = json.decode(("["):rep(100000))
      assert.is_nil(v)
      local cyclic = {}
      cyclic.self = cyclic
      v, err = json.encode(cyclic)
      assert.is_nil(v)
      assert.matches("nesting", err)
    end)

    it("refuses tables it cannot represent", function()
      assert.is_nil((json.encode { 1, 2, x = 3 }))
      assert.is_nil((json.encode { [1] = 1, [3] = 3 }))
      assert.is_nil((json.encode { f = print }))
    end)

    it("raises on misuse rather than returning an error", function()
      assert.has_error(function() json.decode() end)
      assert.has_error(function() json.decode({}) end)
    end)
  end)

  describe("canonical encoding", function()
    it("reproduces every canonical text in shared/vectors/cache_keys.json", function()
      local vectors = h.load_json(h.shared("vectors/cache_keys.json"))
      assert.is_true(#vectors.cases > 0)
      for _, case in ipairs(vectors.cases) do
        assert.equals(case.canonical, json.canonical(case.params), case.name)
      end
    end)

    it("sorts keys by UTF-8 byte order at every depth", function()
      assert.equals('{"A":1,"a":{"b":2,"c":1},"é":3}', json.canonical { a = { c = 1, b = 2 }, ["é"] = 3, A = 1 })
    end)
  end)
end)
