/*
 * mz_host: one lua_State per worker, and the tasks (coroutines) that run on it.
 *
 * The boundary between C and Lua is deliberately narrow:
 *   1. mz_host_load() runs the Lua side's `mizan.host.load(app_dir, mode)`,
 *      which loads the app and returns the request handler and the config.
 *   2. Every request is a task: a coroutine that runs the handler on one
 *      request table and returns one response record (core/http_lua.c).
 *   3. Lua waits on the loop by calling a C function (mizan.sleep, Redis)
 *      that arms a libuv handle and yields; the handle's callback resumes
 *      the task.
 *   4. mz_host_call() runs one function of `mizan.host` (retire, set_broken,
 *      check_storage) outside any task.
 *
 * Ownership: the caller owns the mz_task (usually inside a connection) and must
 * keep it alive until its done callback has run.
 *
 * THE OWNERSHIP RULE (read this before adding anything that calls into Lua)
 *
 *   Every C resource that can call into Lua (start a task, resume one, read a
 *   registry ref) belongs to exactly one host: the one whose lua_State its
 *   callbacks use. It is bound when Lua creates it (mz_host_from(L)), it links
 *   itself into that host with mz_host_own(), and it never calls into another
 *   host. There is no process-wide table of such resources: a Redis client,
 *   the workers' bus, the WebSocket registry (id -> socket), a sleep or wakeup
 *   timer, a pending close event; later a database connection pool, an
 *   outbound HTTP client, a job timer. Each one embeds an mz_resource.
 *
 *   A host lives in three stages, and its resources follow it:
 *     live     it takes new work (requests, messages, events);
 *     retired  mz_host_retire(): a newer host took over (hot reload) or the
 *              process is draining. First Lua's `mizan.host.retire()` runs (its
 *              background loops stop), then every resource's retire hook, newest
 *              first: sources of new work stop (the Redis subscriber and the bus
 *              close, WebSockets are closed with 1012 "service restart" so the
 *              client reconnects to the new host, background sleeps wake at
 *              once). What was in flight finishes on this host: its requests'
 *              Redis commands still work;
 *     closed   mz_host_close(), once no task of the host is left (h->tasks ==
 *              0): every resource's close hook runs, newest first, then
 *              lua_close(). A close hook stops and closes its libuv handles and
 *              frees its memory in their close callbacks; from the moment it
 *              returns, none of its callbacks can reach the state.
 *   mz_host_release() runs the close hooks alone (the state stays open), for
 *   a draining process whose loop must end (core/loop.c: after the retire,
 *   once the last task is done, or after 2 s at most).
 *
 *   A wait that belongs to one task (a Redis reply, a SQLite or scrypt job
 *   on the thread pool) needs no hook of its own: the task counts in
 *   h->tasks, so the host is not closed under it, and a Redis client's close
 *   fails its pending commands (their tasks resume with an error) while the
 *   state is still open. Only what can start or resume work with no task
 *   counted (a subscription, a datagram, a socket, a timer) is a resource.
 *
 *   So a resource needs: a retire hook if it can start new work on its own,
 *   a close hook always, and mz_host_disown() when it ends by itself first.
 *   The memory that a libuv handle needs until its close callback is the
 *   resource's own, never the host's or the lua_State's. Where the owners
 *   are: redis.c (client), bus.c (bus), ws.c (registry, close_event), pg.c
 *   (connection),
 *   host.c (sleep_req, wake_req, wait_req), http_client.c (the outbound HTTP
 *   client), timer.c (timer_req: mizan.after/every and the job poller; the
 *   retirement ends them); mizan dev's retire/close: app/cmd_serve.c. A
 *   detached task (core.spawn, a timer's firing) is no resource but its
 *   memory is the host's too (mz_task_detached).
 */
#ifndef MZ_HOST_H
#define MZ_HOST_H

#include <lua.h>
#include <uv.h>

#include "json.h"

typedef struct mz_host mz_host;
typedef struct mz_task mz_task;
typedef struct mz_resource mz_resource;

/**
 * A C resource bound to one host (see THE OWNERSHIP RULE above). The owner
 * embeds it, fills the hooks, and links it with mz_host_own(). The host only
 * walks its list; it never frees a resource.
 */
struct mz_resource {
  mz_resource *prev, *next; /* the host's list, newest first */
  mz_host *host;            /* NULL once closed or disowned */
  /** Optional: the host retired: stop starting new work on it. */
  void (*retire)(mz_resource *r);
  /** Required: stop every callback into the host and release (it is unlinked first). */
  void (*close)(mz_resource *r);
};

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
  int strings_ref;  /* the strings every request table carries (core/http_lua.c) */
  mz_task *current; /* the task being resumed right now, if any */
  int *pool;        /* refs of finished coroutines ready for reuse */
  int npool, cappool;
  int tasks;        /* tasks started and not yet done */
  int retired;      /* mz_host_retire() ran: no new work */
  int released;     /* mz_host_release() ran: no new resources either */
  struct mz_detached *detached; /* detached tasks not done yet (mz_task_detached) */
  mz_resource *resources; /* what this host owns, newest first */
  struct mz_ws_registry *ws_registry; /* ws.c's id -> socket table, made at the first socket */
};

/** Link `r` into `h` (newest first); r->host is set. */
void mz_host_own(mz_host *h, mz_resource *r);

/** Unlink `r` from its host (a resource that ended on its own); no-op when not linked. */
void mz_host_disown(mz_resource *r);

/**
 * The host takes no new work: run Lua's `mizan.host.retire()`, then every
 * resource's retire hook, newest first. Idempotent.
 */
void mz_host_retire(mz_host *h);

/**
 * Close every resource the host owns (newest first), leaving the state open.
 * Retires first if needed. After it, no C callback can call into the state.
 */
void mz_host_release(mz_host *h);

/**
 * Call `mizan.host.<fn>(arg)` (arg may be NULL) in protected mode outside any
 * task, keeping `nres` results on the stack (the caller pops them). Returns 0,
 * or -1 with the error message on the stack instead.
 */
int mz_host_call(mz_host *h, const char *fn, const char *arg, int nres);

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

/**
 * Release every resource, then close the Lua state. Safe at any time for
 * the resources (none can call in afterwards); the tasks still suspended
 * are dropped with the state, so in a live server call it only once
 * h->tasks == 0 (mizan dev's reaper does).
 */
void mz_host_close(mz_host *h);

/**
 * Take a coroutine for a new task. The caller pushes the function and its
 * arguments onto t->co and then calls mz_task_resume(t, nargs).
 */
lua_State *mz_task_acquire(mz_host *h, mz_task *t, mz_task_done_cb done, void *data);

/** Start or continue a task with `nargs` values on its stack. */
void mz_task_resume(mz_task *t, int nargs);

/**
 * A task of its own, outside any request (core.spawn, a timer's firing).
 * Its memory is the host's: freed when the task ends (an error is logged
 * under `what`, a static string), or by mz_host_close when it never does (a
 * process stopping while it waits). The caller pushes the function and its
 * arguments onto the returned coroutine and calls mz_task_resume(*t, nargs).
 * NULL when out of memory.
 */
lua_State *mz_task_detached(mz_host *h, const char *what, mz_task **t);

/** Give the coroutine back (to the pool when it can be reused). */
void mz_task_release(mz_task *t);

/** Hand the host the app archive a built executable carries (kept, not copied). */
void mz_host_set_embedded_app(const char *data, size_t len);

/** The host that owns `L`'s main state (stored in the registry). */
mz_host *mz_host_from(lua_State *L);

/** Name of a mode, as Lua sees it. */
const char *mz_mode_name(mz_mode m);

#endif
