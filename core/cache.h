/*
 * mz_cache: the origin cache's C side (DESIGN §4).
 *
 * Coherence works by tag versions, the same way for every backend:
 *   - every entry carries tags: its function, and one per declared param
 *     ("todos|list_id=5", or "todos|list_id!" when absent);
 *   - a tag maps to a version slot; a purge bumps the slots of its tags;
 *   - an entry records its slots' versions as they were when its value
 *     started being computed, and is stale as soon as any slot moved on.
 * So a purge is O(tags), never a scan, a value computed while a purge ran
 * is never served, and entries of every scope go at once.
 *
 * Memory backend: the version slots live in one shared mapping, made before
 * workers fork, so a purge in one worker is seen by all before it answers;
 * entries live in each process (LRU, TTL, a byte budget). Slots are hashed,
 * so two tags may share one: that over-purges, which is allowed.
 *
 * The fast path: after Lua answered a GET from the cache, it records an
 * alias (route, name, raw query, scope) -> entry keys and the bytes around
 * them, and C answers the same GET later by concatenating those bytes and
 * entries without entering Lua, as long as every entry is present and fresh.
 */
#ifndef MZ_CACHE_H
#define MZ_CACHE_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MZ_CACHE_SLOTS 65536

typedef struct mz_cache mz_cache;

typedef struct mz_cache_stats {
  uint64_t hits, misses, fast_hits, stores, evictions, expirations, stale, purges;
  uint64_t bytes, budget, entries; /* filled in by mz_cache_stats_of */
} mz_cache_stats;

/**
 * The DESIGN §4 key in one C call: hex HMAC-SHA256(secret, name "\n"
 * canonical [ "\n" scope ]). `out` gets 64 hex digits and a NUL.
 */
void mz_cache_key(const char *secret, size_t secret_len, const char *name, size_t name_len,
                  const char *canonical, size_t canonical_len, const char *scope, size_t scope_len,
                  char out[65]);

/**
 * Create the cache for this process with a byte budget for entries. The
 * shared slot table is mapped here: call it before forking workers.
 * Returns NULL on failure.
 */
mz_cache *mz_cache_new(size_t budget);

/** The process-wide cache, once created (the host creates it at start). */
mz_cache *mz_cache_get(void);

/** Hash a tag to its slot. */
uint32_t mz_cache_slot(const char *tag, size_t n);

/** Bump the slots: every entry carrying one of them becomes stale. */
void mz_cache_bump(mz_cache *c, const uint32_t *slots, size_t n);

/** Current versions of `n` slots. */
void mz_cache_versions(mz_cache *c, const uint32_t *slots, size_t n, uint64_t *out);

/**
 * Look up a fresh entry; on a hit sets *value and *len (valid until the next
 * store or purge in this process) and returns 1; 0 on a miss (an expired or
 * stale entry is dropped).
 */
int mz_cache_lookup(mz_cache *c, const char *key, const char **value, size_t *len);

/**
 * Store `len` bytes under `key` for `ttl_ms`, stamped with the slot versions
 * read before the value was computed. Evicts least recently used entries to
 * stay within the budget. Returns 0, or -1 (too large, out of memory).
 */
int mz_cache_store(mz_cache *c, const char *key, const char *value, size_t len, uint64_t ttl_ms,
                   const uint32_t *slots, const uint64_t *versions, size_t nslots);

/** Drop every entry (not the slots). */
void mz_cache_clear(mz_cache *c);

/**
 * The fast path. `alias` names a request (route, name, raw query, scope);
 * the entries are `n` keys, and `segs` holds n + 1 byte strings (lengths in
 * `seg_lens`), the envelope Lua gives: the answer's body is exactly
 * segs[0] value[0] segs[1] ... value[n-1] segs[n], so C formats nothing.
 * `label` is the registered name the answer counts under in the metrics.
 * Everything is copied. Returns 0, or -1 (out of memory, no keys).
 */
int mz_cache_alias_set(mz_cache *c, const char *alias, size_t alias_len, size_t n, const char **keys,
                       const char **segs, const size_t *seg_lens, const char *label, size_t label_len);

/**
 * Answer `alias` from the cache: appends the body to `out`, points *label
 * at the alias's label (valid until the next alias change), and returns 1
 * when every entry is a fresh hit; 0 otherwise (nothing appended).
 */
int mz_cache_alias_answer(mz_cache *c, const char *alias, size_t alias_len, mz_buf *out, const char **label,
                          size_t *label_len);

mz_cache_stats *mz_cache_stats_of(mz_cache *c);

/** Push the `mizan.cachecore` module (the Lua side of this API). */
int mz_cache_open(lua_State *L);

#endif
