-- mizan.invalidation: the one invalidation record of a request.
--
-- A mutation's record is built once: its declared targets (with params from
-- affects_params), then the targets it added at run time with
-- req:invalidate(). The cache purge, the response body, the
-- X-Mizan-Invalidate header and the WebSocket push all read this record.
local json = require "mizan.json"
local header = require("mizan.invalidate").header

local M = {}

local Record = {}
Record.__index = Record

function M.new() return setmetatable({ entries = {}, seen = {} }, Record) end

--- Add a target (a resolved name) with params (a table, or nil for all of it).
-- Exact duplicates are dropped; the first occurrence keeps its place.
function Record:add(target, params)
  local key = target .. "\0" .. (params and assert(json.canonical(params)) or "*")
  if self.seen[key] then return end
  self.seen[key] = true
  self.entries[#self.entries + 1] = { target = target, params = params }
end

--- The entries, with any entry made redundant by a whole-target entry of the
-- same target removed (invalidating all of it covers any part of it).
function Record:list()
  if self.final then return self.final end
  local whole = {}
  for _, e in ipairs(self.entries) do
    if e.params == nil then whole[e.target] = true end
  end
  local out = {}
  for _, e in ipairs(self.entries) do
    if e.params == nil or not whole[e.target] then out[#out + 1] = e end
  end
  self.final = out
  return out
end

function Record:empty() return #self:list() == 0 end

--- The body's "invalidate" array: a name for an entry without params, an
-- object { target, params } for one with params.
function Record:body()
  local out = json.array {}
  for i, e in ipairs(self:list()) do
    out[i] = e.params == nil and e.target or { target = e.target, params = json.object(e.params) }
  end
  return out
end

--- The X-Mizan-Invalidate value (encoded in C). nil, err for params JSON
-- cannot carry.
function Record:header() return header(self:list()) end

-- Params for one target from affects_params: only those the target has, so
-- an unknown key widens the invalidation (safe) instead of missing data.
local function params_for(target, mapping, args, computed)
  local p, any = {}, false
  if type(mapping) == "table" then
    for tp, arg in pairs(mapping) do
      if target.params[tp] ~= nil and args[arg] ~= nil then p[tp] = args[arg]; any = true end
    end
  elseif computed then
    for k, v in pairs(computed) do
      if target.params[k] ~= nil then p[k] = v; any = true end
    end
  end
  return any and p or nil
end

--- Build a mutation's record: declared targets first, then the run-time ones.
function M.for_call(spec, req, args, result)
  local rec = M.new()
  local mapping = spec.affects_params
  local computed
  if type(mapping) == "function" then
    computed = mapping(req, args, result)
    if computed ~= nil and type(computed) ~= "table" then
      error(("function '%s': affects_params returned %s, not a table of params"):format(spec.name, type(computed)), 0)
    end
  end
  for _, target in ipairs(spec.affects or {}) do
    rec:add(target.name, params_for(target, mapping, args, computed))
  end
  for _, e in ipairs(rawget(req, "_invalidations") or {}) do rec:add(e.target, e.params) end
  return rec
end

return M
