/* mz_master: see master.h. Plain POSIX: signals are blocked and taken with
   sigtimedwait, so there are no handlers and no races with fork. */
#include "master.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 256
#define READY_TIMEOUT_MS 30000

typedef struct {
  pid_t pid;
  uint64_t started, respawn_at, backoff;
} slot;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static sigset_t blocked, saved;

/* Fork a worker and wait until it says it is listening. 0, or -1 (it died
   or hung on the way; it is killed and reaped). */
static pid_t spawn(const mz_master_opts *o) {
  int p[2];
  if (pipe(p) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &saved, NULL);
    close(p[0]);
    exit(o->worker(o->ctx, o->listen_fd, p[1]));
  }
  close(p[1]);
  struct pollfd pf = {p[0], POLLIN, 0};
  char b;
  int ok = poll(&pf, 1, READY_TIMEOUT_MS) == 1 && read(p[0], &b, 1) == 1;
  close(p[0]);
  if (!ok) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

static void describe(int status, char *out, size_t n) {
  if (WIFSIGNALED(status)) snprintf(out, n, "was killed by signal %d", WTERMSIG(status));
  else snprintf(out, n, "exited with status %d", WEXITSTATUS(status));
}

void mz_master_block(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, NULL);
}

int mz_master_run(const mz_master_opts *o) {
  int n = o->workers < 1 ? 1 : o->workers > MAX_WORKERS ? MAX_WORKERS : o->workers;
  slot *slots = calloc((size_t)n, sizeof *slots);
  pid_t retiring[MAX_WORKERS * 2];
  int nretiring = 0;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGCHLD);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGHUP);
  sigprocmask(SIG_BLOCK, &blocked, &saved);
  /* the caller may have blocked them already (see mz_master_block): workers
     must start with them unblocked whatever the master's mask was */
  sigdelset(&saved, SIGCHLD);
  sigdelset(&saved, SIGTERM);
  sigdelset(&saved, SIGINT);
  sigdelset(&saved, SIGHUP);

  for (int i = 0; i < n; i++) {
    slots[i].pid = spawn(o);
    slots[i].started = now_ms();
    slots[i].backoff = 100;
    if (slots[i].pid < 0) {
      fprintf(stderr, "mizan: a worker failed to start\n");
      for (int k = 0; k < i; k++) kill(slots[k].pid, SIGKILL);
      free(slots);
      return 1;
    }
  }
  if (o->ready) o->ready(o->ctx, n);

  int stopping = 0;
  uint64_t deadline = 0;
  for (;;) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    siginfo_t info;
    int sig = sigtimedwait(&blocked, &info, &ts);
    uint64_t now = now_ms();

    if (sig == SIGTERM || sig == SIGINT) {
      if (!stopping) {
        fprintf(stderr, "mizan: %s received, draining %d worker(s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM", n);
        stopping = 1;
        deadline = now + o->drain_ms + 5000;
        /* Our copy of the listening socket would keep it open after the
           workers close theirs: the kernel would go on completing
           handshakes that nobody accepts, and reset them when we exit.
           Without it, the last worker to drain closes the socket, and new
           clients are refused at once (and may try another instance). */
        if (o->listen_fd >= 0) close(o->listen_fd);
        for (int i = 0; i < n; i++)
          if (slots[i].pid > 0) kill(slots[i].pid, SIGTERM);
        for (int i = 0; i < nretiring; i++) kill(retiring[i], SIGTERM);
      }
    } else if (sig == SIGHUP && !stopping) {
      fprintf(stderr, "mizan: SIGHUP received, reloading the app\n");
      if (o->validate(o->ctx)) {
        fprintf(stderr, "mizan: the new code does not load; the running workers keep serving\n");
      } else {
        /* one at a time: the new worker is listening before the old drains */
        for (int i = 0; i < n; i++) {
          pid_t fresh = spawn(o);
          if (fresh < 0) {
            fprintf(stderr, "mizan: a new worker failed to start; keeping the old one\n");
            continue;
          }
          if (slots[i].pid > 0 && nretiring < MAX_WORKERS * 2) {
            kill(slots[i].pid, MZ_MASTER_RETIRE_SIGNAL);
            retiring[nretiring++] = slots[i].pid;
          }
          slots[i].pid = fresh;
          slots[i].started = now_ms();
          slots[i].backoff = 100;
        }
        fprintf(stderr, "mizan: reload done\n");
      }
    }

    /* reap */
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      int found = 0;
      for (int i = 0; i < nretiring; i++) {
        if (retiring[i] == pid) {
          retiring[i] = retiring[--nretiring];
          found = 1;
          break;
        }
      }
      for (int i = 0; i < n && !found; i++) {
        if (slots[i].pid != pid) continue;
        found = 1;
        slots[i].pid = 0;
        if (stopping) break;
        char why[64];
        describe(status, why, sizeof why);
        /* a worker that lived a while starts its backoff over */
        if (now - slots[i].started > 10000) slots[i].backoff = 100;
        fprintf(stderr, "mizan: worker %d %s; respawning in %llu ms\n", (int)pid, why,
                (unsigned long long)slots[i].backoff);
        slots[i].respawn_at = now + slots[i].backoff;
        slots[i].backoff = slots[i].backoff * 2 > 5000 ? 5000 : slots[i].backoff * 2;
      }
    }

    if (stopping) {
      int alive = nretiring;
      for (int i = 0; i < n; i++) alive += slots[i].pid > 0;
      if (!alive) break;
      if (now > deadline) {
        fprintf(stderr, "mizan: workers did not drain in time; killing them\n");
        for (int i = 0; i < n; i++)
          if (slots[i].pid > 0) kill(slots[i].pid, SIGKILL);
        for (int i = 0; i < nretiring; i++) kill(retiring[i], SIGKILL);
        deadline = now + 60000;
      }
      continue;
    }
    for (int i = 0; i < n; i++) {
      if (slots[i].pid == 0 && now >= slots[i].respawn_at) {
        pid_t fresh = spawn(o);
        slots[i].started = now_ms();
        if (fresh > 0) {
          slots[i].pid = fresh;
        } else {
          slots[i].respawn_at = now_ms() + slots[i].backoff;
          slots[i].backoff = slots[i].backoff * 2 > 5000 ? 5000 : slots[i].backoff * 2;
        }
      }
    }
  }
  free(slots);
  fprintf(stderr, "mizan: stopped\n");
  return 0;
}
