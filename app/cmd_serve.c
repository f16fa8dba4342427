/*
 * mizan serve / mizan dev.
 *   serve: a master (core/master.c) and MIZAN_WORKERS workers sharing one
 *          listening socket; production mode; refuses to start without
 *          MIZAN_SECRET.
 *   dev:   one process, development mode.
 */
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd.h"
#include "http.h"
#include "loop.h"
#include "master.h"

void mz_redis_shutdown(void);

static void read_limits(mz_host *h, mz_http_limits *l) {
  mz_http_limits_default(l);
  l->max_head = (size_t)mz_host_config_limit(h, "max_head", (double)l->max_head);
  l->max_body = (size_t)mz_host_config_limit(h, "max_body", (double)l->max_body);
  l->header_timeout_ms = (uint64_t)(1000 * mz_host_config_limit(h, "header_timeout", l->header_timeout_ms / 1000.0));
  l->body_timeout_ms = (uint64_t)(1000 * mz_host_config_limit(h, "body_timeout", l->body_timeout_ms / 1000.0));
  l->keepalive_timeout_ms = (uint64_t)(1000 * mz_host_config_limit(h, "keepalive_timeout", l->keepalive_timeout_ms / 1000.0));
  l->send_timeout_ms = (uint64_t)(1000 * mz_host_config_limit(h, "send_timeout", l->send_timeout_ms / 1000.0));
  l->drain_timeout_ms = (uint64_t)(1000 * mz_host_config_limit(h, "drain_timeout", l->drain_timeout_ms / 1000.0));
}

typedef struct {
  const char *app;
  mz_mode mode;
  char listen[160];
  int workers;
  int secret_configured;
  unsigned drain_ms;
} serve_ctx;

/* Load the app on a private loop to check it and read its settings, then
   close everything: the master must not keep a loop or a Lua state across
   fork. What survives is deliberate: the cache's shared slot table. */
static int inspect(void *ctx) {
  serve_ctx *sc = ctx;
  uv_loop_t loop;
  uv_loop_init(&loop);
  mz_host host;
  int r = -1;
  if (mz_host_init(&host, &loop, sc->mode) == 0 && mz_host_load(&host, sc->app) == 0) {
    const char *listen = mz_host_config_string(&host, "listen");
    snprintf(sc->listen, sizeof sc->listen, "%s", listen ? listen : "127.0.0.1:8080");
    sc->workers = (int)mz_host_config_number(&host, "workers", 0);
    sc->secret_configured = mz_host_config_number(&host, "secret_configured", 0) != 0;
    mz_http_limits l;
    read_limits(&host, &l);
    sc->drain_ms = (unsigned)l.drain_timeout_ms;
    r = 0;
  }
  mz_redis_shutdown();
  mz_host_close(&host);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  return r;
}

static void announce(serve_ctx *sc, int port, const char *base, int workers) {
  char shown[160];
  snprintf(shown, sizeof shown, "%s", sc->listen);
  char *colon = strrchr(shown, ':');
  if (colon) *colon = 0;
  fprintf(stderr, "mizan: %s mode, serving %s on http://%s:%d%s", mz_mode_name(sc->mode), sc->app,
          shown[0] ? shown : "0.0.0.0", port, base);
  if (workers) fprintf(stderr, " with %d worker(s)", workers);
  fprintf(stderr, "\n");
}

/* Serve on `fd` (or on a socket of our own when fd < 0) until drained. */
static int serve_one(serve_ctx *sc, int fd, int ready_fd) {
  uv_loop_t *loop = uv_default_loop();
  mz_host host;
  if (mz_host_init(&host, loop, sc->mode)) {
    fprintf(stderr, "mizan: cannot create the Lua state\n");
    return 1;
  }
  if (mz_host_load(&host, sc->app)) return 3;
  mz_http_limits limits;
  read_limits(&host, &limits);
  const char *base = mz_host_config_string(&host, "base_path");
  if (!sc->listen[0]) {
    const char *listen = mz_host_config_string(&host, "listen");
    snprintf(sc->listen, sizeof sc->listen, "%s", listen ? listen : "127.0.0.1:8080");
  }
  mz_http_server srv;
  int r = mz_http_server_init(&srv, loop, &host, &limits, base ? base : "/api/mizan/");
  if (!r) r = fd >= 0 ? mz_http_server_open(&srv, fd) : mz_http_server_listen(&srv, sc->listen, 0);
  if (r) {
    fprintf(stderr, "mizan: cannot listen on %s: %s\n", sc->listen, uv_strerror(r));
    return 1;
  }
  if (ready_fd >= 0) {
    if (write(ready_fd, "1", 1) != 1) return 1;
    close(ready_fd);
  } else {
    announce(sc, srv.port, srv.base_path, 0);
  }
  int code = mz_loop_serve(&srv);
  /* everything is closed by now; free it so leak checkers see a clean exit */
  mz_host_close(&host);
  uv_loop_close(loop);
  return code;
}

static int worker_main(void *ctx, int fd, int ready_fd) { return serve_one(ctx, fd, ready_fd); }

int cmd_serve(int argc, char **argv, mz_mode mode) {
  serve_ctx sc = {.app = argc > 0 ? argv[0] : ".", .mode = mode};
  if (mode != MZ_MODE_PRODUCTION) return serve_one(&sc, -1, -1);

  if (inspect(&sc)) return 1;
  if (!sc.secret_configured) {
    fprintf(stderr,
            "mizan: serve needs MIZAN_SECRET: sessions and cache keys are signed with it, and every\n"
            "worker and instance must share it. Set it once, for example:\n"
            "  export MIZAN_SECRET=$(openssl rand -hex 32)\n");
    return 1;
  }
  int workers = sc.workers > 0 ? sc.workers : (int)uv_available_parallelism();
  int fd;
  int r = mz_http_bind(sc.listen, 0, &fd);
  if (r) {
    fprintf(stderr, "mizan: cannot listen on %s: %s\n", sc.listen, uv_strerror(r));
    return 1;
  }
  /* the socket listens already: connections wait in its backlog until a worker accepts */
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int port = 0;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
  announce(&sc, port, "/api/mizan/", workers);
  mz_master_opts o = {.workers = workers, .listen_fd = fd, .drain_ms = sc.drain_ms, .ctx = &sc,
                      .worker = worker_main, .validate = inspect};
  return mz_master_run(&o);
}
