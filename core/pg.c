/*
 * mizan.pg: Postgres connections on the libuv loop (libpq, non-blocking).
 *
 * One connection runs one operation at a time for one task: the task calls
 * pg.connect or pg.run, the request goes out (PQconnectStartParams /
 * PQconnectPoll, or PQsendPrepare, PQsendDescribePrepared,
 * PQsendQueryPrepared, PQsendQuery), the task yields, and a uv_poll on
 * PQsocket drives PQflush / PQconsumeInput / PQisBusy / PQgetResult until
 * the result is complete; then the task is resumed with it. The loop never
 * waits on the server. Lua (lua/mizan/db/postgres.lua) owns the pool, the
 * statement cache and every decision; this file is mechanics.
 *
 * A statement that is prepared here for the first time takes three round
 * trips (prepare, describe, execute): the description gives the parameter
 * types, so that a bytea parameter goes in binary (its bytes exactly) and
 * every other one as text. The caller keeps the formats it is handed back
 * and passes them on later executions of the same statement (one trip).
 *
 * Timeouts: each operation has one. When it passes, a CancelRequest is sent
 * with PQcancel on the libuv thread pool (PQcancel blocks while it connects
 * and writes 16 bytes; libpq 15 has no asynchronous cancel, and it keeps the
 * backend's secret key to itself, so we cannot write the packet on the loop
 * ourselves). The server then fails the statement with 57014, which is
 * returned as a timeout. If no answer comes within a grace period after the
 * cancel, the connection is dropped and the task told so.
 *
 * Results are typed by column OID in core/pg_value.c. Failures return
 * nil, message, sqlstate (or nil), flag, where flag is "lost" (the
 * connection is gone: reconnect), "timeout", or nil (the server refused the
 * statement; the connection is fine). Misuse raises.
 *
 * Ownership (host.h, THE OWNERSHIP RULE): a connection is a resource of the
 * host that opened it. Its close hook runs when the host closes: a task
 * waiting on it resumes with a "lost" error first (the state is still open),
 * then the poll handle closes, PQfinish runs and the timer closes; the
 * memory goes with the timer's close callback. A connection can start no
 * work of its own, so it has no retire hook: requests in flight on a
 * retired host still use it.
 */
#include <lauxlib.h>
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "pg_value.h"

#define MAX_PARAMS 1000
#define CANCEL_GRACE_MS 3000

typedef enum { OP_NONE, OP_CONNECT, OP_PREPARE, OP_DESCRIBE, OP_EXEC, OP_SIMPLE } op_kind;

typedef struct resolve_req resolve_req;

typedef struct conn {
  mz_resource res; /* first: the host's list links it */
  struct conn **ud; /* the Lua userdata pointing here, until it is collected */
  mz_host *host;
  PGconn *pg;       /* NULL once lost or closed */
  uv_poll_t *poll;  /* malloc'd: replaced when libpq changes sockets; frees itself */
  int poll_fd, poll_events;
  uv_timer_t timer; /* the operation's timeout; the conn is freed in its close callback */
  int closing;
  op_kind op;
  mz_task *task;    /* the task waiting on `op` */
  /* the statement in flight */
  char *sql, *name;
  int nparams;
  char **values;
  int *lengths, *formats;
  int fresh;        /* prepared by this operation: hand the formats back */
  int want_rows;
  PGresult *result; /* the first error, else the last result */
  char failure[256]; /* a failure found here rather than by the server */
  const char *flag;
  char **kw_keys, **kw_vals;     /* the keywords until the connect starts */
  struct resolve_req *resolving; /* the host name's lookup in flight */
  int cancel_sent;
  uint64_t timeout_ms;
} conn;

/* A host name is looked up on the libuv thread pool first: libpq would
   call getaddrinfo, which blocks, inside PQconnectStartParams. */
struct resolve_req {
  uv_getaddrinfo_t req;
  conn *c; /* NULL once the connection gave up on it (closed, timed out) */
};

static void drive(conn *c, int events);

/* The connection keywords, copied: libpq reads them only when the
   connection starts, which may be after a name lookup. */
static void kw_free(conn *c) {
  for (int i = 0; c->kw_keys && c->kw_keys[i]; i++) free(c->kw_keys[i]), free(c->kw_vals[i]);
  free(c->kw_keys);
  free(c->kw_vals);
  c->kw_keys = c->kw_vals = NULL;
}

/* ------------------------------------------------------------ plumbing */

static void poll_freed(uv_handle_t *h) { free(h); }

static void poll_drop(conn *c) {
  if (!c->poll) return;
  uv_close((uv_handle_t *)c->poll, poll_freed);
  c->poll = NULL;
  c->poll_fd = -1;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  conn *c = p->data;
  /* an error on the socket: let libpq find out what it is */
  drive(c, status < 0 ? UV_READABLE | UV_WRITABLE : events);
}

/* Watch PQsocket for `events` (a new poll when libpq changed sockets). */
static int watch(conn *c, int events) {
  int fd = c->pg ? PQsocket(c->pg) : -1;
  if (fd < 0) return -1;
  if (c->poll && c->poll_fd != fd) poll_drop(c);
  if (!c->poll) {
    c->poll = malloc(sizeof *c->poll);
    if (!c->poll || uv_poll_init(c->host->loop, c->poll, fd)) {
      free(c->poll);
      c->poll = NULL;
      return -1;
    }
    c->poll->data = c;
    c->poll_fd = fd;
    c->poll_events = 0;
  }
  if (events != c->poll_events || !uv_is_active((uv_handle_t *)c->poll)) {
    if (uv_poll_start(c->poll, events, on_poll)) return -1;
    c->poll_events = events;
  }
  return 0;
}

static void statement_free(conn *c) {
  for (int i = 0; i < c->nparams; i++) free(c->values[i]);
  free(c->values);
  free(c->lengths);
  free(c->formats);
  free(c->sql);
  free(c->name);
  c->values = NULL;
  c->lengths = c->formats = NULL;
  c->sql = c->name = NULL;
  c->nparams = 0;
  if (c->result) PQclear(c->result);
  c->result = NULL;
}

/* The connection is gone (or must go): free libpq's side. */
static void drop_pg(conn *c) {
  poll_drop(c);
  if (c->pg) PQfinish(c->pg);
  c->pg = NULL;
}

/* ------------------------------------------------------------ finishing */

/* The parameter formats of the statement, '0' text / '1' binary each. */
static void push_formats(conn *c, lua_State *L) {
  char fm[MAX_PARAMS + 1];
  for (int i = 0; i < c->nparams; i++) fm[i] = c->formats[i] ? '1' : '0';
  lua_pushlstring(L, fm, (size_t)c->nparams);
}

/* Resume the waiting task with `n` values already pushed on its stack. */
static void resume(conn *c, int n) {
  mz_task *t = c->task;
  c->task = NULL;
  c->op = OP_NONE;
  uv_timer_stop(&c->timer);
  if (t) mz_task_resume(t, n);
}

/* Between operations, keep reading: a server that goes away is noticed at
   once (the next pg.status says "bad"), not at the next statement. */
static void idle(conn *c) {
  if (c->pg && watch(c, UV_READABLE)) drop_pg(c);
}

static void finish_error(conn *c, const char *msg, const char *sqlstate, const char *flag) {
  lua_State *co = c->task ? c->task->co : NULL;
  if (msg != c->failure) snprintf(c->failure, sizeof c->failure, "%s", msg && msg[0] ? msg : "postgres error");
  if (co) {
    lua_pushnil(co);
    lua_pushstring(co, msg && msg[0] ? msg : "postgres error");
    if (sqlstate) lua_pushstring(co, sqlstate);
    else lua_pushnil(co);
    if (flag) lua_pushstring(co, flag);
    else lua_pushnil(co);
    /* a statement prepared and described before its execution failed
       exists on the server: hand its formats back so the caller keeps it */
    if (c->fresh && c->op == OP_EXEC && c->pg) push_formats(c, co);
    else lua_pushnil(co);
  }
  statement_free(c);
  if (c->pg && PQstatus(c->pg) == CONNECTION_BAD) drop_pg(c);
  idle(c);
  resume(c, co ? 5 : 0);
}

/* The connection failed under the operation: drop it, tell the task. */
static void lose(conn *c, const char *why, const char *sqlstate, const char *flag) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s%s%s", why, c->pg ? ": " : "", c->pg ? PQerrorMessage(c->pg) : "");
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
  drop_pg(c);
  finish_error(c, msg, sqlstate, flag);
}

static void finish_result(conn *c) {
  PGresult *r = c->result;
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_COMMAND_OK;
  if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
    char msg[512];
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(msg, sizeof msg, "%s", primary ? primary : PQresultErrorMessage(r));
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char sqlstate[8] = {0};
    if (state) snprintf(sqlstate, sizeof sqlstate, "%s", state);
    int lost = !c->pg || PQstatus(c->pg) == CONNECTION_BAD;
    const char *flag = lost ? "lost" : c->cancel_sent && !strcmp(sqlstate, "57014") ? "timeout" : NULL;
    finish_error(c, msg, state ? sqlstate : NULL, flag);
    return;
  }
  lua_State *co = c->task ? c->task->co : NULL;
  int n = 0;
  if (co) {
    lua_checkstack(co, 16);
    mz__pg_push_result(co, c->host->json, r, c->want_rows);
    if (c->fresh) {
      push_formats(c, co);
    } else {
      lua_pushnil(co);
    }
    n = 2;
  }
  statement_free(c);
  idle(c);
  resume(c, n);
}

/* ------------------------------------------------------------ the operation */

static int send_exec(conn *c) {
  for (int i = 0; i < c->nparams; i++)
    if (c->values[i] && !c->formats[i] && memchr(c->values[i], 0, (size_t)c->lengths[i])) {
      snprintf(c->failure, sizeof c->failure,
               "parameter %d holds a NUL byte: only a bytea parameter can carry one", i + 1);
      return -1;
    }
  c->op = OP_EXEC;
  return PQsendQueryPrepared(c->pg, c->name, c->nparams, (const char *const *)c->values, c->lengths, c->formats,
                             0) ? 0 : -2;
}

/* A phase's results are all in: go on to the next phase, or finish. */
static void phase_done(conn *c) {
  PGresult *r = c->result;
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_COMMAND_OK;
  if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || c->op == OP_EXEC || c->op == OP_SIMPLE) {
    finish_result(c);
    return;
  }
  int sent;
  if (c->op == OP_PREPARE) {
    PQclear(c->result);
    c->result = NULL;
    c->op = OP_DESCRIBE;
    sent = PQsendDescribePrepared(c->pg, c->name) ? 0 : -2;
  } else { /* OP_DESCRIBE: the parameter types decide the formats */
    if (PQnparams(r) != c->nparams) {
      char msg[160];
      snprintf(msg, sizeof msg, "the statement has %d placeholders but %d parameters were given", PQnparams(r),
               c->nparams);
      finish_error(c, msg, NULL, NULL);
      return;
    }
    for (int i = 0; i < c->nparams; i++) c->formats[i] = PQparamtype(r, i) == OID_BYTEA;
    PQclear(c->result);
    c->result = NULL;
    sent = send_exec(c);
  }
  if (sent == -1) {
    finish_error(c, c->failure, NULL, NULL);
    return;
  }
  if (sent || watch(c, UV_READABLE | UV_WRITABLE)) lose(c, "cannot send to postgres", "08006", "lost");
}

static void connect_step(conn *c) {
  PostgresPollingStatusType s = PQconnectPoll(c->pg);
  if (s == PGRES_POLLING_OK) {
    PQsetnonblocking(c->pg, 1);
    idle(c);
    if (c->task) lua_pushboolean(c->task->co, 1);
    resume(c, c->task ? 1 : 0);
    return;
  }
  if (s == PGRES_POLLING_FAILED) {
    lose(c, "cannot connect to postgres", "08001", "lost");
    return;
  }
  if (watch(c, s == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE))
    lose(c, "cannot watch the postgres socket", "08001", "lost");
}

/* Keep a result: the first error wins, else the last one counts. */
static void keep(conn *c, PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  int err = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;
  int kept_err = c->result && (PQresultStatus(c->result) == PGRES_FATAL_ERROR ||
                               PQresultStatus(c->result) == PGRES_BAD_RESPONSE);
  if (kept_err) {
    PQclear(r);
    return;
  }
  if (c->result) PQclear(c->result);
  c->result = r;
  (void)err;
}

static void drive(conn *c, int events) {
  if (!c->pg) return;
  if (c->op == OP_CONNECT) {
    connect_step(c);
    return;
  }
  if (events & UV_WRITABLE) {
    int f = PQflush(c->pg);
    if (f < 0) {
      if (c->op != OP_NONE) lose(c, "cannot send to postgres", "08006", "lost");
      else drop_pg(c);
      return;
    }
    if (f == 0 && watch(c, UV_READABLE)) {
      lose(c, "cannot watch the postgres socket", "08006", "lost");
      return;
    }
  }
  if (!(events & UV_READABLE)) return;
  if (!PQconsumeInput(c->pg)) {
    if (c->op != OP_NONE) lose(c, "postgres connection lost", "08006", "lost");
    else drop_pg(c);
    return;
  }
  if (c->op == OP_NONE) { /* idle: notices and notifications are not ours to keep */
    PGnotify *n;
    while ((n = PQnotifies(c->pg))) PQfreemem(n);
    if (PQstatus(c->pg) == CONNECTION_BAD) drop_pg(c);
    return;
  }
  while (!PQisBusy(c->pg)) {
    PGresult *r = PQgetResult(c->pg);
    if (!r) {
      phase_done(c);
      return;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      PQclear(r);
      lose(c, "COPY is not supported through mizan.db", NULL, "lost");
      return;
    }
    keep(c, r);
  }
  if (PQstatus(c->pg) == CONNECTION_BAD) lose(c, "postgres connection lost", "08006", "lost");
}

/* ------------------------------------------------------------ cancel */

typedef struct {
  uv_work_t work;
  PGcancel *cancel;
} cancel_job;

/* On a pool thread: PQcancel connects and writes the CancelRequest. */
static void cancel_run(uv_work_t *w) {
  cancel_job *j = w->data;
  char err[256];
  PQcancel(j->cancel, err, sizeof err);
}

/* Back on the loop: touches no connection (it may be gone) and no Lua. */
static void cancel_done(uv_work_t *w, int status) {
  cancel_job *j = w->data;
  PQfreeCancel(j->cancel);
  free(j);
}

static void on_timeout(uv_timer_t *t) {
  conn *c = t->data;
  if (c->op == OP_NONE) return;
  if (c->op == OP_CONNECT) {
    if (c->resolving) c->resolving->c = NULL; /* it frees itself when done */
    c->resolving = NULL;
    kw_free(c);
    lose(c, "connecting to postgres timed out", "08001", "lost");
    return;
  }
  if (!c->cancel_sent) {
    c->cancel_sent = 1;
    cancel_job *j = calloc(1, sizeof *j);
    if (j) j->cancel = PQgetCancel(c->pg);
    if (j && j->cancel) {
      j->work.data = j;
      if (uv_queue_work(c->host->loop, &j->work, cancel_run, cancel_done) == 0) {
        uv_timer_start(&c->timer, on_timeout, CANCEL_GRACE_MS, 0);
        return;
      }
      PQfreeCancel(j->cancel);
    }
    free(j);
  }
  /* no answer even to the cancel: this connection cannot be trusted */
  lose(c, "the statement timed out and the server did not answer its cancel", "57014", "timeout");
}

/* ------------------------------------------------------------ lifecycle */

static void timer_closed(uv_handle_t *h) { free(h->data); }

/* The close hook (also pg.close): a waiting task learns first, then libpq
   and the handles go; the memory goes with the timer. */
static void conn_close(mz_resource *r) {
  conn *c = (conn *)r;
  if (c->closing) return;
  c->closing = 1;
  mz_host_disown(&c->res);
  if (c->resolving) c->resolving->c = NULL; /* it frees itself when done */
  c->resolving = NULL;
  kw_free(c);
  if (c->ud) *c->ud = NULL;
  c->ud = NULL;
  if (c->task) {
    drop_pg(c);
    finish_error(c, "the postgres connection was closed (its host is shutting down)", "08006", "lost");
  }
  statement_free(c);
  drop_pg(c);
  uv_close((uv_handle_t *)&c->timer, timer_closed);
}

static conn *check_conn(lua_State *L) {
  conn **pc = luaL_checkudata(L, 1, "mizan.pg");
  if (!*pc || (*pc)->closing) luaL_error(L, "this postgres connection is closed");
  return *pc;
}

static mz_task *task_of(lua_State *L, const char *what) {
  mz_host *h = mz_host_from(L);
  if (!h->current || h->current->co != L) luaL_error(L, "%s must run in a request's own coroutine", what);
  return h->current;
}

static uint64_t timeout_arg(lua_State *L, int idx) {
  double s = luaL_optnumber(L, idx, 30);
  if (!(s > 0) || isinf(s)) luaL_argerror(L, idx, "the timeout must be a positive number of seconds");
  return (uint64_t)(s * 1000.0 + 0.5);
}

/* Collect a { key = value } table of libpq connection keywords into two
   NULL-terminated arrays (the strings stay on the Lua side). */
static int conninfo(lua_State *L, int idx, const char **keys, const char **vals, int max) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (n == max - 1 || lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 2);
      return luaL_argerror(L, idx, "connection keywords: a table of string = string, at most 30");
    }
    keys[n] = lua_tostring(L, -2);
    vals[n] = lua_tostring(L, -1);
    n++;
    lua_pop(L, 1); /* the key stays for lua_next; both strings stay in the table */
  }
  keys[n] = vals[n] = NULL;
  return n;
}

static void quiet(void *arg, const char *message) { (void)arg, (void)message; }

static const char *kw_get(conn *c, const char *key) {
  for (int i = 0; c->kw_keys[i]; i++)
    if (!strcmp(c->kw_keys[i], key)) return c->kw_vals[i];
  return NULL;
}

/* Start libpq's connect (with `hostaddr`, the address already looked up,
   or NULL). 0, or -1 with c->failure set. */
static int start_pg(conn *c, const char *hostaddr) {
  const char *keys[34], *vals[34];
  int n = 0;
  for (; c->kw_keys[n]; n++) keys[n] = c->kw_keys[n], vals[n] = c->kw_vals[n];
  if (hostaddr) keys[n] = "hostaddr", vals[n] = hostaddr, n++;
  keys[n] = vals[n] = NULL;
  PGconn *pg = PQconnectStartParams(keys, vals, 0);
  kw_free(c);
  if (!pg || PQstatus(pg) == CONNECTION_BAD) {
    snprintf(c->failure, sizeof c->failure, "cannot connect to postgres: %s", pg ? PQerrorMessage(pg) : "out of memory");
    if (pg) PQfinish(pg);
    return -1;
  }
  PQsetNoticeProcessor(pg, quiet, NULL);
  c->pg = pg;
  if (watch(c, UV_WRITABLE)) {
    drop_pg(c);
    snprintf(c->failure, sizeof c->failure, "cannot connect to postgres: no socket");
    return -1;
  }
  return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  resolve_req *r = req->data;
  conn *c = r->c;
  /* every address, in order, as libpq would try them: hostaddr=a,b,... with
     the name repeated as many times in host (libpq pairs the two lists) */
  char addrs[8 * (INET6_ADDRSTRLEN + 1)] = "";
  int naddrs = 0;
  for (struct addrinfo *a = status ? NULL : res; a && naddrs < 8; a = a->ai_next) {
    char ip[INET6_ADDRSTRLEN] = "";
    if (a->ai_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, ip, sizeof ip);
    else if (a->ai_family == AF_INET) uv_ip4_name((struct sockaddr_in *)a->ai_addr, ip, sizeof ip);
    if (!ip[0] || strstr(addrs, ip)) continue;
    if (naddrs++) strcat(addrs, ",");
    strcat(addrs, ip);
  }
  uv_freeaddrinfo(res);
  free(r);
  if (!c) return;
  c->resolving = NULL;
  if (!naddrs) {
    char msg[300];
    snprintf(msg, sizeof msg, "cannot connect to postgres: cannot resolve %s: %s", kw_get(c, "host"),
             status ? uv_strerror(status) : "no address");
    kw_free(c);
    finish_error(c, msg, "08001", "lost");
    return;
  }
  for (int i = 0; c->kw_keys[i]; i++) {
    if (strcmp(c->kw_keys[i], "host")) continue;
    size_t len = strlen(c->kw_vals[i]);
    char *hosts = malloc((len + 1) * (size_t)naddrs);
    if (!hosts) break;
    hosts[0] = 0;
    for (int k = 0; k < naddrs; k++) {
      if (k) strcat(hosts, ",");
      strcat(hosts, c->kw_vals[i]);
    }
    free(c->kw_vals[i]);
    c->kw_vals[i] = hosts;
  }
  if (start_pg(c, addrs)) finish_error(c, c->failure, "08001", "lost");
}

static int is_ip(const char *s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int connect_failed(lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushliteral(L, "08001");
  lua_pushliteral(L, "lost");
  return 4;
}

/* connect({ libpq keyword = value }, timeout_s) -> conn | nil, err, sqlstate, "lost".
   Starts connecting (a host name is looked up first, off the loop) and
   returns at once; pg.ready(conn) waits for it. */
static int l_connect(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  uint64_t timeout = timeout_arg(L, 2);
  mz_host *h = mz_host_from(L);
  const char *keys[32], *vals[32];
  int n = conninfo(L, 1, keys, vals, 32);
  if (h->released) return luaL_error(L, "pg.connect: this state is shutting down");
  conn **pc = lua_newuserdata(L, sizeof *pc);
  *pc = NULL;
  luaL_getmetatable(L, "mizan.pg");
  lua_setmetatable(L, -2);
  conn *c = calloc(1, sizeof *c);
  if (!c) return luaL_error(L, "out of memory");
  c->kw_keys = calloc((size_t)n + 1, sizeof *c->kw_keys);
  c->kw_vals = calloc((size_t)n + 1, sizeof *c->kw_vals);
  int oom = !c->kw_keys || !c->kw_vals;
  for (int i = 0; i < n && !oom; i++) {
    c->kw_keys[i] = strdup(keys[i]);
    c->kw_vals[i] = strdup(vals[i]);
    oom = !c->kw_keys[i] || !c->kw_vals[i];
  }
  if (oom) {
    kw_free(c);
    free(c);
    return luaL_error(L, "out of memory");
  }
  *pc = c;
  c->ud = pc;
  c->host = h;
  c->poll_fd = -1;
  c->timeout_ms = timeout;
  uv_timer_init(h->loop, &c->timer);
  c->timer.data = c;
  c->res.close = conn_close;
  mz_host_own(h, &c->res);
  c->op = OP_CONNECT;
  const char *host = kw_get(c, "host");
  if (host && host[0] && host[0] != '/' && !strchr(host, ',') && !kw_get(c, "hostaddr") && !is_ip(host)) {
    resolve_req *r = calloc(1, sizeof *r);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (r) r->req.data = r, r->c = c;
    if (!r || uv_getaddrinfo(h->loop, &r->req, on_resolved, host, NULL, &hints)) {
      free(r);
      c->op = OP_NONE;
      conn_close(&c->res);
      return connect_failed(L, "cannot connect to postgres: cannot start the name lookup");
    }
    c->resolving = r;
  } else if (start_pg(c, NULL)) {
    char msg[sizeof c->failure];
    snprintf(msg, sizeof msg, "%s", c->failure);
    c->op = OP_NONE;
    conn_close(&c->res);
    return connect_failed(L, msg);
  }
  uv_timer_start(&c->timer, on_timeout, timeout, 0);
  return 1;
}

/* ready(conn) -> true | nil, err, sqlstate, "lost": waits (yields) while
   the connection is being made. */
static int l_ready(lua_State *L) {
  conn *c = check_conn(L);
  mz_task *t = task_of(L, "pg.ready");
  if (c->op == OP_CONNECT) {
    if (c->task) return luaL_error(L, "pg.ready: another task waits on this connection");
    c->task = t;
    lua_settop(L, 0);
    return lua_yield(L, 0);
  }
  if (c->pg && PQstatus(c->pg) == CONNECTION_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, c->failure[0] ? c->failure : "postgres connection lost");
  lua_pushliteral(L, "08006");
  lua_pushliteral(L, "lost");
  return 4;
}

/* Copy parameter `i` (stack index `idx`) into the statement. 0, or raise. */
/* run(conn, sql, params, want_rows, name, formats, timeout_s)
     name false:   the simple protocol (PQsendQuery): no parameters, several
                   statements allowed (BEGIN, COMMIT, a migration's script)
     name string:  a prepared statement by that name ("" the unnamed one);
                   formats nil: prepare it now (and describe it), else the
                   string of '0' (text) / '1' (binary) per parameter that an
                   earlier run handed back
   -> result, formats_or_nil | nil, err, sqlstate, flag, formats_or_nil (the
   statement was prepared though its execution failed). Yields the task. */
static int l_run(lua_State *L) {
  conn *c = check_conn(L);
  size_t sqllen;
  const char *sql = luaL_checklstring(L, 2, &sqllen);
  luaL_checktype(L, 3, LUA_TTABLE);
  int want_rows = lua_toboolean(L, 4);
  int simple = lua_type(L, 5) == LUA_TBOOLEAN && !lua_toboolean(L, 5);
  const char *name = simple ? NULL : luaL_checkstring(L, 5);
  size_t nfm = 0;
  const char *fm = lua_isnoneornil(L, 6) ? NULL : luaL_checklstring(L, 6, &nfm);
  uint64_t timeout = timeout_arg(L, 7);
  mz_task *t = task_of(L, "pg.run");
  int n = (int)lua_objlen(L, 3);
  lua_getfield(L, 3, "n");
  if (lua_isnumber(L, -1)) n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (n < 0 || n > MAX_PARAMS) return luaL_argerror(L, 3, "at most 1000 parameters");
  if (simple && n) return luaL_argerror(L, 3, "the simple protocol takes no parameters");
  if (fm && (int)nfm != n) return luaL_argerror(L, 6, "one format per parameter");
  if (c->op != OP_NONE) return luaL_error(L, "pg.run: this connection is busy with another statement");
  if (!c->pg) {
    lua_pushnil(L);
    lua_pushliteral(L, "postgres connection lost");
    lua_pushliteral(L, "08006");
    lua_pushliteral(L, "lost");
    return 4;
  }
  c->values = calloc((size_t)n + 1, sizeof *c->values);
  c->lengths = calloc((size_t)n + 1, sizeof *c->lengths);
  c->formats = calloc((size_t)n + 1, sizeof *c->formats);
  c->sql = malloc(sqllen + 1);
  c->name = name ? strdup(name) : NULL;
  if (!c->values || !c->lengths || !c->formats || !c->sql || (name && !c->name)) {
    statement_free(c);
    return luaL_error(L, "out of memory");
  }
  memcpy(c->sql, sql, sqllen + 1);
  mz_buf tmp;
  mz_buf_init(&tmp);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 3, i + 1);
    int r = mz__pg_take_param(L, c->host->json, lua_gettop(L), &c->values[i], &c->lengths[i], &tmp);
    c->nparams = i + 1;
    lua_pop(L, 1);
    if (r) {
      mz_buf_free(&tmp);
      statement_free(c);
      if (r == -2) return luaL_argerror(L, 3, "a table parameter could not be encoded as JSON");
      if (r == -3) return luaL_error(L, "out of memory");
      return luaL_argerror(L, 3, "parameters must be numbers, strings, booleans, tables (as JSON), nil or mizan.null");
    }
    if (fm) c->formats[i] = fm[i] == '1';
  }
  mz_buf_free(&tmp);
  c->nparams = n;
  c->want_rows = want_rows;
  c->cancel_sent = 0;
  c->timeout_ms = timeout;
  c->fresh = !simple && !fm;
  int sent;
  if (simple) {
    c->op = OP_SIMPLE;
    sent = PQsendQuery(c->pg, c->sql) ? 0 : -2;
  } else if (fm) {
    sent = send_exec(c);
  } else {
    c->op = OP_PREPARE;
    sent = PQsendPrepare(c->pg, c->name, c->sql, 0, NULL) ? 0 : -2;
  }
  if (sent) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", sent == -1 ? c->failure : PQerrorMessage(c->pg));
    int lost = sent != -1 && PQstatus(c->pg) == CONNECTION_BAD;
    statement_free(c);
    c->op = OP_NONE;
    if (lost) drop_pg(c);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    if (lost) lua_pushliteral(L, "08006");
    else lua_pushnil(L);
    if (lost) lua_pushliteral(L, "lost");
    else lua_pushnil(L);
    return 4;
  }
  c->task = t;
  if (watch(c, UV_READABLE | UV_WRITABLE)) {
    c->task = NULL;
    drop_pg(c);
    statement_free(c);
    c->op = OP_NONE;
    lua_pushnil(L);
    lua_pushliteral(L, "cannot watch the postgres socket");
    lua_pushliteral(L, "08006");
    lua_pushliteral(L, "lost");
    return 4;
  }
  uv_timer_start(&c->timer, on_timeout, timeout, 0);
  lua_settop(L, 0);
  return lua_yield(L, 0);
}

/* status(conn) -> "idle" | "intrans" | "inerror" | "active" | "bad" | "closed" */
static int l_status(lua_State *L) {
  conn **pc = luaL_checkudata(L, 1, "mizan.pg");
  conn *c = *pc;
  if (!c || c->closing) lua_pushliteral(L, "closed");
  else if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) lua_pushliteral(L, "bad");
  else if (c->op != OP_NONE) lua_pushliteral(L, "active");
  else switch (PQtransactionStatus(c->pg)) {
      case PQTRANS_IDLE: lua_pushliteral(L, "idle"); break;
      case PQTRANS_INTRANS: lua_pushliteral(L, "intrans"); break;
      case PQTRANS_INERROR: lua_pushliteral(L, "inerror"); break;
      case PQTRANS_ACTIVE: lua_pushliteral(L, "active"); break;
      default: lua_pushliteral(L, "bad");
    }
  return 1;
}

/* backend_pid(conn) -> the server process's pid (for pg_stat_activity), or nil */
static int l_backend_pid(lua_State *L) {
  conn *c = check_conn(L);
  if (!c->pg) return 0;
  lua_pushinteger(L, PQbackendPID(c->pg));
  return 1;
}

/* close(conn): now (never while a statement runs on it: misuse). Idempotent. */
static int l_close(lua_State *L) {
  conn **pc = luaL_checkudata(L, 1, "mizan.pg");
  if (!*pc) return 0;
  if ((*pc)->op != OP_NONE) return luaL_error(L, "pg.close: a statement is running on this connection");
  conn_close(&(*pc)->res);
  return 0;
}

/* __gc: nobody can use the connection any more, so it closes (a task
   waiting on it holds the userdata on its stack, so none is waiting). */
static int l_gc(lua_State *L) {
  conn **pc = lua_touserdata(L, 1);
  if (*pc && !(*pc)->task) conn_close(&(*pc)->res);
  else if (*pc) (*pc)->ud = NULL;
  return 0;
}

/* probe({ keywords }, timeout_s) -> "rw" | "ro" | nil, err, sqlstate.
   A blocking connect and one query: only for start-up checks, before any
   request runs (mizan.host.check_storage), like sqlite.probe. */
static int l_probe(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *keys[32], *vals[32];
  conninfo(L, 1, keys, vals, 32);
  PGconn *pg = PQconnectdbParams(keys, vals, 0);
  if (!pg || PQstatus(pg) != CONNECTION_OK) {
    lua_pushnil(L);
    lua_pushstring(L, pg ? PQerrorMessage(pg) : "out of memory");
    lua_pushliteral(L, "08001");
    PQfinish(pg);
    return 3;
  }
  PGresult *r = PQexec(pg, "SELECT pg_is_in_recovery()");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    lua_pushnil(L);
    lua_pushstring(L, PQresultErrorMessage(r));
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (st) lua_pushstring(L, st);
    else lua_pushnil(L);
    PQclear(r);
    PQfinish(pg);
    return 3;
  }
  lua_pushstring(L, PQgetvalue(r, 0, 0)[0] == 't' ? "ro" : "rw");
  PQclear(r);
  PQfinish(pg);
  return 1;
}

int mz_pg_open(lua_State *L) {
  luaL_newmetatable(L, "mizan.pg");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"connect", l_connect}, {"ready", l_ready}, {"run", l_run},   {"status", l_status},
                                 {"close", l_close},     {"probe", l_probe}, {"backend_pid", l_backend_pid},
                                 {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
