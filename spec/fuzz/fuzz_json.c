/*
 * libFuzzer target for the JSON codec. Invariants checked on every input:
 *   - decoding never crashes, and either yields one value or an error;
 *   - a decoded value encodes, and the encoding decodes back to a value whose
 *     canonical encoding is identical (the codec is a fixed point).
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static lua_State *L;
static mz_json_ctx *ctx;

/* Close the state at exit so the ctx's finaliser frees its scratch memory. */
static void close_state(void) { lua_close(L); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    atexit(close_state);
    ctx = mz_json_ctx_new(L);
    luaL_ref(L, LUA_REGISTRYINDEX); /* keep the ctx alive */
  }
  int top = lua_gettop(L);
  if (mz_json_decode(ctx, L, (const char *)data, size) == 0) {
    mz_buf a, b, c;
    mz_buf_init(&a);
    mz_buf_init(&b);
    mz_buf_init(&c);
    if (mz_json_encode(ctx, L, -1, &a, MZ_JSON_CANONICAL) != 0) abort();
    if (mz_json_decode(ctx, L, a.data, a.len) != 0) abort();
    if (mz_json_encode(ctx, L, -1, &b, MZ_JSON_CANONICAL) != 0) abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    if (mz_json_encode(ctx, L, -1, &c, 0) != 0) abort();
    mz_buf_free(&a);
    mz_buf_free(&b);
    mz_buf_free(&c);
  }
  lua_settop(L, top);
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
