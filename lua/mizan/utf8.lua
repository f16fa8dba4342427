-- mizan.utf8: is a byte string valid UTF-8 (as the JSON codec requires:
-- no overlongs, no surrogates, nothing past U+10FFFF), and a printable form
-- of one that is not. Text from a URL (a percent-decoded name, a query
-- value) can be any bytes; it is checked here before it reaches JSON.
-- The checks are C's (core/utf8.c), the same the JSON codec and the
-- WebSocket decoder use, so the three cannot disagree.
local core = require "mizan.utf8core"

local M = {}

--- valid(s) -> true when s is valid UTF-8.
M.valid = core.valid

--- printable(s) -> s when valid; otherwise s with every byte that is not
-- part of a valid sequence written as %XX (how it came in a URL).
M.printable = core.printable

return M
