/*
 * mizan serve / mizan dev.
 *   serve: a master (core/master.c) and MIZAN_WORKERS workers sharing one
 *          listening socket; production mode; refuses to start without
 *          MIZAN_SECRET.
 *   dev:   one process, development mode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "http.h"
#include "loop.h"
#include "master.h"
#include "observe.h"
#include "watch.h"

/* The app's settings into *cfg (core/config.h); says why not and returns -1
   when Lua and C disagree on them. */
static int read_config(mz_host *h, mz_config *cfg) {
  char err[256];
  if (mz_host_config(h, cfg, err, sizeof err) == 0) return 0;
  fprintf(stderr, "mizan: %s\n", err);
  return -1;
}

/* The error at the top of L's stack as text: an error object need not be
   a string (error({}) from app code), and printf must never see NULL. */
static const char *error_text(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  return msg ? msg : "(error object is not a string)";
}

/* Ask Lua (mizan.host.check_storage) whether the database can serve; print
   its reason and return -1 when it cannot. */
static int check_storage(mz_host *h) {
  lua_State *L = h->L;
  int r = -1;
  if (mz_host_call(h, "check_storage", NULL, 2) == 0) {
    if (lua_toboolean(L, -2)) r = 0;
    else fprintf(stderr, "mizan: refusing to start: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  } else {
    fprintf(stderr, "mizan: refusing to start: %s\n", error_text(L));
  }
  lua_settop(L, 0);
  return r;
}

typedef struct {
  const char *app;
  mz_mode mode;
  char listen[256];
  char base_path[128];
  int workers;
  int port;
  int secret_configured;
  unsigned drain_ms;
} serve_ctx;

/* Load the app on a private loop to check it and read its settings, then
   close everything: the master must not keep a loop or a Lua state across
   fork. What survives is deliberate: the cache's shared slot table. */
static int inspect(void *ctx) {
  serve_ctx *sc = ctx;
  /* the master is no member of the workers' bus: hide it from this load */
  char *bus = getenv("MIZAN_BUS_DIR") ? strdup(getenv("MIZAN_BUS_DIR")) : NULL;
  unsetenv("MIZAN_BUS_DIR");
  uv_loop_t loop;
  uv_loop_init(&loop);
  mz_host host;
  int r = -1;
  mz_config cfg;
  if (mz_host_init(&host, &loop, sc->mode) == 0 && mz_host_load(&host, sc->app) == 0 && check_storage(&host) == 0 &&
      read_config(&host, &cfg) == 0) {
    snprintf(sc->listen, sizeof sc->listen, "%s", cfg.listen);
    snprintf(sc->base_path, sizeof sc->base_path, "%s", cfg.base_path);
    sc->workers = cfg.workers;
    sc->secret_configured = cfg.secret_configured;
    sc->drain_ms = (unsigned)cfg.limits.drain_timeout_ms;
    r = 0;
  }
  mz_host_close(&host); /* its resources (Redis clients...) close with it */
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  if (bus) {
    setenv("MIZAN_BUS_DIR", bus, 1);
    free(bus);
  }
  return r;
}

static void announce(serve_ctx *sc, int port, const char *base, int workers) {
  char shown[256];
  snprintf(shown, sizeof shown, "%s", sc->listen);
  char *colon = strrchr(shown, ':');
  if (colon) *colon = 0;
  fprintf(stderr, "mizan: %s mode, serving %s on http://%s:%d%s", mz_mode_name(sc->mode), sc->app,
          shown[0] ? shown : "0.0.0.0", port, base);
  if (workers) fprintf(stderr, " with %d worker(s)", workers);
  fprintf(stderr, "\n");
}

/* The state serves now: its timers (mizan.after/every made while app.lua
   loaded) start, and its job poller (mizan.host.start). */
static void start_host(mz_host *h) {
  if (mz_host_call(h, "start", NULL, 0)) fprintf(stderr, "mizan [error] starting timers and jobs: %s\n", lua_tostring(h->L, -1));
  lua_settop(h->L, 0);
}

/* ------------------------------------------------------------ hot reload (mizan dev) */

typedef struct {
  serve_ctx *sc;
  mz_http_server *srv;
  mz_host *retiring[64]; /* old states still finishing their requests */
  int nretiring;
  uv_timer_t reaper;
} reloader;

/* Close old states once their last task is done (host.h: a retired host
   closes when h->tasks == 0). While the server drains, their resources go
   once no connection is left (their requests in flight finish first, as on
   the current host), so that none keeps the loop alive. */
static void reap(uv_timer_t *t) {
  reloader *rl = t->data;
  for (int i = 0; i < rl->nretiring;) {
    mz_host *h = rl->retiring[i];
    if (h->tasks == 0) {
      mz_host_close(h);
      free(h);
      rl->retiring[i] = rl->retiring[--rl->nretiring];
    } else {
      if (rl->srv->draining && rl->srv->nconns == 0) mz_host_release(h);
      i++;
    }
  }
}

/* mizan dev, after a save that loaded: apply the migrations the saved code
   brings (mizan.host.migrate). It runs on a private loop in a state of its
   own, because applying turns a loop until the statements finish, and the
   serving loop must never be turned from inside one of its callbacks.
   Returns 0, or -1 with *err (malloc'd, the caller frees it) saying why. */
static int migrate_saved(serve_ctx *sc, char **err) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  mz_host host;
  int r = 0;
  *err = NULL;
  if (mz_host_init(&host, &loop, sc->mode) == 0 && mz_host_load_err(&host, sc->app, err) == 0) {
    if (mz_host_call(&host, "migrate", NULL, 2) != 0) {
      *err = strdup(error_text(host.L));
      r = -1;
    } else if (!lua_toboolean(host.L, -2)) {
      *err = strdup(lua_tostring(host.L, -1) ? lua_tostring(host.L, -1) : "?");
      r = -1;
    }
    lua_settop(host.L, 0);
  } else {
    free(*err); /* the fresh state loaded this code: no such failure is expected */
    *err = NULL;
  }
  mz_host_close(&host);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  return r;
}

/* A .lua or .sql file changed: load the whole app again in a fresh state
   and apply its pending migrations. On success it takes the new requests;
   on failure the old code keeps serving and reports the error. */
static void reload(void *ctx) {
  reloader *rl = ctx;
  mz_http_server *srv = rl->srv;
  uint64_t t0 = uv_hrtime();
  mz_host *fresh = malloc(sizeof *fresh);
  if (!fresh || mz_host_init(fresh, srv->loop, rl->sc->mode)) {
    free(fresh);
    return;
  }
  char *err = NULL;
  if (mz_host_load_err(fresh, rl->sc->app, &err) || migrate_saved(rl->sc, &err)) {
    if (!err) err = strdup("out of memory");
    fprintf(stderr, "mizan: reload failed; the previous code keeps serving:\n%s\n", err);
    if (mz_host_call(srv->host, "set_broken", err, 0)) fprintf(stderr, "mizan: %s\n", lua_tostring(srv->host->L, -1));
    lua_settop(srv->host->L, 0);
    mz_http_server_set_overlay(srv, err);
    free(err);
    mz_host_close(fresh);
    free(fresh);
    return;
  }
  mz_host *old = srv->host;
  srv->host = fresh;
  if (srv->observe_peer) srv->observe_peer->host = fresh;
  /* the new code is live: the old state stops taking work (its subscriber
     and bus close, its WebSockets are closed with 1012 and come back to the
     new one) and finishes what is in flight; reap() closes it after */
  mz_host_retire(old);
  start_host(fresh);
  mz_observe_reloaded();
  mz_http_server_set_overlay(srv, NULL);
  if (rl->nretiring < 64) rl->retiring[rl->nretiring++] = old;
  else fprintf(stderr, "mizan: too many old states still busy; one is left open\n");
  fprintf(stderr, "mizan: reloaded in %.1f ms\n", (double)(uv_hrtime() - t0) / 1e6);
  reap(&rl->reaper);
}

/* Serve on `fd` (or on a socket of our own when fd < 0) until drained. */
static int serve_one(serve_ctx *sc, int fd, int ready_fd) {
  uv_loop_t *loop = uv_default_loop();
  /* on the heap: a reload retires it and frees it like any later state */
  mz_host *host = malloc(sizeof *host);
  if (!host || mz_host_init(host, loop, sc->mode)) {
    fprintf(stderr, "mizan: cannot create the Lua state\n");
    return 1;
  }
  if (mz_host_load(host, sc->app)) return 3;
  if (check_storage(host)) return 3;
  mz_config cfg;
  if (read_config(host, &cfg)) return 3;
  if (!sc->listen[0]) snprintf(sc->listen, sizeof sc->listen, "%s", cfg.listen);
  const char *log = cfg.access_log;
  mz_observe_init(loop, log[0] ? (!strcmp(log, "off") ? MZ_LOG_OFF : !strcmp(log, "json") ? MZ_LOG_JSON : MZ_LOG_TEXT)
                               : sc->mode == MZ_MODE_PRODUCTION ? MZ_LOG_JSON : MZ_LOG_TEXT);
  const char *observe_listen = cfg.observe_listen[0] ? cfg.observe_listen : NULL;
  mz_http_server srv, obs_srv;
  int r = mz_http_server_init(&srv, loop, host, &cfg.limits, cfg.base_path);
  srv.metrics = cfg.metrics && !observe_listen;
  snprintf(srv.session_cookie, sizeof srv.session_cookie, "%s=", cfg.session_cookie);
  if (!r && cfg.static_dir[0] && mz_http_server_set_static(&srv, cfg.static_dir))
    fprintf(stderr, "mizan [warn] static_dir %s: %s\n", cfg.static_dir, strerror(errno));
  if (!r) r = fd >= 0 ? mz_http_server_open(&srv, fd) : mz_http_server_listen(&srv, sc->listen, 0);
  if (r) {
    fprintf(stderr, "mizan: cannot listen on %s: %s\n", sc->listen, uv_strerror(r));
    return 1;
  }
  if (observe_listen) {
    /* health and metrics on an address of their own; workers share it */
    int r2 = mz_http_server_init(&obs_srv, loop, host, &cfg.limits, cfg.base_path);
    if (!r2) r2 = mz_http_server_listen(&obs_srv, observe_listen, fd >= 0);
    if (r2) {
      fprintf(stderr, "mizan: cannot listen on %s: %s\n", observe_listen, uv_strerror(r2));
      return 1;
    }
    obs_srv.metrics = cfg.metrics;
    snprintf(obs_srv.session_cookie, sizeof obs_srv.session_cookie, "%s=", cfg.session_cookie);
    obs_srv.observe_only = 1;
    srv.observe_peer = &obs_srv;
  }
  if (ready_fd >= 0) {
    if (write(ready_fd, "1", 1) != 1) return 1;
    close(ready_fd);
  } else {
    announce(sc, srv.port, srv.base_path, 0);
  }
  start_host(host);
  reloader rl = {.sc = sc, .srv = &srv};
  mz_watch *watch = NULL;
  if (sc->mode == MZ_MODE_DEVELOPMENT) {
    watch = mz_watch_start(loop, sc->app, reload, &rl);
    uv_timer_init(loop, &rl.reaper);
    rl.reaper.data = &rl;
    uv_timer_start(&rl.reaper, reap, 200, 200);
    uv_unref((uv_handle_t *)&rl.reaper);
  }
  int code = mz_loop_serve(&srv);
  if (watch) {
    mz_watch_stop(watch);
    uv_close((uv_handle_t *)&rl.reaper, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    reap(&rl.reaper);
    /* old states whose last work never ended (a task still waiting when the
       drain ran out): released already, nothing can resume them; close them
       with their suspended tasks (host.h: mz_host_close) */
    for (int i = 0; i < rl.nretiring; i++) {
      mz_host_close(rl.retiring[i]);
      free(rl.retiring[i]);
    }
    rl.nretiring = 0;
  }
  mz_observe_close();
  /* everything is closed by now; free it so leak checkers see a clean exit */
  mz_host_close(srv.host);
  free(srv.host);
  uv_run(loop, UV_RUN_NOWAIT); /* the close callbacks of what the host owned */
  uv_loop_close(loop);
  return code;
}

static int worker_main(void *ctx, int fd, int ready_fd) { return serve_one(ctx, fd, ready_fd); }

/* "serving ... on" is said once the workers answer: not a moment before. */
static void workers_ready(void *ctx, int workers) {
  serve_ctx *sc = ctx;
  announce(sc, sc->port, sc->base_path, workers);
}

/* Say what the descriptor limit is, having raised it (mz_cmd_raise_nofile). */
static void raise_nofile(void) {
  struct rlimit rl;
  rlim_t was;
  if (mz_cmd_raise_nofile(&rl, &was)) return;
  if (rl.rlim_cur == RLIM_INFINITY) {
    fprintf(stderr, "mizan: file descriptor limit: unlimited\n");
  } else if (rl.rlim_cur != was) {
    fprintf(stderr, "mizan: file descriptor limit: %llu (raised from %llu, the hard limit)\n",
            (unsigned long long)rl.rlim_cur, (unsigned long long)was);
  } else {
    fprintf(stderr, "mizan: file descriptor limit: %llu\n", (unsigned long long)rl.rlim_cur);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 4096)
    fprintf(stderr, "mizan [warn] %llu descriptors cap the connections each process can hold; "
                    "raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd unit)\n",
            (unsigned long long)rl.rlim_cur);
}

/* --listen ADDR / --port N: the address, through the variable every other
   setting of it goes through (the options table reads it). */
static int listen_from(const char *cmd, const mz_cli_line *line) {
  const char *listen = line->opt[0], *port = line->opt[1];
  if (listen && port) {
    return mz_cli_error(cmd, "give --listen or --port, not both%s", "");
  }
  char addr[64];
  if (port) {
    char *end;
    long n = strtol(port, &end, 10);
    if (!*port || *end || n < 1 || n > 65535) {
      return mz_cli_error(cmd, "--port wants a port number (1-65535), not '%s'", port);
    }
    snprintf(addr, sizeof addr, "127.0.0.1:%ld", n);
    listen = addr;
  }
  if (listen) setenv("MIZAN_LISTEN", listen, 1);
  return 0;
}

int cmd_serve(int argc, char **argv, mz_mode mode) {
  const char *name = mode == MZ_MODE_PRODUCTION ? "serve" : "dev";
  mz_cli_line line;
  int pr = mz_cli_parse(mz_cli_find(name), argc, argv, &line);
  if (pr) return pr == 1 ? 0 : 2;
  if (listen_from(name, &line)) return 2;
  serve_ctx sc = {.app = mz_cli_app(name, &line, 0), .mode = mode};
  if (!sc.app) return 1;
  raise_nofile();
  if (mode != MZ_MODE_PRODUCTION) return serve_one(&sc, -1, -1);

  mz_master_block(); /* a signal sent as soon as we announce must not kill us */
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
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int port = 0;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
  sc.port = port;
  /* the workers' bus (channel broadcasts between them): a private folder */
  char busdir[] = "/tmp/mizan-bus-XXXXXX";
  if (mkdtemp(busdir)) setenv("MIZAN_BUS_DIR", busdir, 1);
  mz_master_opts o = {.workers = workers, .listen_fd = fd, .drain_ms = sc.drain_ms, .ctx = &sc,
                      .worker = worker_main, .validate = inspect, .ready = workers_ready};
  int code = mz_master_run(&o);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", busdir); /* a folder we made, with a fixed-shape name */
  if (system(cmd) != 0) fprintf(stderr, "mizan: could not remove %s\n", busdir);
  return code;
}
