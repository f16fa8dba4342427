/*
 * mizan.redis: a Redis client on the libuv loop (hiredis, asynchronously).
 *
 * A task calls redis.call(client, ...): the command is sent and the task's
 * coroutine yields; the reply resumes it. The loop never blocks.
 *
 * Failure handling, because a cache must fail open:
 *   - a watchdog fails every command outstanding longer than the timeout (a
 *     frozen server), dropping the connection;
 *   - the connection comes back on its own, with backoff;
 *   - a circuit breaker: after 3 failures in a row, commands fail at once
 *     for a second, then one is let through to probe.
 * Runtime failures return nil, err; misuse raises.
 *
 * Every client is a resource of the host that opened it (host.h, THE
 * OWNERSHIP RULE): a subscriber closes when its host retires (messages would
 * start tasks on a state that no longer serves); every client closes when
 * its host closes. There is no process-wide list of clients.
 */
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define MAX_ARGS 256
#define BREAK_AFTER 3
#define BREAK_MS 1000

typedef struct pending pending;

typedef struct client {
  mz_resource res;  /* first: the host's list links it */
  struct client **ud; /* the Lua userdata pointing here, until it is collected */
  int closing, open_handles;
  uv_loop_t *loop;
  char hostname[300];
  int port, db;
  redisAsyncContext *ac;
  uv_timer_t retry, watchdog;
  uint64_t backoff_ms, timeout_ms;
  int failures;
  uint64_t open_until;
  pending *head, *tail; /* outstanding commands, oldest first */
  int ready;
  /* a subscriber client: the channel, and the Lua function each message runs */
  char sub_channel[128];
  int sub_ref;
  mz_host *host;
} client;

struct pending {
  pending *prev, *next;
  client *c;
  mz_task *task;
  uint64_t sent_ms;
};

static void connect_now(client *c);
static void client_close(mz_resource *r);
static void client_retire(mz_resource *r);

static void unlink_pending(client *c, pending *p) {
  if (p->prev) p->prev->next = p->next;
  else c->head = p->next;
  if (p->next) p->next->prev = p->prev;
  else c->tail = p->prev;
  if (!c->head) uv_timer_stop(&c->watchdog);
}

static void failed(client *c) {
  if (++c->failures >= BREAK_AFTER) c->open_until = uv_now(c->loop) + BREAK_MS;
}

static void retry_fired(uv_timer_t *t) {
  client *c = t->data;
  if (!c->closing) connect_now(c);
}

static void schedule_retry(client *c) {
  if (c->closing) return;
  c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 50;
  if (c->backoff_ms > 2000) c->backoff_ms = 2000;
  uv_timer_start(&c->retry, retry_fired, c->backoff_ms, 0);
}

/* Drop the connection: pending commands get a NULL reply (an error). */
static void lose(client *c, const char *why) {
  redisAsyncContext *ac = c->ac;
  if (!ac) return;
  fprintf(stderr, "mizan [warn] redis %s:%d: %s\n", c->hostname, c->port, why);
  c->ac = NULL;
  c->ready = 0;
  failed(c);
  redisAsyncFree(ac); /* runs the pending callbacks, which see c->ac == NULL */
  schedule_retry(c);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  client *c = ac->data;
  if (c->ac != ac) return;
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback */
    fprintf(stderr, "mizan [warn] redis %s:%d: cannot connect: %s\n", c->hostname, c->port, ac->errstr);
    c->ac = NULL;
    failed(c);
    schedule_retry(c);
    return;
  }
  c->ready = 1;
  c->backoff_ms = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  client *c = ac->data;
  if (c->ac != ac) return; /* we dropped it ourselves */
  c->ac = NULL;
  c->ready = 0;
  if (status != REDIS_OK) failed(c);
  schedule_retry(c);
}

static void sub_done(mz_task *t, lua_State *co, int ok) {
  if (!ok) fprintf(stderr, "mizan [error] redis subscriber failed: %s\n", lua_tostring(co, -1));
  mz_task_release(t);
  free(t);
}

/* Every message on the subscribed channel runs the Lua function as a task. */
static void on_sub(redisAsyncContext *ac, void *reply, void *privdata) {
  (void)ac;
  client *c = privdata;
  redisReply *r = reply;
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !r->element[0]->str ||
      strcmp(r->element[0]->str, "message") || r->element[2]->type != REDIS_REPLY_STRING)
    return;
  mz_task *t = malloc(sizeof *t);
  if (!t) return;
  lua_State *co = mz_task_acquire(c->host, t, sub_done, NULL);
  lua_rawgeti(co, LUA_REGISTRYINDEX, c->sub_ref);
  lua_pushlstring(co, r->element[2]->str, r->element[2]->len);
  mz_task_resume(t, 1);
}

static void connect_now(client *c) {
  redisAsyncContext *ac = redisAsyncConnect(c->hostname, c->port);
  if (!ac || ac->err) {
    if (ac) redisAsyncFree(ac);
    failed(c);
    schedule_retry(c);
    return;
  }
  ac->data = c;
  redisLibuvAttach(ac, c->loop);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  c->ac = ac;
  /* queued first, so it runs before any command a task sends */
  if (c->db) redisAsyncCommand(ac, NULL, NULL, "SELECT %d", c->db);
  /* a subscriber subscribes again on every new connection */
  if (c->sub_channel[0]) redisAsyncCommand(ac, on_sub, c, "SUBSCRIBE %s", c->sub_channel);
}

static void watchdog_fired(uv_timer_t *t) {
  client *c = t->data;
  if (c->head && uv_now(c->loop) - c->head->sent_ms >= c->timeout_ms) lose(c, "a command timed out");
}

/* ------------------------------------------------------------ replies */

static void push_reply(lua_State *co, redisReply *r, int depth) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: lua_pushlstring(co, r->str, r->len); break;
    case REDIS_REPLY_INTEGER: lua_pushnumber(co, (lua_Number)r->integer); break;
    case REDIS_REPLY_ARRAY:
      lua_createtable(co, (int)r->elements, 0);
      for (size_t i = 0; i < r->elements; i++) {
        if (depth > 8 || !lua_checkstack(co, 4)) lua_pushboolean(co, 0);
        else push_reply(co, r->element[i], depth + 1);
        lua_rawseti(co, -2, (int)i + 1);
      }
      break;
    default: lua_pushboolean(co, 0); /* nil: false keeps array holes out */
  }
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  (void)ac;
  pending *p = privdata;
  client *c = p->c;
  redisReply *r = reply;
  unlink_pending(c, p);
  mz_task *t = p->task;
  free(p);
  lua_State *co = t->co;
  int n;
  if (!r) {
    lua_pushnil(co);
    lua_pushliteral(co, "redis connection lost");
    n = 2;
  } else if (r->type == REDIS_REPLY_ERROR) {
    c->failures = 0; /* the server answered */
    lua_pushnil(co);
    lua_pushfstring(co, "redis: %s", r->str);
    n = 2;
  } else {
    c->failures = 0;
    c->open_until = 0;
    push_reply(co, r, 0);
    n = 1;
  }
  mz_task_resume(t, n);
}

/* ------------------------------------------------------------ Lua API */

static client *check_client(lua_State *L) {
  client **pc = luaL_checkudata(L, 1, "mizan.redis");
  if (!*pc || (*pc)->closing) luaL_error(L, "this redis client is closed");
  return *pc;
}

/* open("redis://host:port/db", timeout_seconds) -> client */
static int l_open(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  double timeout = luaL_optnumber(L, 2, 0.2);
  /* every check that may raise comes before the client is allocated */
  const char *channel = lua_isfunction(L, 4) ? luaL_checkstring(L, 3) : NULL;
  /* the client is malloc'd, not GC'd: its libuv handles must outlive the
     Lua state until their close callbacks have run (client_close) */
  client **pc = lua_newuserdata(L, sizeof *pc);
  *pc = NULL;
  luaL_getmetatable(L, "mizan.redis");
  lua_setmetatable(L, -2);
  char rest[300];
  if (sscanf(url, "redis://%299s", rest) != 1) return luaL_argerror(L, 1, "expected redis://host:port/db");
  client *c = *pc = calloc(1, sizeof *c);
  if (!c) return luaL_error(L, "out of memory");
  c->port = 6379;
  char *slash = strchr(rest, '/');
  if (slash) {
    c->db = atoi(slash + 1);
    *slash = 0;
  }
  char *colon = strrchr(rest, ':');
  if (colon) {
    c->port = atoi(colon + 1);
    *colon = 0;
  }
  snprintf(c->hostname, sizeof c->hostname, "%s", rest[0] ? rest : "127.0.0.1");
  if (c->port <= 0 || c->port > 65535) {
    free(c);
    *pc = NULL;
    return luaL_argerror(L, 1, "bad port");
  }
  c->timeout_ms = (uint64_t)(timeout * 1000);
  mz_host *h = mz_host_from(L);
  if (h->retired) {
    free(c);
    *pc = NULL;
    return luaL_error(L, "redis.open: this state is retired (a reload replaced it)");
  }
  c->loop = h->loop;
  c->host = h;
  c->ud = pc;
  c->sub_ref = LUA_NOREF;
  if (channel) { /* open(url, timeout, channel, fn): a subscriber */
    snprintf(c->sub_channel, sizeof c->sub_channel, "%s", channel);
    lua_pushvalue(L, 4);
    c->sub_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  uv_timer_init(c->loop, &c->retry);
  uv_timer_init(c->loop, &c->watchdog);
  c->retry.data = c->watchdog.data = c;
  uv_unref((uv_handle_t *)&c->retry);
  uv_unref((uv_handle_t *)&c->watchdog);
  c->open_handles = 2;
  c->res.retire = client_retire;
  c->res.close = client_close;
  mz_host_own(h, &c->res);
  connect_now(c);
  return 1;
}

static void client_handle_closed(uv_handle_t *h) {
  client *c = h->data;
  if (--c->open_handles == 0) free(c);
}

/* The close hook: the connection goes (commands still pending fail, which
   resumes their tasks with an error), the timers close, and the memory goes
   with the last handle. Lua can no longer reach it: its userdata is cleared. */
static void client_close(mz_resource *r) {
  client *c = (client *)r;
  if (c->closing) return;
  c->closing = 1;
  mz_host_disown(&c->res);
  if (c->ud) *c->ud = NULL;
  c->ud = NULL;
  if (c->sub_ref != LUA_NOREF && c->host->L) luaL_unref(c->host->L, LUA_REGISTRYINDEX, c->sub_ref);
  c->sub_ref = LUA_NOREF;
  redisAsyncContext *ac = c->ac;
  c->ac = NULL;
  if (ac) redisAsyncFree(ac); /* pending commands fail; the poll handle closes */
  uv_close((uv_handle_t *)&c->retry, client_handle_closed);
  uv_close((uv_handle_t *)&c->watchdog, client_handle_closed);
}

/* The retire hook: a subscriber is a source of new tasks, so it goes now;
   a command client stays for the requests still in flight. */
static void client_retire(mz_resource *r) {
  client *c = (client *)r;
  if (c->sub_channel[0]) client_close(r);
}

/* __gc of the userdata: the client lives on (a subscriber nobody holds is
   still subscribed); it only forgets the userdata. */
static int l_gc(lua_State *L) {
  client **pc = lua_touserdata(L, 1);
  if (*pc) (*pc)->ud = NULL;
  return 0;
}

/* call(client, cmd, args...) -> reply | nil, err. Yields the calling task. */
static int l_call(lua_State *L) {
  client *c = check_client(L);
  int argc = lua_gettop(L) - 1;
  if (argc < 1 || argc > MAX_ARGS) return luaL_argerror(L, 2, "1 to 256 command words");
  mz_host *h = mz_host_from(L);
  if (!h->current || h->current->co != L)
    return luaL_error(L, "redis.call must run in a request's own coroutine");
  if (c->open_until && uv_now(c->loop) < c->open_until) {
    lua_pushnil(L);
    lua_pushliteral(L, "redis unavailable (circuit open)");
    return 2;
  }
  if (!c->ac) {
    lua_pushnil(L);
    lua_pushliteral(L, "redis not connected");
    return 2;
  }
  const char *argv[MAX_ARGS];
  size_t lens[MAX_ARGS];
  for (int i = 0; i < argc; i++) argv[i] = luaL_checklstring(L, i + 2, &lens[i]);
  pending *p = calloc(1, sizeof *p);
  if (!p) return luaL_error(L, "out of memory");
  p->c = c;
  p->task = h->current;
  p->sent_ms = uv_now(c->loop);
  if (redisAsyncCommandArgv(c->ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
    free(p);
    lua_pushnil(L);
    lua_pushliteral(L, "redis refused the command");
    return 2;
  }
  p->prev = c->tail;
  if (c->tail) c->tail->next = p;
  else c->head = p;
  c->tail = p;
  if (!uv_is_active((uv_handle_t *)&c->watchdog))
    uv_timer_start(&c->watchdog, watchdog_fired, 20, 20);
  lua_settop(L, 0);
  return lua_yield(L, 0);
}

/* state(client) -> "ready" | "connecting" | "down" | "open" */
static int l_state(lua_State *L) {
  client *c = check_client(L);
  if (c->open_until && uv_now(c->loop) < c->open_until) lua_pushliteral(L, "open");
  else if (c->ready) lua_pushliteral(L, "ready");
  else if (c->ac) lua_pushliteral(L, "connecting");
  else lua_pushliteral(L, "down");
  return 1;
}

int mz_redis_open(lua_State *L) {
  luaL_newmetatable(L, "mizan.redis");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"open", l_open}, {"call", l_call}, {"state", l_state}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
