/*
 * The response writer: status line, the headers the core owns (Date,
 * Content-Length, Cache-Control, Connection), and the body, appended to the
 * connection's output buffer.
 */
#include <stdio.h>
#include <string.h>

#include "http_conn.h"
#include "json.h"
#include "observe.h"

const char *mz__http_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

/* 1xx, 204 and 304 never carry a body (RFC 9110 §6.4.1). */
static int status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

#define PUT_LIT(w, lit) (memcpy((w), (lit), sizeof(lit) - 1), (w) += sizeof(lit) - 1)

static char *put_str(char *w, const char *s) {
  size_t n = strlen(s);
  memcpy(w, s, n);
  return w + n;
}

static char *put_uint(char *w, size_t v) {
  char tmp[24];
  int n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) *w++ = tmp[--n];
  return w;
}

/* The hot path formats by hand: printf costs more than the rest of it. */
int mz__http_write_response(mz_http_conn *c, int status, const char *ctype, const char *body,
                            size_t body_len, const char *extra, size_t extra_len) {
  mz_buf *o = &c->out;
  mz_http_req *r = &c->req;
  int keep = r->keep_alive && !c->close_after && !c->srv->draining;
  if (!keep) c->close_after = 1;
  int has_body = status_has_body(status);
  if (!has_body) body_len = 0;
  size_t ctype_len = has_body ? strlen(ctype) : 0;
  const char *cc = r->cache_control ? r->cache_control : "no-store";
  size_t cc_len = strlen(cc);
  /* 256 covers the fixed parts: status line, Date, lengths, Connection */
  if (mz_buf_reserve(o, 256 + ctype_len + cc_len + extra_len + (r->is_head ? 0 : body_len))) {
    /* out of memory: no answer can be written, so end the connection rather
       than leave the client waiting for one */
    fprintf(stderr, "mizan [error] out of memory writing a %d response to %s\n", status, c->ip);
    c->close_after = 1;
    return -1;
  }
  char *w = o->data + o->len;
  PUT_LIT(w, "HTTP/1.1 ");
  w = put_uint(w, (size_t)status);
  *w++ = ' ';
  w = put_str(w, mz__http_reason(status));
  PUT_LIT(w, "\r\nDate: ");
  w = put_str(w, c->srv->date);
  PUT_LIT(w, "\r\n");
  if (has_body) {
    PUT_LIT(w, "Content-Type: ");
    memcpy(w, ctype, ctype_len);
    w += ctype_len;
    PUT_LIT(w, "\r\nContent-Length: ");
    w = put_uint(w, body_len);
    PUT_LIT(w, "\r\n");
  }
  PUT_LIT(w, "Cache-Control: ");
  memcpy(w, cc, cc_len);
  w += cc_len;
  PUT_LIT(w, "\r\n");
  if (!keep) PUT_LIT(w, "Connection: close\r\n");
  else if (r->http_minor == 0) PUT_LIT(w, "Connection: keep-alive\r\n");
  if (extra_len) {
    memcpy(w, extra, extra_len);
    w += extra_len;
  }
  *w++ = '\r';
  *w++ = '\n';
  if (has_body && !r->is_head && body_len) {
    memcpy(w, body, body_len);
    w += body_len;
  }
  o->len = (size_t)(w - o->data);
  const char *path = r->url ? r->url : "-";
  size_t path_len = r->url ? r->url_len : 1;
  const char *q = memchr(path, '?', path_len);
  mz_observe_event ev = {.method = r->url ? llhttp_method_name((llhttp_method_t)r->method) : "-",
                         .path = path, .path_len = q ? (size_t)(q - path) : path_len,
                         .name = r->label, .name_len = r->label_len, .status = status, .bytes = body_len,
                         .start_ns = r->start_ns, .cache = r->cache, .ip = c->ip};
  mz_observe_response(&ev);
  return 0;
}

void mz__http_write_error_with(mz_http_conn *c, int status, const char *code, const char *message,
                              const char *extra, size_t extra_len) {
  mz_buf body;
  mz_buf_init(&body);
  if (mz_json_error_body(&body, code, message)) body.len = 0;
  mz__http_write_response(c, status, "application/json", body.data ? body.data : "", body.len, extra, extra_len);
  mz_buf_free(&body);
}

void mz__http_write_error(mz_http_conn *c, int status, const char *code, const char *message) {
  mz__http_write_error_with(c, status, code, message, NULL, 0);
}
