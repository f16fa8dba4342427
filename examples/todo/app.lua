-- The todo example: plain functions, contexts, and mutations that say what
-- they affect. Auth, forms and the cache join it as they land.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

mizan.register(client {
  description = "Repeat a message back.",
  input = { text = T.string { max_length = 200 } },
  output = { message = T.string },
} (function(req, args)
  return { message = args.text }
end), "echo")

-- The global context: fetched once by the client, hydrated into the first
-- page later. A placeholder until accounts land: nobody is signed in.
mizan.register(client {
  context = "global",
  description = "The signed-in user, or null.",
  output = T.nullable { id = T.integer, username = T.string },
} (function(req)
  return mizan.null
end), "current_user")

-- Todos live in lists, in memory (per process) until the database lands.
local lists = { [1] = { name = "Inbox", items = {} }, [2] = { name = "Groceries", items = {} } }
local next_id = 1

local Todo = { id = T.integer, list_id = T.integer, title = T.string, done = T.boolean }

local function list_or_404(list_id)
  local list = lists[list_id]
  if not list then mizan.error("not_found", ("no list with id %d"):format(list_id)) end
  return list
end

local function find(id)
  for list_id, list in pairs(lists) do
    for i, t in ipairs(list.items) do
      if t.id == id then return t, list, i, list_id end
    end
  end
  mizan.error("not_found", ("no todo with id %d"):format(id))
end

-- The "todos" context: everything a list page shows, in one request.
-- Its params are elevated from its functions' inputs: list_id (required,
-- used by both) and done (optional, used by todo_list).
mizan.register(client {
  context = "todos",
  description = "The todos of a list, oldest first; done filters them.",
  input = { list_id = T.integer { min = 1 }, done = T.optional(T.boolean) },
  output = T.array(Todo),
} (function(req, args)
  local out = mizan.array {}
  for _, t in ipairs(list_or_404(args.list_id).items) do
    if args.done == nil or t.done == args.done then out[#out + 1] = t end
  end
  return out
end), "todo_list")

mizan.register(client {
  context = "todos",
  description = "How many todos of a list are open and done.",
  input = { list_id = T.integer { min = 1 } },
  output = { name = T.string, open = T.integer, done = T.integer },
} (function(req, args)
  local list = list_or_404(args.list_id)
  local open, done = 0, 0
  for _, t in ipairs(list.items) do
    if t.done then done = done + 1 else open = open + 1 end
  end
  return { name = list.name, open = open, done = done }
end), "todo_summary")

-- Mutations say what they affect. The client refetches exactly that.
mizan.register(client {
  description = "Add a todo to a list.",
  input = { list_id = T.integer { min = 1 }, title = T.string { min_length = 1, max_length = 200 } },
  output = Todo,
  affects = "todos",
  affects_params = { list_id = "list_id" }, -- only that list's bundle is stale
} (function(req, args)
  local list = list_or_404(args.list_id)
  local t = { id = next_id, list_id = args.list_id, title = args.title, done = false }
  next_id = next_id + 1
  list.items[#list.items + 1] = t
  return t
end), "add_todo")

mizan.register(client {
  description = "Mark a todo done or not done.",
  input = { id = T.integer { min = 1 }, done = T.boolean { default = true } },
  output = Todo,
  affects = "todos",
  -- the list is only known once the todo is found: take it from the result
  affects_params = function(req, args, result) return { list_id = result.list_id } end,
} (function(req, args)
  local t = find(args.id)
  t.done = args.done
  return t
end), "set_done")

mizan.register(client {
  description = "Delete a todo.",
  input = { id = T.integer { min = 1 } },
  output = { deleted = T.integer },
} (function(req, args)
  local _, list, i, list_id = find(args.id)
  table.remove(list.items, i)
  req:invalidate("todos", { list_id = list_id }) -- decided at run time
  return { deleted = args.id }
end), "delete_todo")
