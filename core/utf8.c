/* mz_utf8: see utf8.h for the contract; and the Lua module mizan.utf8core. */
#include "utf8.h"

#include <lauxlib.h>
#include <lua.h>

/* What a lead byte starts: how many continuation bytes follow and the
   range of the first (the later ones are 80..BF). 0 for an ASCII byte,
   -1 for a byte that starts nothing (a continuation, C0, C1, F5..FF). */
static int lead(unsigned c, uint8_t *lo, uint8_t *hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (c < 0x80) return 0;
  if (c >= 0xC2 && c <= 0xDF) return 1;
  if (c == 0xE0) return *lo = 0xA0, 2;               /* no overlong forms */
  if (c == 0xED) return *hi = 0x9F, 2;               /* no surrogates */
  if (c >= 0xE1 && c <= 0xEF) return 2;
  if (c == 0xF0) return *lo = 0x90, 3;               /* no overlong forms */
  if (c >= 0xF1 && c <= 0xF3) return 3;
  if (c == 0xF4) return *hi = 0x8F, 3;               /* nothing past U+10FFFF */
  return -1;
}

int mz_utf8_feed(mz_utf8_state *st, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned c = p[i];
    if (st->need == 0) {
      int k = lead(c, &st->lo, &st->hi);
      if (k < 0) return -1;
      st->need = (uint8_t)k;
    } else {
      if (c < st->lo || c > st->hi) return -1;
      st->need--;
      st->lo = 0x80;
      st->hi = 0xBF;
    }
  }
  return 0;
}

int mz_utf8_seq(const unsigned char *p, size_t n) {
  if (!n) return 0;
  mz_utf8_state st = {0, 0, 0};
  if (mz_utf8_feed(&st, p, 1)) return 0;
  size_t len = (size_t)st.need + 1;
  if (len > n || mz_utf8_feed(&st, p + 1, len - 1)) return 0;
  return (int)len;
}

int mz_utf8_check(const unsigned char *p, size_t n) {
  mz_utf8_state st = {0, 0, 0};
  return mz_utf8_feed(&st, p, n) || st.need ? -1 : 0;
}

/* ------------------------------------------------------------ Lua */

/* valid(s) -> true when s is valid UTF-8 */
static int l_valid(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, mz_utf8_check((const unsigned char *)s, n) == 0);
  return 1;
}

/* printable(s) -> s when valid; otherwise s with every byte that is not
   part of a valid sequence written as %XX (how it came in a URL) */
static int l_printable(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  if (mz_utf8_check(s, n) == 0) {
    lua_settop(L, 1);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n;) {
    int k = mz_utf8_seq(s + i, n - i);
    if (k) {
      luaL_addlstring(&b, (const char *)s + i, (size_t)k);
      i += (size_t)k;
    } else {
      static const char hex[] = "0123456789ABCDEF";
      char esc[3] = {'%', hex[s[i] >> 4], hex[s[i] & 15]};
      luaL_addlstring(&b, esc, 3);
      i++;
    }
  }
  luaL_pushresult(&b);
  return 1;
}

int mz_utf8_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"valid", l_valid}, {"printable", l_printable}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
