/*
 * mz_invalidate: the X-Mizan-Invalidate header encoding (DESIGN §2,
 * shared/vectors/invalidate_header.json).
 *
 *   entries joined by ", "; an entry is the target name followed by
 *   ";key=value" per param, keys in code-point order; names, keys and values
 *   percent-encoded (every byte outside A-Z a-z 0-9 - . _ ~ as %XX); a string
 *   value as it is, any other value as its canonical JSON; empty params add
 *   nothing.
 */
#ifndef MZ_INVALIDATE_H
#define MZ_INVALIDATE_H

#include <lua.h>

#include "buf.h"
#include "json.h"

/**
 * Append the header value for the entries at stack index `idx`: an array of
 * tables { target = "name", params = table|nil }. `tmp` is scratch space the
 * caller owns (for JSON-encoded values). Returns 0, or -1 with json->err set
 * (a param value JSON cannot encode, a malformed entry).
 */
int mz_invalidate_header(mz_json_ctx *json, lua_State *L, int idx, mz_buf *out, mz_buf *tmp);

/** Push the `mizan.invalidate` module: { header = function(entries) -> string }. */
int mz_invalidate_open(lua_State *L);

#endif
