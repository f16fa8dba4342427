/*
 * mz_json: a JSON codec between bytes and Lua values, with no tree in between.
 *
 * Decoding builds Lua tables straight from the input bytes. Encoding walks Lua
 * tables and appends bytes to a caller-owned mz_buf.
 *
 * Value mapping:
 *   null          <-> mz_json_null (a light userdata NULL; exported as mizan.null)
 *   true/false    <-> boolean
 *   number        <-> number; integers up to 2^53 print as integers, other
 *                     numbers as the shortest text that round-trips (JS style)
 *   string        <-> string (UTF-8, validated both ways)
 *   array         <-> table carrying the shared array metatable
 *   object        <-> table (any other table; an empty untagged table is {})
 *
 * Errors: neither direction raises a Lua error for bad data. Both return 0 or
 * a negative code and fill `ctx->err` with a message. They only raise when Lua
 * itself runs out of memory, and then nothing leaks: all scratch memory is
 * owned by the ctx, which is a GC-managed userdata.
 */
#ifndef MZ_JSON_H
#define MZ_JSON_H

#include <lua.h>
#include <stddef.h>

#include "buf.h"

#define MZ_JSON_MAX_DEPTH 1000

enum {
  MZ_JSON_CANONICAL = 1, /* sort object keys by byte order (DESIGN §4) */
};

typedef struct mz_json_key {
  const char *s;
  size_t n;
} mz_json_key;

typedef struct mz_json_ctx {
  mz_buf scratch;      /* unescaped strings while decoding; Lua-facing encode output */
  mz_buf aux;          /* a second scratch buffer for callers that need two */
  mz_json_key *keys;   /* a stack of key segments while encoding canonically */
  size_t nkeys, capkeys;
  int array_mt_ref;    /* registry refs to the marker metatables */
  int object_mt_ref;
  int max_depth;
  char err[128];
} mz_json_ctx;

/**
 * Create the codec context for `L` and push it (a full userdata). The caller
 * keeps it reachable (an upvalue or the registry); the GC frees its memory.
 * Also creates the array and object marker metatables.
 */
mz_json_ctx *mz_json_ctx_new(lua_State *L);

/**
 * Decode `n` bytes at `s`. On success pushes one value and returns 0. On
 * failure pushes nothing, returns -1 and leaves a message in ctx->err.
 */
int mz_json_decode(mz_json_ctx *ctx, lua_State *L, const char *s, size_t n);

/**
 * Encode the value at stack index `idx`, appending to `out` (which the caller
 * owns). Returns 0, or -1 with ctx->err set; on failure `out` may hold a
 * partial encoding, which the caller discards by resetting its length.
 */
int mz_json_encode(mz_json_ctx *ctx, lua_State *L, int idx, mz_buf *out, int flags);

/** Format a double as JSON.stringify would. `out` holds at least 32 bytes. Returns length. */
int mz_json_format_number(double d, char *out);

/**
 * Append `s[0..n)` as a JSON string (quotes included) to `out`, which the
 * caller owns. Returns 0, or -1 (not UTF-8, out of memory) with `out` as it was.
 */
int mz_json_put_string(mz_buf *out, const char *s, size_t n);

/**
 * A JSON object written from C by the codec (error bodies, the access log),
 * so nothing in core/ puts JSON together by hand: begin, members (strings,
 * numbers, nested objects), end. A failure (not UTF-8, out of memory) is
 * sticky; mz_json_w_end then returns -1 and leaves `out` as it was.
 */
typedef struct mz_json_writer {
  mz_buf *out;
  size_t start;
  int depth, failed;
  char first[8]; /* per open object: no member written yet */
} mz_json_writer;

void mz_json_w_begin(mz_json_writer *w, mz_buf *out);
void mz_json_w_string(mz_json_writer *w, const char *key, const char *s, size_t n);
void mz_json_w_number(mz_json_writer *w, const char *key, double v);
void mz_json_w_object(mz_json_writer *w, const char *key);
void mz_json_w_close(mz_json_writer *w);
int mz_json_w_end(mz_json_writer *w);

/**
 * Append the DESIGN §2 error body {"error":{"code":..,"message":..}} for two
 * NUL-terminated strings. Returns 0, or -1 with `out` as it was.
 */
int mz_json_error_body(mz_buf *out, const char *code, const char *message);

/** Register the `mizan.json` Lua module's functions into the table on top of the stack. */
void mz_json_open(lua_State *L);

#endif
