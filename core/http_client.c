/*
 * mizan.httpc: outbound HTTP(S) on the libuv loop, with libcurl's multi
 * interface driven by libuv (curl_multi_socket_action).
 *
 * A task calls httpc.request(spec): one curl easy handle is armed and the
 * task's coroutine yields; the transfer's end resumes it with
 *   status, header_block, body, effective_url     or   nil, message, kind.
 * lua/mizan/http.lua checks the options (misuse raises there), parses the
 * header block and decides everything else; this file does mechanics.
 *
 * One client (one CURLM) per host, made at the first request: its
 * connection cache is the per-worker keep-alive pool, keyed by curl on
 * scheme, host, port and TLS settings (CA file, verification), so a
 * connection trusted through a request's ca_file is never reused by a
 * request without it. DNS runs on curl's resolver thread, off the loop.
 * Only http and https are allowed (and followed on redirects).
 *
 * Ownership (host.h, THE OWNERSHIP RULE): the client is a resource of its
 * host. It starts no work on its own, so it needs no retire hook: a retired
 * host's requests in flight finish on it (the request that started on the
 * old code ends on it). Its close hook fails every pending request (each
 * task resumes with nil, "...", "cancelled" while the state is still open),
 * closes the pooled connections and frees the memory in the last libuv
 * close callback. A pending request counts in h->tasks through its task, so
 * the host is never closed under it except by mz_host_release's drain.
 */
#include <curl/curl.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

typedef struct request request;
typedef struct sock sock;

typedef struct httpc {
  mz_resource res; /* first: the host's list links it */
  mz_host *host;
  CURLM *multi;
  uv_timer_t timer;
  int closing;
  int handles;     /* open libuv handles (the timer, the polls): freed at 0 */
  request *head;   /* pending requests */
  sock *socks;     /* polled sockets */
  CURL *spare[64]; /* easy handles of finished requests, reset, for reuse */
  int nspare;
} httpc;

struct sock {
  sock *prev, *next;
  uv_poll_t poll;
  httpc *c;
  curl_socket_t fd;
};

struct request {
  request *prev, *next;
  httpc *c;
  CURL *easy;
  mz_task *task;
  struct curl_slist *headers;
  char *body;
  size_t len, cap, max_body;
  char *head; /* the header lines of the latest response (CRLF-separated) */
  size_t hlen, hcap;
  int too_big;
  char err[CURL_ERROR_SIZE];
};

static const char client_key = 'h';

/* ------------------------------------------------------------ buffers */

static int append(char **p, size_t *len, size_t *cap, const char *data, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t want = *cap ? *cap : 1024;
    while (want < *len + n + 1) want *= 2;
    char *q = realloc(*p, want);
    if (!q) return -1;
    *p = q;
    *cap = want;
  }
  memcpy(*p + *len, data, n);
  *len += n;
  (*p)[*len] = 0;
  return 0;
}

/* curl's write callback: the body, refused past max_body while reading
   (chunked or not: what counts is what arrives, after decoding). */
static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  request *r = ud;
  size_t bytes = size * n;
  if (r->len + bytes > r->max_body) {
    r->too_big = 1;
    return 0; /* CURLE_WRITE_ERROR: the transfer stops */
  }
  if (append(&r->body, &r->len, &r->cap, data, bytes)) return 0;
  return bytes;
}

/* curl's header callback: one line at a time, the status line included.
   A new status line (a redirect, a 100 Continue) starts over: the answer
   is the last response's headers. */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  request *r = ud;
  size_t bytes = size * n;
  if (bytes >= 5 && !memcmp(data, "HTTP/", 5)) r->hlen = 0;
  if (append(&r->head, &r->hlen, &r->hcap, data, bytes)) return 0;
  return bytes;
}

/* ------------------------------------------------------------ ending a request */

static void request_free(request *r) {
  httpc *c = r->c;
  if (r->easy && !c->closing && c->nspare < (int)(sizeof c->spare / sizeof *c->spare)) {
    curl_easy_reset(r->easy); /* keeps its buffers: the next request skips their allocation */
    c->spare[c->nspare++] = r->easy;
  } else if (r->easy) {
    curl_easy_cleanup(r->easy);
  }
  curl_slist_free_all(r->headers);
  free(r->body);
  free(r->head);
  free(r);
}

static void unlink_request(httpc *c, request *r) {
  if (r->prev) r->prev->next = r->next;
  else c->head = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

/* The stable word for a failure (documented in lua/mizan/http.lua). */
static const char *kind_of(request *r, CURLcode rc) {
  if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED) return "too_big";
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST: return "dns";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED: return "tls";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return "closed";
    case CURLE_TOO_MANY_REDIRECTS: return "redirects";
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_UNSUPPORTED_PROTOCOL: return "protocol";
    default: return "failed";
  }
}

/* Hand the outcome to the task and resume it; `r` is gone afterwards.
   rc < 0: cancelled by the client's close. */
static void finish(request *r, int rc) {
  httpc *c = r->c;
  curl_multi_remove_handle(c->multi, r->easy);
  unlink_request(c, r);
  mz_task *t = r->task;
  lua_State *co = t->co;
  int n;
  if (rc == CURLE_OK) {
    long status = 0;
    char *url = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
    lua_pushinteger(co, (lua_Integer)status);
    lua_pushlstring(co, r->head ? r->head : "", r->hlen);
    lua_pushlstring(co, r->body ? r->body : "", r->len);
    lua_pushstring(co, url ? url : "");
    n = 4;
  } else {
    const char *kind = rc < 0 ? "cancelled" : kind_of(r, (CURLcode)rc);
    const char *msg = rc < 0 ? "the worker is shutting down or reloading"
                      : !strcmp(kind, "too_big") ? "the response is bigger than max_body"
                      : r->err[0] ? r->err : curl_easy_strerror((CURLcode)rc);
    lua_pushnil(co);
    lua_pushstring(co, msg);
    lua_pushstring(co, kind);
    n = 3;
  }
  request_free(r);
  mz_task_resume(t, n);
}

/* Every transfer curl says is done. Resuming a task can close the client
   (the task's end may let the host close): stop looking then. */
static void check_done(httpc *c) {
  CURLMsg *m;
  int left;
  while (!c->closing && (m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    request *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    CURLcode rc = m->data.result;
    if (r) finish(r, rc);
  }
}

/* ------------------------------------------------------------ curl <-> libuv */

static void release_handle(httpc *c) {
  if (--c->handles == 0) free(c);
}

static void timer_closed(uv_handle_t *hd) { release_handle(hd->data); }

static void sock_closed(uv_handle_t *hd) {
  sock *s = hd->data;
  httpc *c = s->c;
  free(s);
  release_handle(c);
}

static void sock_drop(sock *s) {
  httpc *c = s->c;
  if (s->prev) s->prev->next = s->next;
  else c->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  sock *s = p->data;
  httpc *c = s->c;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch `fd` for what curl wants, or stop. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp) {
  (void)e;
  httpc *c = ud;
  sock *s = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(c->multi, fd, NULL);
      sock_drop(s);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (uv_poll_init_socket(c->host->loop, &s->poll, fd)) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    s->c = c;
    s->fd = fd;
    s->next = c->socks;
    if (c->socks) c->socks->prev = s;
    c->socks = s;
    c->handles++;
    curl_multi_assign(c->multi, fd, s);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

static void on_timeout(uv_timer_t *t) {
  httpc *c = t->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called back in `ms` (-1: never). */
static int on_timer(CURLM *m, long ms, void *ud) {
  (void)m;
  httpc *c = ud;
  if (ms < 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

/* ------------------------------------------------------------ the client */

/* The close hook: pending requests fail ("cancelled"), the pooled
   connections close, the polls and the timer close; the memory goes with
   the last handle. From here on no callback of ours reaches the state. */
static void client_close(mz_resource *res) {
  httpc *c = (httpc *)res;
  if (c->closing) return;
  mz_host_disown(&c->res);
  /* closing first: a task resumed below that asks again is refused */
  c->closing = 1;
  while (c->head) finish(c->head, -1);
  mz_host *h = c->host;
  if (h->L) {
    lua_pushlightuserdata(h->L, (void *)&client_key);
    lua_pushnil(h->L);
    lua_rawset(h->L, LUA_REGISTRYINDEX);
  }
  while (c->nspare) curl_easy_cleanup(c->spare[--c->nspare]);
  curl_multi_cleanup(c->multi); /* closes the pooled connections */
  c->multi = NULL;
  while (c->socks) sock_drop(c->socks);
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, timer_closed);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

/* This host's client, made on first use; NULL when out of memory. */
static httpc *client_of(lua_State *L, mz_host *h) {
  lua_pushlightuserdata(L, (void *)&client_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  httpc *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (c) return c;
  pthread_once(&global_once, global_init);
  if (global_rc) return NULL;
  c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->multi = curl_multi_init();
  if (!c->multi) {
    free(c);
    return NULL;
  }
  c->host = h;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  /* idle connections kept for reuse, over all destinations */
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 256L);
  uv_timer_init(h->loop, &c->timer);
  c->timer.data = c;
  c->handles = 1;
  c->res.close = client_close;
  mz_host_own(h, &c->res);
  lua_pushlightuserdata(L, (void *)&client_key);
  lua_pushlightuserdata(L, c);
  lua_rawset(L, LUA_REGISTRYINDEX);
  return c;
}

/* ------------------------------------------------------------ Lua API */

static const char *opt_string(lua_State *L, const char *k, size_t *len) {
  lua_getfield(L, 1, k);
  const char *s = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, len);
  lua_pop(L, 1); /* the spec table keeps the string alive */
  return s;
}

static long opt_long(lua_State *L, const char *k, long dflt) {
  lua_getfield(L, 1, k);
  long v = lua_isnil(L, -1) ? dflt : (long)luaL_checknumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* request{ method, url, headers = { "Name: value", ... }, body, timeout_ms,
   connect_timeout_ms, idle_s, max_body, redirects, verify, ca_file, fresh }
   -> status, header_block, body, url | nil, message, kind. Yields the
   calling task. lua/mizan/http.lua has checked every field; what is read
   here is read before anything is allocated (a raise leaks nothing). */
static int l_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  mz_host *h = mz_host_from(L);
  if (!h->current || h->current->co != L)
    return luaL_error(L, "mizan.http must run in a request's (or a task's) own coroutine");
  size_t blen = 0;
  const char *method = opt_string(L, "method", NULL);
  const char *url = opt_string(L, "url", NULL);
  const char *body = opt_string(L, "body", &blen);
  const char *ca_file = opt_string(L, "ca_file", NULL);
  if (!method || !url) return luaL_error(L, "httpc.request: method and url are required");
  long timeout_ms = opt_long(L, "timeout_ms", 30000);
  long connect_ms = opt_long(L, "connect_timeout_ms", 10000);
  long idle_s = opt_long(L, "idle_s", 60);
  long max_body = opt_long(L, "max_body", 8L << 20);
  long redirects = opt_long(L, "redirects", 0);
  lua_getfield(L, 1, "verify");
  int verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_getfield(L, 1, "fresh");
  int fresh = lua_toboolean(L, -1);
  lua_getfield(L, 1, "headers");
  int nheaders = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
  for (int i = 1; i <= nheaders; i++) {
    lua_rawgeti(L, -1, i);
    luaL_checkstring(L, -1);
    lua_pop(L, 1);
  }
  /* nothing below raises */
  httpc *c = client_of(L, h);
  if (!c || c->closing) {
    lua_pushnil(L);
    lua_pushstring(L, c ? "the worker is shutting down or reloading" : "out of memory");
    lua_pushstring(L, c ? "cancelled" : "failed");
    return 3;
  }
  request *r = calloc(1, sizeof *r);
  CURL *e = !r ? NULL : c->nspare ? c->spare[--c->nspare] : curl_easy_init();
  if (!e) {
    free(r);
    lua_pushnil(L);
    lua_pushliteral(L, "out of memory");
    lua_pushliteral(L, "failed");
    return 3;
  }
  r->easy = e;
  r->c = c;
  r->task = h->current;
  r->max_body = (size_t)max_body;
  int bad = 0;
  for (int i = 1; i <= nheaders && !bad; i++) {
    lua_rawgeti(L, -1, i);
    struct curl_slist *l = curl_slist_append(r->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!l) bad = 1;
    else r->headers = l;
  }
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->err);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  /* GET and POST as curl's own, so that a 301/302/303 after a POST follows
     with a GET; any other method is sent as it is, redirects included */
  if (!strcmp(method, "HEAD")) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (!strcmp(method, "POST")) curl_easy_setopt(e, CURLOPT_POST, 1L);
  else if (strcmp(method, "GET")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
  }
  if (r->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, idle_s);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, redirects > 0 ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, redirects);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
  /* a CA file is added to the system store (the directory stays) */
  if (ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
  /* a request that must not be sent twice never takes a pooled connection,
     so curl's retry of a request on a connection found dead never applies */
  if (fresh) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  if (bad || curl_multi_add_handle(c->multi, e) != CURLM_OK) {
    request_free(r);
    lua_pushnil(L);
    lua_pushliteral(L, "could not start the request");
    lua_pushliteral(L, "failed");
    return 3;
  }
  r->next = c->head;
  if (c->head) c->head->prev = r;
  c->head = r;
  lua_settop(L, 0);
  return lua_yield(L, 0);
}

int mz_httpc_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"request", l_request}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
