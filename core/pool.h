/*
 * mz_pool: a per-request memory arena, in the spirit of h2o's mem pool.
 *
 * Everything allocated from a pool lives until `mz_pool_clear`, which frees it
 * all at once; callers never free individual allocations. A pool is reused
 * across the requests of one connection, so clearing keeps the first chunk.
 */
#ifndef MZ_POOL_H
#define MZ_POOL_H

#include <stddef.h>

typedef struct mz_pool_chunk mz_pool_chunk;

typedef struct mz_pool {
  mz_pool_chunk *head; /* newest chunk first */
  size_t used;         /* bytes used in head */
} mz_pool;

void mz_pool_init(mz_pool *p);
/** Allocate `n` bytes aligned to 16. NULL on out-of-memory. */
void *mz_pool_alloc(mz_pool *p, size_t n);
/** Copy `n` bytes into the pool and NUL-terminate. NULL on out-of-memory. */
char *mz_pool_strndup(mz_pool *p, const char *s, size_t n);
/** Free every allocation but keep one chunk for the next request. */
void mz_pool_clear(mz_pool *p);
/** Free everything. */
void mz_pool_dispose(mz_pool *p);

#endif
