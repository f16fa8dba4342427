/*
 * mz_host: the lua_State, the embedded framework, and the task scheduler.
 * See host.h for the contract between C and Lua.
 */
#include "host.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "observe.h"

#define MZ_POOL_MAX 1024

static const char host_key = 'h'; /* registry key: address is the identity */

const char *mz_mode_name(mz_mode m) {
  return m == MZ_MODE_PRODUCTION ? "production" : m == MZ_MODE_DEVELOPMENT ? "development" : "test";
}

mz_host *mz_host_from(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&host_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  mz_host *h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return h;
}

/* ------------------------------------------------------- embedded modules */

const mz_embedded_module *mz_embedded_find(const char *name) {
  for (const mz_embedded_module *m = mz_embedded_modules; m->name; m++)
    if (strcmp(m->name, name) == 0) return m;
  return NULL;
}

/* package.loaders entry: the framework's own modules come from the binary,
   so it runs from any directory without the source tree. */
static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const mz_embedded_module *m = mz_embedded_find(name);
  if (!m) {
    lua_pushfstring(L, "\n\tno embedded module '%s'", name);
    return 1;
  }
  if (luaL_loadbuffer(L, (const char *)m->src, m->len, m->chunkname)) return lua_error(L);
  return 1;
}

/* ------------------------------------------------------------ tasks */

lua_State *mz_task_acquire(mz_host *h, mz_task *t, mz_task_done_cb done, void *data) {
  t->host = h;
  t->done = done;
  t->data = data;
  if (h->npool) {
    t->co_ref = h->pool[--h->npool];
    lua_rawgeti(h->L, LUA_REGISTRYINDEX, t->co_ref);
    t->co = lua_tothread(h->L, -1);
    lua_pop(h->L, 1);
  } else {
    t->co = lua_newthread(h->L);
    t->co_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
  }
  h->tasks++;
  return t->co;
}

void mz_task_release(mz_task *t) {
  mz_host *h = t->host;
  if (!t->co) return;
  /* A coroutine that returned normally can run a new function; one that died
     with an error cannot, so it goes to the GC. */
  if (lua_status(t->co) == 0 && h->npool < MZ_POOL_MAX) {
    if (h->npool == h->cappool) {
      int cap = h->cappool ? h->cappool * 2 : 64;
      int *p = realloc(h->pool, (size_t)cap * sizeof *p);
      if (!p) goto drop;
      h->pool = p;
      h->cappool = cap;
    }
    lua_settop(t->co, 0);
    h->pool[h->npool++] = t->co_ref;
  } else {
  drop:
    luaL_unref(h->L, LUA_REGISTRYINDEX, t->co_ref);
  }
  t->co = NULL;
  t->co_ref = LUA_NOREF;
}

void mz_task_resume(mz_task *t, int nargs) {
  mz_host *h = t->host;
  mz_task *prev = h->current;
  h->current = t;
  int r = lua_resume(t->co, nargs);
  h->current = prev;
  if (r == LUA_YIELD) return; /* a C function armed a handle that will resume us */
  h->tasks--;
  t->done(t, t->co, r == 0);
}

/* ------------------------------------------------------------ mizan.core */

/* A sleeping task's timer: a resource of the task's host, so that closing
   the host cancels it and it can never resume a closed state. */
typedef struct {
  mz_resource res;
  uv_timer_t timer;
  mz_task *task;
  int background;
} sleep_req;

static void sleep_closed(uv_handle_t *hd) { free(hd->data); }

static void sleep_fired(uv_timer_t *tm) {
  sleep_req *s = tm->data;
  mz_task *t = s->task;
  mz_host_disown(&s->res);
  uv_close((uv_handle_t *)&s->timer, sleep_closed);
  mz_task_resume(t, 0);
}

/* retired: a background sleep ends now, so the loop behind it sees the
   retirement and stops; a request's own sleep runs its course */
static void sleep_retire(mz_resource *r) {
  sleep_req *s = (sleep_req *)r;
  if (s->background) uv_timer_start(&s->timer, sleep_fired, 0, 0);
}

static void sleep_close(mz_resource *r) {
  sleep_req *s = (sleep_req *)r;
  uv_close((uv_handle_t *)&s->timer, sleep_closed); /* never fires: the task is dropped */
}

/* The task whose coroutine is `L`, or NULL when L is not a task's own
   coroutine (the main state, or a coroutine the app made itself). */
static mz_task *running_task(lua_State *L) {
  mz_host *h = mz_host_from(L);
  return h && h->current && h->current->co == L ? h->current : NULL;
}

/* core.sleep(seconds, background): yield to the loop for that long. A
   background sleep does not keep the process alive on its own (a repair
   loop must not hold up a graceful exit). */
static int l_sleep(lua_State *L) {
  double sec = luaL_checknumber(L, 1);
  int background = lua_toboolean(L, 2);
  if (!(sec >= 0) || isinf(sec)) return luaL_argerror(L, 1, "must be a finite number >= 0");
  mz_task *t = running_task(L);
  if (!t) return luaL_error(L, "mizan.sleep can only be called while handling a request, "
                               "from the request's own coroutine");
  sleep_req *s = malloc(sizeof *s);
  if (!s) return luaL_error(L, "out of memory");
  memset(s, 0, sizeof *s);
  s->task = t;
  s->background = background;
  s->res.retire = sleep_retire;
  s->res.close = sleep_close;
  uv_timer_init(t->host->loop, &s->timer);
  s->timer.data = s;
  /* a retired host's background loop must stop, not sleep on */
  uv_timer_start(&s->timer, sleep_fired, background && t->host->retired ? 0 : (uint64_t)(sec * 1000.0 + 0.5), 0);
  if (background) uv_unref((uv_handle_t *)&s->timer);
  mz_host_own(t->host, &s->res);
  lua_settop(L, 0);
  return lua_yield(L, 0);
}

typedef struct mz_detached {
  mz_task task;
  struct mz_detached *prev, *next; /* the host's list of detached tasks */
  const char *what;
} mz_detached;

static void detached_done(mz_task *t, lua_State *co, int ok) {
  mz_detached *d = (mz_detached *)t;
  mz_host *h = t->host;
  if (!ok) fprintf(stderr, "mizan [error] %s failed: %s\n", d->what, lua_tostring(co, -1));
  mz_task_release(t);
  if (d->prev) d->prev->next = d->next;
  else h->detached = d->next;
  if (d->next) d->next->prev = d->prev;
  free(d);
}

lua_State *mz_task_detached(mz_host *h, const char *what, mz_task **t) {
  mz_detached *d = malloc(sizeof *d);
  if (!d) return NULL;
  d->what = what;
  d->prev = NULL;
  d->next = h->detached;
  if (h->detached) h->detached->prev = d;
  h->detached = d;
  *t = &d->task;
  return mz_task_acquire(h, &d->task, detached_done, NULL);
}

/* core.spawn(fn, ...): run fn(...) as a task of its own, outside any
   request (it may sleep and wait on I/O). Errors are logged. */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  mz_host *h = mz_host_from(L);
  mz_task *t;
  int n = lua_gettop(L);
  lua_State *co = mz_task_detached(h, "background task", &t);
  if (!co) return luaL_error(L, "out of memory");
  lua_xmove(L, co, n);
  mz_task_resume(t, n - 1);
  return 0;
}

/* core.current_task() -> a light userdata naming the running task, for a
   later core.wakeup. Raises outside a task's own coroutine. */
static int l_current_task(lua_State *L) {
  mz_task *t = running_task(L);
  if (!t) return luaL_error(L, "not inside a request's own coroutine");
  lua_pushlightuserdata(L, t);
  return 1;
}

/* core.suspend(): yield until some other task calls core.wakeup(task, ...);
   returns the values given to wakeup. */
static int l_suspend(lua_State *L) {
  if (!running_task(L)) return luaL_error(L, "core.suspend outside a request's own coroutine");
  return lua_yield(L, 0);
}

/* A wakeup on its way to a task: owned by the task's host like a sleep. */
typedef struct {
  mz_resource res;
  uv_timer_t timer;
  mz_task *task;
  int nargs;
} wake_req;

static void wake_closed(uv_handle_t *hd) { free(hd->data); }

static void wake_fired(uv_timer_t *tm) {
  wake_req *w = tm->data;
  mz_task *t = w->task;
  int n = w->nargs;
  mz_host_disown(&w->res);
  uv_close((uv_handle_t *)&w->timer, wake_closed);
  mz_task_resume(t, n);
}

static void wake_close(mz_resource *r) {
  wake_req *w = (wake_req *)r;
  uv_close((uv_handle_t *)&w->timer, wake_closed);
}

/* core.wakeup(task, ...): resume a suspended task with these values on the
   next loop turn (never from inside the caller's own turn). */
static int l_wakeup(lua_State *L) {
  luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
  mz_task *t = lua_touserdata(L, 1);
  int n = lua_gettop(L) - 1;
  wake_req *w = malloc(sizeof *w);
  if (!w) return luaL_error(L, "out of memory");
  if (!lua_checkstack(t->co, n + 1)) {
    free(w);
    return luaL_error(L, "too many values to pass");
  }
  lua_xmove(L, t->co, n); /* the suspended coroutine receives them as yield results */
  memset(w, 0, sizeof *w);
  w->res.close = wake_close;
  w->task = t;
  w->nargs = n;
  uv_timer_init(t->host->loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, wake_fired, 0, 0);
  mz_host_own(t->host, &w->res);
  return 0;
}

/* A timed wait's timer (core.wait): a resource of the task's host, like a
   sleep's. */
typedef struct {
  mz_resource res;
  uv_timer_t timer;
  mz_task *task;
  int woken;
} wait_req;

static void wait_closed(uv_handle_t *hd) { free(hd->data); }

static void wait_fired(uv_timer_t *tm) {
  wait_req *w = tm->data;
  mz_task *t = w->task;
  int woken = w->woken;
  mz_host_disown(&w->res);
  uv_close((uv_handle_t *)&w->timer, wait_closed);
  /* a wake already put its values on the stack; a timeout pushes false */
  if (!woken) lua_pushboolean(t->co, 0);
  mz_task_resume(t, woken ? 2 : 1);
}

static void wait_close(mz_resource *r) {
  wait_req *w = (wait_req *)r;
  uv_close((uv_handle_t *)&w->timer, wait_closed); /* the task is dropped with its host */
}

/* core.wait(seconds) -> true, value (given by core.wake) | false (the time
   ran out). Yields the calling task: a suspend with a deadline, for a task
   that queues for something (a pool's connection) and must not queue for
   ever. */
static int l_wait(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  if (!(s >= 0) || isinf(s)) return luaL_argerror(L, 1, "a number of seconds (0 or more)");
  mz_task *t = running_task(L);
  if (!t) return luaL_error(L, "core.wait outside a request's own coroutine");
  wait_req *w = calloc(1, sizeof *w);
  if (!w) return luaL_error(L, "out of memory");
  w->task = t;
  w->res.close = wait_close;
  uv_timer_init(t->host->loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, wait_fired, (uint64_t)(s * 1000.0 + 0.5), 0);
  mz_host_own(t->host, &w->res);
  lua_settop(L, 0);
  return lua_yield(L, 0);
}

/* core.wake(task, value) -> true when that task was in core.wait (it
   resumes on the next loop turn with true, value), false when it was not
   (its time ran out, or it never waited): the caller offers the value to
   another task then. */
static int l_wake(lua_State *L) {
  luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
  luaL_checkany(L, 2);
  mz_task *t = lua_touserdata(L, 1);
  mz_host *h = mz_host_from(L);
  for (mz_resource *r = h->resources; r; r = r->next) {
    if (r->close != wait_close) continue;
    wait_req *w = (wait_req *)r;
    if (w->task != t || w->woken) continue;
    if (!lua_checkstack(t->co, 3)) return luaL_error(L, "out of stack");
    w->woken = 1;
    lua_pushboolean(t->co, 1);
    lua_pushvalue(L, 2);
    lua_xmove(L, t->co, 1);
    uv_timer_start(&w->timer, wait_fired, 0, 0);
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* core.now(): wall-clock seconds, with sub-millisecond precision. */
static int l_now(lua_State *L) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  lua_pushnumber(L, (double)tv.tv_sec + tv.tv_usec / 1e6);
  return 1;
}

/* core.monotonic(): seconds from an arbitrary origin, never going back. */
static int l_monotonic(lua_State *L) {
  lua_pushnumber(L, (double)uv_hrtime() / 1e9);
  return 1;
}

typedef struct {
  int done, ok, nres;
} run_state;

static void run_done(mz_task *t, lua_State *co, int ok) {
  run_state *rs = t->data;
  rs->done = 1;
  rs->ok = ok;
  rs->nres = lua_gettop(co);
}

/* core.run(fn, ...) -> ok, results... | false, err
   Runs fn as a task and turns the loop until it finishes. This is how the
   in-process test client gets the same scheduling as a real request. */
static int l_run(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  mz_host *h = mz_host_from(L);
  if (h->current) return luaL_error(L, "core.run cannot be nested inside a task");
  int nargs = lua_gettop(L) - 1;
  run_state rs = {0, 0, 0};
  mz_task t;
  lua_State *co = mz_task_acquire(h, &t, run_done, &rs);
  lua_xmove(L, co, nargs + 1);
  mz_task_resume(&t, nargs);
  while (!rs.done) uv_run(h->loop, UV_RUN_ONCE);
  lua_pushboolean(L, rs.ok);
  lua_checkstack(L, rs.nres + 1);
  lua_xmove(co, L, rs.nres);
  mz_task_release(&t);
  return rs.nres + 1;
}

/* core.mkdir(path) -> true | nil, err (an existing folder is fine) */
static int l_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (mkdir(path, 0700) < 0 && errno != EEXIST) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.write_private(path, data) -> true | nil, err: a new file only its
   owner can read (for secrets); an existing file is left alone (nil, "exists"). */
static int l_write_private(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushstring(L, errno == EEXIST ? "exists" : strerror(errno));
    return 2;
  }
  ssize_t w = write(fd, data, n);
  close(fd);
  if (w != (ssize_t)n) {
    lua_pushnil(L);
    lua_pushliteral(L, "short write");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.listdir(path) -> { {name=, dir=bool}, ... } | nil, err */
static int l_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_newtable(L);
  int i = 0;
  struct dirent *e;
  char full[4096];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(full, sizeof full, "%s/%s", path, e->d_name);
    struct stat st;
    int is_dir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, e->d_name);
    lua_setfield(L, -2, "name");
    lua_pushboolean(L, is_dir);
    lua_setfield(L, -2, "dir");
    lua_rawseti(L, -2, ++i);
  }
  closedir(d);
  return 1;
}

/* The app a built executable carries (see app/cmd_build.c), if any. */
static const char *embedded_app;
static size_t embedded_app_len;

void mz_host_set_embedded_app(const char *data, size_t len) {
  embedded_app = data;
  embedded_app_len = len;
}

/* core.embedded_app() -> the archive string, or nil */
static int l_embedded_app(lua_State *L) {
  if (!embedded_app) return 0;
  lua_pushlstring(L, embedded_app, embedded_app_len);
  return 1;
}

/* core.log(level, message): one line on stderr. */
static int l_log(lua_State *L) {
  const char *level = luaL_checkstring(L, 1);
  const char *msg = luaL_checkstring(L, 2);
  fprintf(stderr, "mizan [%s] %s\n", level, msg);
  return 0;
}

/* core.job_metric(name, outcome, seconds): count a finished job attempt
   (lua/mizan/jobs.lua passes registered names and fixed outcomes only). */
static int l_job_metric(lua_State *L) {
  mz_observe_job(luaL_checkstring(L, 1), luaL_checkstring(L, 2), luaL_optnumber(L, 3, -1));
  return 0;
}

/* core.getpid(): this process's id (names per-process things: bus sockets,
   channel origins). */
static int l_getpid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

static int open_core(lua_State *L) {
  mz_host *h = mz_host_from(L);
  static const luaL_Reg fns[] = {{"sleep", l_sleep},
                                 {"now", l_now},
                                 {"monotonic", l_monotonic},
                                 {"run", l_run},
                                 {"wait", l_wait},
                                 {"wake", l_wake},
                                 {"log", l_log},
                                 {"current_task", l_current_task},
                                 {"suspend", l_suspend},
                                 {"wakeup", l_wakeup},
                                 {"spawn", l_spawn},
                                 {"mkdir", l_mkdir},
                                 {"write_private", l_write_private},
                                 {"listdir", l_listdir},
                                 {"embedded_app", l_embedded_app},
                                 {"getpid", l_getpid},
                                 {"job_metric", l_job_metric},
                                 {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  lua_pushstring(L, mz_mode_name(h->mode));
  lua_setfield(L, -2, "mode");
  lua_pushstring(L, MIZAN_VERSION);
  lua_setfield(L, -2, "version");
  /* built with AddressSanitizer: memory figures mean nothing then */
#if defined(__SANITIZE_ADDRESS__)
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "sanitized");
  return 1;
}

static int open_json(lua_State *L) {
  lua_newtable(L);
  mz_json_open(L);
  return 1;
}

extern int mz_testkit_open(lua_State *L);

/* mizan.testkit (fork, spawn, kill, raw sockets) is test code: a state
   gets it only from mz_host_enable_testkit. Anywhere else requiring it (or
   mizan.testing, which needs it) fails with this message. */
static int testkit_refused(lua_State *L) {
  return luaL_error(L, "mizan.testkit is test code: it loads only under `mizan test` and `mizan lua`");
}

void mz_host_enable_testkit(mz_host *h) {
  lua_State *L = h->L;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, mz_testkit_open);
  lua_setfield(L, -2, "mizan.testkit");
  lua_pop(L, 2);
}
#include "invalidate.h"
#include "crypto.h"
#include "cache.h"
extern int mz_redis_open(lua_State *L);
extern int mz_sqlite_open(lua_State *L);
extern int mz_pg_open(lua_State *L);
extern int mz_httpc_open(lua_State *L);
extern int mz_ws_open(lua_State *L);
extern int mz_bus_open(lua_State *L);
extern int mz_utf8_open(lua_State *L);
extern int mz_timer_open(lua_State *L);

/* ------------------------------------------------------------ lifecycle */

int mz_host_init(mz_host *h, uv_loop_t *loop, mz_mode mode) {
  memset(h, 0, sizeof *h);
  h->loop = loop;
  h->mode = mode;
  h->handler_ref = h->config_ref = h->ws_ref = h->strings_ref = LUA_NOREF;
  lua_State *L = luaL_newstate();
  if (!L) return -1;
  h->L = L;
  luaL_openlibs(L);

  lua_pushlightuserdata(L, (void *)&host_key);
  lua_pushlightuserdata(L, h);
  lua_rawset(L, LUA_REGISTRYINDEX);

  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, open_core);
  lua_setfield(L, -2, "mizan.core");
  lua_pushcfunction(L, open_json);
  lua_setfield(L, -2, "mizan.json");
  lua_pushcfunction(L, testkit_refused);
  lua_setfield(L, -2, "mizan.testkit");
  lua_pushcfunction(L, mz_invalidate_open);
  lua_setfield(L, -2, "mizan.invalidate");
  lua_pushcfunction(L, mz_crypto_open);
  lua_setfield(L, -2, "mizan.crypto");
  lua_pushcfunction(L, mz_cache_open);
  lua_setfield(L, -2, "mizan.cachecore");
  lua_pushcfunction(L, mz_redis_open);
  lua_setfield(L, -2, "mizan.redis");
  lua_pushcfunction(L, mz_sqlite_open);
  lua_setfield(L, -2, "mizan.sqlite");
  lua_pushcfunction(L, mz_pg_open);
  lua_setfield(L, -2, "mizan.pg");
  lua_pushcfunction(L, mz_httpc_open);
  lua_setfield(L, -2, "mizan.httpc");
  lua_pushcfunction(L, mz_ws_open);
  lua_setfield(L, -2, "mizan.ws");
  lua_pushcfunction(L, mz_bus_open);
  lua_setfield(L, -2, "mizan.bus");
  lua_pushcfunction(L, mz_utf8_open);
  lua_setfield(L, -2, "mizan.utf8core");
  lua_pushcfunction(L, mz_timer_open);
  lua_setfield(L, -2, "mizan.timer");
  lua_pop(L, 1);
  /* insert the embedded searcher right after preload */
  lua_getfield(L, -1, "loaders");
  int n = (int)lua_objlen(L, -1);
  for (int i = n; i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, embedded_searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);

  /* the C codec context, shared with the HTTP layer */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mizan.json");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "_ctx");
  h->json = lua_touserdata(L, -1);
  lua_pop(L, 2);
  return 0;
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = "(error object is not a string)";
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int mz_host_load(mz_host *h, const char *app_dir) {
  char *err = NULL;
  int r = mz_host_load_err(h, app_dir, &err);
  if (r) {
    fprintf(stderr, "mizan: the app failed to load:\n%s\n", err ? err : "out of memory");
    free(err);
  }
  return r;
}

int mz_host_load_err(mz_host *h, const char *app_dir, char **err) {
  lua_State *L = h->L;
  *err = NULL;
  lua_pushcfunction(L, traceback);
  int eh = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mizan.host");
  if (lua_pcall(L, 1, 1, eh)) goto fail;
  lua_getfield(L, -1, "load");
  lua_pushstring(L, app_dir);
  lua_pushstring(L, mz_mode_name(h->mode));
  if (lua_pcall(L, 2, 3, eh)) goto fail;
  h->ws_ref = lua_isfunction(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX) : (lua_pop(L, 1), LUA_NOREF);
  h->config_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  h->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, eh - 1);
  return 0;
fail:
  *err = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)");
  lua_settop(L, eh - 1);
  return -1;
}

/* ------------------------------------------------------------ resources */

void mz_host_own(mz_host *h, mz_resource *r) {
  r->host = h;
  r->prev = NULL;
  r->next = h->resources;
  if (h->resources) h->resources->prev = r;
  h->resources = r;
}

void mz_host_disown(mz_resource *r) {
  mz_host *h = r->host;
  if (!h) return;
  if (r->prev) r->prev->next = r->next;
  else h->resources = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->host = NULL;
}

int mz_host_call(mz_host *h, const char *fn, const char *arg, int nres) {
  lua_State *L = h->L;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mizan.host");
  if (lua_pcall(L, 1, 1, 0)) return -1;
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  if (arg) lua_pushstring(L, arg);
  else lua_pushnil(L);
  return lua_pcall(L, 1, nres, 0) ? -1 : 0;
}

void mz_host_retire(mz_host *h) {
  if (h->retired || !h->L) return;
  h->retired = 1;
  /* Lua first: its loops learn they must stop before their sleeps end (a
     state that never loaded an app has nothing to stop) */
  lua_State *L = h->L;
  int top = lua_gettop(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_getfield(L, -1, "mizan.host");
  int loaded = lua_istable(L, -1);
  lua_settop(L, top);
  if (loaded && mz_host_call(h, "retire", NULL, 0))
    fprintf(stderr, "mizan [error] retiring a state: %s\n", lua_tostring(L, -1));
  lua_settop(L, top);
  /* a hook may end its resource (and others): walk by taking the next first,
     and only what was there before this call */
  for (mz_resource *r = h->resources, *next; r; r = next) {
    next = r->next;
    if (r->retire) r->retire(r); /* hooks end only their own resource, never `next` */
  }
}

void mz_host_release(mz_host *h) {
  if (!h->retired) mz_host_retire(h);
  h->released = 1;
  while (h->resources) {
    mz_resource *r = h->resources;
    mz_host_disown(r);
    r->close(r);
  }
}

void mz_host_close(mz_host *h) {
  if (h->L) {
    mz_host_release(h);
    lua_close(h->L);
  }
  h->L = NULL;
  /* detached tasks that never ended went with the state: their memory now */
  while (h->detached) {
    mz_detached *d = h->detached;
    h->detached = d->next;
    free(d);
  }
  free(h->pool);
  h->pool = NULL;
}
