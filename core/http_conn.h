/*
 * Internal to the HTTP server: the connection and request records shared by
 * http.c (the state machine), http_head.c (strict head checks),
 * http_response.c (the response writer) and http_lua.c (the bridge to Lua).
 * Nothing outside core/http*.c includes this file.
 */
#ifndef MZ_HTTP_CONN_H
#define MZ_HTTP_CONN_H

#include <llhttp.h>

#include "http.h"
#include "pool.h"

typedef struct mz_http_header {
  const char *name; /* lowercased, NUL-terminated, in the request pool */
  const char *value;
  size_t name_len, value_len;
} mz_http_header;

/* One request. Everything it points to lives in the connection's pool and is
   freed at once when the next request starts. */
typedef struct mz_http_req {
  mz_http_header *headers;
  int nheaders, capheaders;
  const char *url;
  size_t url_len;
  mz_buf body;
  int method;
  int http_minor;
  int host_count, cl_count, te_count;
  int status;          /* set when the parser must answer with an error */
  char cache;          /* 'h' or 'm' when answered through the cache */
  /* flags: bits, since every idle connection carries its request record */
  unsigned keep_alive : 1;
  unsigned is_head : 1;
  unsigned upgrade : 1;
  unsigned chunked : 1;
  unsigned expect_continue : 1;
  unsigned in_trailers : 1; /* the head is done: header callbacks now mean trailers */
  unsigned page : 1;        /* an HTML page from static_dir, read into body, for Lua to answer */
  size_t head_len;     /* bytes of the head, for the limit trailers count against */
  size_t trailer_len;  /* bytes of trailer fields seen (they are not kept) */
  size_t chunk_ext_len; /* bytes of chunk extensions seen (not kept either) */
  const char *err_code;
  const char *err_msg;
  uint64_t start_ns;   /* when its head was complete, for the access log */
  uint64_t ws_id;      /* a WebSocket upgrade: the socket's id, given before Lua decides */
  const char *label;   /* the metrics label: a registered name or a fixed word, never
                          bytes of the URL (set by whoever answers; see observe.h) */
  size_t label_len;
  const char *cache_control; /* the answer's Cache-Control; NULL is no-store */
} mz_http_req;

typedef enum {
  MZ_CONN_IDLE,  /* between requests */
  MZ_CONN_HEAD,  /* the first bytes of a request arrived; waiting for the whole head */
  MZ_CONN_BODY,  /* head accepted; llhttp is inside the message */
  MZ_CONN_BUSY,  /* the request runs as a task; reading is paused */
  MZ_CONN_LINGER /* response sent and write side shut; draining input before close */
} mz_conn_state;

typedef struct mz_ws mz_ws;

struct mz_http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;  /* wakes up for `deadline` and `send_deadline` (see arm() in http.c) */
  uint64_t deadline; /* loop time when the current phase expires; 0 when none */
  uint64_t send_deadline; /* loop time a pending write must be done by; 0 when none */
  uint64_t timer_due; /* loop time `timer` fires at; 0 when it is not running */
  uv_write_t *wreq;  /* the write in flight, malloc'd while there is one (most
                        answers go out whole through uv_try_write) */
  mz_http_server *srv;
  mz_http_conn *prev, *next;
  llhttp_t parser;
  mz_buf in;         /* received bytes; [in_off, len) not yet parsed */
  size_t in_off;
  mz_buf out;        /* responses waiting to be written */
  mz_buf wbuf;       /* the bytes of the write in flight */
  mz_buf field, value; /* the header being parsed */
  size_t body_ready; /* body bytes that arrived with the head */
  size_t head_scanned; /* bytes of a partial head already searched for its end */
  mz_conn_state state;
  unsigned requests; /* requests begun on this connection (0: a fresh one) */
  int open_handles;
  int idle_ticks;    /* date-timer ticks seen idle in a row (see sweep_idle in http.c) */
  /* flags: bits, since an idle connection is this record and nothing else */
  unsigned writing : 1;
  unsigned reading : 1;
  unsigned close_after : 1;  /* close once the output is flushed */
  unsigned closing : 1;      /* handles are closing */
  unsigned task_running : 1;
  unsigned in_dispatch : 1;  /* inside dispatch(): the task may finish synchronously */
  mz_pool pool;
  mz_http_req req;
  mz_task task;
  mz_ws *ws;           /* set once upgraded to a WebSocket */
  uint64_t upgrade_to; /* a 101 was written: become this WebSocket when the task ends */
  char ip[46];         /* INET6_ADDRSTRLEN */
};

/* http_head.c */

/**
 * Find the end of a request head in `p[0..n)`: the offset just past the blank
 * line, or 0 when the head is not complete yet. Scanning starts at `from`,
 * which must be at or before the last line feed seen, so that a head that
 * arrives a byte at a time is not rescanned from its start each time.
 */
size_t mz__http_head_end(const char *p, size_t n, size_t from);

/** 1 if `p[0..n)` holds a line feed (the request line is complete). */
int mz__http_has_line(const char *p, size_t n);

/* Is there a CR not followed by LF in p[from..n)? (A CR that ends the data
   is not judged yet.) RFC 9112 §2.2: a bare CR in a head is an error, and
   without this check such a head would only end at its timeout. */
int mz__http_bare_cr(const char *p, size_t n, size_t from);

/**
 * Syntax checks llhttp 8.1 lets through: obs-fold and whitespace between a
 * field name and its colon. 0 when the head is acceptable, -1 otherwise.
 */
int mz__http_head_check(const char *p, size_t n);

/**
 * Header semantics checked once the head is parsed: Host, Content-Length and
 * Transfer-Encoding rules. 0, or an HTTP status (400, 413) with req->err_*.
 */
int mz__http_req_check(mz_http_conn *c);

/* http_response.c */

/** Append a complete response to c->out. `body` is not copied for HEAD. */
int mz__http_write_response(mz_http_conn *c, int status, const char *ctype, const char *body,
                            size_t body_len, const char *extra, size_t extra_len);

/** Append a JSON error response `{"error":{"code":..,"message":..}}` (the
    body comes from the codec). */
void mz__http_write_error(mz_http_conn *c, int status, const char *code, const char *message);
/** The same with extra "Name: value\r\n" header lines. */
void mz__http_write_error_with(mz_http_conn *c, int status, const char *code, const char *message,
                              const char *extra, size_t extra_len);

/** The reason phrase for a status code. */
const char *mz__http_reason(int status);

/* http_lua.c */

/**
 * Run the request as a task of the server's host: the host's request handler
 * gets the request table and returns one response record (see http_lua.c),
 * which is written when the task ends. `route` and `name` are NULL when
 * absent (an HTML page from static_dir has neither: req.page is set).
 */
void mz__http_dispatch_lua(mz_http_conn *c, const char *route, size_t route_len, const char *name,
                           size_t name_len);

/* http.c */

/** The request's task finished and its response is in c->out. */
void mz__http_request_done(mz_http_conn *c);

/** Flush the output, close, or switch reading on/off (for ws.c). */
void mz__http_flush(mz_http_conn *c);
void mz__http_close(mz_http_conn *c);
void mz__http_reading(mz_http_conn *c, int on);
/** A task on a connection ended: free the connection if it closed meanwhile. */
void mz__http_task_ended(mz_http_conn *c);

/* static.c */
/** Answer a path from static_dir: 0 not ours, 1 answered, 2 an HTML page read into
    req.body, which Lua answers (it adds the SSR data: see mizan.dispatch.ssr). */
int mz__static_answer(mz_http_conn *c, const char *path, size_t path_len);

/* ws.c */
uint64_t mz__ws_reserve_id(void);
int mz__ws_accept_key(const char *key, size_t n, char out[29]);
void mz__ws_start(mz_http_conn *c, mz_host *host, uint64_t id);
void mz__ws_process(mz_http_conn *c);
void mz__ws_closed(mz_http_conn *c);
/** The connection's unsent output changed (a write went out): recount it. */
void mz__ws_output_changed(mz_http_conn *c);
/**
 * The handshake's task ended with 101 on a connection that closed meanwhile:
 * Lua registered socket c->req.ws_id, which will never start; send the
 * server's host that socket's "close" event, as mz__ws_closed does.
 */
void mz__ws_abandoned(mz_http_conn *c);
void mz__ws_go_away(mz_http_conn *c);

#endif
