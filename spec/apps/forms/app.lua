-- The fixture app for mizan.forms.
local mizan = require "mizan"
local forms = mizan.forms
local client, T = mizan.client, mizan.types

local sent = {}

forms.form "contact" {
  title = "Contact Us",
  fields = {
    forms.char "name" { max_length = 100, label = "Your name", help_text = "As you like to be called." },
    forms.email "email" {},
    forms.choice "topic" { choices = { { "sales", "Sales" }, { "help", "Help" } }, initial = "help" },
    forms.text "message" { min_length = 10 },
    forms.boolean "agree" {},
    forms.char "source" { required = false, disabled = true, initial = "web" },
  },
  clean = function(data)
    if data.topic == "sales" and data.email and data.email:find("@example%.com$") then
      return { email = "We do not sell to example.com.", __all__ = "Sales enquiries need a real company." }
    end
  end,
  on_submit_success = function(req, data)
    sent[#sent + 1] = data
    return { sent = true, data = data }
  end,
}

mizan.register(client { query = true } (function() return { count = #sent, last = sent[#sent] or mizan.null } end), "outbox")

-- a form that affects a cached context
local items = { "first" }
mizan.register(client { context = "items", cache = { ttl = 60, shared = true } } (function()
  return mizan.array { unpack(items) }
end), "item_list")

forms.form "new_item" {
  fields = { forms.char "title" { max_length = 20 } },
  affects = "items",
  on_submit_success = function(req, data)
    items[#items + 1] = data.title
    return { count = #items }
  end,
}

forms.form "members_only" {
  auth = true,
  fields = { forms.char "note" {} },
  on_submit_success = function() return true end,
}
