/*
 * mz_watch: a recursive, debounced watcher of the .lua and .sql files of a folder
 * tree (see watch.c). Its handles are unref'd: it never keeps a loop alive.
 */
#ifndef MZ_WATCH_H
#define MZ_WATCH_H

#include <uv.h>

typedef struct mz_watch mz_watch;

/** Watch `root` and every folder under it, now and created later; call
    `changed(ctx)` once a burst of .lua or .sql changes settles. NULL on failure. */
mz_watch *mz_watch_start(uv_loop_t *loop, const char *root, void (*changed)(void *ctx), void *ctx);

/** How many folders are watched. */
int mz_watch_count(mz_watch *w);

/** Stop watching; the memory goes once the handles are closed. */
void mz_watch_stop(mz_watch *w);

#endif
