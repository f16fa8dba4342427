/* mz_buf: see buf.h for the contract. */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void mz_buf_init(mz_buf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void mz_buf_free(mz_buf *b) {
  free(b->data);
  mz_buf_init(b);
}

/* Grow geometrically so a stream of small appends stays amortised O(1). */
int mz_buf_reserve(mz_buf *b, size_t extra) {
  if (b->cap - b->len >= extra) return 0;
  size_t need = b->len + extra;
  if (need < b->len) return -ENOMEM; /* overflow */
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > ((size_t)-1) / 2) return -ENOMEM;
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p) return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int mz_buf_append(mz_buf *b, const void *p, size_t n) {
  if (n == 0) return 0;
  if (mz_buf_reserve(b, n)) return -ENOMEM;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int mz_buf_puts(mz_buf *b, const char *s) { return mz_buf_append(b, s, strlen(s)); }

int mz_buf_printf(mz_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || mz_buf_reserve(b, (size_t)n + 1)) return -ENOMEM;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void mz_buf_consume(mz_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}
