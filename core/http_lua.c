/*
 * The bridge between a parsed request and Lua: ONE entry point, the host's
 * request handler, called on the task's coroutine with the request table,
 * which returns ONE response record (mizan.dispatch.respond makes it):
 *
 *   { status  = 100..599,
 *     body    = "bytes" or nil       -- sent as they are: Lua encoded them
 *     headers = { "Name", "value", ... } or nil  -- a flat list
 *     cache   = "hit" | "miss" | nil -- for the access log
 *     upgrade = true or nil          -- accept the WebSocket handshake (101)
 *     label   = "name" or nil }      -- the metrics label: a registered name
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
  if (r->page) {
    lua_pushboolean(co, 1);
    lua_setfield(co, -2, "page");
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

/* Write the response record at index 1 of the coroutine. */
static void write_record(mz_http_conn *c, lua_State *co) {
  mz_http_req *r = &c->req;
  const char *err = NULL, *ctype = NULL, *body = NULL;
  size_t body_len = 0;
  mz_buf extra;
  mz_buf_init(&extra);
  int status = 0;
  if (!lua_istable(co, 1)) {
    err = "the handler returned no response record";
    goto done;
  }
  lua_getfield(co, 1, "label"); /* 2: anchored on the stack until the answer is written */
  if (lua_type(co, 2) == LUA_TSTRING) r->label = lua_tolstring(co, 2, &r->label_len);
  lua_getfield(co, 1, "cache"); /* 3 */
  if (lua_type(co, 3) == LUA_TSTRING) r->cache = lua_tostring(co, 3)[0] == 'h' ? 'h' : 'm';
  lua_getfield(co, 1, "upgrade"); /* 4 */
  if (lua_toboolean(co, 4)) {
    write_upgrade(c);
    return;
  }
  lua_getfield(co, 1, "status"); /* 5 */
  status = (int)lua_tointeger(co, 5);
  if (status < 200 || status > 599) {
    err = "the handler returned an invalid status";
    goto done;
  }
  lua_getfield(co, 1, "body"); /* 6 */
  if (lua_type(co, 6) == LUA_TSTRING) {
    body = lua_tolstring(co, 6, &body_len);
  } else if (lua_istable(co, 6)) {
    /* JSON data: the codec writes it straight into the server's scratch
       buffer (no Lua string to intern per answer); the task's own host,
       since after a reload in-flight tasks belong to the old state */
    mz_buf *out = &c->srv->scratch;
    mz_json_ctx *json = c->task.host->json;
    out->len = 0;
    if (mz_json_encode(json, co, 6, out, 0)) err = json->err;
    else body = out->data, body_len = out->len;
  } else if (!lua_isnil(co, 6)) {
    err = "the response body is not a string";
  }
  lua_getfield(co, 1, "headers"); /* 7 */
  if (!err && lua_istable(co, 7)) collect_headers(co, 7, &extra, &ctype, &err);
done:
  if (err) {
    fprintf(stderr, "mizan [error] %s %.*s: cannot send the response: %s\n",
            llhttp_method_name((llhttp_method_t)r->method), (int)r->url_len, r->url, err);
    mz__http_write_error(c, 500, "internal_error", "the response could not be encoded");
  } else {
    mz__http_write_response(c, status, ctype ? ctype : "application/json", body ? body : "", body_len, extra.data,
                            extra.len);
  }
  mz_buf_free(&extra);
  if (c->srv->scratch.cap > (1u << 20)) mz_buf_free(&c->srv->scratch); /* one huge answer keeps nothing */
}

/* Does the record at index 1 accept a WebSocket upgrade? */
static int record_upgrades(lua_State *co) {
  if (!lua_istable(co, 1)) return 0;
  lua_getfield(co, 1, "upgrade");
  int yes = lua_toboolean(co, -1);
  lua_pop(co, 1);
  return yes;
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
  } else if (ok && c->req.ws_id && record_upgrades(co)) {
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
