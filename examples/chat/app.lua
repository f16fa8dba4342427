-- The chat example: rooms over one WebSocket per client, signed-in authors,
-- history in SQLite. Run it with `mizan dev examples/chat`.
local mizan = require "mizan"

-- The React UI (examples/chat/web, built by Vite into web/dist).
mizan.config { static_dir = "web/dist" }
local client, T = mizan.client, mizan.types
local db = mizan.db

local ready = false
local function schema()
  if ready then return end
  assert(db.exec([[CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY, room TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL, at REAL NOT NULL)]]))
  assert(db.exec("CREATE INDEX IF NOT EXISTS messages_room ON messages (room, id)"))
  ready = true
end

local Room = T.string { min_length = 1, max_length = 40, pattern = "^[%w_%-]+$" }
local Message = { id = T.integer, room = T.string, author = T.string, text = T.string, at = T.number }

-- The channel: anyone may read a public room; only signed-in users may
-- read "staff-*" rooms if staff, and only signed-in users may write.
mizan.channel "chat" {
  params = { room = Room },
  server_message = Message,
  client_message = { text = T.string { min_length = 1, max_length = 2000 } },
  authorize = function(ctx, params)
    if params.room:find("^staff%-") then
      return ctx.user ~= nil and (ctx.user.is_staff or ctx.user.is_superuser), "staff rooms are for staff"
    end
    return true
  end,
  group = function(ctx, params) return "chat:" .. params.room end,
  receive = function(ctx, params, msg)
    if not ctx.user then mizan.error("unauthenticated", "sign in to write") end
    schema()
    local at = mizan.now()
    local r = assert(db.exec("INSERT INTO messages (room, author, text, at) VALUES (?, ?, ?, ?)",
                             params.room, ctx.user.username, msg.text, at))
    mizan.channels.send("chat", params, { id = r.last_insert_id, room = params.room, author = ctx.user.username,
                                          text = msg.text, at = at })
  end,
}

-- History: the last messages of a room, as a context a client fetches on entry.
-- Who may read it is the channel's own decision: mizan.channels.authorize
-- runs the same authorize a subscribe does (401 or 403 when refused).
mizan.register(client {
  context = "room",
  input = { room = Room, limit = T.integer { min = 1, max = 200, default = 50 } },
  output = T.array(Message),
} (function(req, args)
  mizan.channels.authorize("chat", req, { room = args.room })
  schema()
  local rows = assert(db.query("SELECT * FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?", args.room, args.limit))
  local out = mizan.array {}
  for i = #rows, 1, -1 do out[#out + 1] = rows[i] end
  return out
end), "history")

-- Post over HTTP too (a form, a bot, curl): the same broadcast.
mizan.register(client {
  auth = true,
  input = { room = Room, text = T.string { min_length = 1, max_length = 2000 } },
  output = Message,
  affects = "room",
  affects_params = { room = "room" },
} (function(req, args)
  mizan.channels.authorize("chat", req, { room = args.room }) -- only into a room one may read
  schema()
  local at = mizan.now()
  local r = assert(db.exec("INSERT INTO messages (room, author, text, at) VALUES (?, ?, ?, ?)",
                           args.room, req.user.username, args.text, at))
  local m = { id = r.last_insert_id, room = args.room, author = req.user.username, text = args.text, at = at }
  mizan.channels.send("chat", { room = args.room }, m)
  return m
end), "post")
