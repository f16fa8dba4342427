/*
 * mz_watch: watch a folder tree for changes to .lua and .sql files (code,
 * and the migrations mizan dev applies on save).
 *
 * libuv's fs_event is not recursive on Linux, so there is one watcher per
 * folder; when a folder appears, the tree is scanned again and the new
 * folders get watchers too. Changes are debounced: an editor's burst of
 * writes, renames and chmods becomes one callback. Folders whose name starts
 * with '.' (.git, .mizan) are skipped.
 */
#include "watch.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DIRS 1024
#define DEBOUNCE_MS 15

typedef struct {
  uv_fs_event_t ev;
  mz_watch *w;
  char path[1024];
} dir_watch;

struct mz_watch {
  uv_loop_t *loop;
  uv_timer_t debounce;
  dir_watch *dirs[MAX_DIRS];
  int ndirs;
  int rescan;
  void (*changed)(void *ctx);
  void *ctx;
};

static void scan(mz_watch *w, const char *path);

static void debounced(uv_timer_t *t) {
  mz_watch *w = t->data;
  if (w->rescan) {
    w->rescan = 0;
    /* a new folder: watch it (and anything created in it meanwhile) */
    for (int i = 0, n = w->ndirs; i < n; i++) scan(w, w->dirs[i]->path);
  }
  w->changed(w->ctx);
}

static void on_event(uv_fs_event_t *ev, const char *name, int events, int status) {
  dir_watch *d = ev->data;
  mz_watch *w = d->w;
  (void)events;
  if (status < 0 || !name) return;
  size_t n = strlen(name);
  char full[2048];
  snprintf(full, sizeof full, "%s/%s", d->path, name);
  struct stat st;
  int is_dir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
  if (is_dir && name[0] != '.') w->rescan = 1;
  else if (!(n > 4 && (strcmp(name + n - 4, ".lua") == 0 || strcmp(name + n - 4, ".sql") == 0))) return;
  uv_timer_start(&w->debounce, debounced, DEBOUNCE_MS, 0);
}

static int watched(mz_watch *w, const char *path) {
  for (int i = 0; i < w->ndirs; i++)
    if (strcmp(w->dirs[i]->path, path) == 0) return 1;
  return 0;
}

static void scan(mz_watch *w, const char *path) {
  if (!watched(w, path) && w->ndirs < MAX_DIRS) {
    dir_watch *d = calloc(1, sizeof *d);
    if (!d) return;
    snprintf(d->path, sizeof d->path, "%s", path);
    d->w = w;
    uv_fs_event_init(w->loop, &d->ev);
    d->ev.data = d;
    if (uv_fs_event_start(&d->ev, on_event, path, 0) == 0) {
      uv_unref((uv_handle_t *)&d->ev);
      w->dirs[w->ndirs++] = d;
    } else {
      d->ev.data = d;
      uv_close((uv_handle_t *)&d->ev, NULL);
      /* the handle memory must outlive the close: keep it (a rare failure) */
    }
  }
  DIR *dir = opendir(path);
  if (!dir) return;
  struct dirent *e;
  while ((e = readdir(dir))) {
    if (e->d_name[0] == '.') continue;
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    struct stat st;
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) scan(w, sub);
  }
  closedir(dir);
}

mz_watch *mz_watch_start(uv_loop_t *loop, const char *root, void (*changed)(void *ctx), void *ctx) {
  mz_watch *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->loop = loop;
  w->changed = changed;
  w->ctx = ctx;
  uv_timer_init(loop, &w->debounce);
  uv_unref((uv_handle_t *)&w->debounce);
  w->debounce.data = w;
  scan(w, root);
  return w;
}

int mz_watch_count(mz_watch *w) { return w->ndirs; }

static void closed_free(uv_handle_t *h) { free(h->data); }

void mz_watch_stop(mz_watch *w) {
  for (int i = 0; i < w->ndirs; i++) uv_close((uv_handle_t *)&w->dirs[i]->ev, closed_free);
  w->debounce.data = w;
  uv_close((uv_handle_t *)&w->debounce, closed_free);
}
