-- core's task primitives (core/host.c): a suspend with a deadline
-- (core.wait) and the hand-over that ends it (core.wake).
local core = require "mizan.core"

describe("core.wait and core.wake", function()
  it("gives up when the time runs out: false, and a later wake is refused", function()
    local ok, woken, me = core.run(function()
      local t = core.current_task()
      return core.wait(0.01), t
    end)
    assert.is_true(ok)
    assert.is_false(woken)
    local ran, refused = core.run(function() return core.wake(me, "late") end)
    assert.is_true(ran)
    assert.is_false(refused)
  end)

  it("hands a value to a waiting task, once; a task that is not waiting is refused", function()
    local log = {}
    local ok = core.run(function()
      local waiter
      core.spawn(function()
        waiter = core.current_task()
        local woken, value = core.wait(30)
        log[#log + 1] = { woken, value }
      end)
      core.sleep(0.01) -- the spawned task is waiting now
      log[#log + 1] = core.wake(waiter, "a connection")
      log[#log + 1] = core.wake(waiter, "a second one") -- already woken: refused
      log[#log + 1] = core.wake(core.current_task(), "me") -- not waiting: refused
      core.sleep(0.01)
    end)
    assert.is_true(ok)
    assert.same({ true, false, false, { true, "a connection" } }, log)
  end)

  it("refuses a wait outside a task, and a deadline that is no number of seconds", function()
    assert.has_error(function() core.wait(1) end)
    local ok, err = core.run(function() return pcall(core.wait, -1) end)
    assert.is_true(ok)
    assert.is_false(err)
  end)
end)
