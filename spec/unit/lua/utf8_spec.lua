-- mizan.utf8: the same notion of valid UTF-8 as the JSON codec, so text
-- checked here never fails to encode later.
local utf8 = require "mizan.utf8"
local json = require "mizan.json"

describe("mizan.utf8", function()
  local valid = { "", "plain ascii", "caf\195\169", "\226\130\172", "\240\159\152\128", "\244\143\191\191",
                  "\237\159\191", "\0" }
  local invalid = { "\255", "\195", "\195\40", "\192\175", "\224\128\175", "\237\160\128", "\244\144\128\128",
                    "\240\159\152", "ok\128", "\248\136\128\128\128" }

  it("accepts what the JSON codec encodes and refuses what it cannot", function()
    for _, s in ipairs(valid) do
      assert.is_true(utf8.valid(s), s)
      assert.is_truthy(json.encode(s))
    end
    for _, s in ipairs(invalid) do
      assert.is_false(utf8.valid(s), s)
      assert.is_nil((json.encode(s)))
    end
  end)

  it("shows each byte outside a valid sequence as %XX, keeping the rest", function()
    assert.equals("caf\195\169", utf8.printable("caf\195\169"))
    assert.equals("%FF", utf8.printable("\255"))
    assert.equals("%C3(", utf8.printable("\195("))
    assert.equals("caf\195\169 %ED%A0%80!", utf8.printable("caf\195\169 \237\160\128!"))
    for _, s in ipairs(invalid) do assert.is_truthy(json.encode(utf8.printable(s))) end
  end)

  it("agrees with the JSON codec on every string of up to four bytes around the boundaries", function()
    -- one validator (core/utf8.c) serves both: this holds them to it
    local edges = { 0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
                    0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF }
    local char, disagree = string.char, 0
    local function check(s)
      local v = utf8.valid(s)
      if v ~= (json.encode(s) ~= nil) then disagree = disagree + 1 end
      -- raw control characters are not JSON string text, whatever their encoding
      if not s:find("%c") and v ~= (json.decode('"' .. s .. '"') ~= nil) then disagree = disagree + 1 end
      local p = utf8.printable(s)
      if not utf8.valid(p) or (v and p ~= s) then disagree = disagree + 1 end
    end
    for _, a in ipairs(edges) do
      check(char(a))
      for _, b in ipairs(edges) do
        check(char(a, b))
        for _, c in ipairs(edges) do
          check(char(a, b, c))
          if a >= 0xF0 then for _, d in ipairs(edges) do check(char(a, b, c, d)) end end
        end
      end
    end
    assert.equals(0, disagree)
  end)
end)
