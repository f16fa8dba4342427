/*
 * mz_observe: access log and metrics of one process (see observe.c).
 */
#ifndef MZ_OBSERVE_H
#define MZ_OBSERVE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

typedef enum { MZ_LOG_OFF, MZ_LOG_TEXT, MZ_LOG_JSON } mz_observe_log;

typedef struct {
  const char *method;
  const char *path;
  size_t path_len;
  const char *name; /* the metrics label: a registered function or context name, or a fixed
                       word ("(unknown)", "page", "-"): never bytes of the URL */
  size_t name_len;
  int status;
  size_t bytes;
  uint64_t start_ns; /* uv_hrtime() when the request arrived; 0 if unknown */
  char cache;        /* 'h' hit, 'm' miss, 0 not cached */
  const char *ip;
} mz_observe_event;

/** Start the access log (to stdout, buffered) in the given format. */
void mz_observe_init(uv_loop_t *loop, mz_observe_log log);
/** Flush and stop. */
void mz_observe_close(void);
/** Record one response. */
void mz_observe_response(const mz_observe_event *e);
/** Count a reload that took effect. */
void mz_observe_reloaded(void);
/** Append the Prometheus text of this process's metrics. */
void mz_observe_metrics(mz_buf *out, size_t open_connections);
/** Append the WebSocket buffer gauges: input held in unfinished messages
    and output not yet sent, by all of this worker's sockets. */
void mz_observe_ws_metrics(mz_buf *out, size_t input_bytes, size_t output_bytes);

/** Count one finished job attempt: `name` a registered job, `outcome` one of
    lua/mizan/jobs.lua's fixed words; `seconds` < 0 when nothing ran. Copied. */
void mz_observe_job(const char *name, const char *outcome, double seconds);
/** Append the job counters and the job duration histogram. */
void mz_observe_job_metrics(mz_buf *out);

#endif
