-- The benchmark app: the same job as the `/echo` location of
-- shared/bench/openresty.conf (text must be a string, or 400).
local mizan = require "mizan"
local client, T = mizan.client, mizan.types

mizan.register(client {
  input = { text = T.string },
  output = { message = T.string },
} (function(req, args)
  return { message = args.text }
end), "echo")
