/*
 * mz_http: the HTTP/1.1 server over libuv and llhttp.
 *
 * One server per worker loop. It accepts connections, parses requests
 * strictly (RFC 9112, stricter than llhttp's defaults), enforces the limits
 * below, hands each request to the host as a task, and writes responses in
 * request order. Responses that are ready together leave in one write.
 *
 * Ownership: the caller owns the mz_http_server and must keep it alive until
 * the `closed` callback of mz_http_server_drain() has run (or the loop ends).
 */
#ifndef MZ_HTTP_H
#define MZ_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "host.h"

typedef struct mz_http_limits {
  size_t max_head;            /* request line + headers; 431, or 414 for the line */
  size_t max_body;            /* 413 */
  uint64_t header_timeout_ms; /* whole head, from its first byte: 408 and close */
  uint64_t body_timeout_ms;   /* whole body, from the end of the head: 408 and close */
  uint64_t keepalive_timeout_ms; /* idle between requests: close */
  uint64_t send_timeout_ms;   /* a response the client will not read: close */
  uint64_t drain_timeout_ms;  /* graceful shutdown deadline */
  size_t max_output;          /* unsent bytes before the connection stops reading */
  size_t ws_buffer;           /* input all of a worker's WebSockets may hold in
                                 unfinished messages: past it a socket closes with 1013;
                                 and, apart, the output they may hold unsent: past it a
                                 socket that is behind closes with 1008 */
} mz_http_limits;

typedef struct mz_http_conn mz_http_conn;
typedef struct mz_http_server mz_http_server;

struct mz_http_server {
  uv_loop_t *loop;
  mz_host *host;
  mz_http_limits limits;
  uv_poll_t listener; /* on listen_fd: we accept ourselves (see on_listener) */
  int listen_fd;      /* -1 until mz_http_server_open */
  uv_timer_t accept_timer; /* resumes accepting after running out of descriptors */
  int listening;
  int port;
  char base_path[128];
  size_t base_len;
  char session_cookie[72]; /* "<session cookie name>=" (mz_config); a request
                              carrying it is cached under the "shared" scope */
  mz_http_conn *conns; /* every open connection, for draining */
  size_t nconns;
  size_t ws_held; /* input the WebSockets hold against limits.ws_buffer (ws.c) */
  size_t ws_out_held; /* output they hold unsent, against the same figure (ws.c) */
  uint64_t ws_busy_logged_at; /* loop time of the last 1013 "budget is full" line */
  uint64_t ws_busy_closes;    /* 1013 closes since then */
  int draining;
  uint64_t accept_logged_at; /* loop time of the last "out of descriptors" line */
  uint64_t accept_errors;    /* failed accepts since then */
  int open_handles; /* server timers still closing after a drain */
  uint64_t min_timeout_ms; /* the shortest phase timeout: connection timers never wait longer */
  uv_timer_t drain_timer;
  void (*closed)(mz_http_server *);
  uv_timer_t date_timer;
  char date[40]; /* "Date: ..." value, refreshed every second */
  mz_buf scratch; /* response bodies are encoded here, then copied out */
  mz_buf read_buf; /* every connection's reads land here first (see on_alloc) */
  char *overlay;  /* mizan dev: an HTML page about a failed reload, for browsers */
  char static_root[4096]; /* static_dir, resolved; empty when none */
  mz_buf static_buf;
  int metrics;    /* serve GET <base>metrics */
  int observe_only; /* a listener for health and metrics only */
  struct mz_http_server *observe_peer; /* that listener, drained with this server */
};

/**
 * The limits that are no option (max_output); the rest are zero. The options
 * and their defaults are lua/mizan/options.lua, read by mz_host_config.
 */
void mz_http_limits_default(mz_http_limits *l);

/**
 * Prepare a server on `loop` that dispatches to `host`. `base_path` is the API
 * prefix, e.g. "/api/mizan/". Returns 0 or a negative libuv error code.
 */
int mz_http_server_init(mz_http_server *s, uv_loop_t *loop, mz_host *host,
                        const mz_http_limits *limits, const char *base_path);

/**
 * Listen on `addr` ("127.0.0.1:8080", "[::1]:0", ":8080"). With `reuseport`,
 * SO_REUSEPORT lets the workers of one instance share the port; without it a
 * port already in use is an error (UV_EADDRINUSE), so two instances never
 * share one by accident. Returns 0 or a negative error code; s->port holds
 * the bound port afterwards.
 */
int mz_http_server_listen(mz_http_server *s, const char *addr, int reuseport);

/**
 * Make a listening socket on `addr` without a server: a master binds once and
 * its workers inherit the descriptor. 0 with *fd_out set, or a negative error.
 */
int mz_http_bind(const char *addr, int reuseport, int *fd_out);

/**
 * mizan dev: show `error` (a failed reload) to browsers asking for a page,
 * as an HTML overlay, until called again with NULL.
 */
void mz_http_server_set_overlay(mz_http_server *s, const char *error);

/** Serve files from `dir` for paths outside the API (NULL: none). 0 or -errno. */
int mz_http_server_set_static(mz_http_server *s, const char *dir);

/** Serve on a listening socket made by mz_http_bind (the server owns it now). */
int mz_http_server_open(mz_http_server *s, int fd);

/**
 * Graceful drain: stop accepting, close idle connections, let in-flight
 * requests finish (their connections then close), and force-close whatever
 * is left after limits.drain_timeout_ms. `closed` runs once everything,
 * the server's own handles included, is closed.
 */
void mz_http_server_drain(mz_http_server *s, void (*closed)(mz_http_server *));

/**
 * Drain as one of several holders of the listening socket (a worker retired
 * by a rolling reload): stop accepting without taking the kernel's backlog,
 * which the other holders serve, and answer the connections already taken,
 * waiting for the first request of a fresh one (up to the header timeout,
 * within limits.drain_timeout_ms). `closed` as for mz_http_server_drain.
 */
void mz_http_server_retire(mz_http_server *s, void (*closed)(mz_http_server *));

#endif
