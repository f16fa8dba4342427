/* mz_invalidate: see invalidate.h for the encoding. */
#include "invalidate.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

static int put_pct(mz_buf *out, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  if (mz_buf_reserve(out, n * 3)) return -1;
  char *w = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      *w++ = (char)c;
    } else {
      *w++ = '%';
      *w++ = hex[c >> 4];
      *w++ = hex[c & 15];
    }
  }
  out->len = (size_t)(w - out->data);
  return 0;
}

static int fail(mz_json_ctx *json, const char *msg) {
  snprintf(json->err, sizeof json->err, "%s", msg);
  return -1;
}

typedef struct {
  const char *s;
  size_t n;
} key_ref;

static int key_cmp(const void *a, const void *b) {
  const key_ref *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Append ";key=value" for each param of the table at `pidx`, keys sorted. */
static int put_params(mz_json_ctx *json, lua_State *L, int pidx, mz_buf *out, mz_buf *tmp) {
  size_t nkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, pidx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return fail(json, "invalidation params must have string keys");
    }
    nkeys++;
  }
  if (!nkeys) return 0;
  /* the key array lives in a userdata, so a Lua error cannot leak it */
  key_ref *keys = lua_newuserdata(L, nkeys * sizeof *keys);
  int kidx = lua_gettop(L);
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, pidx)) {
    lua_pop(L, 1);
    keys[i].s = lua_tolstring(L, -1, &keys[i].n); /* anchored by the params table */
    i++;
  }
  if (nkeys > 1) qsort(keys, nkeys, sizeof *keys, key_cmp);
  int r = 0;
  for (i = 0; i < nkeys && !r; i++) {
    lua_pushlstring(L, keys[i].s, keys[i].n);
    lua_rawget(L, pidx);
    r = mz_buf_putc(out, ';') || put_pct(out, keys[i].s, keys[i].n) || mz_buf_putc(out, '=');
    if (r) r = fail(json, "out of memory");
    else if (lua_type(L, -1) == LUA_TSTRING) {
      size_t vn;
      const char *v = lua_tolstring(L, -1, &vn);
      if (put_pct(out, v, vn)) r = fail(json, "out of memory");
    } else {
      tmp->len = 0;
      r = mz_json_encode(json, L, -1, tmp, MZ_JSON_CANONICAL);
      if (!r && put_pct(out, tmp->data, tmp->len)) r = fail(json, "out of memory");
    }
    lua_pop(L, 1);
  }
  lua_remove(L, kidx);
  return r;
}

int mz_invalidate_header(mz_json_ctx *json, lua_State *L, int idx, mz_buf *out, mz_buf *tmp) {
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  if (!lua_istable(L, idx)) return fail(json, "invalidation entries must be a table");
  int r = 0;
  size_t n = lua_objlen(L, idx);
  for (size_t i = 1; i <= n && !r; i++) {
    lua_rawgeti(L, idx, (int)i);
    int e = lua_gettop(L);
    lua_getfield(L, e, "target");
    lua_getfield(L, e, "params");
    if (lua_type(L, e + 1) != LUA_TSTRING) {
      r = fail(json, "an invalidation entry needs a string target");
    } else {
      size_t tn;
      const char *t = lua_tolstring(L, e + 1, &tn);
      if ((i > 1 && mz_buf_append(out, ", ", 2)) || put_pct(out, t, tn)) r = fail(json, "out of memory");
      else if (lua_istable(L, e + 2)) r = put_params(json, L, e + 2, out, tmp);
      else if (!lua_isnil(L, e + 2)) r = fail(json, "invalidation params must be a table");
    }
    lua_settop(L, e - 1);
  }
  return r;
}

/* invalidate.header(entries) -> string | nil, err */
static int l_header(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  mz_json_ctx *json = lua_touserdata(L, lua_upvalueindex(1));
  /* both buffers belong to the codec ctx (a GC'd userdata): an out-of-memory
     error raised by Lua midway leaks nothing */
  mz_buf *out = &json->aux;
  out->len = 0;
  json->scratch.len = 0;
  if (mz_invalidate_header(json, L, 1, out, &json->scratch)) {
    lua_pushnil(L);
    lua_pushstring(L, json->err);
    return 2;
  }
  lua_pushlstring(L, out->data ? out->data : "", out->len);
  return 1;
}

int mz_invalidate_open(lua_State *L) {
  lua_newtable(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mizan.json");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "_ctx");
  lua_remove(L, -2);
  lua_pushcclosure(L, l_header, 1);
  lua_setfield(L, -2, "header");
  return 1;
}
