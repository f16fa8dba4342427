/*
 * libFuzzer target for the strict request-head checks that run before
 * llhttp: finding the end of a head (from any resume offset) and checking
 * its syntax, and finding a bare CR, must never read out of bounds, and
 * resuming must agree with a scan from the start.
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
  /* a bare CR found by a scan from the start is found resuming 3 bytes
     before where an earlier read ended, as conn_process resumes */
  int bare = mz__http_bare_cr(p, size, 0);
  for (size_t cut = 1; cut < size && cut < 64; cut += 5) {
    size_t from = cut > 3 ? cut - 3 : 0;
    if (mz__http_bare_cr(p, cut, 0) == 0 && bare != mz__http_bare_cr(p, size, from)) abort();
  }
  free(p);
  return 0;
}
