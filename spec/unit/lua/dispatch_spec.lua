-- mizan.dispatch: the record it gives C, errors turned into answers in one
-- place, and the request's private fields declared in one module.
local core = require "mizan.core"
local json = require "mizan.json"
local lfs = require "lfs"
local h = require "helpers"
local respond = require "mizan.dispatch.respond"

local APP = [[
local mizan = require "mizan"
local client, T = mizan.client, mizan.types
mizan.register(client { query = true, input = { n = T.integer } } (function(req, args) return args.n end), "num")
mizan.register(client { query = true } (function() mizan.error("forbidden", "no") end), "refuses")
mizan.register(client { query = true } (function() error("boom") end), "crashes")
mizan.register(client { query = true } (function()
  return mizan.response { status = 201, body = "plain", headers = { ["X-A"] = "1" } }
end), "raw")
mizan.register(client { query = true, cache = { ttl = 60, shared = true } } (function() return { v = 1 } end), "cached")
]]

local function record(handler, req)
  req.headers = req.headers or {}
  req.ip, req.body = "127.0.0.1", req.body or ""
  req.query = req.query or ""
  local res = { core.run(handler, req) }
  assert(res[1], res[2])
  return respond.read(unpack(res, 2, 7))
end

describe("mizan.dispatch", function()
  local handler
  setup(function()
    handler = require("mizan.host").load(h.app_dir(APP), "test")
  end)

  local function get(name, query)
    return record(handler, { route = "call", name = name, method = "GET", path = "/api/mizan/call/" .. name .. "/",
                             query = query })
  end

  -- The bytes C sends for a record's body: a table is JSON data that C
  -- encodes with the same codec.
  local function text_of(rec)
    if type(rec.body) == "table" then return assert(json.encode(rec.body)) end
    return rec.body
  end

  it("answers C with one record: status, body (JSON data C encodes, or bytes), a flat header list", function()
    local rec = get("num", "n=3")
    assert.equals(200, rec.status)
    assert.is_table(rec.body) -- the common answer: no Lua string is made for it
    assert.equals('{"result":3}', text_of(rec))
    -- every answer says which schema serves it (version skew, DESIGN §2)
    local schema = require("mizan.dispatch.skew").schema()
    assert.matches("^%x+$", schema)
    assert.same({ "Content-Type", "application/json", "X-Mizan-Schema", schema }, rec.headers)
    assert.equals("num", rec.label)
    assert.is_nil(rec.cache)
    local raw = get("raw")
    assert.equals(201, raw.status)
    assert.equals("plain", raw.body)
    local map = {}
    for i = 1, #raw.headers, 2 do map[raw.headers[i]] = raw.headers[i + 1] end
    assert.same({ ["Content-Type"] = "text/plain; charset=utf-8", ["X-A"] = "1", ["X-Mizan-Schema"] = schema }, map)
  end)

  it("carries the cache state in the record, never in a header", function()
    assert.equals("miss", get("cached").cache)
    local rec = get("cached")
    assert.equals("hit", rec.cache)
    for i = 1, #rec.headers, 2 do assert.is_nil(rec.headers[i]:find(":", 1, true)) end
  end)

  it("turns raised errors, bad input and crashes into DESIGN §2 answers", function()
    local refused = get("refuses")
    assert.equals(403, refused.status)
    assert.equals("forbidden", json.decode(text_of(refused)).error.code)
    local bad = get("num", "n=x")
    assert.equals(400, bad.status)
    assert.equals("validation_error", json.decode(text_of(bad)).error.code)
    local crash = get("crashes")
    assert.equals(500, crash.status)
    assert.equals("internal_error", json.decode(text_of(crash)).error.code)
    local nope = get("nope")
    assert.equals(404, nope.status)
    assert.is_nil(nope.label) -- not a registered name: C counts it as (unknown)
  end)

  it("refuses a private field nobody declared", function()
    local request = require "mizan.dispatch.request"
    assert.has_error(function() request.set({}, "_usr", 1) end,
                     "mizan.dispatch.request: undeclared private field _usr")
  end)

  it("declares every private request field the framework uses", function()
    local declared = require("mizan.dispatch.request").FIELDS
    local used = {}
    local function scan(dir)
      for name in lfs.dir(dir) do
        local path = dir .. "/" .. name
        if name:match("%.lua$") then
          for field in h.read(path):gmatch('raw[gs]et%(%s*[%w_]+%s*,%s*"(_[%w_]+)"') do used[field] = path end
        elseif name ~= "." and name ~= ".." and lfs.attributes(path, "mode") == "directory" then
          scan(path)
        end
      end
    end
    scan("lua/mizan")
    assert.is_not_nil(next(used))
    for field, path in pairs(used) do assert.is_string(declared[field], field .. " (" .. path .. ")") end
  end)
end)
