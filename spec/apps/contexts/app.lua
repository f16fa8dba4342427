-- The fixture app for contexts, bundles and invalidation.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

local lists = { [1] = { { id = 1, title = "first", done = false } }, [2] = {} }
local next_id = 2

local todos = client {
  context = "todos",
  input = { list_id = T.integer, done = T.optional(T.boolean) },
} (function(req, args)
  local items = mizan.array {}
  for _, t in ipairs(lists[args.list_id] or {}) do
    if args.done == nil or t.done == args.done then items[#items + 1] = t end
  end
  return { list_id = args.list_id, items = items }
end)
mizan.register(todos, "todo_list")

mizan.register(client { context = "todos", input = { list_id = T.integer } } (function(req, args)
  return #(lists[args.list_id] or {})
end), "todo_count")

mizan.register(client { context = "global" } (function(req)
  return { user = mizan.null }
end), "current_user")

local stats = client { query = true } (function()
  local n = 0
  for _, l in pairs(lists) do n = n + #l end
  return { total = n }
end)
mizan.register(stats, "stats")

mizan.register(client {
  input = { list_id = T.integer, title = T.string { min_length = 1 } },
  affects = { "todos", stats },
  affects_params = { list_id = "list_id" },
} (function(req, args)
  lists[args.list_id] = lists[args.list_id] or {}
  local t = { id = next_id, title = args.title, done = false }
  next_id = next_id + 1
  table.insert(lists[args.list_id], t)
  return t
end), "add_todo")

mizan.register(client {
  input = { id = T.integer },
  affects = "todos",
  affects_params = function(req, args, result) return { list_id = result.list_id, unknown = 1 } end,
} (function(req, args)
  for list_id, l in pairs(lists) do
    for _, t in ipairs(l) do
      if t.id == args.id then
        t.done = not t.done
        return { list_id = list_id, done = t.done }
      end
    end
  end
  mizan.error("not_found", "no todo " .. args.id)
end), "toggle")

mizan.register(client { affects = "todos" } (function(req)
  req:invalidate(stats)
  req:invalidate("todos", { list_id = 9 })
  req:invalidate("todo_count", { list_id = 3 })
  return true
end), "runtime")

mizan.register(client { affects = "todos", affects_params = { list_id = "list_id" }, input = { list_id = T.integer } } (function(req, args)
  return mizan.response { status = 303, headers = { Location = "/lists/" .. args.list_id } }
end), "view_path")

mizan.register(client { input = { id = T.optional(T.integer) } } (function() return { ok = true } end), "no_affects")

mizan.register(client { context = "guarded" } (function() mizan.error("forbidden", "not yours") end), "secret")
mizan.register(client { context = "guarded" } (function() return 1 end), "public")

mizan.register(client { context = "rawctx" } (function() return mizan.response { body = "x" } end), "raw_in_ctx")

mizan.register(client { query = true } (function(req) req:invalidate("todos") end), "query_invalidates")

mizan.register(client { affects = "todos" } (function(req) req:invalidate("nope") end), "bad_runtime")

mizan.register(client { context = "odd name/with, symbols", input = { q = T.string } } (function(req, args)
  return args.q
end), "odd")
