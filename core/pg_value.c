/*
 * Values between Lua and Postgres (core/pg.c's statements): a result's
 * cells typed by column OID, and a parameter's text. Pure conversions: no
 * connection, no loop.
 */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_value.h"

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* bytea's text output: hex ("\x0102...", what we ask the server for) or
   the old escape format, via libpq. */
static void push_bytea(lua_State *L, const char *s, size_t n) {
  if (n >= 2 && s[0] == '\\' && s[1] == 'x') {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 2; i + 1 < n; i += 2) {
      int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
      if (hi < 0 || lo < 0) break;
      luaL_addchar(&b, (char)(hi << 4 | lo));
    }
    luaL_pushresult(&b);
    return;
  }
  size_t len;
  unsigned char *raw = PQunescapeBytea((const unsigned char *)s, &len);
  if (raw) lua_pushlstring(L, (const char *)raw, len);
  else lua_pushlstring(L, s, n);
  PQfreemem(raw);
}

/* timestamp / timestamptz / date as ISO 8601: the server's ISO DateStyle
   ("2024-01-02 03:04:05.5+00") with a "T", and a zero offset as "Z" (the
   session's time zone is UTC, so timestamptz always ends in Z). */
static void push_time(lua_State *L, const char *s, size_t n, int with_tz) {
  char buf[80];
  if (n >= sizeof buf - 4 || n < 10) {
    lua_pushlstring(L, s, n);
    return;
  }
  memcpy(buf, s, n);
  buf[n] = 0;
  if (n > 10 && buf[10] == ' ') buf[10] = 'T';
  if (with_tz) {
    char *sign = strpbrk(buf + 11, "+-");
    if (sign) {
      if (!strcmp(sign, "+00")) strcpy(sign, "Z");
      else if (strlen(sign) == 3) strcat(sign, ":00");
    }
  }
  lua_pushstring(L, buf);
}

static void push_cell(lua_State *L, mz_json_ctx *json, const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col)) {
    lua_pushlightuserdata(L, NULL); /* mizan.null */
    return;
  }
  const char *s = PQgetvalue(r, row, col);
  size_t n = (size_t)PQgetlength(r, row, col);
  switch (PQftype(r, col)) {
    case OID_BOOL: lua_pushboolean(L, s[0] == 't'); break;
    case OID_INT2:
    case OID_INT4:
    case OID_OID: lua_pushnumber(L, (lua_Number)strtoll(s, NULL, 10)); break;
    case OID_INT8: {
      /* exact as a number up to 2^53; beyond, the decimal text (a double
         would round it) */
      long long v = strtoll(s, NULL, 10);
      if (v <= (1LL << 53) && v >= -(1LL << 53)) lua_pushnumber(L, (lua_Number)v);
      else lua_pushlstring(L, s, n);
      break;
    }
    case OID_FLOAT4:
    case OID_FLOAT8: lua_pushnumber(L, strtod(s, NULL)); break; /* NaN, Infinity too */
    case OID_BYTEA: push_bytea(L, s, n); break;
    case OID_JSON:
    case OID_JSONB:
      if (mz_json_decode(json, L, s, n)) lua_pushlstring(L, s, n);
      break;
    case OID_DATE: lua_pushlstring(L, s, n); break;
    case OID_TIMESTAMP: push_time(L, s, n, 0); break;
    case OID_TIMESTAMPTZ: push_time(L, s, n, 1); break;
    default: lua_pushlstring(L, s, n); /* text, numeric (exact, as text), and the rest */
  }
}

void mz__pg_push_result(lua_State *L, mz_json_ctx *json, const PGresult *r, int want_rows) {
  if (!want_rows) {
    lua_createtable(L, 0, 1);
    const char *t = r ? PQcmdTuples((PGresult *)r) : "";
    lua_pushnumber(L, t[0] ? strtod(t, NULL) : 0);
    lua_setfield(L, -2, "changes");
    return;
  }
  int rows = r && PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
  int cols = rows ? PQnfields(r) : 0;
  lua_createtable(L, rows, 0);
  for (int i = 0; i < rows; i++) {
    lua_checkstack(L, 8);
    lua_createtable(L, 0, cols);
    for (int k = 0; k < cols; k++) {
      push_cell(L, json, r, i, k);
      lua_setfield(L, -2, PQfname(r, k));
    }
    lua_rawseti(L, -2, i + 1);
  }
}

int mz__pg_take_param(lua_State *L, mz_json_ctx *json, int idx, char **value, int *length, mz_buf *tmp) {
  char num[64];
  const char *s = NULL;
  size_t n = 0;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return 0;
    case LUA_TLIGHTUSERDATA:
      if (!lua_touserdata(L, idx)) return 0; /* mizan.null */
      return -1;
    case LUA_TBOOLEAN:
      s = lua_toboolean(L, idx) ? "true" : "false";
      n = strlen(s);
      break;
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, idx);
      if (isnan(d)) s = "NaN";
      else if (isinf(d)) s = d > 0 ? "Infinity" : "-Infinity";
      else if (d == floor(d) && fabs(d) < 9.2e18) snprintf(num, sizeof num, "%lld", (long long)d), s = num;
      else snprintf(num, sizeof num, "%.17g", d), s = num;
      n = strlen(s);
      break;
    }
    case LUA_TSTRING: s = lua_tolstring(L, idx, &n); break;
    case LUA_TTABLE:
      tmp->len = 0;
      if (mz_json_encode(json, L, idx, tmp, 0)) return -2;
      s = tmp->data, n = tmp->len;
      break;
    default: return -1;
  }
  *value = malloc(n + 1);
  if (!*value) return -3;
  memcpy(*value, s, n);
  (*value)[n] = 0;
  *length = (int)n;
  return 0;
}

