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
end)
