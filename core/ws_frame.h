/*
 * mz_ws_frame: the WebSocket (RFC 6455) input decoder, with no connection.
 *
 * Pure mechanics over bytes: frame headers, unmasking, fragment assembly,
 * UTF-8 across fragments, control frames and close codes. ws.c feeds it
 * the connection's input and acts on the events; spec/fuzz/fuzz_ws.c feeds
 * it anything. Every length is checked against the message limit before it
 * is added to anything, so no sum can wrap.
 *
 * Ownership: the decoder owns `msg` (free it with mz_ws_decoder_free). The
 * input bytes stay the caller's; the decoder unmasks them in place.
 */
#ifndef MZ_WS_FRAME_H
#define MZ_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "utf8.h"

/* The largest message limit a decoder accepts: lengths stay far from any wrap. */
#define MZ_WS_MAX_LIMIT ((size_t)1 << 40)
/* The most bytes a frame header takes: 2, 8 of extended length, 4 of mask. */
#define MZ_WS_MAX_HEADER 14

typedef struct mz_ws_decoder {
  mz_buf msg;           /* the data message being assembled */
  int msg_opcode;       /* 0 none, 1 text (binary is refused at its header) */
  mz_utf8_state utf8;   /* UTF-8 across the message's fragments */
  size_t max_message;   /* payload bytes one message may have */
  size_t pending;       /* after a 0 return: the whole size of the frame whose
                           header is in, 0 when not even the header is */
} mz_ws_decoder;

typedef struct mz_ws_frame {
  int fin, opcode;
  size_t header_len; /* 2..14, the mask included */
  size_t len;        /* payload bytes */
} mz_ws_frame;

typedef enum {
  MZ_WS_NONE,  /* a frame was consumed with nothing to report (a fragment) */
  MZ_WS_TEXT,  /* a whole text message: data/len, in msg, valid until the next call */
  MZ_WS_PING,  /* data/len: the payload, inside the input */
  MZ_WS_PONG,
  MZ_WS_CLOSE, /* code: the peer's (0 when it sent none), reason in data/len */
  MZ_WS_ERROR  /* code: the close code to answer with; why: for the log */
} mz_ws_kind;

typedef struct mz_ws_event {
  mz_ws_kind kind;
  const char *data;
  size_t len;
  int code;
  const char *why;
} mz_ws_event;

/** An empty decoder for messages of at most `max_message` bytes (clamped to MZ_WS_MAX_LIMIT). */
void mz_ws_decoder_init(mz_ws_decoder *d, size_t max_message);
/** Release the message buffer. */
void mz_ws_decoder_free(mz_ws_decoder *d);

/**
 * Decode the frame header at p[0..n) in the light of the decoder's state
 * (which it does not change). 1 with *f filled, 0 when more bytes are
 * needed, or a negative close code: -1002 for a protocol error (reserved
 * bits, no mask, unknown opcode, bad control frame, fragments out of
 * order), -1003 for binary data, -1009 for a length over what the message
 * may still take. A 64-bit length with its top bit set (RFC 6455 §5.2)
 * is over every limit, so it is always refused, as 1009.
 */
int mz_ws_frame_header(const mz_ws_decoder *d, const unsigned char *p, size_t n, mz_ws_frame *f);

/**
 * Take the next frame from p[0..n), unmasking it in place. Returns the bytes
 * consumed and fills *ev; 0 means the frame is not complete yet (then
 * d->pending says how big it is, when known) or, with ev->kind ==
 * MZ_WS_ERROR, that the input is refused and must not be fed again.
 */
size_t mz_ws_decode(mz_ws_decoder *d, unsigned char *p, size_t n, mz_ws_event *ev);

#endif
