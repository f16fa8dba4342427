-- mizan.cron: the five-field strings of mizan.job { cron = ... }, in UTC.
local cron = require "mizan.cron"

-- 2026-12-02 (a Wednesday) at hh:mm UTC
local function at(hh, mm, day) return os.time { year = 2026, month = 12, day = day or 2, hour = hh, min = mm, sec = 30 }
  - (os.time(os.date("*t", 0)) - os.time(os.date("!*t", 0))) end

describe("mizan.cron", function()
  local function m(s, t) return cron.matches(assert(cron.parse(s)), t) end
  it("matches minutes, steps, ranges and lists", function()
    assert.is_true(m("* * * * *", at(3, 7)))
    assert.is_true(m("*/5 * * * *", at(3, 10)))
    assert.is_false(m("*/5 * * * *", at(3, 11)))
    assert.is_true(m("0 7 * * *", at(7, 0)))
    assert.is_false(m("0 7 * * *", at(8, 0)))
    assert.is_true(m("10-20/5 * * * *", at(1, 15)))
    assert.is_false(m("10-20/5 * * * *", at(1, 16)))
    assert.is_true(m("1,2,30 * * * *", at(1, 30)))
  end)
  it("reads day of week (0 and 7 are Sunday) and day of month as classic cron does", function()
    assert.is_true(m("0 0 * * 3", at(0, 0)))       -- a Wednesday
    assert.is_false(m("0 0 * * 4", at(0, 0)))
    assert.is_true(m("0 0 * * 0", at(0, 0, 6)))    -- Sunday the 6th
    assert.is_true(m("0 0 * * 7", at(0, 0, 6)))
    assert.is_true(m("0 0 2 * 5", at(0, 0)))       -- either day field matches
    assert.is_false(m("0 0 3 * 5", at(0, 0)))
  end)
  it("refuses malformed strings, naming the field", function()
    local cases = { { "* * *", "needs 5 fields" }, { "60 * * * *", "minute: '60' is outside 0-59" },
                    { "* 24 * * *", "hour" }, { "* * 0 * *", "day of month" }, { "x * * * *", "minute: 'x'" },
                    { "*/0 * * * *", "minute" } }
    for _, c in ipairs(cases) do
      local ok, err = cron.parse(c[1])
      assert.is_nil(ok, c[1])
      assert.matches(c[2], err, 1, true)
    end
  end)
end)
