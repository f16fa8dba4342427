/*
 * mz_ws: WebSocket (RFC 6455) on an upgraded HTTP connection.
 *
 * C does the protocol: the handshake, frame parsing, unmasking, fragment
 * assembly, UTF-8 checks across fragments, size limits, ping/pong, the close
 * handshake, idle pings and output backpressure. Lua sees whole text
 * messages (one task at a time per socket, reading paused meanwhile) and a
 * close event, and sends with mizan.ws.send / send_many / close.
 *
 * Failures close with the RFC's codes: 1002 protocol error, 1003 binary
 * data (the channel protocol is JSON text), 1007 invalid UTF-8, 1008 a
 * client that does not read, 1009 a message over the limit, 1013 (try
 * again later) when the worker's budget for unfinished input is spent:
 * the message itself may be fine, the server is busy.
 *
 * The frames themselves are decoded by ws_frame.c, which knows nothing of
 * connections; this file moves bytes and acts on its events.
 *
 * Every socket belongs to the host whose code accepted it (host.h, THE
 * OWNERSHIP RULE): its messages and its close event run on that host, and
 * Lua finds it by id in that host's registry only. When the host retires (a
 * reload put newer code in its place), each of its sockets is closed with
 * 1012 "service restart": the client reconnects, reaching the new code, and
 * subscribes again. When the host closes, a socket still finishing its close
 * handshake is cut, and a close event not delivered yet is dropped.
 */
#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_conn.h"
#include "ws_frame.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_MESSAGE (1024 * 1024)
#define MAX_OUTPUT (4 * 1024 * 1024)
#define PING_MS 30000

typedef struct mz_ws_registry mz_ws_registry;

struct mz_ws {
  uint64_t id;
  mz_ws_decoder dec; /* frames in, messages out (ws_frame.c) */
  size_t held;      /* input bytes counted in srv->ws_held */
  size_t out_held;  /* unsent output counted in srv->ws_out_held */
  int close_sent;
  uint64_t last_seen; /* uv_now when a frame last arrived */
  uv_timer_t pinger;
  mz_task task;
  int busy;         /* a message is being handled in Lua */
  mz_ws_registry *reg; /* the host's registry it is in; NULL once detached */
  mz_ws *hnext;
};

/* ------------------------------------------------------------ id -> socket */

#define NBUCKETS 4096


/* One host's sockets, by id: a resource of that host. */
struct mz_ws_registry {
  mz_resource res; /* first: the host's list links it */
  mz_host *host;
  mz_ws *buckets[NBUCKETS];
};

static uint64_t next_id = 1; /* ids are unique in the process, across hosts */

static mz_ws **bucket(mz_ws_registry *reg, uint64_t id) { return &reg->buckets[id % NBUCKETS]; }

static mz_http_conn *find_conn(lua_State *L, uint64_t id) {
  mz_ws_registry *reg = mz_host_from(L)->ws_registry;
  if (!reg) return NULL;
  for (mz_ws *w = *bucket(reg, id); w; w = w->hnext)
    if (w->id == id) return (mz_http_conn *)w->task.data;
  return NULL;
}

static void unregister(mz_ws *w) {
  if (!w->reg) return;
  for (mz_ws **pp = bucket(w->reg, w->id); *pp; pp = &(*pp)->hnext) {
    if (*pp == w) {
      *pp = w->hnext;
      break;
    }
  }
  w->reg = NULL;
}

static void send_close(mz_http_conn *c, int code, const char *reason);

/* The retire hook: newer code serves now; every socket is told to come back. */
static void registry_retire(mz_resource *r) {
  mz_ws_registry *reg = (mz_ws_registry *)r;
  for (int i = 0; i < NBUCKETS; i++) {
    for (mz_ws *w = reg->buckets[i], *next; w; w = next) {
      next = w->hnext; /* closing may unregister w, never another socket */
      mz_http_conn *c = w->task.data;
      send_close(c, 1012, "service restart");
    }
  }
}

/* The close hook: the sockets left (a peer that never answered the close)
   are cut, detached first so that nothing reaches the closing host. */
static void registry_close(mz_resource *r) {
  mz_ws_registry *reg = (mz_ws_registry *)r;
  reg->host->ws_registry = NULL;
  for (int i = 0; i < NBUCKETS; i++) {
    mz_ws *w = reg->buckets[i];
    reg->buckets[i] = NULL;
    while (w) {
      mz_ws *next = w->hnext;
      w->reg = NULL;
      mz__http_close((mz_http_conn *)w->task.data);
      w = next;
    }
  }
  free(reg);
}

static mz_ws_registry *registry_of(mz_host *h) {
  if (h->ws_registry) return h->ws_registry;
  mz_ws_registry *reg = calloc(1, sizeof *reg);
  if (!reg) return NULL;
  reg->host = h;
  reg->res.retire = registry_retire;
  reg->res.close = registry_close;
  mz_host_own(h, &reg->res);
  h->ws_registry = reg;
  return reg;
}

uint64_t mz__ws_reserve_id(void) { return next_id++; }

/* ------------------------------------------------------------ handshake */

int mz__ws_accept_key(const char *key, size_t n, char out[29]) {
  unsigned char sha[SHA_DIGEST_LENGTH];
  char buf[128];
  if (n == 0 || n > 64) return -1;
  memcpy(buf, key, n);
  memcpy(buf + n, WS_GUID, sizeof WS_GUID - 1);
  SHA1((unsigned char *)buf, n + sizeof WS_GUID - 1, sha);
  EVP_EncodeBlock((unsigned char *)out, sha, SHA_DIGEST_LENGTH);
  return 0;
}

/* ------------------------------------------------------------ sending */

static int frame_header(char *h, int opcode, size_t n) {
  h[0] = (char)(0x80 | opcode);
  if (n < 126) {
    h[1] = (char)n;
    return 2;
  }
  if (n < 65536) {
    h[1] = 126;
    h[2] = (char)(n >> 8);
    h[3] = (char)n;
    return 4;
  }
  h[1] = 127;
  for (int i = 0; i < 8; i++) h[2 + i] = (char)((uint64_t)n >> (56 - 8 * i));
  return 10;
}

/* The output budget: what a worker's WebSockets hold unsent, all together,
   may reach limits.ws_buffer (the input budget's figure, counted apart).
   A socket whose client reads keeps next to nothing unsent (the kernel
   takes it), so once the worker is past the figure, a socket that is still
   behind with its earlier output is the one dropped: a broadcast to many
   clients that stopped reading cannot multiply into unbounded memory. A
   socket that is caught up still takes its frame, so the overshoot is at
   most one frame per socket, and that socket is then behind itself. */
void mz__ws_output_changed(mz_http_conn *c) {
  mz_ws *w = c->ws;
  if (!w) return;
  size_t now = c->out.len + c->wbuf.len;
  c->srv->ws_out_held = c->srv->ws_out_held - w->out_held + now;
  w->out_held = now;
}

/* Queue a frame; a client that does not read is dropped: past its own
   limit, or while behind when the worker's output budget is full. */
static int send_frame(mz_http_conn *c, int opcode, const char *p, size_t n) {
  if (c->closing || !c->ws || c->ws->close_sent) return -1;
  mz_http_server *s = c->srv;
  size_t pending = c->out.len + c->wbuf.len;
  if (pending + n > MAX_OUTPUT || (pending && s->ws_out_held + n > s->limits.ws_buffer)) {
    fprintf(stderr, "mizan [info] closing websocket %llu: it does not read (1008)\n",
            (unsigned long long)c->ws->id);
    c->ws->close_sent = 1;
    mz__http_close(c);
    return -1;
  }
  char h[10];
  int hl = frame_header(h, opcode, n);
  if (mz_buf_append(&c->out, h, (size_t)hl) || mz_buf_append(&c->out, p, n)) return -1;
  mz__ws_output_changed(c);
  return 0;
}

static void send_close(mz_http_conn *c, int code, const char *reason) {
  if (!c->ws || c->ws->close_sent) return;
  char body[125];
  size_t n = 0;
  if (code) {
    body[0] = (char)(code >> 8);
    body[1] = (char)code;
    n = 2;
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 123) rl = 123;
    if (rl) memcpy(body + 2, reason, rl);
    n += rl;
  }
  send_frame(c, 0x8, body, n);
  c->ws->close_sent = 1;
  c->close_after = 1; /* the connection ends once the close frame is out */
  mz__http_reading(c, 0);
  mz__http_flush(c);
}

/* ------------------------------------------------------------ receiving */

static void ws_task_done(mz_task *t, lua_State *co, int ok);

/* Hand a complete text message to Lua; reading pauses until it is handled. */
static void deliver(mz_http_conn *c, const char *p, size_t n) {
  mz_ws *w = c->ws;
  if (!w->reg) return; /* detached: its host is gone */
  mz_host *h = w->reg->host;
  lua_State *co = mz_task_acquire(h, &w->task, ws_task_done, c);
  lua_rawgeti(co, LUA_REGISTRYINDEX, h->ws_ref);
  lua_pushliteral(co, "message");
  lua_pushnumber(co, (lua_Number)w->id);
  lua_pushlstring(co, p, n);
  w->busy = 1;
  c->task_running = 1;
  mz_task_resume(&w->task, 3);
}

static void ws_task_done(mz_task *t, lua_State *co, int ok) {
  mz_http_conn *c = t->data;
  if (!ok) fprintf(stderr, "mizan [error] websocket handler failed: %s\n", lua_tostring(co, -1));
  mz_task_release(t);
  c->task_running = 0;
  if (c->closing) {
    mz__http_task_ended(c); /* frees a connection that closed meanwhile */
    return;
  }
  c->ws->busy = 0;
  mz__ws_process(c);
}

/* The input budget: every WebSocket of one server (one per worker loop)
   together may hold limits.ws_buffer bytes of input that is not a whole
   message yet: the unfinished message plus the input buffered and not yet
   consumed. Only bytes that arrived count: a frame header announcing a
   large payload costs its 14 bytes, not the payload it promises (a header
   over the message limit is refused by mz_ws_frame_header, as 1009).
   Buffers grow geometrically, so the memory behind the budget is at most
   about twice that, plus one read each. */

/* What this socket holds against the budget now: its unfinished message
   and its buffered, unconsumed input. */
static size_t committed(mz_http_conn *c) {
  mz_ws_decoder *d = &c->ws->dec;
  return (d->msg_opcode ? d->msg.len : 0) + (c->in.len - c->in_off);
}

/* Record what this socket holds now; 0, or -1 when that takes the server
   past its budget (what it held before stays counted until it fails). */
static int account(mz_http_conn *c, int check) {
  mz_ws *w = c->ws;
  mz_http_server *s = c->srv;
  size_t now = committed(c), others = s->ws_held - w->held, budget = s->limits.ws_buffer;
  if (check && now > w->held && (others > budget || now > budget - others)) return -1;
  s->ws_held = others + now;
  w->held = now;
  return 0;
}

/* The socket holds nothing any more (it failed or closed). */
static void release(mz_http_conn *c) {
  mz_ws *w = c->ws;
  c->srv->ws_held -= w->held;
  w->held = 0;
}

/* Close with `code` and drop the input: nothing more is read from this socket. */
static void fail(mz_http_conn *c, int code, const char *why) {
  send_close(c, code, why);
  if (!c->ws) return;
  c->in.len = c->in_off = 0;
  c->ws->dec.msg_opcode = 0;
  c->ws->dec.pending = 0;
  mz_buf_free(&c->ws->dec.msg);
  release(c);
}

/* 1013, not 1009: the message may be fine; the server is full for now.
   One log line per 10 s at most: a flood of sockets must not flood the log. */
static void over_budget(mz_http_conn *c) {
  mz_http_server *s = c->srv;
  uint64_t now = uv_now(s->loop);
  s->ws_busy_closes++;
  if (!s->ws_busy_logged_at || now - s->ws_busy_logged_at >= 10000) {
    fprintf(stderr, "mizan [warn] closing websocket %llu: the worker's WebSocket input budget (%zu bytes) is full (1013)",
            (unsigned long long)c->ws->id, s->limits.ws_buffer);
    if (s->ws_busy_closes > 1)
      fprintf(stderr, " (%llu more since the last report)", (unsigned long long)s->ws_busy_closes - 1);
    fputc('\n', stderr);
    s->ws_busy_logged_at = now;
    s->ws_busy_closes = 0;
  }
  fail(c, 1013, "server busy: try again later");
}

void mz__ws_process(mz_http_conn *c) {
  mz_ws *w = c->ws;
  while (!c->closing && !w->busy && !w->close_sent) {
    size_t avail = c->in.len - c->in_off;
    mz_ws_event ev;
    size_t used = avail ? mz_ws_decode(&w->dec, (unsigned char *)c->in.data + c->in_off, avail, &ev) : 0;
    if (avail && ev.kind == MZ_WS_ERROR) return fail(c, ev.code, ev.why);
    if (!used) {
      if (!avail) w->dec.pending = 0;
      /* wait for the rest of the frame: the bytes it has so far count */
      if (account(c, 1)) return over_budget(c);
      break;
    }
    c->in_off += used;
    w->last_seen = uv_now(c->srv->loop);
    switch (ev.kind) {
      case MZ_WS_PING: send_frame(c, 0xA, ev.data, ev.len); break; /* pong from C */
      case MZ_WS_CLOSE: send_close(c, ev.code ? 1000 : 0, NULL); break; /* the close handshake */
      case MZ_WS_TEXT: deliver(c, ev.data, ev.len); break;
      case MZ_WS_NONE: /* a fragment joined the message */
        if (account(c, 1)) return over_budget(c);
        break;
      default: break; /* pong: the peer is alive, which last_seen notes */
    }
  }
  if (c->closing) return;
  if (c->in_off == c->in.len) {
    /* an idle socket holds no buffers: thousands of quiet subscribers stay small */
    mz_buf_free(&c->in);
    c->in_off = 0;
  } else if (c->in_off && w->dec.pending) {
    /* a frame is still arriving: keep only its bytes, not what came before */
    mz_buf_consume(&c->in, c->in_off);
    c->in_off = 0;
  }
  if (!w->dec.msg_opcode && w->dec.msg.cap) mz_buf_free(&w->dec.msg);
  if (!c->ws) return;
  account(c, 0);
  mz__http_flush(c);
  mz__http_reading(c, !w->busy && !w->close_sent);
}

/* The server is draining: tell the client, which should reconnect elsewhere. */
void mz__ws_go_away(mz_http_conn *c) { send_close(c, 1001, "server going away"); }

/* ------------------------------------------------------------ lifecycle */

static void pinger_closed(uv_handle_t *hd) {
  mz_ws *w = hd->data;
  mz_ws_decoder_free(&w->dec);
  free(w);
}

static void ping_fired(uv_timer_t *t) {
  mz_ws *w = t->data;
  mz_http_conn *c = w->task.data;
  uint64_t now = uv_now(c->srv->loop);
  if (now - w->last_seen >= 2 * PING_MS) { /* no sign of life through two pings: gone */
    mz__http_close(c);
    return;
  }
  send_frame(c, 0x9, "mizan", 5);
  mz__http_flush(c);
}

void mz__ws_start(mz_http_conn *c, mz_host *host, uint64_t id) {
  mz_ws_registry *reg = registry_of(host);
  mz_ws *w = reg ? calloc(1, sizeof *w) : NULL;
  if (!w) {
    mz__http_close(c);
    return;
  }
  w->id = id;
  w->task.data = c;
  w->last_seen = uv_now(c->srv->loop);
  mz_ws_decoder_init(&w->dec, MAX_MESSAGE);
  uv_timer_init(c->srv->loop, &w->pinger);
  w->pinger.data = w;
  uv_timer_start(&w->pinger, ping_fired, PING_MS, PING_MS);
  w->reg = reg;
  w->hnext = *bucket(reg, id);
  *bucket(reg, id) = w;
  c->ws = w;
  /* what only HTTP needed */
  mz_pool_dispose(&c->pool);
  mz_buf_free(&c->field);
  mz_buf_free(&c->value);
  mz_buf_free(&c->req.body);
  memset(&c->req, 0, sizeof c->req);
  /* accepted by code that a reload replaced meanwhile: come back to the new */
  if (host->retired) send_close(c, 1012, "service restart");
  mz__ws_process(c);
}

/* A close event on its way to Lua: a resource of the socket's host until it
   fires (then a task of it), so a host that closes first drops it. */
typedef struct {
  mz_resource res;
  uv_timer_t timer;
  mz_task task;
  mz_host *host;
  uint64_t id;
} close_event;

static void close_event_freed(uv_handle_t *hd) { free(hd->data); }

static void close_event_done(mz_task *t, lua_State *co, int ok) {
  close_event *e = t->data;
  if (!ok) fprintf(stderr, "mizan [error] websocket close handler failed: %s\n", lua_tostring(co, -1));
  mz_task_release(t);
  uv_close((uv_handle_t *)&e->timer, close_event_freed);
}

static void close_event_fired(uv_timer_t *tm) {
  close_event *e = tm->data;
  mz_host_disown(&e->res);
  lua_State *co = mz_task_acquire(e->host, &e->task, close_event_done, e);
  lua_rawgeti(co, LUA_REGISTRYINDEX, e->host->ws_ref);
  lua_pushliteral(co, "close");
  lua_pushnumber(co, (lua_Number)e->id);
  mz_task_resume(&e->task, 2);
}

static void close_event_drop(mz_resource *r) {
  close_event *e = (close_event *)r;
  uv_close((uv_handle_t *)&e->timer, close_event_freed);
}

/* Tell `h`'s Lua that socket `id` is gone, on the next loop turn (never
   from inside whatever Lua call closed it). The pending event is one of
   h's resources: if h closes first, it is dropped, never delivered. */
static void close_event_send(uv_loop_t *loop, mz_host *h, uint64_t id) {
  if (h->ws_ref == LUA_NOREF) return;
  close_event *e = calloc(1, sizeof *e);
  if (!e) return;
  e->host = h;
  e->id = id;
  e->res.close = close_event_drop;
  uv_timer_init(loop, &e->timer);
  e->timer.data = e;
  uv_timer_start(&e->timer, close_event_fired, 0, 0);
  mz_host_own(h, &e->res);
}

/* The connection is closing: forget the socket, and tell its host's Lua. */
void mz__ws_closed(mz_http_conn *c) {
  mz_ws *w = c->ws;
  if (!w) return;
  mz_ws_registry *reg = w->reg;
  unregister(w);
  release(c);
  c->srv->ws_out_held -= w->out_held;
  w->out_held = 0;
  c->ws = NULL;
  uv_timer_stop(&w->pinger);
  uv_close((uv_handle_t *)&w->pinger, pinger_closed);
  if (!reg) return; /* detached: its host is closing */
  close_event_send(c->srv->loop, reg->host, w->id);
}

/* The upgrade's connection closed while Lua decided: the host whose task
   took the socket in (the one that ran the request) must hear it is gone. */
void mz__ws_abandoned(mz_http_conn *c) {
  mz_host *h = c->task.host ? c->task.host : c->srv->host;
  if (c->req.ws_id) close_event_send(c->srv->loop, h, c->req.ws_id);
}

/* ------------------------------------------------------------ Lua: mizan.ws */

static uint64_t check_id(lua_State *L, int idx) { return (uint64_t)luaL_checknumber(L, idx); }

/* send(id, text) -> true | false (the socket is gone or closing) */
static int l_send(lua_State *L) {
  size_t n;
  uint64_t id = check_id(L, 1);
  const char *p = luaL_checklstring(L, 2, &n);
  mz_http_conn *c = find_conn(L, id);
  int ok = c && send_frame(c, 0x1, p, n) == 0;
  if (ok) mz__http_flush(c);
  lua_pushboolean(L, ok);
  return 1;
}

/* send_many({ids...}, text) -> how many got it. The frame is built once. */
static int l_send_many(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  int count = 0;
  size_t k = lua_objlen(L, 1);
  for (size_t i = 1; i <= k; i++) {
    lua_rawgeti(L, 1, (int)i);
    mz_http_conn *c = find_conn(L, (uint64_t)lua_tonumber(L, -1));
    lua_pop(L, 1);
    if (c && send_frame(c, 0x1, p, n) == 0) {
      mz__http_flush(c);
      count++;
    }
  }
  lua_pushinteger(L, count);
  return 1;
}

/* close(id, code, reason) */
static int l_close(lua_State *L) {
  mz_http_conn *c = find_conn(L, check_id(L, 1));
  if (c) {
    send_close(c, (int)luaL_optinteger(L, 2, 1000), luaL_optstring(L, 3, NULL));
    mz__http_flush(c);
  }
  return 0;
}

int mz_ws_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"send", l_send}, {"send_many", l_send_many}, {"close", l_close}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
