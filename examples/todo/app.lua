-- The todo example: real accounts (signup, login, logout), todos owned by
-- their user (SQLite by default, or Postgres: MIZAN_DATABASE), contexts, mutations that say what they affect, a
-- per-user cache, and staff-only admin functions.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local db = mizan.db

-- The React UI (examples/todo/web, built by Vite into web/dist), served with
-- the signed-in user's global context in each page.
mizan.config { static_dir = "web/dist" }

mizan.register(client {
  description = "Repeat a message back.",
  input = { text = T.string { max_length = 200 } },
  output = { message = T.string },
} (function(req, args)
  return { message = args.text }
end), "echo")

-- The tables come from migrations/ (applied by `mizan migrate`, and by
-- `mizan dev` on start and on save). The SQL here runs on SQLite and on
-- Postgres alike: booleans are stored as 0/1, new ids come from RETURNING.

local Todo = { id = T.integer, list_id = T.integer, title = T.string, done = T.boolean }
local List = { id = T.integer, name = T.string }

local function todo(row)
  return { id = row.id, list_id = row.list_id, title = row.title, done = row.done == 1 }
end

-- A list of the signed-in user, or 404: nobody sees another user's lists.
local function own_list(req, list_id)
  local list = db.row("SELECT id, name FROM lists WHERE id = ? AND owner_id = ?", list_id, req.user.id)
  if not list then mizan.error("not_found", ("no list with id %d"):format(list_id)) end
  return list
end

local function own_todo(req, id)
  local row = db.row([[SELECT todos.* FROM todos JOIN lists ON lists.id = todos.list_id
                       WHERE todos.id = ? AND lists.owner_id = ?]], id, req.user.id)
  if not row then mizan.error("not_found", ("no todo with id %d"):format(id)) end
  return row
end

-- The "lists" context: the signed-in user's lists.
mizan.register(client {
  context = "lists",
  auth = true,
  description = "Your lists.",
  output = T.array(List),
} (function(req)
  return mizan.array(assert(db.query("SELECT id, name FROM lists WHERE owner_id = ? ORDER BY id", req.user.id)))
end), "my_lists")

-- The "todos" context: everything a list page shows, in one request. Its
-- params are elevated from its functions' inputs: list_id (required, used by
-- both) and done (optional, used by todo_list).
mizan.register(client {
  context = "todos",
  auth = true,
  description = "The todos of one of your lists, oldest first; done filters them.",
  input = { list_id = T.integer { min = 1 }, done = T.optional(T.boolean) },
  output = T.array(Todo),
} (function(req, args)
  own_list(req, args.list_id)
  local rows
  if args.done == nil then
    rows = assert(db.query("SELECT * FROM todos WHERE list_id = ? ORDER BY id", args.list_id))
  else
    rows = assert(db.query("SELECT * FROM todos WHERE list_id = ? AND done = ? ORDER BY id", args.list_id,
                           args.done and 1 or 0))
  end
  local out = mizan.array {}
  for i, r in ipairs(rows) do out[i] = todo(r) end
  return out
end), "todo_list")

mizan.register(client {
  context = "todos",
  auth = true,
  cache = { ttl = 30 }, -- per user: each user's summary is their own entry
  description = "How many todos of a list are open and done.",
  input = { list_id = T.integer { min = 1 } },
  output = { name = T.string, open = T.integer, done = T.integer },
} (function(req, args)
  local list = own_list(req, args.list_id)
  local row = db.row("SELECT count(*) AS n, coalesce(sum(done), 0) AS d FROM todos WHERE list_id = ?", args.list_id)
  return { name = list.name, open = row.n - row.d, done = row.d }
end), "todo_summary")

-- Mutations say what they affect; the client refetches exactly that.
mizan.register(client {
  auth = true,
  description = "Make a new list.",
  input = { name = T.string { min_length = 1, max_length = 100 } },
  output = List,
  affects = "lists",
} (function(req, args)
  local r = assert(db.row("INSERT INTO lists (owner_id, name) VALUES (?, ?) RETURNING id", req.user.id, args.name))
  return { id = r.id, name = args.name }
end), "create_list")

mizan.register(client {
  auth = true,
  description = "Add a todo to one of your lists.",
  input = { list_id = T.integer { min = 1 }, title = T.string { min_length = 1, max_length = 200 } },
  output = Todo,
  affects = "todos",
  affects_params = { list_id = "list_id" }, -- only that list's bundle is stale
} (function(req, args)
  own_list(req, args.list_id)
  local r = assert(db.row("INSERT INTO todos (list_id, title) VALUES (?, ?) RETURNING id", args.list_id, args.title))
  return { id = r.id, list_id = args.list_id, title = args.title, done = false }
end), "add_todo")

mizan.register(client {
  auth = true,
  description = "Mark a todo done or not done.",
  input = { id = T.integer { min = 1 }, done = T.boolean { default = true } },
  output = Todo,
  affects = "todos",
  -- the list is only known once the todo is found: take it from the result
  affects_params = function(req, args, result) return { list_id = result.list_id } end,
} (function(req, args)
  local row = own_todo(req, args.id)
  assert(db.exec("UPDATE todos SET done = ? WHERE id = ?", args.done and 1 or 0, args.id))
  row.done = args.done and 1 or 0
  return todo(row)
end), "set_done")

mizan.register(client {
  auth = true,
  description = "Delete a todo.",
  input = { id = T.integer { min = 1 } },
  output = { deleted = T.integer },
} (function(req, args)
  local row = own_todo(req, args.id)
  assert(db.exec("DELETE FROM todos WHERE id = ?", args.id))
  req:invalidate("todos", { list_id = row.list_id }) -- decided at run time
  return { deleted = args.id }
end), "delete_todo")

-- Staff only.
mizan.register(client {
  auth = "staff",
  query = true,
  description = "Counts across every user (staff only).",
  output = { users = T.integer, lists = T.integer, todos = T.integer },
} (function(req)
  return {
    users = db.row("SELECT count(*) AS n FROM mizan_users").n,
    lists = db.row("SELECT count(*) AS n FROM lists").n,
    todos = db.row("SELECT count(*) AS n FROM todos").n,
  }
end), "admin.stats")

mizan.register(client {
  auth = "staff",
  description = "Delete every list and todo of a user (staff only).",
  input = { user_id = T.integer },
  output = { deleted_lists = T.integer },
  affects = { "lists", "todos" },
} (function(req, args)
  local r = assert(db.exec("DELETE FROM lists WHERE owner_id = ?", args.user_id))
  return { deleted_lists = r.changes }
end), "admin.clear_user")

-- Forms: declared once, validated the same way on the server and (later) the client.
local forms = mizan.forms

forms.form "contact" {
  title = "Contact Us",
  fields = {
    forms.char "name" { max_length = 100 },
    forms.email "email" {},
    forms.choice "topic" { choices = { { "sales", "Sales" }, { "help", "Help" } }, initial = "help" },
    forms.text "message" { min_length = 10, max_length = 2000 },
  },
  -- a server-only rule: the client's Zod schema checks the fields, not this
  clean = function(data)
    if data.message and data.message:lower():find("free money", 1, true) then
      return { message = "This looks like spam." }
    end
  end,
  on_submit_success = function(req, data)
    mizan.log("info", ("contact form from %s <%s> about %s"):format(data.name, data.email, data.topic))
    return { sent = true }
  end,
}

forms.form "new_list" {
  title = "New list",
  auth = true,
  fields = {
    forms.char "name" { max_length = 100, help_text = "What goes on this list?" },
    forms.multiple_choice "tags" { required = false, choices = { { "home", "Home" }, { "work", "Work" } } },
  },
  clean = function(data)
    if data.name and data.name:lower() == "inbox" then return { name = "Every account has an Inbox already." } end
  end,
  affects = { "lists", "todos" },
  on_submit_success = function(req, data)
      local r = assert(db.row("INSERT INTO lists (owner_id, name) VALUES (?, ?) RETURNING id", req.user.id, data.name))
    return { id = r.id, name = data.name }
  end,
}
