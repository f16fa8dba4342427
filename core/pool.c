/* mz_pool: see pool.h for the contract. */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#define MZ_POOL_CHUNK 4096

struct mz_pool_chunk {
  mz_pool_chunk *next;
  size_t size;
  _Alignas(16) char mem[];
};

void mz_pool_init(mz_pool *p) {
  p->head = NULL;
  p->used = 0;
}

void *mz_pool_alloc(mz_pool *p, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!p->head || p->head->size - p->used < n) {
    /* Large requests get a chunk of their own, so the common small ones
       still pack densely. */
    size_t size = n > MZ_POOL_CHUNK ? n : MZ_POOL_CHUNK;
    mz_pool_chunk *c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->size = size;
    c->next = p->head;
    p->head = c;
    p->used = 0;
  }
  void *r = p->head->mem + p->used;
  p->used += n;
  return r;
}

char *mz_pool_strndup(mz_pool *p, const char *s, size_t n) {
  char *d = mz_pool_alloc(p, n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

void mz_pool_clear(mz_pool *p) {
  mz_pool_chunk *c = p->head;
  if (!c) return;
  /* keep the oldest standard-sized chunk: it is the one every request needs */
  mz_pool_chunk *keep = NULL;
  while (c) {
    mz_pool_chunk *next = c->next;
    if (!keep && c->size == MZ_POOL_CHUNK && !next) keep = c;
    else free(c);
    c = next;
  }
  p->head = keep;
  if (keep) keep->next = NULL;
  p->used = 0;
}

void mz_pool_dispose(mz_pool *p) {
  mz_pool_clear(p);
  free(p->head);
  p->head = NULL;
}
