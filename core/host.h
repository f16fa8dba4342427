/*
 * mz_host: one lua_State per worker, and the tasks (coroutines) that run on it.
 *
 * The boundary between C and Lua is deliberately narrow:
 *   1. mz_host_load() runs the Lua side's `mizan.host.load(app_dir, mode)`,
 *      which loads the app and returns the request handler and the config.
 *   2. Every request is a task: a coroutine that runs the handler on one
 *      request table and returns (status, body, headers).
 *   3. Lua waits on the loop by calling a C function (mizan.sleep today; Redis
 *      and SQLite later) that arms a libuv handle and yields; the handle's
 *      callback resumes the task.
 *
 * Ownership: the caller owns the mz_task (usually inside a connection) and must
 * keep it alive until its done callback has run.
 */
#ifndef MZ_HOST_H
#define MZ_HOST_H

#include <lua.h>
#include <uv.h>

#include "json.h"

typedef struct mz_host mz_host;
typedef struct mz_task mz_task;

/**
 * Called once when the task's coroutine returns or fails. On success
 * (`ok` = 1) the coroutine's stack holds exactly the returned values; on
 * failure it holds the error value. The callback reads them, then calls
 * mz_task_release(). It must not resume the task.
 */
typedef void (*mz_task_done_cb)(mz_task *t, lua_State *co, int ok);

struct mz_task {
  mz_host *host;
  lua_State *co;
  int co_ref;
  mz_task_done_cb done;
  void *data;
};

typedef enum { MZ_MODE_PRODUCTION, MZ_MODE_DEVELOPMENT, MZ_MODE_TEST } mz_mode;

struct mz_host {
  uv_loop_t *loop;
  lua_State *L;
  mz_json_ctx *json;
  mz_mode mode;
  int handler_ref;  /* the request handler returned by mizan.host.load */
  int ws_ref;       /* the WebSocket event handler: (event, id, data) */
  int config_ref;   /* the effective config table */
  mz_task *current; /* the task being resumed right now, if any */
  int *pool;        /* refs of finished coroutines ready for reuse */
  int npool, cappool;
  int tasks;        /* tasks started and not yet done */
};

/**
 * Create the Lua state, open the standard libraries and the embedded
 * framework modules. Returns 0 or a negative error code.
 */
int mz_host_init(mz_host *h, uv_loop_t *loop, mz_mode mode);

/**
 * Load the app folder. On failure prints the error (with file:line and a
 * traceback) to stderr and returns -1.
 */
int mz_host_load(mz_host *h, const char *app_dir);

/**
 * As mz_host_load, but on failure hands the error text (with traceback) to
 * the caller in *err (malloc'd; the caller frees it) instead of printing it.
 */
int mz_host_load_err(mz_host *h, const char *app_dir, char **err);

/**
 * Make mizan.testkit (and so mizan.testing) loadable in this state. Only
 * `mizan test` and `mizan lua` call it: test code (fork, spawn, kill, raw
 * sockets) is never reachable from an app being served or built.
 */
void mz_host_enable_testkit(mz_host *h);

/** Close the Lua state. Tasks must all be done. */
void mz_host_close(mz_host *h);

/**
 * Take a coroutine for a new task. The caller pushes the function and its
 * arguments onto t->co and then calls mz_task_resume(t, nargs).
 */
lua_State *mz_task_acquire(mz_host *h, mz_task *t, mz_task_done_cb done, void *data);

/** Start or continue a task with `nargs` values on its stack. */
void mz_task_resume(mz_task *t, int nargs);

/** Give the coroutine back (to the pool when it can be reused). */
void mz_task_release(mz_task *t);

/** The config table C reads, in one call: mz_host_config (config.h). */

/** Hand the host the app archive a built executable carries (kept, not copied). */
void mz_host_set_embedded_app(const char *data, size_t len);

/** The host that owns `L`'s main state (stored in the registry). */
mz_host *mz_host_from(lua_State *L);

/** Name of a mode, as Lua sees it. */
const char *mz_mode_name(mz_mode m);

#endif
