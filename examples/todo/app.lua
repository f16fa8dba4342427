-- The todo example. This release serves plain functions; contexts, auth,
-- forms and the cache join it as they land.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

local echo = client {
  description = "Repeat a message back.",
  input = { text = T.string { max_length = 200 } },
  output = { message = T.string },
} (function(req, args)
  return { message = args.text }
end)
mizan.register(echo, "echo")

-- An in-memory list, per worker, until the database lands.
local todos, next_id = {}, 1

local Todo = { id = T.integer, title = T.string, done = T.boolean }

local list_todos = client {
  query = true,
  description = "All todos, oldest first.",
  input = { done = T.optional(T.boolean) },
  output = T.array(Todo),
} (function(req, args)
  local out = mizan.array {}
  for _, t in ipairs(todos) do
    if args.done == nil or t.done == args.done then out[#out + 1] = t end
  end
  return out
end)
mizan.register(list_todos, "list_todos")

local add_todo = client {
  description = "Add a todo.",
  input = { title = T.string { min_length = 1, max_length = 200 } },
  output = Todo,
} (function(req, args)
  local t = { id = next_id, title = args.title, done = false }
  next_id = next_id + 1
  todos[#todos + 1] = t
  return t
end)
mizan.register(add_todo, "add_todo")

local set_done = client {
  description = "Mark a todo done or not done.",
  input = { id = T.integer { min = 1 }, done = T.boolean { default = true } },
  output = Todo,
} (function(req, args)
  for _, t in ipairs(todos) do
    if t.id == args.id then
      t.done = args.done
      return t
    end
  end
  mizan.error("not_found", ("no todo with id %d"):format(args.id))
end)
mizan.register(set_done, "set_done")
