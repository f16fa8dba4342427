/*
 * Strict request-head checks. llhttp 8.1, built without leniency flags, still
 * accepts a few things RFC 9112 forbids a server to accept; we refuse them
 * here, before and after llhttp parses the head.
 */
#include <stdlib.h>
#include <string.h>

#include "http_conn.h"

size_t mz__http_head_end(const char *p, size_t n, size_t from) {
  const char *end = p + n, *q = p + (from < n ? from : n);
  while ((q = memchr(q, '\n', (size_t)(end - q)))) {
    q++;
    /* a blank line is "\n" or "\r\n" right after a line feed */
    if (q < end && *q == '\n') return (size_t)(q + 1 - p);
    if (q + 1 < end && q[0] == '\r' && q[1] == '\n') return (size_t)(q + 2 - p);
  }
  return 0;
}

int mz__http_has_line(const char *p, size_t n) { return memchr(p, '\n', n) != NULL; }

int mz__http_bare_cr(const char *p, size_t n, size_t from) {
  const char *end = p + n, *q = p + (from < n ? from : n);
  while ((q = memchr(q, '\r', (size_t)(end - q)))) {
    if (q + 1 == end) return 0; /* its LF may be in the next read */
    if (q[1] != '\n') return 1;
    q += 2;
  }
  return 0;
}

/* Host = uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986 §3.2.2): an
   IP-literal in brackets or a reg-name (unreserved, pct-encoded,
   sub-delims), then digits after one colon. Userinfo ("u@x"), a path
   ("x/p"), a query or a fragment make it no host. Empty is allowed (a
   request-target without an authority). */
static int reg_name_char(unsigned char ch) {
  /* unreserved / pct-encoded / sub-delims: the common letters and digits first */
  if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') return 1;
  if (ch >= '0' && ch <= '9') return 1;
  return ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '%' || ch == '!' || ch == '$' || ch == '&' ||
         ch == '\'' || ch == '(' || ch == ')' || ch == '*' || ch == '+' || ch == ',' || ch == ';' || ch == '=';
}

static int host_ok(const char *s, size_t n) {
  size_t i = 0;
  if (n && s[0] == '[') {
    for (i = 1; i < n && s[i] != ']'; i++)
      if (!reg_name_char((unsigned char)s[i]) && s[i] != ':') return 0;
    if (i == n) return 0;
    i++;
  } else {
    for (; i < n && s[i] != ':'; i++)
      if (!reg_name_char((unsigned char)s[i])) return 0;
  }
  if (i == n) return 1;
  if (s[i] != ':') return 0;
  for (i++; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

/* request-line = method SP request-target SP HTTP-version, with single
   spaces and nothing else (RFC 9112 §3); llhttp tolerates repeated spaces. */
static int request_line_ok(const char *p, size_t len) {
  const char *sp1 = memchr(p, ' ', len);
  if (!sp1 || sp1 == p) return 0;
  const char *rest = sp1 + 1, *end = p + len;
  const char *sp2 = memchr(rest, ' ', (size_t)(end - rest));
  if (!sp2 || sp2 == rest) return 0;
  if (memchr(sp2 + 1, ' ', (size_t)(end - sp2 - 1))) return 0;
  for (const char *q = p; q < end; q++)
    if (*q == '\t' || *q == '\r') return 0;
  return 1;
}

int mz__http_head_check(const char *p, size_t n) {
  const char *end = p + n;
  const char *line = memchr(p, '\n', n);
  if (!line) return -1;
  size_t first = (size_t)(line - p);
  if (first && p[first - 1] == '\r') first--;
  if (!request_line_ok(p, first)) return -1;
  line++;
  while (line < end) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol) eol = end;
    size_t len = (size_t)(eol - line);
    if (len && line[len - 1] == '\r') len--;
    if (len == 0) break; /* the blank line ends the head */
    /* obs-fold: a continuation line starts with whitespace */
    if (line[0] == ' ' || line[0] == '\t') return -1;
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) return -1;
    if (colon[-1] == ' ' || colon[-1] == '\t') return -1;
    line = eol + 1;
  }
  return 0;
}

static int is_digits(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static int bad(mz_http_req *r, int status, const char *code, const char *msg) {
  r->status = status;
  r->err_code = code;
  r->err_msg = msg;
  return status;
}

int mz__http_req_check(mz_http_conn *c) {
  mz_http_req *r = &c->req;
  int http10 = r->http_minor == 0;
  size_t cl = 0;
  for (int i = 0; i < r->nheaders; i++) {
    mz_http_header *h = &r->headers[i];
    if (strcmp(h->name, "host") == 0) {
      r->host_count++;
      if (!host_ok(h->value, h->value_len)) return bad(r, 400, "bad_request", "invalid Host header");
    } else if (strcmp(h->name, "transfer-encoding") == 0) {
      r->te_count++;
    } else if (strcmp(h->name, "content-length") == 0) {
      r->cl_count++;
      if (!is_digits(h->value, h->value_len) || h->value_len > 15)
        return bad(r, 400, "bad_request", "invalid Content-Length");
      cl = (size_t)strtoull(h->value, NULL, 10);
    } else if (strcmp(h->name, "expect") == 0) {
      if (h->value_len == 12 && strncasecmp(h->value, "100-continue", 12) == 0) r->expect_continue = 1;
    }
  }
  if (!http10 && r->host_count != 1)
    return bad(r, 400, "bad_request", r->host_count ? "duplicate Host header" : "missing Host header");
  if (r->host_count > 1) return bad(r, 400, "bad_request", "duplicate Host header");
  if (r->cl_count > 1) return bad(r, 400, "bad_request", "duplicate Content-Length");
  if (r->te_count && http10) return bad(r, 400, "bad_request", "Transfer-Encoding on HTTP/1.0");
  if (r->te_count && r->cl_count)
    return bad(r, 400, "bad_request", "Content-Length together with Transfer-Encoding");
  if (r->te_count) {
    /* the only coding we accept is exactly "chunked" */
    for (int i = 0; i < r->nheaders; i++) {
      mz_http_header *h = &r->headers[i];
      if (strcmp(h->name, "transfer-encoding") == 0 &&
          !(h->value_len == 7 && strncasecmp(h->value, "chunked", 7) == 0))
        return bad(r, 400, "bad_request", "unsupported Transfer-Encoding");
    }
    if (r->te_count > 1) return bad(r, 400, "bad_request", "duplicate Transfer-Encoding");
    r->chunked = 1;
  }
  if (cl > c->srv->limits.max_body)
    return bad(r, 413, "payload_too_large", "the request body is larger than the limit");
  return 0;
}
