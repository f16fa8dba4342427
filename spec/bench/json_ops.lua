-- One JSON operation, N times, for spec/bench/json_instructions.sh:
--   build/mizan lua spec/bench/json_ops.lua mizan|cjson|none decode|encode N
-- on the 2 KB document of json_bench.lua ("none" runs the empty loop).
local which, op, n = arg[1], arg[2], tonumber(arg[3])
local json = require "mizan.json"
local cjson = require "cjson"
local items = {}
for i = 1, 26 do
  items[i] = ('{"id":%d,"title":"todo number %d","done":%s,"tags":["a","b"],"score":%d.5}')
    :format(i, i, i % 2 == 0 and "true" or "false", i * 3)
end
local text = '{"owner":"alice","page":1,"items":[' .. table.concat(items, ",") .. ']}'
local value = json.decode(text)
local cvalue = cjson.decode(text)
local f
if which == "mizan" then f = op == "decode" and function() return json.decode(text) end or function() return json.encode(value) end
elseif which == "cjson" then f = op == "decode" and function() return cjson.decode(text) end or function() return cjson.encode(cvalue) end
else f = function() end end
for _ = 1, n do f() end
