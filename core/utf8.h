/*
 * mz_utf8: the one UTF-8 validator (RFC 3629: no overlong forms, no UTF-16
 * surrogates, nothing past U+10FFFF), for the JSON codec, the WebSocket
 * decoder (across fragments) and Lua (mizan.utf8).
 *
 * Pure functions over bytes the caller owns; nothing is allocated.
 */
#ifndef MZ_UTF8_H
#define MZ_UTF8_H

#include <stddef.h>
#include <stdint.h>

/** Where a stream of fragments is inside a sequence: zero-initialise it. */
typedef struct mz_utf8_state {
  uint8_t need;   /* continuation bytes still to come */
  uint8_t lo, hi; /* the range the next one must be in */
} mz_utf8_state;

/**
 * The length (1..4) of the valid sequence at the start of p[0..n), or 0
 * when the bytes there are not one (or n is 0, or it is cut short).
 */
int mz_utf8_seq(const unsigned char *p, size_t n);

/** 0 if p[0..n) is whole, valid UTF-8, -1 otherwise. */
int mz_utf8_check(const unsigned char *p, size_t n);

/**
 * Feed the next fragment p[0..n) of a stream: 0, or -1 at the first byte
 * that cannot be valid (the state is then meaningless). The stream is
 * whole only if it ends with st->need == 0.
 */
int mz_utf8_feed(mz_utf8_state *st, const unsigned char *p, size_t n);

#endif
