/*
 * mz_buf: a growable byte buffer.
 *
 * The buffer owns `data`; `mz_buf_free` releases it. Growth never raises a
 * Lua error: every function that may allocate returns 0 or -ENOMEM, so the
 * buffer is safe to use from code that must not longjmp.
 */
#ifndef MZ_BUF_H
#define MZ_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct mz_buf {
  char *data;
  size_t len;
  size_t cap;
} mz_buf;

/** Initialise an empty buffer; no allocation happens until the first write. */
void mz_buf_init(mz_buf *b);
/** Release the storage and reset to empty. Safe on an initialised empty buffer. */
void mz_buf_free(mz_buf *b);
/** Ensure room for `extra` more bytes. 0, or -ENOMEM (the buffer is unchanged). */
int mz_buf_reserve(mz_buf *b, size_t extra);
/** Append `n` bytes. 0 or -ENOMEM. */
int mz_buf_append(mz_buf *b, const void *p, size_t n);
/** Append a NUL-terminated string. 0 or -ENOMEM. */
int mz_buf_puts(mz_buf *b, const char *s);
/** Append printf-formatted text. 0 or -ENOMEM. */
int mz_buf_printf(mz_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Drop the first `n` bytes, keeping the rest (n <= len). */
void mz_buf_consume(mz_buf *b, size_t n);

/* Hot-path append of one byte when the caller already reserved room. */
static inline void mz_buf_put1(mz_buf *b, char c) { b->data[b->len++] = c; }

/* Append one byte, growing when needed. 0 or -ENOMEM. */
static inline int mz_buf_putc(mz_buf *b, char c) {
  if (b->len == b->cap && mz_buf_reserve(b, 1)) return -12; /* -ENOMEM */
  b->data[b->len++] = c;
  return 0;
}

#endif
