/*
 * mz_static: files from static_dir, for paths outside the API.
 *
 * The URL path is percent-decoded, refused if any segment is "..", joined
 * to the folder, and resolved with realpath(): the result must still be
 * inside the folder, so neither "../", "%2e%2e" nor a symlink pointing out
 * escapes it. Folders serve their index.html. ETags are weak (size and
 * mtime) and If-None-Match gives 304.
 *
 * Caching: an asset is sent `Cache-Control: no-cache` with its ETag, so the
 * browser keeps it and revalidates it (a 304 costs no body); a file whose
 * name carries a content hash, as Vite emits (assets/index-4f3a9c1b.js), can
 * never change under that name, so it is kept a year, immutable.
 *
 * HTML pages carry per-user data: the page is read here and Lua answers it,
 * with the global context of the requesting user injected as
 * window.__MIZAN_SSR_DATA__ and no-store (see mizan.dispatch.ssr).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http_conn.h"

static const struct {
  const char *ext, *type;
} TYPES[] = {{".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
             {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
             {".css", "text/css; charset=utf-8"}, {".json", "application/json"},
             {".map", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
             {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"}, {".gif", "image/gif"},
             {".webp", "image/webp"}, {".ico", "image/x-icon"}, {".woff2", "font/woff2"},
             {".woff", "font/woff"}, {".txt", "text/plain; charset=utf-8"}, {".wasm", "application/wasm"},
             {NULL, NULL}};

static const char *type_of(const char *path) {
  const char *dot = strrchr(path, '.');
  if (dot)
    for (int i = 0; TYPES[i].ext; i++)
      if (!strcasecmp(dot, TYPES[i].ext)) return TYPES[i].type;
  return "application/octet-stream";
}

/* A content hash in a file name: 8 characters of [A-Za-z0-9_-] right before
   the extension, after a '-' or '.', with a digit among them (Vite's default
   [name]-[hash].ext). A word ("my-template.js") has no digit: taking one for
   a hash would pin a changing file for a year, while missing a hash only
   costs a revalidation. */
static int hashed_name(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  if (!dot || dot - base < 10) return 0;
  const char *h = dot - 8;
  if (h[-1] != '-' && h[-1] != '.') return 0;
  int digit = 0;
  for (const char *p = h; p < dot; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch >= '0' && ch <= '9') digit = 1;
    else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-')) return 0;
  }
  return digit;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Decode and check a URL path into `out`. 0, or -1 when it must be refused. */
static int clean_path(const char *p, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == '%') {
      if (i + 2 >= n + 0 || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0) return -1;
      ch = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
      i += 2;
    }
    if (ch == 0 || ch == '\\') return -1;
    if (o + 1 >= cap) return -1;
    out[o++] = ch;
  }
  out[o] = 0;
  /* no ".." segment, however it was written */
  for (char *s = out; (s = strstr(s, "..")); s += 2) {
    int start = s == out || s[-1] == '/';
    int end = s[2] == 0 || s[2] == '/';
    if (start && end) return -1;
  }
  return 0;
}

int mz__static_answer(mz_http_conn *c, const char *path, size_t path_len) {
  mz_http_server *s = c->srv;
  if (!s->static_root[0]) return 0;
  mz_http_req *r = &c->req;
  if (r->method != HTTP_GET && r->method != HTTP_HEAD) return 0;
  char rel[PATH_MAX], joined[PATH_MAX * 2], real[PATH_MAX];
  if (clean_path(path, path_len, rel, sizeof rel)) {
    mz__http_write_error(c, 404, "not_found", "no such file");
    return 1;
  }
  snprintf(joined, sizeof joined, "%s/%s", s->static_root, rel);
  struct stat st;
  if (stat(joined, &st) == 0 && S_ISDIR(st.st_mode)) {
    size_t l = strlen(joined);
    snprintf(joined + l, sizeof joined - l, "%sindex.html", joined[l - 1] == '/' ? "" : "/");
  }
  size_t root_len = strlen(s->static_root);
  if (!realpath(joined, real) || strncmp(real, s->static_root, root_len) != 0 ||
      (real[root_len] != '/' && real[root_len] != 0) || stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
    return 0; /* not a file of ours: the usual 404 */
  }
  char etag[64];
  snprintf(etag, sizeof etag, "W/\"%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
  const char *type = type_of(real);
  int html = !strncmp(type, "text/html", 9);
  if (!html) r->cache_control = hashed_name(real) ? "public, max-age=31536000, immutable" : "no-cache";
  if (!html) {
    for (int i = 0; i < r->nheaders; i++) {
      if (!strcmp(r->headers[i].name, "if-none-match") && strstr(r->headers[i].value, etag)) {
        char extra[96];
        int n = snprintf(extra, sizeof extra, "ETag: %s\r\n", etag);
        mz__http_write_response(c, 304, type, NULL, 0, extra, (size_t)n);
        return 1;
      }
    }
  }
  FILE *f = fopen(real, "rb");
  if (!f) {
    r->cache_control = NULL; /* the 404 that follows is no asset */
    return 0;
  }
  /* a page waits for Lua (which may yield), so it is read into the
     request's own buffer; other files are answered at once */
  mz_buf *body = html ? &r->body : &s->static_buf;
  body->len = 0;
  int whole = mz_buf_reserve(body, (size_t)st.st_size) == 0 &&
              fread(body->data, 1, (size_t)st.st_size, f) == (size_t)st.st_size;
  fclose(f);
  if (!whole) {
    /* out of memory, or the file changed under us (a build rewriting it):
       never an empty 200 that a browser would keep */
    body->len = 0;
    r->cache_control = NULL;
    mz__http_write_error(c, 500, "internal_error", "the file could not be read");
    return 1;
  }
  body->len = (size_t)st.st_size;
  if (html) return 2; /* the caller hands the page to Lua */
  char extra[96];
  int n = snprintf(extra, sizeof extra, "ETag: %s\r\n", etag);
  mz__http_write_response(c, 200, type, body->data, body->len, extra, (size_t)n);
  return 1;
}
