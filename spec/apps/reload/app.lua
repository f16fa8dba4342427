-- The fixture app for workers and reloads: VERSION is rewritten by specs.
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
local VERSION = "v1"

mizan.register(client { query = true } (function() return VERSION end), "version")

mizan.register(client { query = true, input = { seconds = T.number } } (function(req, args)
  mizan.sleep(args.seconds)
  return { pid = require("mizan.testkit").getpid(), version = VERSION }
end), "slow")
