/*
 * The memory backend and the fast-path aliases. See cache.h for the design.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "cache.h"
#include "crypto.h"

#define MZ_ALIAS_MAX 16384

/* Shared by every worker of the instance. */
typedef struct {
  _Atomic uint64_t clock;
  _Atomic uint64_t slot[MZ_CACHE_SLOTS];
} shared_slots;

typedef struct entry {
  struct entry *hnext;
  struct entry *lprev, *lnext; /* LRU: head is the most recent */
  uint64_t expires_ms;
  size_t bytes;
  size_t len;
  size_t nslots;
  uint32_t *slots;
  uint64_t *versions;
  char *value;
  char key[65];
} entry;

/* An alias: its name, the entry keys, and n + 1 byte segments Lua gave (the
   envelope): the body is seg[0] value[0] seg[1] ... value[n-1] seg[n]. */
typedef struct alias {
  struct alias *hnext;
  size_t len, n;
  char *name;
  char (*keys)[65];
  const char **segs;
  size_t *seg_lens;
  char *label;
  size_t label_len;
} alias;

struct mz_cache {
  shared_slots *shared;
  entry **buckets;
  size_t nbuckets, nentries;
  entry *lru_head, *lru_tail;
  size_t used, budget;
  alias **abuckets;
  size_t nabuckets, naliases;
  mz_cache_stats stats;
};

static mz_cache *the_cache;

mz_cache *mz_cache_get(void) { return the_cache; }
mz_cache_stats *mz_cache_stats_of(mz_cache *c) {
  c->stats.bytes = c->used;
  c->stats.budget = c->budget;
  c->stats.entries = c->nentries;
  return &c->stats;
}

void mz_cache_key(const char *secret, size_t secret_len, const char *name, size_t name_len,
                  const char *canonical, size_t canonical_len, const char *scope, size_t scope_len,
                  char out[65]) {
  mz_buf msg;
  mz_buf_init(&msg);
  int bad = mz_buf_append(&msg, name, name_len) || mz_buf_putc(&msg, '\n') ||
            mz_buf_append(&msg, canonical, canonical_len);
  if (!bad && scope) bad = mz_buf_putc(&msg, '\n') || mz_buf_append(&msg, scope, scope_len);
  if (bad) out[0] = 0;
  else mz_crypto_hmac_sha256_hex(secret, secret_len, msg.data, msg.len, out);
  mz_buf_free(&msg);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t fnv1a(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

uint32_t mz_cache_slot(const char *tag, size_t n) { return fnv1a(tag, n) % MZ_CACHE_SLOTS; }

mz_cache *mz_cache_new(size_t budget) {
  mz_cache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->shared = mmap(NULL, sizeof(shared_slots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  c->nbuckets = 1024;
  c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
  c->nabuckets = 1024;
  c->abuckets = calloc(c->nabuckets, sizeof *c->abuckets);
  if (c->shared == MAP_FAILED || !c->buckets || !c->abuckets) {
    if (c->shared != MAP_FAILED) munmap(c->shared, sizeof(shared_slots));
    free(c->buckets);
    free(c->abuckets);
    free(c);
    return NULL;
  }
  c->budget = budget;
  the_cache = c;
  return c;
}

/* ------------------------------------------------------------ slots */

void mz_cache_bump(mz_cache *c, const uint32_t *slots, size_t n) {
  uint64_t v = atomic_fetch_add(&c->shared->clock, 1) + 1;
  for (size_t i = 0; i < n; i++) {
    /* never move a slot backwards: a racing bump may have stored a later v */
    uint64_t cur = atomic_load(&c->shared->slot[slots[i]]);
    while (cur < v && !atomic_compare_exchange_weak(&c->shared->slot[slots[i]], &cur, v)) {}
  }
  c->stats.purges++;
}

void mz_cache_versions(mz_cache *c, const uint32_t *slots, size_t n, uint64_t *out) {
  for (size_t i = 0; i < n; i++) out[i] = atomic_load(&c->shared->slot[slots[i]]);
}

/* ------------------------------------------------------------ entries */

static entry **bucket_of(mz_cache *c, const char *key) {
  return &c->buckets[fnv1a(key, 64) & (c->nbuckets - 1)];
}

static void lru_unlink(mz_cache *c, entry *e) {
  if (e->lprev) e->lprev->lnext = e->lnext;
  else c->lru_head = e->lnext;
  if (e->lnext) e->lnext->lprev = e->lprev;
  else c->lru_tail = e->lprev;
  e->lprev = e->lnext = NULL;
}

static void lru_push(mz_cache *c, entry *e) {
  e->lnext = c->lru_head;
  e->lprev = NULL;
  if (c->lru_head) c->lru_head->lprev = e;
  c->lru_head = e;
  if (!c->lru_tail) c->lru_tail = e;
}

static void entry_remove(mz_cache *c, entry *e) {
  entry **pp = bucket_of(c, e->key);
  while (*pp && *pp != e) pp = &(*pp)->hnext;
  if (*pp) *pp = e->hnext;
  lru_unlink(c, e);
  c->used -= e->bytes;
  c->nentries--;
  free(e);
}

static entry *find(mz_cache *c, const char *key) {
  for (entry *e = *bucket_of(c, key); e; e = e->hnext)
    if (memcmp(e->key, key, 64) == 0) return e;
  return NULL;
}

static int fresh(mz_cache *c, entry *e) {
  for (size_t i = 0; i < e->nslots; i++)
    if (atomic_load(&c->shared->slot[e->slots[i]]) != e->versions[i]) return 0;
  return 1;
}

int mz_cache_lookup(mz_cache *c, const char *key, const char **value, size_t *len) {
  entry *e = find(c, key);
  if (!e) return 0;
  if (e->expires_ms <= now_ms()) {
    c->stats.expirations++;
    entry_remove(c, e);
    return 0;
  }
  if (!fresh(c, e)) {
    c->stats.stale++;
    entry_remove(c, e);
    return 0;
  }
  lru_unlink(c, e);
  lru_push(c, e);
  *value = e->value;
  *len = e->len;
  return 1;
}

static void grow(mz_cache *c) {
  size_t n = c->nbuckets * 2;
  entry **b = calloc(n, sizeof *b);
  if (!b) return; /* keep the old table: longer chains, still correct */
  for (size_t i = 0; i < c->nbuckets; i++) {
    for (entry *e = c->buckets[i], *next; e; e = next) {
      next = e->hnext;
      entry **pp = &b[fnv1a(e->key, 64) & (n - 1)];
      e->hnext = *pp;
      *pp = e;
    }
  }
  free(c->buckets);
  c->buckets = b;
  c->nbuckets = n;
}

int mz_cache_store(mz_cache *c, const char *key, const char *value, size_t len, uint64_t ttl_ms,
                   const uint32_t *slots, const uint64_t *versions, size_t nslots) {
  size_t bytes = sizeof(entry) + len + nslots * (sizeof(uint32_t) + sizeof(uint64_t)) + 8;
  if (bytes > c->budget) return -1;
  entry *old = find(c, key);
  if (old) entry_remove(c, old);
  while (c->used + bytes > c->budget && c->lru_tail) {
    entry_remove(c, c->lru_tail);
    c->stats.evictions++;
  }
  /* one allocation: the entry, then versions, slots and the value */
  entry *e = malloc(bytes);
  if (!e) return -1;
  memset(e, 0, sizeof *e);
  e->versions = (uint64_t *)(e + 1);
  e->slots = (uint32_t *)(e->versions + nslots);
  e->value = (char *)(e->slots + nslots);
  memcpy(e->key, key, 64);
  e->key[64] = 0;
  e->len = len;
  e->bytes = bytes;
  e->nslots = nslots;
  if (nslots) {
    memcpy(e->slots, slots, nslots * sizeof *slots);
    memcpy(e->versions, versions, nslots * sizeof *versions);
  }
  memcpy(e->value, value, len);
  e->expires_ms = now_ms() + ttl_ms;
  entry **pp = bucket_of(c, key);
  e->hnext = *pp;
  *pp = e;
  lru_push(c, e);
  c->used += bytes;
  c->nentries++;
  c->stats.stores++;
  if (c->nentries > c->nbuckets) grow(c);
  return 0;
}

/* ------------------------------------------------------------ aliases */

static void alias_free(alias *a) { free(a); }

static void aliases_clear(mz_cache *c) {
  for (size_t i = 0; i < c->nabuckets; i++) {
    for (alias *a = c->abuckets[i], *next; a; a = next) {
      next = a->hnext;
      alias_free(a);
    }
    c->abuckets[i] = NULL;
  }
  c->naliases = 0;
}

void mz_cache_clear(mz_cache *c) {
  while (c->lru_head) entry_remove(c, c->lru_head);
  aliases_clear(c);
}

static alias **alias_bucket(mz_cache *c, const char *name, size_t len) {
  return &c->abuckets[fnv1a(name, len) & (c->nabuckets - 1)];
}

static alias *alias_find(mz_cache *c, const char *name, size_t len) {
  for (alias *a = *alias_bucket(c, name, len); a; a = a->hnext)
    if (a->len == len && memcmp(a->name, name, len) == 0) return a;
  return NULL;
}

int mz_cache_alias_set(mz_cache *c, const char *name, size_t len, size_t n, const char **keys,
                       const char **segs, const size_t *seg_lens, const char *label, size_t label_len) {
  if (n == 0) return -1;
  alias **pp = alias_bucket(c, name, len);
  for (alias **q = pp; *q; q = &(*q)->hnext) {
    if ((*q)->len == len && memcmp((*q)->name, name, len) == 0) {
      alias *old = *q;
      *q = old->hnext;
      alias_free(old);
      c->naliases--;
      break;
    }
  }
  /* a bounded map: when full, start over (aliases are only a shortcut) */
  if (c->naliases >= MZ_ALIAS_MAX) aliases_clear(c);
  size_t bytes = 0;
  for (size_t i = 0; i <= n; i++) bytes += seg_lens[i];
  /* one allocation: the pointer and length arrays first (they need the
     alignment), then the keys, the name, the label and the segments */
  alias *a = calloc(1, sizeof *a + (n + 1) * (sizeof(char *) + sizeof(size_t)) + n * 65 + len + label_len + bytes);
  if (!a) return -1;
  a->segs = (const char **)(a + 1);
  a->seg_lens = (size_t *)(a->segs + n + 1);
  a->keys = (char(*)[65])(a->seg_lens + n + 1);
  a->name = (char *)(a->keys + n);
  a->label = a->name + len;
  char *w = a->label + label_len;
  memcpy(a->name, name, len);
  a->len = len;
  memcpy(a->label, label, label_len);
  a->label_len = label_len;
  a->n = n;
  for (size_t i = 0; i < n; i++) {
    memcpy(a->keys[i], keys[i], 64);
    a->keys[i][64] = 0;
  }
  for (size_t i = 0; i <= n; i++) {
    memcpy(w, segs[i], seg_lens[i]);
    a->segs[i] = w;
    a->seg_lens[i] = seg_lens[i];
    w += seg_lens[i];
  }
  a->hnext = *pp;
  *pp = a;
  c->naliases++;
  return 0;
}

int mz_cache_alias_answer(mz_cache *c, const char *name, size_t len, mz_buf *out, const char **label,
                          size_t *label_len) {
  alias *a = alias_find(c, name, len);
  if (!a) return 0;
  size_t start = out->len;
  int ok = mz_buf_append(out, a->segs[0], a->seg_lens[0]) == 0;
  for (size_t i = 0; ok && i < a->n; i++) {
    const char *v;
    size_t vn;
    if (!mz_cache_lookup(c, a->keys[i], &v, &vn) || mz_buf_append(out, v, vn) ||
        mz_buf_append(out, a->segs[i + 1], a->seg_lens[i + 1]))
      ok = 0;
  }
  if (!ok) {
    out->len = start;
    return 0;
  }
  c->stats.fast_hits++;
  *label = a->label;
  *label_len = a->label_len;
  return 1;
}
