-- JSON codec benchmark: mizan.json against Debian's lua-cjson, in the same
-- process, on the same inputs. Run with: build/mizan lua spec/bench/json_bench.lua
-- Prints operations per second and the ratio; never a pass/fail test.
local json = require "mizan.json"
local cjson = require "cjson"
local core = require "mizan.core"

local small_text = '{"id":12345,"text":"hi","ok":true}' -- ~30 bytes
local items = {}
for i = 1, 26 do
  items[i] = ('{"id":%d,"title":"todo number %d","done":%s,"tags":["a","b"],"score":%d.5}')
    :format(i, i, i % 2 == 0 and "true" or "false", i * 3)
end
local big_text = '{"owner":"alice","page":1,"items":[' .. table.concat(items, ",") .. ']}' -- ~2 KB

local function bench(fn, arg)
  -- calibrate to ~0.4 s, then take the best of 5 runs
  local n = 1000
  while true do
    local t0 = core.monotonic()
    for _ = 1, n do fn(arg) end
    local dt = core.monotonic() - t0
    if dt > 0.4 then break end
    n = n * 2
  end
  local best = math.huge
  for _ = 1, 5 do
    local t0 = core.monotonic()
    for _ = 1, n do fn(arg) end
    best = math.min(best, core.monotonic() - t0)
  end
  return n / best
end

print(("%-22s %14s %14s %8s"):format("case", "mizan ops/s", "cjson ops/s", "ratio"))
for _, case in ipairs { { "small (" .. #small_text .. " B)", small_text }, { "large (" .. #big_text .. " B)", big_text } } do
  local name, text = case[1], case[2]
  local ours, theirs = json.decode(text), cjson.decode(text)
  local d_m, d_c = bench(json.decode, text), bench(cjson.decode, text)
  local e_m, e_c = bench(json.encode, ours), bench(cjson.encode, theirs)
  print(("%-22s %14.0f %14.0f %7.2fx"):format("decode " .. name, d_m, d_c, d_m / d_c))
  print(("%-22s %14.0f %14.0f %7.2fx"):format("encode " .. name, e_m, e_c, e_m / e_c))
end
