/*
 * mizan.sqlite: SQLite on the libuv thread pool.
 *
 * A statement runs on a pool thread (prepare, bind, step every row), its
 * rows are copied into C memory there, and the loop thread turns them into
 * Lua tables and resumes the task that asked. The task's coroutine yields
 * meanwhile, so a slow query never stalls other requests.
 *
 * Parameters are bound, never interpolated. One connection per handle,
 * opened in WAL mode so that the worker processes of an instance can share
 * the file; callers serialise statements on a handle (mizan.db does).
 * Runtime failures return nil, err, kind (see error_kind), sqlstate (the
 * Postgres code of a constraint failure, else nil); misuse raises.
 *
 * The file's identity (device, inode) is taken at open. Before a statement
 * that writes, the path is checked against it: a database file removed or
 * replaced while serving fails the write (kind "gone") instead of letting
 * SQLite acknowledge it into an unlinked inode that nobody will read again.
 */
#include <lauxlib.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"

#define MAX_PARAMS 64

typedef struct {
  int type; /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_NULL */
  sqlite3_int64 i;
  double d;
  char *s;
  size_t n;
} value;

typedef struct {
  sqlite3 *db;
  char *path;  /* owned; what the identity check stats */
  dev_t dev;   /* the file's identity at open, when have_id */
  ino_t ino;
  int have_id;
} handle;

typedef struct {
  uv_work_t work;
  handle *h;
  mz_task *task;
  char *sql;
  int nparams;
  value params[MAX_PARAMS];
  int want_rows;
  /* results, filled on the pool thread */
  int rc;
  char *err;
  const char *kind; /* static: what kind of failure, for the caller to judge */
  const char *sqlstate; /* static: the SQLSTATE Postgres gives the same failure, or NULL */
  int ncols;
  char **names;
  value *cells; /* rows * ncols */
  size_t nrows, cap;
  sqlite3_int64 changes, last_id;
} job;

static void value_free(value *v) {
  if (v->type == SQLITE_TEXT || v->type == SQLITE_BLOB) free(v->s);
}

static void job_free(job *j) {
  free(j->sql);
  for (int i = 0; i < j->nparams; i++) value_free(&j->params[i]);
  for (size_t i = 0; i < j->nrows * (size_t)j->ncols; i++) value_free(&j->cells[i]);
  free(j->cells);
  for (int i = 0; i < j->ncols; i++) free(j->names[i]);
  free(j->names);
  free(j->err);
  free(j);
}

/* A failure's kind, from SQLite's primary result code: a stable word the
   Lua side maps to an answer (unavailable vs internal error). */
static const char *error_kind(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY: return "busy";
    case SQLITE_LOCKED: return "locked";
    case SQLITE_READONLY: return "readonly";
    case SQLITE_IOERR: return "ioerr";
    case SQLITE_CANTOPEN: return "cantopen";
    case SQLITE_FULL: return "full";
    case SQLITE_CORRUPT: return "corrupt";
    case SQLITE_NOTADB: return "notadb";
    case SQLITE_NOMEM: return "nomem";
    case SQLITE_CONSTRAINT: return "constraint";
    case SQLITE_MISUSE: return "misuse";
    default: return "error";
  }
}

static void fail(job *j, const char *msg, const char *kind) {
  j->rc = -1;
  j->err = strdup(msg ? msg : "sqlite error");
  j->kind = kind;
}

/* The constraint failures an app answers by (a taken name: 409), named
   as Postgres names them, so that app code reads the same on both engines. */
static const char *sqlstate_of(int code) {
  switch (code) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY: return "23505";
    case SQLITE_CONSTRAINT_FOREIGNKEY: return "23503";
    case SQLITE_CONSTRAINT_NOTNULL: return "23502";
    case SQLITE_CONSTRAINT_CHECK: return "23514";
    default: return NULL;
  }
}

static void fail_db(job *j) {
  int code = sqlite3_extended_errcode(j->h->db);
  fail(j, sqlite3_errmsg(j->h->db), error_kind(code));
  j->sqlstate = sqlstate_of(code);
}

/* Is the file at h->path still the one opened? 1 yes, 0 no (removed or
   replaced). Without an identity (a memory database) it always is. */
static int same_file(const handle *h) {
  if (!h->have_id) return 1;
  struct stat st;
  if (stat(h->path, &st) != 0) return 0;
  return st.st_dev == h->dev && st.st_ino == h->ino;
}

/* On a pool thread: touches no Lua state. */
static void run_statement(uv_work_t *w) {
  job *j = w->data;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(j->h->db, j->sql, -1, &st, NULL) != SQLITE_OK) {
    fail_db(j);
    return;
  }
  if (sqlite3_bind_parameter_count(st) != j->nparams) {
    sqlite3_finalize(st);
    fail(j, "the number of parameters does not match the statement's placeholders", "misuse");
    return;
  }
  if (!sqlite3_stmt_readonly(st) && !same_file(j->h)) {
    sqlite3_finalize(st);
    fail(j, "the database file was removed or replaced while serving; writes are refused", "gone");
    return;
  }
  for (int i = 0; i < j->nparams; i++) {
    value *v = &j->params[i];
    int r = v->type == SQLITE_INTEGER ? sqlite3_bind_int64(st, i + 1, v->i)
            : v->type == SQLITE_FLOAT ? sqlite3_bind_double(st, i + 1, v->d)
            : v->type == SQLITE_TEXT  ? sqlite3_bind_text(st, i + 1, v->s, (int)v->n, SQLITE_STATIC)
                                      : sqlite3_bind_null(st, i + 1);
    if (r != SQLITE_OK) {
      fail_db(j);
      sqlite3_finalize(st);
      return;
    }
  }
  j->ncols = sqlite3_column_count(st);
  if (j->ncols) {
    j->names = calloc((size_t)j->ncols, sizeof *j->names);
    for (int c = 0; c < j->ncols; c++) j->names[c] = strdup(sqlite3_column_name(st, c));
  }
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (!j->want_rows) continue;
    if (j->nrows == j->cap) {
      size_t cap = j->cap ? j->cap * 2 : 16;
      value *cells = realloc(j->cells, cap * (size_t)j->ncols * sizeof *cells);
      if (!cells) {
        r = SQLITE_NOMEM;
        break;
      }
      j->cells = cells;
      j->cap = cap;
    }
    value *row = j->cells + j->nrows * (size_t)j->ncols;
    for (int c = 0; c < j->ncols; c++) {
      value *v = &row[c];
      memset(v, 0, sizeof *v);
      v->type = sqlite3_column_type(st, c);
      if (v->type == SQLITE_INTEGER) v->i = sqlite3_column_int64(st, c);
      else if (v->type == SQLITE_FLOAT) v->d = sqlite3_column_double(st, c);
      else if (v->type == SQLITE_TEXT || v->type == SQLITE_BLOB) {
        const void *p = v->type == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, c) : sqlite3_column_blob(st, c);
        v->n = (size_t)sqlite3_column_bytes(st, c);
        v->s = malloc(v->n + 1);
        if (v->s) {
          if (v->n) memcpy(v->s, p, v->n);
          v->s[v->n] = 0;
        } else {
          v->type = SQLITE_NULL;
        }
      }
    }
    j->nrows++;
  }
  if (r == SQLITE_NOMEM) {
    fail(j, "out of memory", "nomem");
  } else if (r != SQLITE_DONE && r != SQLITE_ROW) {
    fail_db(j);
  } else {
    j->changes = sqlite3_changes64(j->h->db);
    j->last_id = sqlite3_last_insert_rowid(j->h->db);
  }
  sqlite3_finalize(st);
}

static void push_value(lua_State *co, value *v) {
  switch (v->type) {
    case SQLITE_INTEGER: lua_pushnumber(co, (lua_Number)v->i); break;
    case SQLITE_FLOAT: lua_pushnumber(co, v->d); break;
    case SQLITE_TEXT:
    case SQLITE_BLOB: lua_pushlstring(co, v->s, v->n); break;
    default: lua_pushlightuserdata(co, NULL); /* mizan.null */
  }
}

/* Back on the loop thread: results to Lua, then resume the task. */
static void statement_done(uv_work_t *w, int status) {
  job *j = w->data;
  lua_State *co = j->task->co;
  int n;
  if (status || j->rc) {
    lua_pushnil(co);
    lua_pushstring(co, status ? "the statement was cancelled" : j->err);
    lua_pushstring(co, status ? "error" : j->kind);
    if (!status && j->sqlstate) lua_pushstring(co, j->sqlstate);
    else lua_pushnil(co);
    n = 4;
  } else if (j->want_rows) {
    lua_createtable(co, (int)j->nrows, 0);
    for (size_t r = 0; r < j->nrows; r++) {
      lua_createtable(co, 0, j->ncols);
      for (int c = 0; c < j->ncols; c++) {
        push_value(co, &j->cells[r * (size_t)j->ncols + (size_t)c]);
        lua_setfield(co, -2, j->names[c]);
      }
      lua_rawseti(co, -2, (int)r + 1);
    }
    n = 1;
  } else {
    lua_createtable(co, 0, 2);
    lua_pushnumber(co, (lua_Number)j->changes);
    lua_setfield(co, -2, "changes");
    lua_pushnumber(co, (lua_Number)j->last_id);
    lua_setfield(co, -2, "last_insert_id");
    n = 1;
  }
  mz_task *t = j->task;
  job_free(j);
  mz_task_resume(t, n);
}

static handle *check_handle(lua_State *L) {
  handle *h = luaL_checkudata(L, 1, "mizan.sqlite");
  if (!h->db) luaL_error(L, "the database is closed");
  return h;
}

/* open(path) -> handle | nil, err, kind. Opening is quick: done on the loop.
   The handle owns a copy of the path, for the identity check. */
static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  handle *h = lua_newuserdata(L, sizeof *h);
  memset(h, 0, sizeof *h);
  luaL_getmetatable(L, "mizan.sqlite");
  lua_setmetatable(L, -2);
  h->path = strdup(path);
  if (!h->path) return luaL_error(L, "out of memory");
  int r = sqlite3_open_v2(path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
  if (r != SQLITE_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open %s: %s", path, h->db ? sqlite3_errmsg(h->db) : "out of memory");
    lua_pushstring(L, error_kind(r));
    sqlite3_close(h->db);
    h->db = NULL;
    return 3;
  }
  sqlite3_busy_timeout(h->db, 5000);
  sqlite3_exec(h->db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
  /* SQLite has created the file by now (unless it is a memory database) */
  struct stat st;
  if (stat(path, &st) == 0) {
    h->dev = st.st_dev;
    h->ino = st.st_ino;
    h->have_id = 1;
  }
  return 1;
}

/* probe(handle) -> state | nil, err, kind, where state is "rw" or "ro" (the
   file could only be opened read-only). Reads the schema synchronously, on
   the loop thread: for start-up checks only, before any request runs. */
static int l_probe(lua_State *L) {
  handle *h = check_handle(L);
  sqlite3_stmt *st = NULL;
  int r = sqlite3_prepare_v2(h->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
  if (r == SQLITE_OK) r = sqlite3_step(st);
  if (r != SQLITE_ROW) {
    lua_pushnil(L);
    lua_pushstring(L, sqlite3_errmsg(h->db));
    lua_pushstring(L, error_kind(sqlite3_extended_errcode(h->db)));
    sqlite3_finalize(st);
    return 3;
  }
  sqlite3_finalize(st);
  lua_pushstring(L, sqlite3_db_readonly(h->db, "main") == 1 ? "ro" : "rw");
  return 1;
}

/* run(handle, sql, params, want_rows) -> rows | {changes, last_insert_id} | nil, err.
   Yields the calling task until the pool thread is done. */
static int l_run(lua_State *L) {
  handle *h = check_handle(L);
  const char *sql = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  int want_rows = lua_toboolean(L, 4);
  int n = (int)lua_objlen(L, 3);
  /* the params table may carry an explicit n, for trailing nils */
  lua_getfield(L, 3, "n");
  if (lua_isnumber(L, -1)) n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (n > MAX_PARAMS) return luaL_argerror(L, 3, "at most 64 parameters");
  mz_host *host = mz_host_from(L);
  if (!host->current || host->current->co != L)
    return luaL_error(L, "database calls must run in a request's own coroutine");
  job *j = calloc(1, sizeof *j);
  if (!j) return luaL_error(L, "out of memory");
  j->h = h;
  j->want_rows = want_rows;
  j->sql = strdup(sql);
  for (int i = 0; i < n; i++) {
    value *v = &j->params[i];
    lua_rawgeti(L, 3, i + 1);
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER) {
      double d = lua_tonumber(L, -1);
      if (d == (double)(sqlite3_int64)d) v->type = SQLITE_INTEGER, v->i = (sqlite3_int64)d;
      else v->type = SQLITE_FLOAT, v->d = d;
    } else if (t == LUA_TBOOLEAN) {
      v->type = SQLITE_INTEGER;
      v->i = lua_toboolean(L, -1);
    } else if (t == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      v->type = SQLITE_TEXT;
      v->s = malloc(len + 1);
      v->n = len;
      if (v->s) memcpy(v->s, s, len + 1);
      else v->type = SQLITE_NULL;
    } else if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA && !lua_touserdata(L, -1))) {
      v->type = SQLITE_NULL;
    } else {
      j->nparams = i;
      job_free(j);
      return luaL_argerror(L, 3, "parameters must be numbers, strings, booleans, nil or mizan.null");
    }
    j->nparams = i + 1;
    lua_pop(L, 1);
  }
  j->task = host->current;
  j->work.data = j;
  if (uv_queue_work(host->loop, &j->work, run_statement, statement_done)) {
    job_free(j);
    lua_pushnil(L);
    lua_pushliteral(L, "cannot queue the statement");
    return 2;
  }
  lua_settop(L, 0);
  return lua_yield(L, 0);
}

static int l_gc(lua_State *L) {
  handle *h = luaL_checkudata(L, 1, "mizan.sqlite");
  if (h->db) sqlite3_close_v2(h->db);
  h->db = NULL;
  free(h->path);
  h->path = NULL;
  return 0;
}

int mz_sqlite_open(lua_State *L) {
  luaL_newmetatable(L, "mizan.sqlite");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"open", l_open}, {"run", l_run}, {"probe", l_probe}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
