/*
 * The bridge between a parsed request and the Lua handler: builds the request
 * table on the task's coroutine, and turns the handler's (status, body,
 * headers) into bytes. Header names and values coming from Lua are checked
 * here, so an app can never split a response with CR or LF.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "http_conn.h"

static void push_req(lua_State *co, mz_http_conn *c, const char *route, size_t route_len,
                     const char *name, size_t name_len) {
  mz_http_req *r = &c->req;
  lua_createtable(co, 0, 12);
  lua_pushstring(co, llhttp_method_name((llhttp_method_t)r->method));
  lua_setfield(co, -2, "method");
  const char *q = memchr(r->url, '?', r->url_len);
  size_t path_len = q ? (size_t)(q - r->url) : r->url_len;
  lua_pushlstring(co, r->url, path_len);
  lua_setfield(co, -2, "path");
  if (q) lua_pushlstring(co, q + 1, r->url_len - path_len - 1);
  else lua_pushliteral(co, "");
  lua_setfield(co, -2, "query");
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
  lua_setfield(co, -2, "headers");
  lua_pushlstring(co, r->body.data ? r->body.data : "", r->body.len);
  lua_setfield(co, -2, "body");
  lua_pushstring(co, c->ip);
  lua_setfield(co, -2, "ip");
  lua_pushstring(co, r->http_minor == 0 ? "1.0" : "1.1");
  lua_setfield(co, -2, "http_version");
  if (route) {
    lua_pushlstring(co, route, route_len);
    lua_setfield(co, -2, "route");
  }
  if (name) {
    lua_pushlstring(co, name, name_len);
    lua_setfield(co, -2, "name");
  }
  if (r->ws_id) {
    lua_pushnumber(co, (lua_Number)r->ws_id);
    lua_setfield(co, -2, "ws_id");
  }
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

/* Token characters of RFC 9110 §5.6.2. */
static int is_token(const char *s, size_t n) {
  if (!n) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch)) return 0;
  }
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

/* Append "Name: value\r\n" for every entry of the table at `idx`, and find the
   content type. Returns 0, or -1 with `err` set. */
static char c_cache; /* set by collect_headers from ":cache" */

static int collect_headers(lua_State *co, int idx, mz_buf *extra, const char **ctype,
                           const char **err) {
  lua_pushnil(co);
  while (lua_next(co, idx)) {
    size_t kn, vn;
    if (lua_type(co, -2) != LUA_TSTRING || (lua_type(co, -1) != LUA_TSTRING && lua_type(co, -1) != LUA_TNUMBER)) {
      lua_pop(co, 2);
      *err = "response headers must map strings to strings";
      return -1;
    }
    const char *k = lua_tolstring(co, -2, &kn);
    const char *v = lua_tolstring(co, -1, &vn);
    if (kn && k[0] == ':') { /* a note from Lua to the core, never sent: ":cache" = "hit" | "miss" */
      if (kn == 6 && !memcmp(k, ":cache", 6) && vn) c_cache = v[0];
      lua_pop(co, 1);
      continue;
    }
    if (!is_token(k, kn) || !is_field_value(v, vn)) {
      lua_pop(co, 2);
      *err = "response header name or value has forbidden characters";
      return -1;
    }
    if (kn == 12 && strncasecmp(k, "content-type", 12) == 0 && lua_type(co, -1) == LUA_TSTRING)
      *ctype = v; /* a string anchored by the table */
    if (!core_owned(k, kn)) {
      if (mz_buf_append(extra, k, kn) || mz_buf_append(extra, ": ", 2) ||
          mz_buf_append(extra, v, vn) || mz_buf_append(extra, "\r\n", 2)) {
        lua_pop(co, 2);
        *err = "out of memory";
        return -1;
      }
    }
    lua_pop(co, 1);
  }
  return 0;
}

/* Write the answer left on the coroutine: status, body (table or string), headers. */
static void write_lua_response(mz_http_conn *c, lua_State *co) {
  mz_http_server *s = c->srv;
  int status = (int)lua_tointeger(co, 1);
  if (c->req.ssr) { /* Lua's answer for a page: the SSR data, escaped for a script tag */
    size_t n = 0;
    const char *data = lua_type(co, 2) == LUA_TSTRING ? lua_tolstring(co, 2, &n) : "null";
    if (!n) n = 4;
    mz__static_html(c, data, n);
    return;
  }
  if (status == 101) {
    write_upgrade(c);
    return;
  }
  const char *err = NULL;
  const char *ctype = NULL;
  mz_buf *body = &s->scratch;
  mz_buf extra;
  mz_buf_init(&extra);
  body->len = 0;
  if (status < 200 || status > 599) err = "the handler returned an invalid status";
  c_cache = 0;
  if (!err && lua_istable(co, 3) && collect_headers(co, 3, &extra, &ctype, &err)) {}
  c->req.cache = c_cache;
  if (!err) {
    int bt = lua_type(co, 2);
    if (bt == LUA_TTABLE) {
      /* the task's own host: after a reload, in-flight tasks belong to the old state */
      mz_json_ctx *json = c->task.host->json;
      if (mz_json_encode(json, co, 2, body, 0)) err = json->err;
      else if (!ctype) ctype = "application/json";
    } else if (bt == LUA_TSTRING) {
      size_t n;
      const char *p = lua_tolstring(co, 2, &n);
      if (mz_buf_append(body, p, n)) err = "out of memory";
      if (!ctype) ctype = "text/plain; charset=utf-8";
    } else if (bt != LUA_TNIL && bt != LUA_TNONE) {
      err = "the handler returned a body that is neither a table nor a string";
    }
  }
  if (err) {
    fprintf(stderr, "mizan [error] %s %.*s: cannot send the response: %s\n",
            llhttp_method_name((llhttp_method_t)c->req.method), (int)c->req.url_len, c->req.url, err);
    mz__http_write_error(c, 500, "internal_error", "the response could not be encoded");
  } else {
    mz__http_write_response(c, status, ctype ? ctype : "application/json", body->data, body->len,
                            extra.data, extra.len);
  }
  mz_buf_free(&extra);
  if (body->cap > (1u << 20)) mz_buf_free(body);
}

static void task_done(mz_task *t, lua_State *co, int ok) {
  mz_http_conn *c = t->data;
  c->task_running = 0;
  if (!c->closing) {
    if (ok) {
      write_lua_response(c, co);
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
