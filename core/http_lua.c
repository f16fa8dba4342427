/*
 * The bridge between a parsed request and Lua: ONE entry point, the host's
 * request handler, called on the task's coroutine with the request table,
 * which returns ONE response record (mizan.dispatch.respond makes it),
 * as its return values, read here by position:
 *
 *   1 status   101 (accept the WebSocket handshake) or 200..599
 *   2 body     "bytes" (sent as they are), JSON data (a table: encoded here
 *              with the codec), or nil
 *   3 headers  { "Name", "value", ... }: a flat list, or nil for
 *              Content-Type: application/json alone
 *   4 label    "name" or nil: the metrics label, a registered name
 *   5 cache    "hit" | "miss" | nil: for the access log
 *   6 schema   the served schema's hash, written as X-Mizan-Schema, or nil
 *
 * Nothing else travels between them: no pseudo-headers, no pseudo-routes.
 * The request table has method, path, query, headers, body, ip,
 * http_version, and when present route, name, ws_id, and page (an HTML page
 * from static_dir, for Lua to answer). Header names and values coming from
 * Lua are checked here, so an app can never split a response with CR or LF.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "http_conn.h"
#include "json.h"

/* The strings every request table carries (its keys, the method names, the
   HTTP versions), interned once per host in a registry table: pushing one is
   an array read, where lua_setfield would hash and look up its key anew for
   every request. */
enum {
  S_METHOD = 1, S_PATH, S_QUERY, S_HEADERS, S_BODY, S_IP, S_HTTP_VERSION, S_ROUTE, S_NAME, S_WS_ID, S_PAGE,
  S_V10, S_V11, S_EMPTY, S_METHODS /* + llhttp_method_t, below S_METHODS + N_METHODS */
};
#define N_METHODS (HTTP_FLUSH + 1) /* every method llhttp names */

static const char *const fixed[] = {NULL,     "method",  "path", "query",   "headers", "body", "ip",
                                    "http_version", "route", "name", "ws_id", "page", "1.0", "1.1", ""};
_Static_assert(sizeof fixed / sizeof *fixed == S_METHODS, "one string per fixed index");

/* Push the host's strings table (made on its first request). */
static void push_strings(lua_State *co, mz_host *h) {
  if (h->strings_ref == LUA_NOREF) {
    lua_createtable(co, S_METHODS + N_METHODS, 0);
    for (int i = 1; i < S_METHODS; i++) {
      lua_pushstring(co, fixed[i]);
      lua_rawseti(co, -2, i);
    }
    for (int m = 0; m < N_METHODS; m++) {
      lua_pushstring(co, llhttp_method_name((llhttp_method_t)m));
      lua_rawseti(co, -2, S_METHODS + m);
    }
    h->strings_ref = luaL_ref(co, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(co, LUA_REGISTRYINDEX, h->strings_ref);
}

#define PUSH_S(co, strs, k) lua_rawgeti(co, strs, k)

static void push_req(lua_State *co, mz_http_conn *c, const char *route, size_t route_len,
                     const char *name, size_t name_len) {
  mz_http_req *r = &c->req;
  push_strings(co, c->srv->host);
  int strs = lua_gettop(co);
  lua_createtable(co, 0, 12);
  int req = strs + 1;
  PUSH_S(co, strs, S_METHOD);
  if (r->method < N_METHODS) PUSH_S(co, strs, S_METHODS + r->method);
  else lua_pushstring(co, llhttp_method_name((llhttp_method_t)r->method));
  lua_rawset(co, req);
  const char *q = memchr(r->url, '?', r->url_len);
  size_t path_len = q ? (size_t)(q - r->url) : r->url_len;
  PUSH_S(co, strs, S_PATH);
  lua_pushlstring(co, r->url, path_len);
  lua_rawset(co, req);
  PUSH_S(co, strs, S_QUERY);
  if (q) lua_pushlstring(co, q + 1, r->url_len - path_len - 1);
  else PUSH_S(co, strs, S_EMPTY);
  lua_rawset(co, req);
  PUSH_S(co, strs, S_HEADERS);
  lua_createtable(co, 0, r->nheaders);
  for (int i = 0; i < r->nheaders; i++) {
    mz_http_header *h = &r->headers[i];
    lua_pushlstring(co, h->name, h->name_len);
    lua_pushvalue(co, -1);
    lua_rawget(co, -3);
    if (lua_isnil(co, -1)) {
      lua_pop(co, 1);
      lua_pushlstring(co, h->value, h->value_len);
    } else {
      /* repeated fields fold into one, as RFC 9110 §5.3 allows */
      lua_pushstring(co, strcmp(h->name, "cookie") == 0 ? "; " : ", ");
      lua_pushlstring(co, h->value, h->value_len);
      lua_concat(co, 3);
    }
    lua_rawset(co, -3);
  }
  lua_rawset(co, req);
  PUSH_S(co, strs, S_BODY);
  if (r->body.len) lua_pushlstring(co, r->body.data, r->body.len);
  else PUSH_S(co, strs, S_EMPTY);
  lua_rawset(co, req);
  PUSH_S(co, strs, S_IP);
  lua_pushstring(co, c->ip);
  lua_rawset(co, req);
  PUSH_S(co, strs, S_HTTP_VERSION);
  PUSH_S(co, strs, r->http_minor == 0 ? S_V10 : S_V11);
  lua_rawset(co, req);
  if (route) {
    PUSH_S(co, strs, S_ROUTE);
    lua_pushlstring(co, route, route_len);
    lua_rawset(co, req);
  }
  if (name) {
    PUSH_S(co, strs, S_NAME);
    lua_pushlstring(co, name, name_len);
    lua_rawset(co, req);
  }
  if (r->ws_id) {
    PUSH_S(co, strs, S_WS_ID);
    lua_pushnumber(co, (lua_Number)r->ws_id);
    lua_rawset(co, req);
  }
  if (r->page) {
    PUSH_S(co, strs, S_PAGE);
    lua_pushboolean(co, 1);
    lua_rawset(co, req);
  }
  lua_remove(co, strs); /* the handler's argument: the request table alone */
}

/* Lua accepted a WebSocket handshake (status 101): answer it, and switch
   the connection once the task has ended. */
static void write_upgrade(mz_http_conn *c) {
  const char *key = NULL;
  size_t key_len = 0;
  for (int i = 0; i < c->req.nheaders; i++) {
    if (strcmp(c->req.headers[i].name, "sec-websocket-key") == 0) {
      key = c->req.headers[i].value;
      key_len = c->req.headers[i].value_len;
    }
  }
  char accept[29];
  if (!c->req.ws_id || !key || mz__ws_accept_key(key, key_len, accept)) {
    mz__http_write_error(c, 500, "internal_error", "not a WebSocket handshake");
    return;
  }
  mz_buf_printf(&c->out,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
  c->upgrade_to = c->req.ws_id;
}

/* Token characters of RFC 9110 §5.6.2: visible ASCII but the delimiters. */
static int is_token(const char *s, size_t n) {
  static unsigned char table[256];
  if (!table['a']) {
    for (int ch = 33; ch < 127; ch++) table[ch] = 1;
    for (const char *d = "\"(),/:;<=>?@[\\]{}"; *d; d++) table[(unsigned char)*d] = 0;
  }
  if (!n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!table[(unsigned char)s[i]]) return 0;
  return 1;
}

static int is_field_value(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch < 32 && ch != '\t') || ch == 127) return 0;
  }
  return 1;
}

/* Headers the core writes itself; an app's value for them is ignored. */
static int core_owned(const char *name, size_t n) {
  static const char *owned[] = {"content-length", "date", "connection", "transfer-encoding",
                                "cache-control", "content-type", NULL};
  for (const char **o = owned; *o; o++)
    if (strlen(*o) == n && strncasecmp(*o, name, n) == 0) return 1;
  return 0;
}

/* Append "Name: value\r\n" for every pair of the flat list at `idx`, and find
   the content type. Returns 0, or -1 with `err` set. */
static int collect_headers(lua_State *co, int idx, mz_buf *extra, const char **ctype, const char **err) {
  int n = (int)lua_objlen(co, idx);
  if (n % 2) {
    *err = "response headers must be a list of name, value pairs";
    return -1;
  }
  for (int i = 1; i < n; i += 2) {
    size_t kn, vn;
    lua_rawgeti(co, idx, i);
    lua_rawgeti(co, idx, i + 1);
    if (lua_type(co, -2) != LUA_TSTRING || (lua_type(co, -1) != LUA_TSTRING && lua_type(co, -1) != LUA_TNUMBER)) {
      lua_pop(co, 2);
      *err = "response headers must map strings to strings";
      return -1;
    }
    const char *k = lua_tolstring(co, -2, &kn);
    const char *v = lua_tolstring(co, -1, &vn);
    lua_pop(co, 2); /* both stay anchored by the list */
    if (!is_token(k, kn) || !is_field_value(v, vn)) {
      *err = "response header name or value has forbidden characters";
      return -1;
    }
    if (kn == 12 && strncasecmp(k, "content-type", 12) == 0) {
      *ctype = v;
    } else if (!core_owned(k, kn)) {
      if (mz_buf_append(extra, k, kn) || mz_buf_append(extra, ": ", 2) || mz_buf_append(extra, v, vn) ||
          mz_buf_append(extra, "\r\n", 2)) {
        *err = "out of memory";
        return -1;
      }
    }
  }
  return 0;
}

/* Write the response record left on the coroutine (see the top of this file). */
static void write_record(mz_http_conn *c, lua_State *co) {
  mz_http_req *r = &c->req;
  const char *err = NULL, *ctype = NULL, *body = NULL;
  size_t body_len = 0;
  mz_buf extra;
  mz_buf_init(&extra);
  int status = (int)lua_tointeger(co, 1);
  /* the label and the cache state stay anchored on the stack until the answer is written */
  if (lua_type(co, 4) == LUA_TSTRING) r->label = lua_tolstring(co, 4, &r->label_len);
  if (lua_type(co, 5) == LUA_TSTRING) r->cache = lua_tostring(co, 5)[0] == 'h' ? 'h' : 'm';
  if (status == 101) {
    write_upgrade(c);
    return;
  }
  if (status < 200 || status > 599) {
    err = "the handler returned an invalid status";
    goto done;
  }
  int bt = lua_type(co, 2);
  if (bt == LUA_TSTRING) {
    body = lua_tolstring(co, 2, &body_len);
  } else if (bt == LUA_TTABLE) {
    /* JSON data: the codec writes it straight into the server's scratch
       buffer (no Lua string to intern per answer); the task's own host,
       since after a reload in-flight tasks belong to the old state */
    mz_buf *out = &c->srv->scratch;
    mz_json_ctx *json = c->task.host->json;
    out->len = 0;
    if (mz_json_encode(json, co, 2, out, 0)) err = json->err;
    else body = out->data, body_len = out->len;
  } else if (bt != LUA_TNIL && bt != LUA_TNONE) {
    err = "the response body is not a string";
  }
  if (!err && lua_istable(co, 3)) collect_headers(co, 3, &extra, &ctype, &err);
  /* the schema's header: on the stack for the common answer (no other
     headers, so no buffer to allocate per answer), else after the others */
  char schema[96];
  size_t schema_len = 0;
  if (!err && lua_type(co, 6) == LUA_TSTRING) {
    size_t n;
    const char *hash = lua_tolstring(co, 6, &n);
    if (!is_token(hash, n) || n > sizeof schema - 20) err = "the schema hash cannot be sent";
    else schema_len = (size_t)snprintf(schema, sizeof schema, "X-Mizan-Schema: %s\r\n", hash);
    if (!err && extra.len && mz_buf_append(&extra, schema, schema_len)) err = "out of memory";
  }
done:
  if (err) {
    fprintf(stderr, "mizan [error] %s %.*s: cannot send the response: %s\n",
            llhttp_method_name((llhttp_method_t)r->method), (int)r->url_len, r->url, err);
    mz__http_write_error(c, 500, "internal_error", "the response could not be encoded");
  } else {
    mz__http_write_response(c, status, ctype ? ctype : "application/json", body ? body : "", body_len,
                            extra.len ? extra.data : schema, extra.len ? extra.len : schema_len);
  }
  mz_buf_free(&extra);
  if (c->srv->scratch.cap > (1u << 20)) mz_buf_free(&c->srv->scratch); /* one huge answer keeps nothing */
}

static void task_done(mz_task *t, lua_State *co, int ok) {
  mz_http_conn *c = t->data;
  c->task_running = 0;
  if (!c->closing) {
    if (ok) {
      write_record(c, co);
    } else {
      /* the Lua side catches handler errors; this is a framework bug */
      fprintf(stderr, "mizan [error] request task failed: %s\n", lua_tostring(co, -1));
      mz__http_write_error(c, 500, "internal_error", "internal error");
    }
  } else if (ok && c->req.ws_id && lua_tointeger(co, 1) == 101) {
    mz__ws_abandoned(c); /* Lua took the socket in; it must hear it is gone */
  }
  mz_task_release(t);
  mz__http_request_done(c);
}

void mz__http_dispatch_lua(mz_http_conn *c, const char *route, size_t route_len, const char *name,
                           size_t name_len) {
  mz_host *h = c->srv->host;
  lua_State *co = mz_task_acquire(h, &c->task, task_done, c);
  lua_rawgeti(co, LUA_REGISTRYINDEX, h->handler_ref);
  push_req(co, c, route, route_len, name, name_len);
  c->task_running = 1;
  mz_task_resume(&c->task, 1);
}
