/* mz_ws_frame: see ws_frame.h for the contract. */
#include "ws_frame.h"

#include <string.h>

void mz_ws_decoder_init(mz_ws_decoder *d, size_t max_message) {
  memset(d, 0, sizeof *d);
  mz_buf_init(&d->msg);
  d->max_message = max_message > MZ_WS_MAX_LIMIT ? MZ_WS_MAX_LIMIT : max_message;
}

void mz_ws_decoder_free(mz_ws_decoder *d) { mz_buf_free(&d->msg); }

int mz_ws_frame_header(const mz_ws_decoder *d, const unsigned char *p, size_t n, mz_ws_frame *f) {
  if (n < 2) return 0;
  int fin = p[0] & 0x80, rsv = p[0] & 0x70, opcode = p[0] & 0x0F, masked = p[1] & 0x80;
  /* the checks that need no length come first, so that a bad frame is
     refused as soon as its first two bytes are in */
  if (rsv) return -1002;
  if (!masked) return -1002;
  if ((opcode > 2 && opcode < 8) || opcode > 0xA) return -1002;
  int control = opcode & 0x8;
  if (control && !fin) return -1002;
  if (!control && opcode == 0 && !d->msg_opcode) return -1002;
  if (!control && opcode != 0 && d->msg_opcode) return -1002;
  if (opcode == 2) return -1003;
  uint64_t len = p[1] & 0x7F;
  size_t hl = 2;
  if (len == 126) {
    if (n < 4) return 0;
    len = (uint64_t)p[2] << 8 | p[3];
    hl = 4;
  } else if (len == 127) {
    if (n < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
    hl = 10;
  }
  if (control && len > 125) return -1002;
  /* What this frame may still add: no sum is formed before this test, and
     the room is at most MZ_WS_MAX_LIMIT, far below 2^63, so a length with
     its top bit set never passes. */
  size_t used = opcode == 0 ? d->msg.len : 0;
  size_t room = control ? 125 : d->max_message - used;
  if (len > room) return -1009;
  f->fin = fin != 0;
  f->opcode = opcode;
  f->header_len = hl + 4;
  f->len = (size_t)len;
  return 1;
}

/* A close frame's payload: a code and a UTF-8 reason, or nothing. */
static void close_event(const unsigned char *p, size_t n, mz_ws_event *ev) {
  ev->kind = MZ_WS_CLOSE;
  ev->code = 0;
  ev->data = (const char *)p;
  ev->len = 0;
  if (n == 0) return;
  ev->kind = MZ_WS_ERROR;
  ev->code = 1002;
  if (n == 1) {
    ev->why = "bad close frame";
    return;
  }
  int code = p[0] << 8 | p[1];
  int valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
  if (!valid) {
    ev->why = "bad close code";
    return;
  }
  if (mz_utf8_check(p + 2, n - 2)) {
    ev->code = 1007;
    ev->why = "bad close reason";
    return;
  }
  ev->kind = MZ_WS_CLOSE;
  ev->code = code;
  ev->data = (const char *)p + 2;
  ev->len = n - 2;
}

static size_t refuse(mz_ws_event *ev, int code, const char *why) {
  ev->kind = MZ_WS_ERROR;
  ev->code = code;
  ev->why = why;
  return 0;
}

size_t mz_ws_decode(mz_ws_decoder *d, unsigned char *p, size_t n, mz_ws_event *ev) {
  memset(ev, 0, sizeof *ev);
  d->pending = 0;
  mz_ws_frame f;
  int r = mz_ws_frame_header(d, p, n, &f);
  if (r == 0) return 0;
  if (r == -1003) return refuse(ev, 1003, "binary messages are not part of the channel protocol");
  if (r == -1009) return refuse(ev, 1009, "message too big");
  if (r < 0) return refuse(ev, 1002, "protocol error");
  /* header_len <= 14 and len <= MZ_WS_MAX_LIMIT: the sum cannot wrap */
  size_t total = f.header_len + f.len;
  if (n < total) {
    d->pending = total;
    return 0;
  }
  const unsigned char *mask = p + f.header_len - 4;
  unsigned char *data = p + f.header_len;
  for (size_t i = 0; i < f.len; i++) data[i] ^= mask[i & 3];
  switch (f.opcode) {
    case 0x8:
      close_event(data, f.len, ev);
      return ev->kind == MZ_WS_ERROR ? 0 : total;
    case 0x9:
    case 0xA:
      ev->kind = f.opcode == 0x9 ? MZ_WS_PING : MZ_WS_PONG;
      ev->data = (const char *)data;
      ev->len = f.len;
      return total;
  }
  if (f.opcode) { /* a new message: forget the last one */
    d->msg_opcode = f.opcode;
    d->msg.len = 0;
    d->utf8 = (mz_utf8_state){0, 0, 0};
  }
  if (mz_utf8_feed(&d->utf8, data, f.len)) return refuse(ev, 1007, "invalid UTF-8");
  if (mz_buf_append(&d->msg, data, f.len)) return refuse(ev, 1011, "out of memory"); /* ours, not the peer's: 1011 */
  if (!f.fin) return total;
  d->msg_opcode = 0;
  if (d->utf8.need) return refuse(ev, 1007, "invalid UTF-8");
  ev->kind = MZ_WS_TEXT;
  ev->data = d->msg.data ? d->msg.data : "";
  ev->len = d->msg.len;
  return total;
}
