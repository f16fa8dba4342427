/*
 * libFuzzer target for the WebSocket input decoder (core/ws_frame.c): frame
 * headers and lengths, masking, fragments, control frames between
 * fragments, UTF-8 across fragments, close codes.
 *
 * Input: byte 0 picks how the stream is cut into reads, byte 1 the message
 * limit (0..4080 bytes, so that the limit is reachable), the rest is the
 * byte stream from the client. Each read is decoded from an exact-size copy,
 * so ASan sees any over-read. Invariants checked on every input:
 *   - the decoder never consumes more than it was given, and a frame it
 *     waits for is bigger than what it has;
 *   - every text message is valid UTF-8 (checked by an independent decoder
 *     below) and within the limit, every close code is one the RFC allows;
 *   - a header with a 64-bit length whose top bit is set is never accepted;
 *   - cutting the stream differently gives the same events (the state
 *     carried across fragments and reads is complete).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

/* Code points, not bytes: a second opinion on what valid UTF-8 is. */
static int utf8_valid(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t k;
    uint32_t cp, min;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (n - i <= k) return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((p[i + j] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (p[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += k + 1;
  }
  return 1;
}

static int close_code_ok(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

static void record(mz_buf *log, const mz_ws_event *ev) {
  int head[3] = {(int)ev->kind, ev->code, (int)ev->len};
  mz_buf_append(log, head, sizeof head);
  if (ev->kind != MZ_WS_ERROR && ev->len) mz_buf_append(log, ev->data, ev->len);
}

static void check_event(const mz_ws_decoder *d, const mz_ws_event *ev) {
  switch (ev->kind) {
    case MZ_WS_TEXT:
      if (ev->len > d->max_message || !utf8_valid((const unsigned char *)ev->data, ev->len)) abort();
      break;
    case MZ_WS_PING:
    case MZ_WS_PONG:
      if (ev->len > 125) abort();
      break;
    case MZ_WS_CLOSE:
      if (ev->code && !close_code_ok(ev->code)) abort();
      if (ev->len > 123 || !utf8_valid((const unsigned char *)ev->data, ev->len)) abort();
      break;
    case MZ_WS_ERROR:
      if (!close_code_ok(ev->code) || ev->code == 1000) abort();
      break;
    default:
      break;
  }
}

/* Decode `stream` arriving in reads cut by `seed` (0: one read); the events go to `log`. */
static void run(const unsigned char *stream, size_t n, unsigned seed, size_t limit, mz_buf *log) {
  mz_ws_decoder d;
  mz_ws_decoder_init(&d, limit);
  mz_buf in;
  mz_buf_init(&in);
  size_t off = 0, fed = 0;
  uint32_t rng = seed * 2654435761u + 1;
  int failed = 0;
  while (fed < n && !failed) {
    size_t chunk = n - fed;
    if (seed) {
      rng = rng * 1103515245u + 12345u;
      chunk = 1 + (rng >> 16) % 23;
      if (chunk > n - fed) chunk = n - fed;
    }
    mz_buf_append(&in, stream + fed, chunk);
    fed += chunk;
    for (;;) {
      size_t avail = in.len - off;
      if (!avail) break;
      unsigned char *copy = malloc(avail);
      memcpy(copy, in.data + off, avail);
      mz_ws_event ev;
      size_t used = mz_ws_decode(&d, copy, avail, &ev);
      if (used > avail) abort();
      if (!used && ev.kind != MZ_WS_ERROR) {
        if (d.pending && d.pending <= avail) abort();
        if (!d.pending && avail >= MZ_WS_MAX_HEADER) abort(); /* a whole header is always judged */
        /* control frames may carry 125 bytes whatever the message limit */
        if (d.pending > (limit > 125 ? limit : 125) + MZ_WS_MAX_HEADER) abort();
      }
      check_event(&d, &ev);
      if (used || ev.kind == MZ_WS_ERROR) record(log, &ev);
      free(copy);
      if (ev.kind == MZ_WS_ERROR) {
        failed = 1;
        break;
      }
      if (!used) break;
      off += used;
    }
  }
  mz_buf_free(&in);
  mz_ws_decoder_free(&d);
}

/* The top bit of a 64-bit length is refused whatever the state. */
static void check_top_bit(const uint8_t *data, size_t size) {
  if (size < 10) return;
  unsigned char h[14];
  memcpy(h, data, 10);
  memset(h + 10, 0, 4);
  h[1] |= 0x80 | 127;
  h[2] |= 0x80;
  mz_ws_decoder d;
  mz_ws_decoder_init(&d, (size_t)-1);
  d.msg_opcode = data[0] & 1; /* inside a message, or not */
  mz_ws_frame f;
  if (mz_ws_frame_header(&d, h, sizeof h, &f) == 1) abort();
  mz_ws_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  unsigned seed = data[0];
  size_t limit = (size_t)data[1] * 16;
  const unsigned char *stream = data + 2;
  size_t n = size - 2;
  mz_buf whole, cut;
  mz_buf_init(&whole);
  mz_buf_init(&cut);
  run(stream, n, 0, limit, &whole);
  run(stream, n, seed | 1, limit, &cut);
  if (whole.len != cut.len || (whole.len && memcmp(whole.data, cut.data, whole.len) != 0)) abort();
  mz_buf_free(&whole);
  mz_buf_free(&cut);
  check_top_bit(stream, n);
  return 0;
}
