/*
 * mz_observe: the access log and the metrics of one process.
 *
 * Every response passes through mz_observe_response: it counts the request
 * by function and status, puts its duration in a histogram, and appends an
 * access-log line to a buffer that is flushed every 100 ms or when it fills
 * (a write per request would cost more than the request). The log is text in
 * dev, JSON lines in serve, or off.
 *
 * mz_observe_metrics renders the Prometheus text format.
 */
#include "observe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "json.h"

#define FLUSH_BYTES 16384

static const double BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define NBUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

/* One series per (label, status). Labels are registered names or fixed
   words (never bytes of a URL: see http_conn.h), so the table is as large as
   the app, and it grows: no real series is ever folded away. */
typedef struct {
  char *name;
  size_t name_len;
  int status;
  uint64_t count;
} series;

static struct {
  mz_observe_log log;
  mz_buf out;
  uv_timer_t flush;
  int timer_on;
  series *s;
  int ns, cap;
  uint64_t other; /* requests no series could be made for (out of memory) */
  uint64_t bucket[NBUCKETS + 1];
  double sum;
  uint64_t count;
  uint64_t reloads;
} obs;

/* Jobs (lua/mizan/jobs.lua): one series per (job name, outcome). Lua passes
   only the names of registered jobs and its fixed outcome words, so the set
   is bounded by the app. */
#define JOB_BUCKETS_N 10
static const double JOB_BUCKETS[JOB_BUCKETS_N] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300};
typedef struct {
  char *name, *outcome;
  uint64_t count;
} job_series;
static struct {
  job_series *s;
  int ns, cap;
  uint64_t bucket[JOB_BUCKETS_N + 1];
  double sum;
  uint64_t count;
} jobs;

static void flush_now(void) {
  size_t off = 0;
  while (off < obs.out.len) {
    ssize_t w = write(1, obs.out.data + off, obs.out.len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  obs.out.len = 0;
}

static void flush_fired(uv_timer_t *t) {
  (void)t;
  flush_now();
}

void mz_observe_init(uv_loop_t *loop, mz_observe_log log) {
  obs.log = log;
  if (log != MZ_LOG_OFF && !obs.timer_on) {
    uv_timer_init(loop, &obs.flush);
    uv_timer_start(&obs.flush, flush_fired, 100, 100);
    uv_unref((uv_handle_t *)&obs.flush);
    obs.timer_on = 1;
  }
}

void mz_observe_close(void) {
  flush_now();
  mz_buf_free(&obs.out);
  if (obs.timer_on) {
    uv_close((uv_handle_t *)&obs.flush, NULL);
    obs.timer_on = 0;
  }
}

void mz_observe_reloaded(void) { obs.reloads++; }

static series *series_add(const char *name, size_t name_len, int status) {
  if (obs.ns == obs.cap) {
    int cap = obs.cap ? obs.cap * 2 : 64;
    series *grown = realloc(obs.s, (size_t)cap * sizeof *grown);
    if (!grown) return NULL;
    obs.s = grown;
    obs.cap = cap;
  }
  char *copy = malloc(name_len + 1);
  if (!copy) return NULL;
  memcpy(copy, name, name_len);
  copy[name_len] = 0;
  series *hit = &obs.s[obs.ns++];
  *hit = (series){.name = copy, .name_len = name_len, .status = status};
  return hit;
}

static void count(const char *name, size_t name_len, int status, double seconds) {
  series *hit = NULL;
  for (int i = 0; i < obs.ns; i++) {
    if (obs.s[i].status == status && obs.s[i].name_len == name_len && memcmp(obs.s[i].name, name, name_len) == 0) {
      hit = &obs.s[i];
      break;
    }
  }
  if (!hit) hit = series_add(name, name_len, status);
  if (hit) hit->count++;
  else obs.other++;
  size_t b = 0;
  while (b < NBUCKETS && seconds > BUCKETS[b]) b++;
  obs.bucket[b]++;
  obs.sum += seconds;
  obs.count++;
}

/* The path as a JSON string member; a path that is not UTF-8 is shown with
   its bytes above 0x7f as %XX, as they came on the wire. */
static void put_path(mz_json_writer *w, const char *s, size_t n) {
  mz_buf tmp;
  mz_buf_init(&tmp);
  mz_buf probe;
  mz_buf_init(&probe);
  int utf8 = mz_json_put_string(&probe, s, n) == 0;
  mz_buf_free(&probe);
  if (!utf8) {
    for (size_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c >= 0x80) mz_buf_printf(&tmp, "%%%02X", c);
      else mz_buf_putc(&tmp, (char)c);
    }
  }
  mz_json_w_string(w, "path", utf8 ? s : (tmp.data ? tmp.data : ""), utf8 ? n : tmp.len);
  mz_buf_free(&tmp);
}

void mz_observe_response(const mz_observe_event *e) {
  double seconds = e->start_ns ? (double)(uv_hrtime() - e->start_ns) / 1e9 : 0;
  count(e->name ? e->name : "-", e->name ? e->name_len : 1, e->status, seconds);
  if (obs.log == MZ_LOG_OFF) return;
  const char *cache = e->cache == 'h' ? "hit" : e->cache == 'm' ? "miss" : "-";
  if (obs.log == MZ_LOG_TEXT) {
    mz_buf_printf(&obs.out, "%s %.*s %d %zuB %.2fms cache=%s\n", e->method, (int)e->path_len, e->path, e->status,
                  e->bytes, seconds * 1000, cache);
  } else {
    time_t now = time(NULL);
    struct tm tm;
    char ts[32];
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    mz_json_writer w;
    mz_json_w_begin(&w, &obs.out);
    mz_json_w_string(&w, "time", ts, strlen(ts));
    mz_json_w_string(&w, "method", e->method, strlen(e->method));
    put_path(&w, e->path, e->path_len);
    mz_json_w_number(&w, "status", e->status);
    mz_json_w_number(&w, "bytes", (double)e->bytes);
    mz_json_w_number(&w, "ms", floor(seconds * 1e6 + 0.5) / 1000);
    mz_json_w_string(&w, "cache", cache, strlen(cache));
    mz_json_w_string(&w, "ip", e->ip, strlen(e->ip));
    if (mz_json_w_end(&w) == 0) mz_buf_putc(&obs.out, '\n');
  }
  if (obs.out.len > FLUSH_BYTES) flush_now();
}

/* One Prometheus histogram: its n bounds' cumulative counts (buckets has
   n + 1 slots, the last above every bound), +Inf, the sum and the count. */
static void put_histogram(mz_buf *out, const char *name, const double *bounds, size_t n, const uint64_t *buckets,
                          double sum, uint64_t count) {
  uint64_t cum = 0;
  for (size_t b = 0; b < n; b++) {
    cum += buckets[b];
    mz_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[b], (unsigned long long)cum);
  }
  cum += buckets[n];
  mz_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
  mz_buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, sum, name, (unsigned long long)count);
}

void mz_observe_metrics(mz_buf *out, size_t open_connections) {
  mz_buf_puts(out, "# HELP mizan_requests_total Requests answered, by function (or route) and status.\n"
                   "# TYPE mizan_requests_total counter\n");
  for (int i = 0; i < obs.ns; i++)
    mz_buf_printf(out, "mizan_requests_total{function=\"%s\",status=\"%d\"} %llu\n", obs.s[i].name, obs.s[i].status,
                  (unsigned long long)obs.s[i].count);
  if (obs.other) mz_buf_printf(out, "mizan_requests_total{function=\"(other)\",status=\"\"} %llu\n",
                               (unsigned long long)obs.other);
  mz_buf_puts(out, "# HELP mizan_request_duration_seconds Time from the request to its response.\n"
                   "# TYPE mizan_request_duration_seconds histogram\n");
  put_histogram(out, "mizan_request_duration_seconds", BUCKETS, NBUCKETS, obs.bucket, obs.sum, obs.count);
  mz_cache *c = mz_cache_get();
  if (c) {
    mz_cache_stats *s = mz_cache_stats_of(c);
    mz_buf_printf(out,
                  "# HELP mizan_cache_hits_total Cache hits (answered by C or by Lua).\n# TYPE mizan_cache_hits_total counter\n"
                  "mizan_cache_hits_total %llu\n"
                  "# HELP mizan_cache_misses_total Cache misses.\n# TYPE mizan_cache_misses_total counter\n"
                  "mizan_cache_misses_total %llu\n"
                  "# HELP mizan_cache_purges_total Purges (one per mutation that invalidated something).\n"
                  "# TYPE mizan_cache_purges_total counter\nmizan_cache_purges_total %llu\n"
                  "# HELP mizan_cache_bytes Bytes held by this process's cache entries.\n# TYPE mizan_cache_bytes gauge\n"
                  "mizan_cache_bytes %llu\n",
                  (unsigned long long)(s->hits + s->fast_hits), (unsigned long long)s->misses,
                  (unsigned long long)s->purges, (unsigned long long)s->bytes);
  }
  mz_buf_printf(out,
                "# HELP mizan_open_connections Client connections open now.\n# TYPE mizan_open_connections gauge\n"
                "mizan_open_connections %zu\n"
                "# HELP mizan_reloads_total Code reloads that took effect.\n# TYPE mizan_reloads_total counter\n"
                "mizan_reloads_total %llu\n",
                open_connections, (unsigned long long)obs.reloads);
}

void mz_observe_job(const char *name, const char *outcome, double seconds) {
  job_series *hit = NULL;
  for (int i = 0; i < jobs.ns && !hit; i++)
    if (!strcmp(jobs.s[i].name, name) && !strcmp(jobs.s[i].outcome, outcome)) hit = &jobs.s[i];
  if (!hit && jobs.ns == jobs.cap) {
    int cap = jobs.cap ? jobs.cap * 2 : 16;
    job_series *grown = realloc(jobs.s, (size_t)cap * sizeof *grown);
    if (grown) {
      jobs.s = grown;
      jobs.cap = cap;
    }
  }
  if (!hit && jobs.ns < jobs.cap) {
    char *n = strdup(name), *o = strdup(outcome);
    if (n && o) {
      hit = &jobs.s[jobs.ns++];
      *hit = (job_series){.name = n, .outcome = o};
    } else {
      free(n);
      free(o);
    }
  }
  if (hit) hit->count++;
  if (seconds < 0 || seconds != seconds) return; /* an outcome with no run (dead after a lost lease) */
  size_t b = 0;
  while (b < JOB_BUCKETS_N && seconds > JOB_BUCKETS[b]) b++;
  jobs.bucket[b]++;
  jobs.sum += seconds;
  jobs.count++;
}

void mz_observe_job_metrics(mz_buf *out) {
  mz_buf_puts(out, "# HELP mizan_jobs_total Job attempts this process finished, by job and outcome.\n"
                   "# TYPE mizan_jobs_total counter\n");
  for (int i = 0; i < jobs.ns; i++)
    mz_buf_printf(out, "mizan_jobs_total{job=\"%s\",outcome=\"%s\"} %llu\n", jobs.s[i].name, jobs.s[i].outcome,
                  (unsigned long long)jobs.s[i].count);
  mz_buf_puts(out, "# HELP mizan_job_duration_seconds How long job attempts ran.\n"
                   "# TYPE mizan_job_duration_seconds histogram\n");
  put_histogram(out, "mizan_job_duration_seconds", JOB_BUCKETS, JOB_BUCKETS_N, jobs.bucket, jobs.sum, jobs.count);
}

void mz_observe_ws_metrics(mz_buf *out, size_t input_bytes, size_t output_bytes) {
  mz_buf_printf(out,
                "# HELP mizan_websocket_input_bytes Input the WebSockets hold in unfinished messages.\n"
                "# TYPE mizan_websocket_input_bytes gauge\nmizan_websocket_input_bytes %zu\n"
                "# HELP mizan_websocket_output_bytes Output the WebSockets hold unsent.\n"
                "# TYPE mizan_websocket_output_bytes gauge\nmizan_websocket_output_bytes %zu\n",
                input_bytes, output_bytes);
}
