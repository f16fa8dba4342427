/*
 * mz_host_config: the loaded app's settings into one C struct (config.h).
 * Lua has checked every value already (lua/mizan/options.lua); this file
 * only copies, and refuses a view that does not match the struct.
 */
#include "config.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef enum { K_STR, K_BOOL, K_INT, K_SIZE, K_U64 } kind;

#define F(name, k, field) {name, k, offsetof(mz_config, field), sizeof(((mz_config *)0)->field)}
static const struct {
  const char *name;
  kind k;
  size_t off, size;
} FIELDS[] = {
    F("listen", K_STR, listen),
    F("base_path", K_STR, base_path),
    F("access_log", K_STR, access_log),
    F("observe_listen", K_STR, observe_listen),
    F("static_dir", K_STR, static_dir),
    F("session_cookie", K_STR, session_cookie),
    F("metrics", K_BOOL, metrics),
    F("workers", K_INT, workers),
    F("secret_configured", K_BOOL, secret_configured),
    F("max_head", K_SIZE, limits.max_head),
    F("max_body", K_SIZE, limits.max_body),
    F("ws_buffer", K_SIZE, limits.ws_buffer),
    F("header_timeout_ms", K_U64, limits.header_timeout_ms),
    F("body_timeout_ms", K_U64, limits.body_timeout_ms),
    F("keepalive_timeout_ms", K_U64, limits.keepalive_timeout_ms),
    F("send_timeout_ms", K_U64, limits.send_timeout_ms),
    F("drain_timeout_ms", K_U64, limits.drain_timeout_ms),
};
#undef F
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

/* Copy the value on top of L into field i of c. 0, or -1 with err set. */
static int store(lua_State *L, size_t i, mz_config *c, char *err, size_t errlen) {
  char *p = (char *)c + FIELDS[i].off;
  int t = lua_type(L, -1);
  if (FIELDS[i].k == K_STR) {
    size_t len;
    const char *s = t == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (!s || len >= FIELDS[i].size) {
      snprintf(err, errlen, "config field '%s': %s", FIELDS[i].name, s ? "too long" : "not a string");
      return -1;
    }
    memcpy(p, s, len + 1);
    return 0;
  }
  if (FIELDS[i].k == K_BOOL) {
    if (t != LUA_TBOOLEAN) {
      snprintf(err, errlen, "config field '%s': not a boolean", FIELDS[i].name);
      return -1;
    }
    *(int *)p = lua_toboolean(L, -1);
    return 0;
  }
  double v = t == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
  if (v < 0 || v != floor(v) || v > 9007199254740992.0 || (FIELDS[i].k == K_INT && v > INT32_MAX)) {
    snprintf(err, errlen, "config field '%s': not a whole number in range", FIELDS[i].name);
    return -1;
  }
  if (FIELDS[i].k == K_INT) *(int *)p = (int)v;
  else if (FIELDS[i].k == K_SIZE) *(size_t *)p = (size_t)v;
  else *(uint64_t *)p = (uint64_t)v;
  return 0;
}

/* The view (a table of the FIELDS names) on top of L into c. */
static int read_view(lua_State *L, mz_config *c, char *err, size_t errlen) {
  for (size_t i = 0; i < NFIELDS; i++) {
    lua_getfield(L, -1, FIELDS[i].name);
    int r = lua_isnil(L, -1) ? (snprintf(err, errlen, "config field '%s' is missing", FIELDS[i].name), -1)
                             : store(L, i, c, err, errlen);
    lua_pop(L, 1);
    if (r) return -1;
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    size_t i = 0;
    while (i < NFIELDS && strcmp(FIELDS[i].name, k)) i++;
    if (i == NFIELDS) {
      snprintf(err, errlen, "config field '%s' is unknown to C (core/config.c)", k);
      lua_pop(L, 1);
      return -1;
    }
  }
  return 0;
}

int mz_host_config(mz_host *h, mz_config *out, char *err, size_t errlen) {
  lua_State *L = h->L;
  int top = lua_gettop(L);
  memset(out, 0, sizeof *out);
  mz_http_limits_default(&out->limits); /* the fields that are no option */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mizan.config");
  int r = -1;
  if (lua_pcall(L, 1, 1, 0) == 0) {
    lua_getfield(L, -1, "c_view");
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->config_ref);
    if (lua_pcall(L, 1, 1, 0) == 0 && lua_istable(L, -1)) r = read_view(L, out, err, errlen);
    else snprintf(err, errlen, "mizan.config.c_view: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "no table");
  } else {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
  }
  lua_settop(L, top);
  return r;
}
