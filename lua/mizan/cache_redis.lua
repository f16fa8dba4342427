-- mizan.cache_redis: the Redis backend of the origin cache, shared by every
-- instance. Keys are prefixed "mizan:"; tag versions are "mizan:t:<tag>".
--
-- An entry is stored as "<versions>\n<json>", the versions of its tags read
-- (in the same MGET as the lookup that missed) before its value was computed;
-- it is fresh while they are unchanged. A purge INCRs the tags.
--
-- It fails open: when Redis errs, reads run uncached and nothing is stored.
-- Purges go over a connection of their own with a longer timeout
-- (cache_purge_timeout, 2 s by default), so a slow read never fails a purge
-- and a purge never slows the reads. A purge that could not reach Redis is
-- reported (the mutation answers 503) and not forgotten: a background task
-- retries it, with a bump of the epoch every entry carries, until Redis
-- takes it; and until then this process does not read the cache at all.
local redis = require "mizan.redis"
local core = require "mizan.core"

local M = {}

local EPOCH = "mizan:t:*"
local BUMP = "for _, k in ipairs(KEYS) do redis.call('INCR', k) end return 1"

function M.new(cfg)
  local client = redis.open(cfg.cache, cfg.cache_timeout or 0.2)
  local purger = redis.open(cfg.cache, cfg.cache_purge_timeout or 2)
  local b = { fast_path = false }
  local dirty, failing, repairing = false, false, false
  local owed = {} -- tag keys whose purge has not reached Redis yet

  local function trouble(what, err)
    if not failing then
      failing = true
      core.log("warn", ("cache: redis %s failed (%s): serving uncached until it is back"):format(what, tostring(err)))
    end
  end

  local function fine()
    if failing then
      failing = false
      core.log("info", "cache: redis is back")
    end
  end

  -- Pay what is owed: the failed purges, and the epoch (everything cached
  -- before the failure goes).
  local function repay(via)
    local keys = { EPOCH }
    for k in pairs(owed) do keys[#keys + 1] = k end
    local ok, err = redis.call(via, "EVAL", BUMP, tostring(#keys), unpack(keys))
    if not ok then
      trouble("purge retry", err)
      return false
    end
    -- only what was sent is paid: a purge that failed while this one was on
    -- its way (another connection) stays owed, with the epoch bump it needs
    for i = 2, #keys do owed[keys[i]] = nil end
    dirty = next(owed) ~= nil
    core.log("info", "cache: a purge had failed while redis was away; it is done now, and every older entry is dropped")
    return true
  end

  local function repair_loop()
    while dirty do
      if not repay(purger) then core.sleep(0.1, true) end
    end
    repairing = false
  end

  -- on the read path: the reads' connection, which gives up sooner
  local function clean()
    if not dirty then return true end
    return repay(client)
  end

  function b.lookup(key, tags)
    if not clean() then return nil end
    local args = { "MGET", "mizan:" .. key, EPOCH }
    for _, t in ipairs(tags) do args[#args + 1] = "mizan:t:" .. t end
    local r, err = redis.call(client, unpack(args))
    if not r then
      trouble("read", err)
      return nil -- no snapshot: the value will not be stored
    end
    fine()
    local versions = {}
    for i = 2, #r do versions[i - 1] = r[i] or "0" end
    local entry = r[1]
    if entry then
      local head, value = entry:match("^([^\n]*)\n(.*)$")
      if head == table.concat(versions, ",") then return value end
    end
    return nil, versions
  end

  function b.store(key, value, ttl, tags, versions)
    local ms = math.max(1, math.floor(ttl * 1000))
    local ok, err = redis.call(client, "SET", "mizan:" .. key, table.concat(versions, ",") .. "\n" .. value,
                               "PX", tostring(ms))
    if not ok then trouble("write", err) end
  end

  function b.bump(tags)
    local keys = {}
    for i, t in ipairs(tags) do keys[i] = "mizan:t:" .. t end
    local ok, err = redis.call(purger, "EVAL", BUMP, tostring(#keys), unpack(keys))
    if ok then return true end
    dirty = true
    for _, k in ipairs(keys) do owed[k] = true end
    trouble("purge", err)
    if not repairing then
      repairing = true
      core.spawn(repair_loop)
    end
    return nil, ("redis did not take the purge (%s)"):format(tostring(err))
  end

  function b.state() return redis.state(client) end

  return b
end

return M
