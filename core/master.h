/*
 * mz_master: the process supervisor of `mizan serve`.
 *
 * The master binds the listening socket once and forks the workers, which
 * inherit it; it runs no event loop and no Lua. It respawns a worker that
 * dies (with backoff), drains them all on SIGTERM/SIGINT and exits 0, and on
 * SIGHUP replaces them one at a time: a new worker is started and ready
 * before the old one is retired (MZ_MASTER_RETIRE_SIGNAL), so no request
 * is dropped.
 *
 * All workers accept on one inherited socket rather than on SO_REUSEPORT
 * sockets of their own: when a worker closes an SO_REUSEPORT socket, the
 * connections still queued on it are reset, which a rolling restart must
 * not do.
 */
#ifndef MZ_MASTER_H
#define MZ_MASTER_H

#include <signal.h>

/* Sent to a worker that a reload replaces. Not SIGTERM: a worker told to
   stop with the whole service takes the listening socket's backlog before
   closing it (else those connections are reset), but a retiring one must
   leave that queue to the workers running the new code. */
#define MZ_MASTER_RETIRE_SIGNAL SIGUSR2

typedef struct mz_master_opts {
  int workers;
  int listen_fd;     /* the master's copy is closed on SIGTERM/SIGINT (see master.c) */
  unsigned drain_ms; /* how long workers may take to drain before SIGKILL */
  void *ctx;
  /** Run in a forked child: serve on `listen_fd`, write one byte to `ready_fd`
      once listening. Returns the child's exit code. */
  int (*worker)(void *ctx, int listen_fd, int ready_fd);
  /** Check that the app (as it is on disk now) loads; 0 if it does. */
  int (*validate)(void *ctx);
  /** Called once, when the first workers are all ready. */
  void (*ready)(void *ctx, int workers);
} mz_master_opts;

/** Hold the master's signals (TERM, INT, HUP, CHLD) from now on, so that one
    arriving before mz_master_run is queued rather than fatal. */
void mz_master_block(void);

/** Supervise until told to stop. Returns the exit code (0 after a drain). */
int mz_master_run(const mz_master_opts *o);

#endif
