/*
 * libFuzzer target for the strict request-head checks that run before
 * llhttp: finding the end of a head (from any resume offset) and checking
 * its syntax must never read out of bounds, and resuming must agree with a
 * scan from the start.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* copy into an exact-size buffer so ASan sees any over-read */
  char *p = malloc(size ? size : 1);
  memcpy(p, data, size);
  size_t end = mz__http_head_end(p, size, 0);
  if (end > size) abort();
  for (size_t from = 0; from < size && from < 64; from += 7) {
    /* resuming at or before the end must find the same end */
    if (end && from + 3 < end && mz__http_head_end(p, size, from) != end) abort();
  }
  if (end) (void)mz__http_head_check(p, end);
  (void)mz__http_has_line(p, size);
  free(p);
  return 0;
}
