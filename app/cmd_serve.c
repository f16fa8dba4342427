/* mizan serve / mizan dev: load the app and serve it on one loop. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "http.h"
#include "loop.h"

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

int cmd_serve(int argc, char **argv, mz_mode mode) {
  const char *app = argc > 0 ? argv[0] : ".";
  uv_loop_t *loop = uv_default_loop();
  mz_host host;
  if (mz_host_init(&host, loop, mode)) {
    fprintf(stderr, "mizan: cannot create the Lua state\n");
    return 1;
  }
  if (mz_host_load(&host, app)) return 1;
  mz_http_limits limits;
  read_limits(&host, &limits);
  const char *listen = mz_host_config_string(&host, "listen");
  if (!listen) listen = "127.0.0.1:8080";
  const char *base = mz_host_config_string(&host, "base_path");
  mz_http_server srv;
  int r = mz_http_server_init(&srv, loop, &host, &limits, base ? base : "/api/mizan/");
  /* one process for now: no SO_REUSEPORT, so a taken port is reported */
  if (!r) r = mz_http_server_listen(&srv, listen, 0);
  if (r) {
    fprintf(stderr, "mizan: cannot listen on %s: %s\n", listen, uv_strerror(r));
    return 1;
  }
  char shown[160];
  snprintf(shown, sizeof shown, "%s", listen);
  char *colon = strrchr(shown, ':');
  if (colon) *colon = 0;
  fprintf(stderr, "mizan: %s mode, serving %s on http://%s:%d%s\n", mz_mode_name(mode), app,
          shown[0] ? shown : "0.0.0.0", srv.port, srv.base_path);
  int code = mz_loop_serve(&srv);
  /* everything is closed by now; free it so leak checkers see a clean exit */
  mz_host_close(&host);
  uv_loop_close(loop);
  return code;
}
