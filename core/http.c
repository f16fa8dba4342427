/*
 * The connection state machine.
 *
 *   IDLE --first byte--> HEAD --whole head, checked--> BODY --message complete--> BUSY
 *     ^                                                                          |
 *     +-------------------------- response queued ------------------------------+
 *
 * One request per connection runs at a time: while it is BUSY, reading stops
 * and pipelined bytes wait in the input buffer. When the task finishes, its
 * response joins the output buffer and parsing resumes; every response that
 * completes synchronously in the same pass joins the same write.
 *
 * Each phase has an absolute deadline on `timer` (trickling bytes does not
 * extend it), so a slow client never holds a descriptor past its timeout.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "http_conn.h"
#include "observe.h"

#define MZ_LINGER_MS 2000
#define MZ_READ_CHUNK 65536 /* the server's one read buffer */

static llhttp_settings_t parser_settings;

static void conn_process(mz_http_conn *c);
static void conn_close(mz_http_conn *c);
static void conn_flush(mz_http_conn *c);
static void set_reading(mz_http_conn *c, int on);

void mz_http_limits_default(mz_http_limits *l) {
  memset(l, 0, sizeof *l);
  l->max_output = 1024 * 1024;
}

/* ------------------------------------------------------------ parser callbacks */

static mz_http_conn *conn_of(llhttp_t *p) { return p->data; }

static int header_store(mz_http_conn *c) {
  mz_http_req *r = &c->req;
  if (!c->field.len) return 0;
  if (r->nheaders == r->capheaders) {
    int cap = r->capheaders ? r->capheaders * 2 : 16;
    mz_http_header *h = mz_pool_alloc(&c->pool, (size_t)cap * sizeof *h);
    if (!h) return -1;
    if (r->nheaders) memcpy(h, r->headers, (size_t)r->nheaders * sizeof *h);
    r->headers = h;
    r->capheaders = cap;
  }
  mz_http_header *h = &r->headers[r->nheaders++];
  char *name = mz_pool_strndup(&c->pool, c->field.data, c->field.len);
  char *value = mz_pool_strndup(&c->pool, c->value.data ? c->value.data : "", c->value.len);
  if (!name || !value) return -1;
  for (char *p = name; *p; p++)
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
  h->name = name;
  h->name_len = c->field.len;
  h->value = value;
  h->value_len = c->value.len;
  c->field.len = c->value.len = 0;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  mz_http_conn *c = conn_of(p);
  /* the url is parsed within one execute call, so `at` is one span */
  char *u = mz_pool_alloc(&c->pool, c->req.url_len + n + 1);
  if (!u) return -1;
  if (c->req.url_len) memcpy(u, c->req.url, c->req.url_len);
  memcpy(u + c->req.url_len, at, n);
  c->req.url_len += n;
  u[c->req.url_len] = 0;
  c->req.url = u;
  return 0;
}

/* Trailer fields of a chunked body arrive through the header callbacks
   after the head. They are counted against the head limit, with the head
   (one limit for all the fields a request sends), and dropped: nothing
   reads them, and keeping them would let a body bypass both limits. */
static int trailer_bytes(mz_http_conn *c, size_t n) {
  mz_http_req *r = &c->req;
  r->trailer_len += n;
  if (r->trailer_len > c->srv->limits.max_head || r->head_len > c->srv->limits.max_head - r->trailer_len) {
    r->status = 431;
    r->err_code = "headers_too_large";
    r->err_msg = "the request headers and trailers are larger than the limit";
    return -1;
  }
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  mz_http_conn *c = conn_of(p);
  if (c->req.in_trailers) return trailer_bytes(c, n);
  return mz_buf_append(&c->field, at, n) ? -1 : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  mz_http_conn *c = conn_of(p);
  if (c->req.in_trailers) return trailer_bytes(c, n);
  return mz_buf_append(&c->value, at, n) ? -1 : 0;
}

static int on_header_value_complete(llhttp_t *p) {
  mz_http_conn *c = conn_of(p);
  if (c->req.in_trailers) return trailer_bytes(c, 4); /* ": " and CRLF */
  return header_store(c);
}

/* Chunk extensions ("1;name=value") carry nothing we use either; they are
   dropped, and counted against the head limit too, so a body cannot stream
   unbounded bytes that no body limit sees. */
static int on_chunk_extension(llhttp_t *p, const char *at, size_t n) {
  mz_http_req *r = &conn_of(p)->req;
  r->chunk_ext_len += n;
  if (r->chunk_ext_len > conn_of(p)->srv->limits.max_head) {
    r->status = 413;
    r->err_code = "payload_too_large";
    r->err_msg = "the request's chunk extensions are larger than the limit";
    return -1;
  }
  return 0;
}

/* A chunk announced bigger than what the body may still take is refused at
   its size line, not after its bytes were read. */
static int on_chunk_header(llhttp_t *p) {
  mz_http_conn *c = conn_of(p);
  mz_http_req *r = &c->req;
  if (p->content_length > c->srv->limits.max_body - r->body.len) {
    r->status = 413;
    r->err_code = "payload_too_large";
    r->err_msg = "the request body is larger than the limit";
    return -1;
  }
  return 0;
}

static void arm(mz_http_conn *c, uint64_t ms);
static void timer_fired(uv_timer_t *t);

static int on_headers_complete(llhttp_t *p) {
  mz_http_conn *c = conn_of(p);
  mz_http_req *r = &c->req;
  if (header_store(c)) return -1;
  r->in_trailers = 1;
  r->method = llhttp_get_method(p);
  r->http_minor = llhttp_get_http_minor(p);
  if (llhttp_get_http_major(p) != 1) {
    r->status = 400;
    r->err_code = "bad_request";
    r->err_msg = "unsupported HTTP version";
    return -1;
  }
  r->is_head = r->method == HTTP_HEAD;
  if (mz__http_req_check(c)) return -1;
  int has_body = r->chunked || p->content_length > 0;
  if (has_body) {
    arm(c, c->srv->limits.body_timeout_ms);
    /* Tell the client to go on unless the body is already on its way. */
    if (r->expect_continue && r->http_minor >= 1 && !c->body_ready)
      mz_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  mz_http_conn *c = conn_of(p);
  mz_http_req *r = &c->req;
  if (r->body.len + n > c->srv->limits.max_body) {
    r->status = 413;
    r->err_code = "payload_too_large";
    r->err_msg = "the request body is larger than the limit";
    return -1;
  }
  return mz_buf_append(&r->body, at, n) ? -1 : 0;
}

static int on_message_complete(llhttp_t *p) {
  mz_http_conn *c = conn_of(p);
  c->req.keep_alive = llhttp_should_keep_alive(p);
  c->req.upgrade = llhttp_get_upgrade(p);
  /* Stop here, so that each message is dispatched before the next is parsed. */
  return HPE_PAUSED;
}

/* ------------------------------------------------------------ timers */

/* Deadlines are lazy: arming records the deadline, and the libuv timer only
   moves when it would otherwise fire too late. The timer never waits longer
   than the shortest phase timeout, so in the steady state of keep-alive
   traffic a request costs no timer-heap operation at all; an early wake-up
   just re-arms for the rest. */
static void timer_start(mz_http_conn *c, uint64_t ms) {
  uint64_t cap = c->srv->min_timeout_ms;
  if (ms > cap) ms = cap;
  c->timer_due = uv_now(c->srv->loop) + ms;
  uv_timer_start(&c->timer, timer_fired, ms, 0);
}

static void arm(mz_http_conn *c, uint64_t ms) {
  if (c->closing) return;
  c->deadline = uv_now(c->srv->loop) + ms;
  if (!c->timer_due || c->timer_due > c->deadline) timer_start(c, ms);
}

static void disarm(mz_http_conn *c) { c->deadline = 0; }

/* The earlier of the two deadlines, or 0 when neither is set. */
static uint64_t next_deadline(mz_http_conn *c) {
  uint64_t a = c->deadline, b = c->send_deadline;
  return !a ? b : !b ? a : a < b ? a : b;
}

static void phase_expired(mz_http_conn *c);

static void timer_fired(uv_timer_t *t) {
  mz_http_conn *c = t->data;
  uint64_t now = uv_now(c->srv->loop);
  c->timer_due = 0;
  if (c->send_deadline && now >= c->send_deadline) {
    fprintf(stderr, "mizan [info] closing %s: it did not read its response in time\n", c->ip);
    conn_close(c);
    return;
  }
  if (c->deadline && now >= c->deadline) {
    c->deadline = 0;
    phase_expired(c);
    if (c->closing) return;
  }
  uint64_t next = next_deadline(c);
  if (next) timer_start(c, next - now); /* else disarmed: idle until the next arm */
}

/* The current phase's deadline passed. */
static void phase_expired(mz_http_conn *c) {
  switch (c->state) {
    case MZ_CONN_HEAD:
    case MZ_CONN_BODY:
      /* Tell the client why, then close: it may be half-way through a body
         that we will never read. */
      c->close_after = 1;
      c->state = MZ_CONN_IDLE;
      mz__http_write_error(c, 408, "request_timeout", "the request took too long to arrive");
      set_reading(c, 0);
      conn_flush(c);
      break;
    default: /* keep-alive idle or linger: nothing to say */
      conn_close(c);
  }
}

/* ------------------------------------------------------------ records */

/* Connection records come from slabs of their own, apart from the heap
   their buffers live in: an idle connection gives its buffers back
   (sweep_idle), and with the records packed together the freed buffers
   leave whole pages that malloc_trim can return, instead of holes between
   records that stay resident. A slab is never unmapped (the most
   connections a process held, like nginx's connection array); it is
   process-wide memory, not a resource: nothing in it calls into Lua.
   Under AddressSanitizer every record is its own allocation, so the
   sanitizer still sees each record's lifetime. */
#if defined(__SANITIZE_ADDRESS__)
static mz_http_conn *conn_new(void) { return calloc(1, sizeof(mz_http_conn)); }
static void conn_delete(mz_http_conn *c) { free(c); }
#else
#define CONN_SLAB 64
typedef union conn_cell {
  union conn_cell *next;
  mz_http_conn conn;
} conn_cell;
static conn_cell *free_cells;

static mz_http_conn *conn_new(void) {
  if (!free_cells) {
    conn_cell *slab = mmap(NULL, CONN_SLAB * sizeof *slab, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slab == MAP_FAILED) return NULL;
    for (int i = CONN_SLAB - 1; i >= 0; i--) {
      slab[i].next = free_cells;
      free_cells = &slab[i];
    }
  }
  conn_cell *cell = free_cells;
  free_cells = cell->next;
  memset(&cell->conn, 0, sizeof cell->conn);
  return &cell->conn;
}

static void conn_delete(mz_http_conn *c) {
  conn_cell *cell = (conn_cell *)c;
  cell->next = free_cells;
  free_cells = cell;
}
#endif

/* ------------------------------------------------------------ close */

static void conn_free(mz_http_conn *c) {
  mz_buf_free(&c->in);
  mz_buf_free(&c->out);
  mz_buf_free(&c->wbuf);
  mz_buf_free(&c->field);
  mz_buf_free(&c->value);
  mz_buf_free(&c->req.body);
  mz_pool_dispose(&c->pool);
  free(c->wreq);
  conn_delete(c);
}

static void server_maybe_closed(mz_http_server *s);

static void handle_closed(uv_handle_t *h) {
  mz_http_conn *c = h->data;
  if (--c->open_handles) return;
  mz_http_server *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  /* A task still running holds a pointer to us; it frees us when it ends. */
  if (!c->task_running) conn_free(c);
  server_maybe_closed(s);
}

static void conn_close(mz_http_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  if (c->ws) mz__ws_closed(c);
  uv_close((uv_handle_t *)&c->tcp, handle_closed);
  uv_close((uv_handle_t *)&c->timer, handle_closed);
}

/* ------------------------------------------------------------ reading */

/* Every read lands in the server's one read buffer (libuv calls on_read
   right after on_alloc, so one buffer serves every connection of the loop),
   and only the bytes that came are kept, in the connection's own buffer:
   a connection holds what its client sent, never a read-sized buffer of
   its own. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  mz_http_conn *c = h->data;
  mz_buf *rb = &c->srv->read_buf;
  (void)suggested;
  if (!rb->cap && mz_buf_reserve(rb, MZ_READ_CHUNK)) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = rb->data;
  buf->len = rb->cap;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  mz_http_conn *c = st->data;
  if (nread == 0) return;
  c->idle_ticks = 0;
  if (nread < 0) {
    /* EOF or error: nothing more will arrive; a partial request is dropped */
    if (nread == UV_ENOBUFS) fprintf(stderr, "mizan [warn] out of memory reading from %s\n", c->ip);
    if (c->writing || c->out.len) {
      set_reading(c, 0);
      c->close_after = 1;
    } else {
      conn_close(c);
    }
    return;
  }
  if (c->state == MZ_CONN_LINGER) {
    c->in.len = c->in_off = 0; /* discard: we already answered */
    return;
  }
  if (c->in_off == c->in.len) c->in.len = c->in_off = 0;
  if (mz_buf_append(&c->in, buf->base, (size_t)nread)) {
    fprintf(stderr, "mizan [warn] out of memory reading from %s\n", c->ip);
    conn_close(c);
    return;
  }
  if (c->ws) mz__ws_process(c);
  else conn_process(c);
}

static void set_reading(mz_http_conn *c, int on) {
  if (c->closing || on == c->reading) return;
  if (on) uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  else uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = on;
}

/* ------------------------------------------------------------ writing */

static void on_shutdown(uv_shutdown_t *req, int status) {
  mz_http_conn *c = req->data;
  free(req); /* libuv is done with it, even when cancelled by a close */
  if (status || c->closing) {
    conn_close(c);
    return;
  }
  /* Lingering close: keep reading (and discarding) for a moment, so unread
     input does not make the kernel reset the connection before the client has
     read our answer. */
  c->state = MZ_CONN_LINGER;
  arm(c, MZ_LINGER_MS);
  set_reading(c, 1);
}

static void finish_close(mz_http_conn *c) {
  if (c->closing) return;
  set_reading(c, 0);
  /* once per connection, at its end: allocated then, freed by on_shutdown */
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req) {
    conn_close(c);
    return;
  }
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
    free(req);
    conn_close(c);
  }
}

static void on_write(uv_write_t *req, int status) {
  mz_http_conn *c = req->data;
  c->writing = 0;
  c->send_deadline = 0; /* the timer, when it fires, finds nothing due for it */
  c->wbuf.len = 0;
  if (c->ws) {
    mz_buf_free(&c->wbuf);
    mz__ws_output_changed(c);
  }
  if (c->closing) return;
  if (status) {
    conn_close(c);
    return;
  }
  conn_flush(c);
  /* output drained below the limit: read again */
  if (c->state != MZ_CONN_BUSY && !c->close_after) conn_process(c);
}

static void conn_flush(mz_http_conn *c) {
  if (c->closing || c->writing) return;
  if (c->out.len) {
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN) n = 0;
    if (n < 0) {
      conn_close(c);
      return;
    }
    if ((size_t)n < c->out.len) {
      /* the rest goes out asynchronously from wbuf; new output keeps
         accumulating in out */
      mz_buf tmp = c->wbuf;
      c->wbuf = c->out;
      c->out = tmp;
      mz_buf_consume(&c->wbuf, (size_t)n);
      c->out.len = 0;
      b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.len);
      if (!c->wreq && !(c->wreq = malloc(sizeof *c->wreq))) {
        conn_close(c);
        return;
      }
      c->wreq->data = c;
      if (uv_write(c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write)) {
        conn_close(c);
        return;
      }
      c->writing = 1;
      uint64_t ms = c->srv->limits.send_timeout_ms;
      c->send_deadline = uv_now(c->srv->loop) + ms;
      if (!c->timer_due || c->timer_due > c->send_deadline) timer_start(c, ms);
      return;
    }
    c->out.len = 0;
    if (c->out.cap > 256 * 1024 || c->ws) mz_buf_free(&c->out);
  }
  if (c->ws) mz__ws_output_changed(c);
  /* a WebSocket is always "busy" for HTTP's sake, but closes once its close frame is out */
  if (c->close_after && (c->state != MZ_CONN_BUSY || (c->ws && !c->task_running))) finish_close(c);
}

/* ------------------------------------------------------------ requests */

static void req_reset(mz_http_conn *c) {
  mz_http_req *r = &c->req;
  mz_buf body = r->body;
  body.len = 0;
  if (body.cap > 64 * 1024) mz_buf_free(&body);
  memset(r, 0, sizeof *r);
  r->body = body;
  mz_pool_clear(&c->pool);
  c->field.len = c->value.len = 0;
}

/* Answer a request the parser refused, and close afterwards. */
static void reject(mz_http_conn *c, int status, const char *code, const char *msg) {
  c->close_after = 1;
  c->req.keep_alive = 0;
  mz__http_write_error(c, status, code, msg);
  c->state = MZ_CONN_IDLE;
  disarm(c);
}

void mz__http_flush(mz_http_conn *c) { conn_flush(c); }
void mz__http_close(mz_http_conn *c) { conn_close(c); }
void mz__http_reading(mz_http_conn *c, int on) { set_reading(c, on); }
void mz__http_task_ended(mz_http_conn *c) {
  if (c->closing && !c->open_handles) conn_free(c);
}

void mz__http_request_done(mz_http_conn *c) {
  if (c->closing) {
    /* the connection went away while the task ran */
    if (!c->open_handles) conn_free(c);
    return;
  }
  if (c->upgrade_to) { /* the 101 is written: from now on this is a WebSocket */
    uint64_t id = c->upgrade_to;
    c->upgrade_to = 0;
    c->state = MZ_CONN_BUSY; /* never HTTP again */
    disarm(c);
    mz__ws_start(c, c->task.host ? c->task.host : c->srv->host, id); /* the host whose code accepted it */
    return;
  }
  c->state = MZ_CONN_IDLE;
  if (c->srv->draining) c->close_after = 1;
  if (!c->in_dispatch) conn_process(c);
}

/* The request's header `name` (lower case, as the parser keeps names), or NULL. */
static const mz_http_header *find_header(const mz_http_req *r, const char *name) {
  for (int i = 0; i < r->nheaders; i++)
    if (strcmp(r->headers[i].name, name) == 0) return &r->headers[i];
  return NULL;
}

/* 1 if the request carries the session cookie (valid or not: C does not
   judge it; such a caller only gets answers that are the same for everyone).
   Every Cookie field is looked at: a client may send several. */
static int has_session_cookie(const mz_http_server *s, mz_http_req *r) {
  size_t n = strlen(s->session_cookie);
  for (int i = 0; i < r->nheaders; i++) {
    mz_http_header *h = &r->headers[i];
    /* no name set: any cookie might be it, so take the careful scope */
    if (strcmp(h->name, "cookie") == 0 && (!n || memmem(h->value, h->value_len, s->session_cookie, n))) return 1;
  }
  return 0;
}

/* The cache fast path: a GET that Lua answered from the cache before is
   answered again from the cache without entering Lua (see cache.h). The
   alias names the route, the function or context, the raw query and the
   caller's kind: "anon" without a session cookie, "shared" with one (see
   mizan.cache.alias for which answers Lua records under each). */
static int try_cache(mz_http_conn *c, const char *route, size_t route_len, const char *name,
                     size_t name_len, const char *query, size_t query_len) {
  mz_cache *cache = mz_cache_get();
  mz_http_req *r = &c->req;
  if (!cache || !name || (r->method != HTTP_GET && r->method != HTTP_HEAD)) return 0;
  if (!((route_len == 4 && !memcmp(route, "call", 4)) || (route_len == 3 && !memcmp(route, "ctx", 3))))
    return 0;
  /* a page of another origin: Lua answers, with the CORS headers its
     origin may get (mizan.dispatch.cors); C has none to give */
  if (find_header(r, "origin")) return 0;
  const char *scope = has_session_cookie(c->srv, r) ? "shared" : "anon";
  size_t scope_len = strlen(scope);
  /* the generated client's schema hash ends the alias: Lua records only a
     client of the serving schema, so any other takes the Lua path, where its
     version skew is judged (mizan.dispatch.skew) */
  const mz_http_header *client = find_header(r, "x-mizan-client");
  size_t client_len = client ? client->value_len : 0;
  char buf[512];
  size_t n = route_len + 1 + name_len + 1 + query_len + 1 + scope_len + 1 + client_len;
  if (n > sizeof buf) return 0; /* long queries take the Lua path */
  char *w = buf;
  memcpy(w, route, route_len), w += route_len, *w++ = 0;
  memcpy(w, name, name_len), w += name_len, *w++ = 0;
  if (query_len) memcpy(w, query, query_len), w += query_len;
  *w++ = 0;
  memcpy(w, scope, scope_len), w += scope_len, *w++ = 0;
  if (client_len) memcpy(w, client->value, client_len);
  mz_buf *body = &c->srv->scratch;
  body->len = 0;
  if (!mz_cache_alias_answer(cache, buf, n, body, &r->label, &r->label_len)) return 0;
  r->cache = 'h';
  /* that client's hash is the serving schema's, so it is the answer's header */
  char extra[128];
  int extra_len = client && client_len < 64 ? snprintf(extra, sizeof extra, "X-Mizan-Schema: %.*s\r\n",
                                                        (int)client_len, client->value) : 0;
  mz__http_write_response(c, 200, "application/json", body->data, body->len, extra, (size_t)extra_len);
  mz__http_request_done(c);
  return 1;
}

int mz_http_server_set_static(mz_http_server *s, const char *dir) {
  s->static_root[0] = 0;
  if (!dir || !*dir) return 0;
  if (!realpath(dir, s->static_root)) {
    s->static_root[0] = 0;
    return -errno;
  }
  return 0;
}

void mz_http_server_set_overlay(mz_http_server *s, const char *error) {
  free(s->overlay);
  s->overlay = NULL;
  if (!error) return;
  mz_buf b;
  mz_buf_init(&b);
  mz_buf_puts(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>mizan: the app failed to reload</title>"
                  "<style>body{font:14px/1.5 monospace;background:#1b1b1b;color:#eee;padding:2em}"
                  "h1{color:#ff6b6b;font-size:18px}pre{white-space:pre-wrap;background:#2a2a2a;padding:1em}</style>"
                  "</head><body><h1>The app failed to reload</h1><p>The previous code keeps serving; "
                  "the next good save clears this page.</p><pre>");
  for (const char *p = error; *p; p++) {
    switch (*p) {
      case '<': mz_buf_puts(&b, "&lt;"); break;
      case '>': mz_buf_puts(&b, "&gt;"); break;
      case '&': mz_buf_puts(&b, "&amp;"); break;
      case '"': mz_buf_puts(&b, "&quot;"); break;
      default: mz_buf_putc(&b, *p);
    }
  }
  mz_buf_puts(&b, "</pre></body></html>");
  mz_buf_putc(&b, 0);
  s->overlay = b.data; /* ownership moves to the server */
}

static const mz_http_header *header(mz_http_req *r, const char *name) {
  for (int i = 0; i < r->nheaders; i++)
    if (strcmp(r->headers[i].name, name) == 0) return &r->headers[i];
  return NULL;
}

/* The protocol part of a WebSocket handshake (RFC 6455 §4.2.1), before Lua
   decides whether this caller may open one. 1 to go on; 0 when answered. */
static int upgrade_checks(mz_http_conn *c) {
  mz_http_req *r = &c->req;
  const mz_http_header *up = header(r, "upgrade"), *ver = header(r, "sec-websocket-version"),
                       *key = header(r, "sec-websocket-key");
  if (!r->upgrade || !up || strcasecmp(up->value, "websocket") != 0) {
    mz__http_write_error(c, 426, "bad_request", "this endpoint speaks WebSocket: send an Upgrade");
  } else if (r->method != HTTP_GET) {
    mz__http_write_error(c, 400, "bad_request", "a WebSocket handshake is a GET");
  } else if (!ver || strcmp(ver->value, "13") != 0) {
    c->close_after = 1;
    mz__http_write_error_with(c, 426, "bad_request", "only WebSocket version 13", "Sec-WebSocket-Version: 13\r\n",
                              27);
  } else if (!key || key->value_len != 24) {
    mz__http_write_error(c, 400, "bad_request", "a WebSocket handshake needs a Sec-WebSocket-Key");
  } else {
    r->ws_id = mz__ws_reserve_id();
    return 1;
  }
  mz__http_request_done(c);
  return 0;
}

/* GET <base>metrics: the Prometheus text of this process. */
static void answer_metrics(mz_http_conn *c) {
  mz_buf *body = &c->srv->scratch;
  body->len = 0;
  mz_observe_metrics(body, c->srv->nconns);
  mz_observe_ws_metrics(body, c->srv->ws_held, c->srv->ws_out_held);
  mz_observe_job_metrics(body);
  mz__http_write_response(c, 200, "text/plain; version=0.0.4; charset=utf-8", body->data, body->len, NULL, 0);
}

static int wants_html(mz_http_req *r) {
  for (int i = 0; i < r->nheaders; i++)
    if (strcmp(r->headers[i].name, "accept") == 0 && strstr(r->headers[i].value, "text/html")) return 1;
  return 0;
}

/* Route by path under the base path, then hand the request to Lua. C answers
   only what needs no decision: paths outside the API, and cache hits. */
static void dispatch(mz_http_conn *c) {
  mz_http_server *s = c->srv;
  mz_http_req *r = &c->req;
  c->state = MZ_CONN_BUSY;
  disarm(c);
  const char *path = r->url ? r->url : "";
  size_t plen = r->url_len;
  const char *q = memchr(path, '?', plen);
  if (q) plen = (size_t)(q - path);
  if (plen < s->base_len || memcmp(path, s->base_path, s->base_len) != 0) {
    if (!s->overlay) {
      int st = mz__static_answer(c, path, plen);
      if (st == 1) {
        mz__http_request_done(c);
        return;
      }
      if (st == 2) { /* an HTML page: Lua answers it, with this user's global context */
        r->page = 1;
        c->in_dispatch = 1;
        mz__http_dispatch_lua(c, NULL, 0, NULL, 0);
        c->in_dispatch = 0;
        return;
      }
    }
    if (s->overlay && wants_html(r))
      mz__http_write_response(c, 500, "text/html; charset=utf-8", s->overlay, strlen(s->overlay), NULL, 0);
    else
      mz__http_write_error(c, 404, "not_found", "no such path");
    mz__http_request_done(c);
    return;
  }
  const char *rest = path + s->base_len, *end = path + plen;
  const char *slash = memchr(rest, '/', (size_t)(end - rest));
  const char *route = rest, *name = NULL;
  size_t route_len = slash ? (size_t)(slash - rest) : (size_t)(end - rest), name_len = 0;
  if (slash && slash + 1 < end) {
    name = slash + 1;
    name_len = (size_t)(end - name);
    if (name[name_len - 1] == '/') name_len--; /* the trailing slash is optional */
  }
  /* never a label from the URL: Lua's record names the registered function
     or context; what it does not name counts under one fixed label */
  r->label = "(unknown)";
  r->label_len = 9;
  int observe = (route_len == 7 && !memcmp(route, "metrics", 7)) || (route_len == 6 && !memcmp(route, "health", 6));
  if (s->observe_only && !observe) {
    mz__http_write_error(c, 404, "not_found", "this address serves only health and metrics");
    mz__http_request_done(c);
    return;
  }
  if (route_len == 2 && !memcmp(route, "ws", 2) && !name) {
    if (!upgrade_checks(c)) return;
  }
  if (route_len == 7 && !memcmp(route, "metrics", 7) && !name) {
    r->label = "metrics";
    r->label_len = 7;
    if (s->metrics) answer_metrics(c);
    else mz__http_write_error(c, 404, "not_found", "metrics are switched off here");
    mz__http_request_done(c);
    return;
  }
  if (try_cache(c, route, route_len, name, name_len, q ? q + 1 : NULL, q ? (size_t)(r->url + r->url_len - q - 1) : 0))
    return;
  c->in_dispatch = 1;
  mz__http_dispatch_lua(c, route, route_len, name, name_len);
  c->in_dispatch = 0;
}

static void conn_process(mz_http_conn *c) {
  mz_http_server *s = c->srv;
again:;
  int backpressure = 0;
  while (!c->closing && c->state != MZ_CONN_BUSY && !c->close_after) {
    if (c->out.len + c->wbuf.len > s->limits.max_output) { /* let the client read first */
      backpressure = 1;
      break;
    }
    const char *p = c->in.data + c->in_off;
    size_t avail = c->in.len - c->in_off;
    if (c->state == MZ_CONN_IDLE) {
      /* tolerate stray CRLFs between messages (RFC 9112 §2.2) */
      while (avail && (*p == '\r' || *p == '\n')) p++, avail--, c->in_off++;
      if (!avail) break;
      c->state = MZ_CONN_HEAD;
      c->requests++;
      c->head_scanned = 0;
      arm(c, s->limits.header_timeout_ms);
    }
    if (c->state == MZ_CONN_HEAD) {
      /* resume a little before where the last scan stopped: the blank line
         may straddle the two reads */
      size_t from = c->head_scanned > 3 ? c->head_scanned - 3 : 0;
      size_t head = mz__http_head_end(p, avail, from);
      /* only a head still incomplete: a complete one's lines are checked
         (llhttp refuses a CR that no LF follows), but bare-CR "lines"
         would never complete it and it would wait for its timeout */
      if (!head && mz__http_bare_cr(p, avail, from)) {
        reject(c, 400, "bad_request", "a bare CR in the request head");
        break;
      }
      c->head_scanned = head ? 0 : avail;
      if (!head || head > s->limits.max_head) {
        size_t seen = head ? head : avail;
        if (seen > s->limits.max_head) {
          if (!mz__http_has_line(p, s->limits.max_head))
            reject(c, 414, "uri_too_long", "the request line is longer than the limit");
          else
            reject(c, 431, "headers_too_large", "the request headers are larger than the limit");
        }
        break; /* wait for the rest of the head */
      }
      if (mz__http_head_check(p, head)) {
        reject(c, 400, "bad_request", "malformed request head");
        break;
      }
      req_reset(c);
      c->req.head_len = head;
      c->req.start_ns = uv_hrtime();
      c->body_ready = avail - head;
      c->state = MZ_CONN_BODY;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, p, avail);
    if (e == HPE_OK) {
      c->in_off = c->in.len; /* all consumed: the body continues in the next read */
      break;
    }
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
      c->in_off += (size_t)(llhttp_get_error_pos(&c->parser) - p);
      if (e == HPE_PAUSED_UPGRADE || c->req.upgrade) {
        /* The bytes after an upgrade request are not HTTP: either it becomes
           a WebSocket, or it is answered and closed. */
        c->req.upgrade = 1;
        c->req.keep_alive = 0;
      } else {
        llhttp_resume(&c->parser);
      }
      dispatch(c);
      continue;
    }
    mz_http_req *r = &c->req;
    if (r->status) reject(c, r->status, r->err_code, r->err_msg);
    else reject(c, 400, "bad_request", llhttp_get_error_reason(&c->parser));
    break;
  }
  if (c->closing || c->ws) return; /* a WebSocket now: ws.c reads and flushes it */
  if (c->in_off == c->in.len) c->in.len = c->in_off = 0;
  if (c->state == MZ_CONN_IDLE && !c->close_after && c->in.len == 0)
    arm(c, s->limits.keepalive_timeout_ms);
  conn_flush(c);
  if (c->closing) return;
  /* The flush may have drained the output at once: go on with the requests
     still buffered; otherwise on_write resumes us when the client reads. */
  if (backpressure && c->out.len + c->wbuf.len <= s->limits.max_output) goto again;
  set_reading(c, c->state != MZ_CONN_BUSY && !c->close_after && c->state != MZ_CONN_LINGER &&
                     c->out.len + c->wbuf.len <= s->limits.max_output);
}

/* ------------------------------------------------------------ accepting */

/* A new connection on `fd`, just accepted; the connection owns it now. */
static void conn_open(mz_http_server *s, int fd) {
  mz_http_conn *c = conn_new();
  if (!c) {
    close(fd);
    return;
  }
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  mz_pool_init(&c->pool);
  llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
  c->parser.data = c;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_tcp_open(&c->tcp, fd)) {
    close(fd);
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  strcpy(c->ip, "unknown");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof c->ip);
    else if (ss.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof c->ip);
  }
  /* a new connection must start its request within the header timeout;
     one that never sends a byte is closed without an answer, as nginx does */
  c->state = MZ_CONN_IDLE;
  arm(c, s->limits.header_timeout_ms);
  set_reading(c, 1);
}

static void on_listener(uv_poll_t *p, int status, int events);

static void accept_resume(uv_timer_t *t) {
  mz_http_server *s = t->data;
  if (!s->draining) uv_poll_start(&s->listener, UV_READABLE, on_listener);
}

/* Accepting failed for want of descriptors (or memory). The connections we
   have go on; the new ones wait in the kernel's backlog, where they are
   neither dropped nor spun on: accepting pauses for a moment and resumes,
   so they are taken once some descriptors are free. One log line per
   burst says so, with the limit to raise. */
static void accept_failed(mz_http_server *s, int err) {
  uv_poll_stop(&s->listener);
  uv_timer_start(&s->accept_timer, accept_resume, 100, 0);
  uint64_t now = uv_now(s->loop);
  s->accept_errors++;
  if (s->accept_logged_at && now - s->accept_logged_at < 10000) return;
  s->accept_logged_at = now;
  if (err == EMFILE || err == ENFILE) {
    struct rlimit rl;
    long lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : -1;
    fprintf(stderr,
            "mizan [warn] out of file descriptors (%s; limit %ld, %zu connections open): "
            "new connections wait in the backlog until some close",
            err == EMFILE ? "this process" : "the whole system", lim, s->nconns);
    if (s->accept_errors > 1) fprintf(stderr, " (%llu pauses since the last report)", (unsigned long long)s->accept_errors);
    fputc('\n', stderr);
  } else {
    fprintf(stderr, "mizan [warn] accepting connections failed (%s); retrying\n", strerror(err));
  }
  s->accept_errors = 0;
}

/* The listening socket is readable: take what waits, a bounded number per
   loop turn so the connections we have are not starved by a flood. */
static void on_listener(uv_poll_t *p, int status, int events) {
  mz_http_server *s = p->data;
  (void)events;
  if (s->draining) return;
  if (status < 0) {
    accept_failed(s, -status);
    return;
  }
  for (int i = 0; i < 256; i++) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      conn_open(s, fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    accept_failed(s, errno);
    return;
  }
}

/* Idle keep-alive connections give their memory back, as nginx's do: one
   idle through two ticks of the date timer (1 to 2 s) frees its request
   pool and its buffers and keeps only its record; its next request
   allocates them again. Done on the tick, not as each request ends, so a
   connection in steady use pays nothing for it. */
static void sweep_idle(mz_http_server *s) {
  size_t freed = 0;
  for (mz_http_conn *c = s->conns; c; c = c->next) {
    if (c->state != MZ_CONN_IDLE || c->closing || c->writing || c->task_running || c->ws || c->upgrade_to ||
        c->in_off != c->in.len || c->out.len) {
      c->idle_ticks = 0;
      continue;
    }
    if (++c->idle_ticks != 2) continue; /* not yet, or already given back */
    req_reset(c); /* nothing of the last request is read after it is done */
    freed += c->in.cap + c->out.cap + c->wbuf.cap + c->field.cap + c->value.cap + c->req.body.cap +
             (c->pool.head ? 4096 : 0);
    mz_pool_dispose(&c->pool);
    mz_buf_free(&c->req.body);
    mz_buf_free(&c->in);
    c->in_off = 0;
    mz_buf_free(&c->out);
    mz_buf_free(&c->wbuf);
    mz_buf_free(&c->field);
    mz_buf_free(&c->value);
    free(c->wreq); /* not writing: no write request in flight */
    c->wreq = NULL;
  }
  /* freed blocks between live ones stay resident until malloc is told to
     give their pages back */
  if (freed > (1u << 20)) malloc_trim(0);
}

static void update_date(uv_timer_t *t) {
  mz_http_server *s = t->data;
  sweep_idle(s);
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

int mz_http_server_init(mz_http_server *s, uv_loop_t *loop, mz_host *host,
                        const mz_http_limits *limits, const char *base_path) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->host = host;
  s->limits = *limits;
  snprintf(s->base_path, sizeof s->base_path, "%s", base_path);
  s->base_len = strlen(s->base_path);
  mz_buf_init(&s->static_buf);
  uint64_t m = limits->header_timeout_ms;
  if (limits->body_timeout_ms < m) m = limits->body_timeout_ms;
  if (limits->keepalive_timeout_ms < m) m = limits->keepalive_timeout_ms;
  s->min_timeout_ms = m ? m : 1;
  mz_buf_init(&s->scratch);
  llhttp_settings_init(&parser_settings);
  parser_settings.on_url = on_url;
  parser_settings.on_header_field = on_header_field;
  parser_settings.on_header_value = on_header_value;
  parser_settings.on_header_value_complete = on_header_value_complete;
  parser_settings.on_headers_complete = on_headers_complete;
  parser_settings.on_body = on_body;
  parser_settings.on_chunk_header = on_chunk_header;
  parser_settings.on_chunk_extension_name = on_chunk_extension;
  parser_settings.on_chunk_extension_value = on_chunk_extension;
  parser_settings.on_message_complete = on_message_complete;
  int r = uv_timer_init(loop, &s->date_timer);
  if (r) return r;
  s->date_timer.data = s;
  update_date(&s->date_timer);
  uv_timer_start(&s->date_timer, update_date, 1000, 1000);
  uv_unref((uv_handle_t *)&s->date_timer);
  s->listen_fd = -1;
  if ((r = uv_timer_init(loop, &s->accept_timer))) return r;
  s->accept_timer.data = s; /* active only while accepting is paused */
  return 0;
}

/* Split "host:port", "[v6]:port" or ":port". */
static int parse_addr(const char *addr, struct sockaddr_storage *ss) {
  char host[128];
  const char *colon = strrchr(addr, ':');
  if (!colon) return UV_EINVAL;
  size_t hl = (size_t)(colon - addr);
  if (hl >= sizeof host) return UV_EINVAL;
  memcpy(host, addr, hl);
  host[hl] = 0;
  char *endp;
  long port = strtol(colon + 1, &endp, 10);
  if (*endp || port < 0 || port > 65535 || endp == colon + 1) return UV_EINVAL;
  if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
    host[hl - 1] = 0;
    return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss);
  }
  return uv_ip4_addr(hl ? host : "0.0.0.0", (int)port, (struct sockaddr_in *)ss);
}

int mz_http_bind(const char *addr, int reuseport, int *fd_out) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  int r = parse_addr(addr, &ss);
  if (r) return r;
  /* libuv 1.44 has no SO_REUSEPORT flag, so the socket is made by hand */
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  socklen_t sl = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
    r = -errno;
    close(fd);
    return r;
  }
  *fd_out = fd;
  return 0;
}

static void listener_closed(uv_handle_t *h);

/* libuv's own accept loop is not used: when it runs out of descriptors it
   accepts and closes whatever waits, silently, and the clients see their
   connections cut. on_listener pauses instead, and says so. */
int mz_http_server_open(mz_http_server *s, int fd) {
  int r = uv_poll_init_socket(s->loop, &s->listener, fd);
  if (r) return r;
  s->listener.data = s;
  s->listening = 1; /* the handle is open: a drain waits for its close */
  if ((r = uv_poll_start(&s->listener, UV_READABLE, on_listener))) {
    /* the descriptor stays the caller's (listen_fd is still -1): only the
       handle closes, and `listening` clears in its close callback */
    uv_close((uv_handle_t *)&s->listener, listener_closed);
    return r;
  }
  s->listen_fd = fd;
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  return 0;
}

int mz_http_server_listen(mz_http_server *s, const char *addr, int reuseport) {
  int fd, r = mz_http_bind(addr, reuseport, &fd);
  if (r) return r;
  if ((r = mz_http_server_open(s, fd))) close(fd);
  return r;
}

/* ------------------------------------------------------------ draining */

static void server_handle_closed(uv_handle_t *h) {
  mz_http_server *s = h->data;
  if (--s->open_handles == 0 && s->closed) s->closed(s);
}

/* Once draining, the listener is closed and the last connection is gone,
   close the server's own timers; `closed` runs after the last of them. */
static void server_maybe_closed(mz_http_server *s) {
  if (!s->draining || s->nconns || s->listening || s->open_handles) return;
  s->open_handles = 3;
  s->drain_timer.data = s;
  s->date_timer.data = s;
  s->accept_timer.data = s;
  uv_close((uv_handle_t *)&s->accept_timer, server_handle_closed);
  uv_close((uv_handle_t *)&s->drain_timer, server_handle_closed);
  uv_close((uv_handle_t *)&s->date_timer, server_handle_closed);
  mz_buf_free(&s->scratch);
  mz_buf_free(&s->static_buf);
  mz_buf_free(&s->read_buf);
  free(s->overlay);
  s->overlay = NULL;
}

static void drain_deadline(uv_timer_t *t) {
  mz_http_server *s = t->data;
  fprintf(stderr, "mizan [warn] drain deadline reached: closing %zu connection(s)\n", s->nconns);
  for (mz_http_conn *c = s->conns; c; c = c->next) conn_close(c);
}

static void listener_closed(uv_handle_t *h) {
  mz_http_server *s = h->data;
  if (s->listen_fd >= 0) close(s->listen_fd);
  s->listen_fd = -1;
  s->listening = 0;
  server_maybe_closed(s);
}

static void peer_closed(mz_http_server *s) { (void)s; }

/* Stop accepting and finish. `last` says whether this process is the last
   holder of the listening socket (a real shutdown) or one of several (a
   worker retired by a reload, whose successors accept on the same socket). */
static void drain(mz_http_server *s, void (*closed)(mz_http_server *), int last) {
  if (s->draining) return;
  /* the observe listener is this worker's own (SO_REUSEPORT): its queue is
     nobody else's, so it is taken in even when retiring */
  if (s->observe_peer) drain(s->observe_peer, peer_closed, 1);
  s->draining = 1;
  s->closed = closed;
  uv_timer_init(s->loop, &s->drain_timer);
  s->drain_timer.data = s;
  uv_timer_start(&s->drain_timer, drain_deadline, s->limits.drain_timeout_ms, 0);
  uv_unref((uv_handle_t *)&s->drain_timer);
  uv_timer_stop(&s->accept_timer);
  if (s->listen_fd >= 0) {
    /* The kernel has completed the handshake of whatever waits in the
       backlog, and closing the last copy of the listener would reset those
       connections: the last holder takes them in first; they are answered
       like any idle connection below. A retiring worker leaves them to
       the workers that replace it (they run the new code). */
    for (int i = 0; last && i < 65536; i++) {
      int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) conn_open(s, fd);
      else if (errno != EINTR && errno != ECONNABORTED) break; /* EAGAIN: empty; EMFILE: no room */
    }
    /* `listening` stays set until the close callback: it counts as open */
    uv_close((uv_handle_t *)&s->listener, listener_closed);
  }
  for (mz_http_conn *c = s->conns, *next; c; c = next) {
    next = c->next;
    int idle = c->state == MZ_CONN_IDLE && !c->writing && !c->out.len && c->in.len == c->in_off;
    /* Idle connections get a last moment: one accepted just now may have its
       request in the socket, unread; it is answered (with Connection: close)
       rather than dropped. A retiring worker waits longer for a connection
       that has not sent its first request yet: its client connected to us
       and will send it (the header timeout, within the drain deadline);
       nobody else can answer it. Busy ones close after their response. */
    if (c->ws) mz__ws_go_away(c);
    else if (idle && !last && !c->requests) continue;
    else if (idle) arm(c, 100);
    else c->close_after = 1;
  }
  server_maybe_closed(s); /* a server that never listened and has no connections */
}

void mz_http_server_drain(mz_http_server *s, void (*closed)(mz_http_server *)) { drain(s, closed, 1); }

void mz_http_server_retire(mz_http_server *s, void (*closed)(mz_http_server *)) { drain(s, closed, 0); }
