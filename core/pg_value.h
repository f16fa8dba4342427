/*
 * Values between Lua and Postgres, for core/pg.c. Internal (mz__).
 */
#ifndef MZ_PG_VALUE_H
#define MZ_PG_VALUE_H

#include <libpq-fe.h>
#include <lua.h>

#include "buf.h"
#include "json.h"

/* the OIDs of the built-in types we turn into Lua values (pg_type.dat) */
enum {
  OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26,
  OID_JSON = 114, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_DATE = 1082, OID_TIMESTAMP = 1114,
  OID_TIMESTAMPTZ = 1184, OID_NUMERIC = 1700, OID_JSONB = 3802
};

/**
 * Push a statement's result on L: when `want_rows`, a list of rows, each a
 * table keyed by column name, cells typed by their column's OID (int2/int4
 * numbers; int8 a number within ±2^53, else its decimal text; float
 * numbers; bool; numeric text; json/jsonb decoded with `json`; bytea bytes;
 * timestamps ISO 8601, timestamptz ending in Z; NULL mizan.null (the NULL
 * light userdata); anything else its text). Else { changes = n }. `r` may
 * be NULL (no result: no rows, no changes).
 */
void mz__pg_push_result(lua_State *L, mz_json_ctx *json, const PGresult *r, int want_rows);

/**
 * The text of the parameter at `idx`: *value a malloc'd copy the caller
 * frees, *length its length; *value untouched for NULL (nil, mizan.null).
 * Booleans "true"/"false", whole numbers exactly, others %.17g, strings as
 * they are, tables as JSON text (encoded into `tmp`, the caller's scratch).
 * Returns 0; -1 for a value of no such type, -2 when the table cannot be
 * encoded (json->err says why), -3 out of memory.
 */
int mz__pg_take_param(lua_State *L, mz_json_ctx *json, int idx, char **value, int *length, mz_buf *tmp);

#endif
