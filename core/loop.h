/*
 * mz_loop: process and loop lifecycle for a serving process: signals and the
 * graceful drain.
 */
#ifndef MZ_LOOP_H
#define MZ_LOOP_H

#include "http.h"

/**
 * Run `srv` on its loop until SIGINT or SIGTERM. The first signal starts a
 * graceful drain (stop accepting, finish in-flight requests, close idle
 * connections); a second SIGINT exits at once. MZ_MASTER_RETIRE_SIGNAL
 * (a rolling reload replacing this worker) drains too, but leaves the
 * listening socket's backlog to the other workers (mz_http_server_retire).
 * Returns the process exit code:
 * 0 after a clean drain.
 */
int mz_loop_serve(mz_http_server *srv);

#endif
