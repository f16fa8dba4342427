/*
 * mizan.timer: the loop timers behind mizan.after, mizan.every and the job
 * poller (lua/mizan/timers.lua decides; this only arms and fires).
 *
 *   timer.start(delay, interval, fn) -> handle   seconds; interval 0: once
 *   handle:cancel()                              idempotent
 *   handle:active() -> boolean
 *
 * Each firing runs fn() in a task of its own (so it may yield: the database,
 * mizan.sleep, HTTP). A timer is a resource of its host (host.h, THE
 * OWNERSHIP RULE): the host's retirement ends it (a reload's new code arms
 * its own), and closing the host closes its handle, so no firing ever
 * reaches a retired or closed state. A task a firing started before the
 * retirement finishes on the old state; it counts in h->tasks.
 *
 * fn must catch its own errors (the Lua side wraps it with a traceback
 * handler); an error that still escapes is logged here, never raised.
 */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define HANDLE_MT "mizan.timer"

typedef struct timer_req timer_req;

/* What Lua holds: a box pointing at the timer while it can fire. */
typedef struct {
  timer_req *t; /* NULL once the timer ended */
} timer_box;

struct timer_req {
  mz_resource res;
  uv_timer_t timer;
  mz_host *host;
  int fn_ref;  /* the function each firing runs */
  int box_ref; /* the handle, kept alive while the timer can fire */
  timer_box *box;
};

static void timer_closed(uv_handle_t *hd) { free(hd->data); }

/* End the timer: no more firings, its refs dropped, its memory freed in the
   close callback. The state must still be open (close hooks run before
   lua_close). */
static void timer_end(timer_req *t) {
  lua_State *L = t->host->L;
  mz_host_disown(&t->res);
  uv_timer_stop(&t->timer);
  luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, t->box_ref);
  t->box->t = NULL;
  uv_close((uv_handle_t *)&t->timer, timer_closed);
}

static void timer_fired(uv_timer_t *tm) {
  timer_req *t = tm->data;
  mz_host *h = t->host;
  mz_task *task;
  lua_State *co = mz_task_detached(h, "a timer's task", &task);
  if (!co) {
    fprintf(stderr, "mizan [error] out of memory starting a timer's task\n");
    if (!uv_timer_get_repeat(&t->timer)) timer_end(t);
    return;
  }
  lua_rawgeti(co, LUA_REGISTRYINDEX, t->fn_ref);
  /* a one-shot timer ends before its task runs: the task may arm new ones */
  if (!uv_timer_get_repeat(&t->timer)) timer_end(t);
  mz_task_resume(task, 0);
}

/* retired: the new code (if any) arms its own timers; these stop */
static void timer_retire(mz_resource *r) { timer_end((timer_req *)r); }

static void timer_close(mz_resource *r) { timer_end((timer_req *)r); }

static uint64_t to_ms(lua_State *L, int idx, const char *what) {
  double s = luaL_checknumber(L, idx);
  if (!(s >= 0) || isinf(s) || s > 1e9) luaL_error(L, "mizan.timer: %s must be a finite number of seconds >= 0", what);
  return (uint64_t)(s * 1000.0 + 0.5);
}

/* timer.start(delay, interval, fn) -> handle */
static int l_start(lua_State *L) {
  uint64_t delay = to_ms(L, 1, "the delay");
  uint64_t interval = to_ms(L, 2, "the interval");
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (lua_gettop(L) > 3) lua_settop(L, 3);
  if (lua_tonumber(L, 2) > 0 && interval == 0) interval = 1; /* below a millisecond: as often as the loop can */
  mz_host *h = mz_host_from(L);
  if (!h || h->retired) return luaL_error(L, "mizan.timer: this state is retired (its code was replaced)");
  timer_box *box = lua_newuserdata(L, sizeof *box);
  box->t = NULL;
  luaL_getmetatable(L, HANDLE_MT);
  lua_setmetatable(L, -2);
  timer_req *t = malloc(sizeof *t);
  if (!t) return luaL_error(L, "out of memory");
  memset(t, 0, sizeof *t);
  t->host = h;
  t->box = box;
  box->t = t;
  lua_pushvalue(L, 3);
  t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  t->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->res.retire = timer_retire;
  t->res.close = timer_close;
  uv_timer_init(h->loop, &t->timer);
  t->timer.data = t;
  /* a timer never holds the process up by itself: the server's listener does */
  uv_unref((uv_handle_t *)&t->timer);
  uv_timer_start(&t->timer, timer_fired, delay, interval);
  mz_host_own(h, &t->res);
  return 1;
}

static int l_cancel(lua_State *L) {
  timer_box *box = luaL_checkudata(L, 1, HANDLE_MT);
  if (box->t) timer_end(box->t);
  return 0;
}

static int l_active(lua_State *L) {
  timer_box *box = luaL_checkudata(L, 1, HANDLE_MT);
  lua_pushboolean(L, box->t != NULL);
  return 1;
}

int mz_timer_open(lua_State *L) {
  if (luaL_newmetatable(L, HANDLE_MT)) {
    lua_newtable(L);
    lua_pushcfunction(L, l_cancel);
    lua_setfield(L, -2, "cancel");
    lua_pushcfunction(L, l_active);
    lua_setfield(L, -2, "active");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_start);
  lua_setfield(L, -2, "start");
  return 1;
}
