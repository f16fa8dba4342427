/* mz_loop: see loop.h. */
#include "loop.h"

#include "master.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  uv_signal_t sigint, sigterm, retire;
  uv_timer_t closer; /* after the drain: waits for the host's last task */
  mz_http_server *srv;
  int signals, ticks;
} serve_state;

#define CLOSER_MS 10
#define CLOSER_TICKS 200 /* 2 s: then the tasks still suspended are dropped */

/* The host is retired: its background loops end on the next turns (their
   sleeps wake at once). Once no task is left, or after CLOSER_TICKS, its
   resources close (host.h), and with them what keeps the loop alive. */
static void closer_fired(uv_timer_t *t) {
  serve_state *st = t->data;
  if (st->srv->host->tasks && ++st->ticks < CLOSER_TICKS) return;
  mz_host_release(st->srv->host);
  uv_close((uv_handle_t *)&st->closer, NULL);
}

static void drained(mz_http_server *srv) {
  serve_state *st = srv->loop->data;
  uv_close((uv_handle_t *)&st->sigint, NULL);
  uv_close((uv_handle_t *)&st->sigterm, NULL);
  uv_close((uv_handle_t *)&st->retire, NULL);
  /* outbound connections would keep the loop alive: the host retires, then
     its resources close (host.h); a mizan dev reaper does the same for the
     older states */
  mz_host_retire(srv->host);
  uv_timer_init(srv->loop, &st->closer);
  st->closer.data = st;
  uv_timer_start(&st->closer, closer_fired, 0, CLOSER_MS);
}

static void on_signal(uv_signal_t *h, int signum) {
  serve_state *st = h->data;
  if (st->signals++) {
    /* A second Ctrl-C means "now". A repeated SIGTERM does not: a service
       manager may send it to every process of the group at once, and the
       master forwards its own, so it must not cut the drain short. */
    if (signum == SIGINT) {
      fprintf(stderr, "mizan: second SIGINT, exiting now\n");
      exit(1);
    }
    return;
  }
  fprintf(stderr, "mizan: %s received, draining (%zu connection(s) open)\n",
          signum == SIGINT ? "SIGINT" : "SIGTERM", st->srv->nconns);
  mz_http_server_drain(st->srv, drained);
}

/* The master replaced this worker in a rolling reload: finish what we hold
   and leave the listening socket's queue to our successors. A SIGTERM
   afterwards (the whole service stopping) finds the drain under way. */
static void on_retire(uv_signal_t *h, int signum) {
  serve_state *st = h->data;
  (void)signum;
  if (st->srv->draining) return;
  fprintf(stderr, "mizan: retired by a reload, finishing (%zu connection(s) open)\n", st->srv->nconns);
  mz_http_server_retire(st->srv, drained);
}

int mz_loop_serve(mz_http_server *srv) {
  serve_state st = {.srv = srv};
  uv_loop_t *loop = srv->loop;
  loop->data = &st;
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(loop, &st.sigint);
  uv_signal_init(loop, &st.sigterm);
  uv_signal_init(loop, &st.retire);
  st.sigint.data = st.sigterm.data = st.retire.data = &st;
  uv_signal_start(&st.sigint, on_signal, SIGINT);
  uv_signal_start(&st.sigterm, on_signal, SIGTERM);
  uv_signal_start(&st.retire, on_retire, MZ_MASTER_RETIRE_SIGNAL);
  uv_run(loop, UV_RUN_DEFAULT);
  fprintf(stderr, "mizan: stopped\n");
  return 0;
}
