-- The X-Mizan-Invalidate encoding in C, against the normative vectors.
local inv = require "mizan.invalidate"
local invalidation = require "mizan.invalidation"
local h = require "helpers"

local function entries_of(list)
  local out = {}
  for i, e in ipairs(list) do
    out[i] = type(e) == "string" and { target = e } or { target = e.target, params = e.params }
  end
  return out
end

describe("X-Mizan-Invalidate encoding", function()
  local vectors = h.load_json(h.shared("vectors/invalidate_header.json"))

  it("reproduces every case of shared/vectors/invalidate_header.json", function()
    assert.is_true(#vectors.cases > 0)
    for _, case in ipairs(vectors.cases) do
      assert.equals(case.header, inv.header(entries_of(case.invalidate)))
    end
  end)

  it("reproduces the vectors through the invalidation record too", function()
    for _, case in ipairs(vectors.cases) do
      local rec = invalidation.new()
      for _, e in ipairs(entries_of(case.invalidate)) do rec:add(e.target, e.params) end
      assert.equals(case.header, rec:header())
    end
  end)

  it("percent-encodes target names outside the unreserved set", function()
    assert.equals("my%20list%2C%20v2", inv.header { { target = "my list, v2" } })
  end)

  it("reports values JSON cannot carry, and malformed entries, as nil, err", function()
    local v, err = inv.header { { target = "t", params = { x = 0 / 0 } } }
    assert.is_nil(v)
    assert.matches("NaN", err)
    v, err = inv.header { { params = {} } }
    assert.is_nil(v)
    assert.matches("target", err)
    assert.has_error(function() inv.header("x") end)
  end)

  it("is empty for an empty set", function()
    assert.equals("", inv.header {})
    assert.is_true(invalidation.new():empty())
  end)
end)

describe("invalidation record", function()
  it("drops exact duplicates and keeps the first place", function()
    local rec = invalidation.new()
    rec:add("a", { id = 1 })
    rec:add("b")
    rec:add("a", { id = 1 })
    rec:add("a", { id = 2 })
    assert.equals("a;id=1, b, a;id=2", rec:header())
  end)

  it("lets a whole-target entry cover the entries of that target with params", function()
    local rec = invalidation.new()
    rec:add("a", { id = 1 })
    rec:add("b", { id = 1 })
    rec:add("a")
    assert.equals("b;id=1, a", rec:header())
    assert.same({ { target = "b", params = { id = 1 } }, "a" }, rec:body())
  end)

  it("keeps an empty params object as a value in the body", function()
    local rec = invalidation.new()
    rec:add("t", {})
    assert.equals("t", rec:header())
    assert.equals('[{"params":{},"target":"t"}]', require("mizan.json").canonical(rec:body()))
  end)
end)
