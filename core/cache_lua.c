/*
 * mizan.cachecore: the Lua face of core/cache*.c. Flat signatures; misuse
 * raises, runtime failures return nil, err. Slot lists are arrays of
 * integers; versions are numbers (exact below 2^53, far beyond any count of
 * purges).
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "json.h"

#define MAX_SLOTS 64

static mz_cache *need(lua_State *L) {
  mz_cache *c = mz_cache_get();
  if (!c) luaL_error(L, "the cache is not initialised (cachecore.init first)");
  return c;
}

static size_t read_slots(lua_State *L, int idx, uint32_t *slots) {
  luaL_checktype(L, idx, LUA_TTABLE);
  size_t n = lua_objlen(L, idx);
  if (n > MAX_SLOTS) luaL_argerror(L, idx, "too many tags");
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (int)i + 1);
    lua_Number v = lua_tonumber(L, -1);
    if (v < 0 || v >= MZ_CACHE_SLOTS) luaL_argerror(L, idx, "not a slot");
    slots[i] = (uint32_t)v;
    lua_pop(L, 1);
  }
  return n;
}

/* init(budget_bytes): create the process cache once; later calls keep it. */
static int l_init(lua_State *L) {
  lua_Number budget = luaL_checknumber(L, 1);
  if (budget < 1) return luaL_argerror(L, 1, "must be positive");
  if (!mz_cache_get() && !mz_cache_new((size_t)budget)) {
    lua_pushnil(L);
    lua_pushliteral(L, "cannot allocate the cache");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_slot(lua_State *L) {
  size_t n;
  const char *tag = luaL_checklstring(L, 1, &n);
  lua_pushinteger(L, mz_cache_slot(tag, n));
  return 1;
}

static int l_bump(lua_State *L) {
  uint32_t slots[MAX_SLOTS];
  size_t n = read_slots(L, 1, slots);
  mz_cache_bump(need(L), slots, n);
  return 0;
}

static int l_versions(lua_State *L) {
  uint32_t slots[MAX_SLOTS];
  uint64_t v[MAX_SLOTS];
  size_t n = read_slots(L, 1, slots);
  mz_cache_versions(need(L), slots, n, v);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushnumber(L, (lua_Number)v[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  return 1;
}

static const char *check_key(lua_State *L, int idx) {
  size_t n;
  const char *k = luaL_checklstring(L, idx, &n);
  if (n != 64) luaL_argerror(L, idx, "a cache key is 64 hex digits");
  return k;
}

static int l_lookup(lua_State *L) {
  const char *v;
  size_t n;
  mz_cache *c = need(L);
  if (mz_cache_lookup(c, check_key(L, 1), &v, &n)) {
    mz_cache_stats_of(c)->hits++;
    lua_pushlstring(L, v, n);
  } else {
    mz_cache_stats_of(c)->misses++;
    lua_pushnil(L);
  }
  return 1;
}

/* store(key, value, ttl_seconds, slots, versions) -> true | nil, err */
static int l_store(lua_State *L) {
  const char *key = check_key(L, 1);
  size_t len;
  const char *value = luaL_checklstring(L, 2, &len);
  lua_Number ttl = luaL_checknumber(L, 3);
  uint32_t slots[MAX_SLOTS];
  uint64_t v[MAX_SLOTS];
  size_t n = read_slots(L, 4, slots);
  luaL_checktype(L, 5, LUA_TTABLE);
  if (lua_objlen(L, 5) != n) return luaL_argerror(L, 5, "one version per slot");
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 5, (int)i + 1);
    v[i] = (uint64_t)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  if (mz_cache_store(need(L), key, value, len, (uint64_t)(ttl * 1000), slots, v, n)) {
    lua_pushnil(L);
    lua_pushliteral(L, "the value does not fit in the cache budget");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* alias(name, keys, segments, label): segments are #keys + 1 strings, the
   bytes around the entries' values (see mz_cache_alias_set). */
static int l_alias(lua_State *L) {
  size_t len, label_len;
  const char *name = luaL_checklstring(L, 1, &len);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  const char *label = luaL_checklstring(L, 4, &label_len);
  size_t n = lua_objlen(L, 2);
  if (n < 1 || n > MAX_SLOTS) return luaL_argerror(L, 2, "1 to 64 keys");
  if (lua_objlen(L, 3) != n + 1) return luaL_argerror(L, 3, "one segment more than keys");
  const char *keys[MAX_SLOTS], *segs[MAX_SLOTS + 1];
  size_t seg_lens[MAX_SLOTS + 1];
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 2, (int)i + 1);
    keys[i] = check_key(L, lua_gettop(L)); /* anchored by the keys table */
    lua_pop(L, 1);
  }
  for (size_t i = 0; i <= n; i++) {
    lua_rawgeti(L, 3, (int)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_argerror(L, 3, "segments are strings");
    segs[i] = lua_tolstring(L, -1, &seg_lens[i]); /* anchored by the segments table */
    lua_pop(L, 1);
  }
  if (mz_cache_alias_set(need(L), name, len, n, keys, segs, seg_lens, label, label_len)) {
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* key(secret, name, params, scope|nil) -> hex key | nil, err: canonical
   encoding and HMAC, all in C. */
static int l_key(lua_State *L) {
  size_t sn, nn, scn = 0;
  const char *secret = luaL_checklstring(L, 1, &sn);
  const char *name = luaL_checklstring(L, 2, &nn);
  luaL_checkany(L, 3);
  const char *scope = luaL_optlstring(L, 4, NULL, &scn);
  mz_json_ctx *json = lua_touserdata(L, lua_upvalueindex(1));
  mz_buf *canon = &json->aux; /* owned by the codec ctx: nothing leaks if Lua raises */
  canon->len = 0;
  if (mz_json_encode(json, L, 3, canon, MZ_JSON_CANONICAL)) {
    lua_pushnil(L);
    lua_pushstring(L, json->err);
    return 2;
  }
  char out[65];
  mz_cache_key(secret, sn, name, nn, canon->data, canon->len, scope, scn, out);
  if (!out[0]) return luaL_error(L, "out of memory");
  lua_pushlstring(L, out, 64);
  return 1;
}

static int l_clear(lua_State *L) {
  mz_cache_clear(need(L));
  return 0;
}

static int l_stats(lua_State *L) {
  mz_cache *c = mz_cache_get();
  mz_cache_stats s = {0};
  if (c) s = *mz_cache_stats_of(c);
  lua_createtable(L, 0, 11);
#define F(name)                           \
  lua_pushnumber(L, (lua_Number)s.name); \
  lua_setfield(L, -2, #name);
  F(hits) F(misses) F(fast_hits) F(stores) F(evictions) F(expirations) F(stale) F(purges)
  F(bytes) F(budget) F(entries)
#undef F
  return 1;
}

int mz_cache_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"init", l_init},     {"slot", l_slot},   {"bump", l_bump},
                                 {"versions", l_versions}, {"lookup", l_lookup}, {"store", l_store},
                                 {"alias", l_alias},   {"clear", l_clear}, {"stats", l_stats},
                                 {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mizan.json");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "_ctx");
  lua_pushcclosure(L, l_key, 1);
  lua_setfield(L, -3, "key");
  lua_pop(L, 1);
  return 1;
}
