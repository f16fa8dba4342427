/*
 * JSON codec. See json.h for the value mapping and the error contract.
 *
 * The decoder is a recursive-descent parser over RFC 8259 with no extensions:
 * no comments, no trailing commas, no NaN, no BOM. Every string is checked to
 * be valid UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF), and a
 * \u escape must not leave a lone surrogate.
 */
#include "json.h"
#include "utf8.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- context */

static int json_ctx_gc(lua_State *L) {
  mz_json_ctx *ctx = lua_touserdata(L, 1);
  mz_buf_free(&ctx->scratch);
  mz_buf_free(&ctx->aux);
  free(ctx->keys);
  ctx->keys = NULL;
  return 0;
}

mz_json_ctx *mz_json_ctx_new(lua_State *L) {
  mz_json_ctx *ctx = lua_newuserdata(L, sizeof *ctx);
  memset(ctx, 0, sizeof *ctx);
  mz_buf_init(&ctx->scratch);
  mz_buf_init(&ctx->aux);
  ctx->max_depth = MZ_JSON_MAX_DEPTH;
  lua_newtable(L);
  lua_pushcfunction(L, json_ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);

  lua_newtable(L);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  ctx->array_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  lua_pushliteral(L, "object");
  lua_setfield(L, -2, "__jsontype");
  ctx->object_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return ctx;
}

/* ---------------------------------------------------------------- decoder */

typedef struct {
  mz_json_ctx *ctx;
  lua_State *L;
  const unsigned char *p, *start, *end;
  int depth;
  int array_mt; /* stack index of the arrays' metatable, pushed once per decode */
} json_dec;

/* Bytes a string's fast path copies as they are: ASCII from 0x20 but '"'
   (0x22) and '\\' (0x5c); control characters, escapes and UTF-8 take the
   slow path. One table lookup per byte instead of four comparisons. */
static const unsigned char str_plain[256] = {
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x80 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x90 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xa0 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xb0 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xc0 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xd0 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xe0 */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xf0 */
};

static int dec_fail(json_dec *d, const char *what) {
  snprintf(d->ctx->err, sizeof d->ctx->err, "%s at byte %ld", what, (long)(d->p - d->start));
  return -1;
}

static inline void dec_ws(json_dec *d) {
  if (d->p < d->end && *d->p > ' ') return; /* the common case: no whitespace */
  while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t')) d->p++;
}

static int hex4(const unsigned char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], h;
    if (c >= '0' && c <= '9') h = c - '0';
    else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
    else return -1;
    v = v << 4 | h;
  }
  *out = v;
  return 0;
}

static size_t utf8_put(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Parse a string whose opening quote is at d->p and push it. */
static int dec_string(json_dec *d) {
  const unsigned char *s = ++d->p, *p = s, *end = d->end;
  /* Fast path: plain ASCII with no escapes is pushed straight from the input. */
  while (p < end && str_plain[*p]) p++;
  if (p < end && *p == '"') {
    lua_pushlstring(d->L, (const char *)s, (size_t)(p - s));
    d->p = p + 1;
    return 0;
  }
  mz_buf *sb = &d->ctx->scratch;
  sb->len = 0;
  if (mz_buf_append(sb, s, (size_t)(p - s))) return dec_fail(d, "out of memory");
  while (p < end) {
    unsigned c = *p;
    if (c == '"') {
      lua_pushlstring(d->L, sb->data ? sb->data : "", sb->len);
      d->p = p + 1;
      return 0;
    }
    if (mz_buf_reserve(sb, 4)) return dec_fail(d, "out of memory");
    if (c < 0x20) { d->p = p; return dec_fail(d, "control character in string"); }
    if (c == '\\') {
      if (end - p < 2) break;
      unsigned e = p[1];
      p += 2;
      switch (e) {
        case '"': mz_buf_put1(sb, '"'); break;
        case '\\': mz_buf_put1(sb, '\\'); break;
        case '/': mz_buf_put1(sb, '/'); break;
        case 'b': mz_buf_put1(sb, '\b'); break;
        case 'f': mz_buf_put1(sb, '\f'); break;
        case 'n': mz_buf_put1(sb, '\n'); break;
        case 'r': mz_buf_put1(sb, '\r'); break;
        case 't': mz_buf_put1(sb, '\t'); break;
        case 'u': {
          unsigned cp, lo;
          if (end - p < 4 || hex4(p, &cp)) { d->p = p; return dec_fail(d, "bad \\u escape"); }
          p += 4;
          if (cp >= 0xDC00 && cp <= 0xDFFF) { d->p = p; return dec_fail(d, "lone surrogate"); }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF) {
              d->p = p;
              return dec_fail(d, "lone surrogate");
            }
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          sb->len += utf8_put(sb->data + sb->len, cp);
          break;
        }
        default: d->p = p - 1; return dec_fail(d, "bad escape");
      }
      continue;
    }
    int n = mz_utf8_seq(p, (size_t)(end - p));
    if (!n) { d->p = p; return dec_fail(d, "invalid UTF-8"); }
    memcpy(sb->data + sb->len, p, (size_t)n);
    sb->len += (size_t)n;
    p += n;
  }
  d->p = end;
  return dec_fail(d, "unterminated string");
}

static int dec_number(json_dec *d) {
  const unsigned char *p = d->p, *s = p, *end = d->end;
  int neg = 0, is_int = 1;
  if (p < end && *p == '-') { neg = 1; p++; }
  if (p >= end || *p < '0' || *p > '9') return dec_fail(d, "bad number");
  uint64_t v = 0;
  int digits = 0, frac = 0, exp = 0, exp_ok = 1;
  if (*p == '0') { p++; digits = 1; }
  else while (p < end && *p >= '0' && *p <= '9') { if (digits < 19) v = v * 10 + (unsigned)(*p - '0'); p++; digits++; }
  if (p < end && *p == '.') {
    is_int = 0;
    p++;
    if (p >= end || *p < '0' || *p > '9') { d->p = p; return dec_fail(d, "bad number"); }
    while (p < end && *p >= '0' && *p <= '9') {
      if (digits < 19) v = v * 10 + (unsigned)(*p - '0'), frac++;
      p++;
      digits++;
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    is_int = 0;
    p++;
    int eneg = 0;
    if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    if (p >= end || *p < '0' || *p > '9') { d->p = p; return dec_fail(d, "bad number"); }
    while (p < end && *p >= '0' && *p <= '9') {
      if (exp < 10000) exp = exp * 10 + (*p - '0');
      else exp_ok = 0;
      p++;
    }
    if (eneg) exp = -exp;
  }
  d->p = p;
  if (is_int && digits <= 15) { /* exact in a double */
    lua_pushnumber(d->L, neg ? -(double)v : (double)v);
    return 0;
  }
  /* Clinger's fast path: at most 15 digits are exact in a double, and so
     is 10^k for k <= 22; one multiplication or division of two exact
     values is correctly rounded, as strtod's answer is. */
  int e10 = exp - frac;
  if (digits <= 15 && exp_ok && e10 >= -22 && e10 <= 22) {
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    double x = e10 < 0 ? (double)v / pow10[-e10] : (double)v * pow10[e10];
    lua_pushnumber(d->L, neg ? -x : x);
    return 0;
  }
  char tmp[64], *num = tmp;
  size_t n = (size_t)(p - s);
  mz_buf *sb = &d->ctx->scratch;
  if (n >= sizeof tmp) {
    sb->len = 0;
    if (mz_buf_reserve(sb, n + 1)) return dec_fail(d, "out of memory");
    num = sb->data;
  }
  memcpy(num, s, n);
  num[n] = 0;
  double x = strtod(num, NULL);
  if (isinf(x)) return dec_fail(d, "number out of range");
  lua_pushnumber(d->L, x);
  return 0;
}

static int dec_lit(json_dec *d, const char *lit, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, lit, n)) return dec_fail(d, "unexpected character");
  d->p += n;
  return 0;
}

static int dec_value(json_dec *d);

static int dec_array(json_dec *d) {
  lua_State *L = d->L;
  d->p++;
  if (++d->depth > d->ctx->max_depth) return dec_fail(d, "nesting too deep");
  if (!lua_checkstack(L, 3)) return dec_fail(d, "nesting too deep");
  lua_createtable(L, 4, 0);
  lua_pushvalue(L, d->array_mt);
  lua_setmetatable(L, -2);
  dec_ws(d);
  if (d->p < d->end && *d->p == ']') { d->p++; d->depth--; return 0; }
  for (int i = 1;; i++) {
    if (dec_value(d)) return -1;
    lua_rawseti(L, -2, i);
    dec_ws(d);
    if (d->p >= d->end) return dec_fail(d, "unterminated array");
    if (*d->p == ',') { d->p++; continue; }
    if (*d->p == ']') { d->p++; d->depth--; return 0; }
    return dec_fail(d, "expected ',' or ']'");
  }
}

static int dec_object(json_dec *d) {
  lua_State *L = d->L;
  d->p++;
  if (++d->depth > d->ctx->max_depth) return dec_fail(d, "nesting too deep");
  if (!lua_checkstack(L, 4)) return dec_fail(d, "nesting too deep");
  lua_createtable(L, 0, 4);
  dec_ws(d);
  if (d->p < d->end && *d->p == '}') { d->p++; d->depth--; return 0; }
  for (;;) {
    dec_ws(d);
    if (d->p >= d->end || *d->p != '"') return dec_fail(d, "expected a string key");
    if (dec_string(d)) return -1;
    dec_ws(d);
    if (d->p >= d->end || *d->p != ':') return dec_fail(d, "expected ':'");
    d->p++;
    if (dec_value(d)) return -1;
    lua_rawset(L, -3);
    dec_ws(d);
    if (d->p >= d->end) return dec_fail(d, "unterminated object");
    if (*d->p == ',') { d->p++; continue; }
    if (*d->p == '}') { d->p++; d->depth--; return 0; }
    return dec_fail(d, "expected ',' or '}'");
  }
}

static int dec_value(json_dec *d) {
  dec_ws(d);
  if (d->p >= d->end) return dec_fail(d, "unexpected end of input");
  switch (*d->p) {
    case '{': return dec_object(d);
    case '[': return dec_array(d);
    case '"': return dec_string(d);
    case 't': if (dec_lit(d, "true", 4)) return -1; lua_pushboolean(d->L, 1); return 0;
    case 'f': if (dec_lit(d, "false", 5)) return -1; lua_pushboolean(d->L, 0); return 0;
    case 'n': if (dec_lit(d, "null", 4)) return -1; lua_pushlightuserdata(d->L, NULL); return 0;
    default:
      if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return dec_number(d);
      return dec_fail(d, "unexpected character");
  }
}

int mz_json_decode(mz_json_ctx *ctx, lua_State *L, const char *s, size_t n) {
  int top = lua_gettop(L);
  json_dec d = {ctx, L, (const unsigned char *)s, (const unsigned char *)s,
                (const unsigned char *)s + n, 0, top + 1};
  if (!lua_checkstack(L, 8)) {
    snprintf(ctx->err, sizeof ctx->err, "out of stack");
    return -1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->array_mt_ref);
  if (dec_value(&d) == 0) {
    dec_ws(&d);
    if (d.p == d.end) {
      lua_remove(L, d.array_mt); /* the value alone is left */
      return 0;
    }
    dec_fail(&d, "trailing characters");
  }
  lua_settop(L, top);
  return -1;
}

/* ---------------------------------------------------------------- numbers */

static int fmt_int(int64_t v, char *out) {
  char tmp[24];
  int n = 0, len = 0;
  uint64_t u = v < 0 ? (uint64_t)(-v) : (uint64_t)v;
  do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) out[len++] = '-';
  while (n) out[len++] = tmp[--n];
  out[len] = 0;
  return len;
}

/* Shortest decimal digits that round-trip, with the decimal exponent `k` such
   that value = 0.DIGITS * 10^k. For normal numbers it tries 15, 16 then 17
   significant digits: two decimals of 15 digits or fewer are further apart
   than a double's ulp, so one that round-trips is the correctly rounded one,
   and stripping its zeros gives the shortest. */
static int shortest_digits(double d, char *digits, int *k) {
  char buf[40];
  /* subnormals carry fewer than 15 digits of precision: search from 1 */
  for (int prec = d < 2.2250738585072014e-308 ? 1 : 15; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (prec == 17 || strtod(buf, NULL) == d) break;
  }
  /* buf is "D.DDDDe[+-]XX" */
  int n = 0;
  char *p = buf;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') digits[n++] = *p;
  int e = atoi(p + 1);
  while (n > 1 && digits[n - 1] == '0') n--;
  digits[n] = 0;
  *k = e + 1;
  return n;
}

/* Fast path for numbers with a few decimals (12.5, 0.25): the smallest k such
   that m = d * 10^k is an integer and m / 10^k gives d back. Both m and 10^k
   are exact doubles, so the division is correctly rounded and equals reading
   the decimal text back: the text round-trips, and no shorter one exists. */
static int fmt_fixed(double d, char *out) {
  static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
  double a = fabs(d);
  if (a < 1e-6 || a >= 1e15) return 0; /* JS switches to exponents below 1e-6 */
  for (int k = 1; k <= 8; k++) {
    double m = a * p10[k];
    if (m != floor(m) || m >= 9007199254740992.0 || m / p10[k] != a) continue;
    char digits[24];
    int n = fmt_int((int64_t)m, digits), len = 0;
    if (d < 0) out[len++] = '-';
    if (n <= k) { /* 0.00ddd */
      out[len++] = '0';
      out[len++] = '.';
      for (int i = n; i < k; i++) out[len++] = '0';
      memcpy(out + len, digits, (size_t)n);
      len += n;
    } else {
      memcpy(out + len, digits, (size_t)(n - k));
      len += n - k;
      out[len++] = '.';
      memcpy(out + len, digits + n - k, (size_t)k);
      len += k;
    }
    out[len] = 0;
    return len;
  }
  return 0;
}

int mz_json_format_number(double d, char *out) {
  if (d == 0) { out[0] = '0'; out[1] = 0; return 1; } /* -0 too, as JS does */
  if (d == floor(d) && fabs(d) <= 9007199254740992.0) return fmt_int((int64_t)d, out);
  int len = fmt_fixed(d, out);
  if (len) return len;
  char digits[24];
  int k;
  if (d < 0) { out[len++] = '-'; d = -d; }
  int n = shortest_digits(d, digits, &k);
  if (n <= k && k <= 21) { /* integer-valued, no exponent */
    memcpy(out + len, digits, (size_t)n); len += n;
    for (int i = n; i < k; i++) out[len++] = '0';
  } else if (0 < k && k <= 21) { /* point inside the digits */
    memcpy(out + len, digits, (size_t)k); len += k;
    out[len++] = '.';
    memcpy(out + len, digits + k, (size_t)(n - k)); len += n - k;
  } else if (-6 < k && k <= 0) { /* 0.000ddd */
    out[len++] = '0'; out[len++] = '.';
    for (int i = 0; i < -k; i++) out[len++] = '0';
    memcpy(out + len, digits, (size_t)n); len += n;
  } else { /* exponent form: d[.ddd]e±x */
    out[len++] = digits[0];
    if (n > 1) { out[len++] = '.'; memcpy(out + len, digits + 1, (size_t)(n - 1)); len += n - 1; }
    len += snprintf(out + len, 8, "e%c%d", k - 1 < 0 ? '-' : '+', abs(k - 1));
  }
  out[len] = 0;
  return len;
}

/* ---------------------------------------------------------------- encoder */

typedef struct {
  mz_json_ctx *ctx;
  lua_State *L;
  mz_buf *out;
  int flags;
  int depth;
} json_enc;

static int enc_fail(json_enc *e, const char *fmt, const char *arg) {
  snprintf(e->ctx->err, sizeof e->ctx->err, fmt, arg);
  return -1;
}

static const char hexdig[] = "0123456789abcdef";

/* Bytes that can be copied as they are: printable ASCII but '"' and '\\'. */
static const unsigned char plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0), /* controls */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* '"' at 0x22 */
    R16(1), R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* '\\' at 0x5c */
    R16(1), R16(1),
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0) /* >= 0x80: UTF-8 */
#undef R16
};

static int enc_string(json_enc *e, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str, *end = s + n;
  mz_buf *o = e->out;
  /* Worst case every byte becomes \u00XX. */
  if (mz_buf_reserve(o, n * 6 + 2)) return enc_fail(e, "out of memory", NULL);
  char *w = o->data + o->len;
  *w++ = '"';
  while (s < end) {
    const unsigned char *run = s;
    while (s < end && plain[*s]) s++;
    memcpy(w, run, (size_t)(s - run));
    w += s - run;
    if (s == end) break;
    unsigned c = *s;
    if (c >= 0x80) {
      int k = mz_utf8_seq(s, (size_t)(end - s));
      if (!k) return enc_fail(e, "cannot encode a string that is not valid UTF-8", NULL);
      memcpy(w, s, (size_t)k);
      w += k;
      s += k;
      continue;
    }
    *w++ = '\\';
    switch (c) {
      case '"': *w++ = '"'; break;
      case '\\': *w++ = '\\'; break;
      case '\b': *w++ = 'b'; break;
      case '\f': *w++ = 'f'; break;
      case '\n': *w++ = 'n'; break;
      case '\r': *w++ = 'r'; break;
      case '\t': *w++ = 't'; break;
      default:
        *w++ = 'u'; *w++ = '0'; *w++ = '0';
        *w++ = hexdig[c >> 4]; *w++ = hexdig[c & 15];
    }
    s++;
  }
  *w++ = '"';
  o->len = (size_t)(w - o->data);
  return 0;
}

/* C callers (error bodies, the JSON access log) use the same string encoder,
   so no JSON is put together by hand outside the codec. */
int mz_json_put_string(mz_buf *out, const char *s, size_t n) {
  mz_json_ctx ctx;
  json_enc e = {.ctx = &ctx, .out = out};
  size_t start = out->len;
  if (enc_string(&e, s, n)) {
    out->len = start;
    return -1;
  }
  return 0;
}

static void w_key(mz_json_writer *w, const char *key) {
  if (w->failed) return;
  if ((w->first[w->depth] ? 0 : mz_buf_putc(w->out, ',')) || mz_json_put_string(w->out, key, strlen(key)) ||
      mz_buf_putc(w->out, ':'))
    w->failed = 1;
  w->first[w->depth] = 0;
}

void mz_json_w_begin(mz_json_writer *w, mz_buf *out) {
  *w = (mz_json_writer){.out = out, .start = out->len};
  w->first[0] = 1;
  if (mz_buf_putc(out, '{')) w->failed = 1;
}

void mz_json_w_string(mz_json_writer *w, const char *key, const char *s, size_t n) {
  w_key(w, key);
  if (!w->failed && mz_json_put_string(w->out, s, n)) w->failed = 1;
}

void mz_json_w_number(mz_json_writer *w, const char *key, double v) {
  char num[32];
  w_key(w, key);
  if (!w->failed && mz_buf_append(w->out, num, (size_t)mz_json_format_number(v, num))) w->failed = 1;
}

void mz_json_w_object(mz_json_writer *w, const char *key) {
  w_key(w, key);
  if (w->depth + 1 >= (int)sizeof w->first) w->failed = 1;
  if (w->failed || mz_buf_putc(w->out, '{')) {
    w->failed = 1;
    return;
  }
  w->first[++w->depth] = 1;
}

void mz_json_w_close(mz_json_writer *w) {
  if (w->failed || w->depth == 0 || mz_buf_putc(w->out, '}')) w->failed = 1;
  else w->depth--;
}

int mz_json_w_end(mz_json_writer *w) {
  if (!w->failed && (w->depth != 0 || mz_buf_putc(w->out, '}'))) w->failed = 1;
  if (w->failed) w->out->len = w->start;
  return w->failed ? -1 : 0;
}

int mz_json_error_body(mz_buf *out, const char *code, const char *message) {
  mz_json_writer w;
  mz_json_w_begin(&w, out);
  mz_json_w_object(&w, "error");
  mz_json_w_string(&w, "code", code, strlen(code));
  mz_json_w_string(&w, "message", message, strlen(message));
  mz_json_w_close(&w);
  return mz_json_w_end(&w);
}

static int enc_value(json_enc *e, int idx);

/* 1 if the table at idx is tagged with the marker metatable `ref`. */
static int has_mt(lua_State *L, int idx, int ref) {
  if (!lua_getmetatable(L, idx)) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  int eq = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return eq;
}

/* 'a' for the array marker, 'o' for the object marker, 0 for anything else. */
static int marker_of(mz_json_ctx *ctx, lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return 0; /* the common case: a plain table */
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->array_mt_ref);
  int kind = lua_rawequal(L, -1, -2) ? 'a' : 0;
  lua_pop(L, 1);
  if (!kind) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->object_mt_ref);
    kind = lua_rawequal(L, -1, -2) ? 'o' : 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return kind;
}

/* Returns the array length if the untagged table at idx is a proper sequence
   1..n with n > 0 and no other keys, else -1 (an object), or -2 when it mixes
   number keys into what must then be an object. */
static long table_shape(lua_State *L, int idx) {
  size_t n = lua_objlen(L, idx);
  /* no [1]: an object (or {}); enc_object refuses any non-string key itself */
  if (n == 0) return -1;
  size_t count = 0;
  int numkeys = 0, strkeys = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (lua_type(L, -1) == LUA_TNUMBER) {
      double k = lua_tonumber(L, -1);
      numkeys = 1;
      if (!(k >= 1 && k <= (double)n && k == floor(k))) n = 0; /* outside 1..n */
    } else {
      strkeys = 1;
    }
  }
  if (numkeys && !strkeys && n > 0 && count == n) return (long)n;
  if (numkeys) return -2;
  return -1;
}

static int enc_array(json_enc *e, int idx, size_t n) {
  if (mz_buf_putc(e->out, '[')) return enc_fail(e, "out of memory", NULL);
  for (size_t i = 1; i <= n; i++) {
    if (i > 1 && mz_buf_putc(e->out, ',')) return enc_fail(e, "out of memory", NULL);
    lua_rawgeti(e->L, idx, (int)i);
    int r = lua_isnil(e->L, -1) ? mz_buf_append(e->out, "null", 4) : enc_value(e, lua_gettop(e->L));
    lua_pop(e->L, 1);
    if (r) return -1;
  }
  if (mz_buf_putc(e->out, ']')) return enc_fail(e, "out of memory", NULL);
  return 0;
}

static int key_cmp(const void *a, const void *b) {
  const mz_json_key *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  if (c) return c;
  return x->n < y->n ? -1 : x->n > y->n;
}

static int enc_member(json_enc *e, int idx, int first, const char *k, size_t kn) {
  if (!first && mz_buf_putc(e->out, ',')) return enc_fail(e, "out of memory", NULL);
  if (enc_string(e, k, kn)) return -1;
  if (mz_buf_putc(e->out, ':')) return enc_fail(e, "out of memory", NULL);
  return enc_value(e, idx);
}

static int enc_object_sorted(json_enc *e, int idx) {
  lua_State *L = e->L;
  mz_json_ctx *c = e->ctx;
  size_t base = c->nkeys;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      c->nkeys = base;
      return enc_fail(e, "cannot encode an object with a non-string key", NULL);
    }
    if (c->nkeys == c->capkeys) {
      size_t cap = c->capkeys ? c->capkeys * 2 : 64;
      mz_json_key *k = realloc(c->keys, cap * sizeof *k);
      if (!k) { lua_pop(L, 1); c->nkeys = base; return enc_fail(e, "out of memory", NULL); }
      c->keys = k;
      c->capkeys = cap;
    }
    /* Key strings stay put: the table anchors them and the GC does not move. */
    c->keys[c->nkeys].s = lua_tolstring(L, -1, &c->keys[c->nkeys].n);
    c->nkeys++;
  }
  size_t nk = c->nkeys - base;
  if (nk > 1) qsort(c->keys + base, nk, sizeof *c->keys, key_cmp);
  int r = 0;
  for (size_t i = 0; i < nk && !r; i++) {
    mz_json_key k = c->keys[base + i]; /* copy: nested objects may realloc */
    lua_pushlstring(L, k.s, k.n);
    lua_rawget(L, idx);
    r = enc_member(e, lua_gettop(L), i == 0, k.s, k.n);
    lua_pop(L, 1);
  }
  c->nkeys = base;
  return r;
}

static int enc_object(json_enc *e, int idx) {
  lua_State *L = e->L;
  if (mz_buf_putc(e->out, '{')) return enc_fail(e, "out of memory", NULL);
  if (e->flags & MZ_JSON_CANONICAL) {
    if (enc_object_sorted(e, idx)) return -1;
  } else {
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      if (lua_type(L, -2) != LUA_TSTRING) {
        lua_pop(L, 2);
        return enc_fail(e, "cannot encode an object with a non-string key", NULL);
      }
      size_t kn;
      const char *k = lua_tolstring(L, -2, &kn);
      if (enc_member(e, lua_gettop(L), first, k, kn)) { lua_pop(L, 2); return -1; }
      first = 0;
      lua_pop(L, 1);
    }
  }
  if (mz_buf_putc(e->out, '}')) return enc_fail(e, "out of memory", NULL);
  return 0;
}

static int enc_table(json_enc *e, int idx) {
  lua_State *L = e->L;
  if (++e->depth > e->ctx->max_depth)
    return enc_fail(e, "cannot encode: nesting deeper than the limit (a cycle?)", NULL);
  if (!lua_checkstack(L, 6)) return enc_fail(e, "out of stack", NULL);
  int r, marker = marker_of(e->ctx, L, idx);
  if (marker == 'a') {
    r = enc_array(e, idx, lua_objlen(L, idx));
  } else if (marker == 'o') {
    r = enc_object(e, idx);
  } else {
    long shape = table_shape(L, idx);
    if (shape > 0) r = enc_array(e, idx, (size_t)shape);
    else if (shape == -1) r = enc_object(e, idx);
    else r = enc_fail(e, "cannot encode a table that mixes number keys with other keys (a sparse array?)", NULL);
  }
  e->depth--;
  return r;
}

static int enc_value(json_enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return mz_buf_append(e->out, "null", 4) ? enc_fail(e, "out of memory", NULL) : 0;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) return mz_buf_append(e->out, "true", 4) ? enc_fail(e, "out of memory", NULL) : 0;
      return mz_buf_append(e->out, "false", 5) ? enc_fail(e, "out of memory", NULL) : 0;
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, idx);
      if (isnan(d) || isinf(d)) return enc_fail(e, "cannot encode %s: JSON has no NaN or infinity", isnan(d) ? "NaN" : "infinity");
      char num[40];
      int n = mz_json_format_number(d, num);
      return mz_buf_append(e->out, num, (size_t)n) ? enc_fail(e, "out of memory", NULL) : 0;
    }
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      return enc_string(e, s, n);
    }
    case LUA_TTABLE: return enc_table(e, idx);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) return mz_buf_append(e->out, "null", 4) ? enc_fail(e, "out of memory", NULL) : 0;
      /* fallthrough */
    default: return enc_fail(e, "cannot encode a value of type %s", lua_typename(L, lua_type(L, idx)));
  }
}

int mz_json_encode(mz_json_ctx *ctx, lua_State *L, int idx, mz_buf *out, int flags) {
  if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
  json_enc e = {ctx, L, out, flags, 0};
  int top = lua_gettop(L);
  ctx->nkeys = 0;
  int r = enc_value(&e, idx);
  lua_settop(L, top);
  return r;
}

/* ---------------------------------------------------------------- Lua API */

static mz_json_ctx *upctx(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* json.decode(s) -> value | nil, err. A non-string argument is misuse and raises. */
static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  mz_json_ctx *ctx = upctx(L);
  if (mz_json_decode(ctx, L, s, n)) {
    lua_pushnil(L);
    lua_pushstring(L, ctx->err);
    return 2;
  }
  return 1;
}

static int encode_with(lua_State *L, int flags) {
  luaL_checkany(L, 1);
  mz_json_ctx *ctx = upctx(L);
  mz_buf *b = &ctx->scratch; /* decode is never re-entered during encode */
  b->len = 0;
  if (mz_json_encode(ctx, L, 1, b, flags)) {
    lua_pushnil(L);
    lua_pushstring(L, ctx->err);
    return 2;
  }
  lua_pushlstring(L, b->data, b->len);
  /* Do not keep a huge buffer around after one big response. */
  if (b->cap > (1 << 20)) mz_buf_free(b);
  return 1;
}

static int l_encode(lua_State *L) { return encode_with(L, 0); }
static int l_canonical(lua_State *L) { return encode_with(L, MZ_JSON_CANONICAL); }

/* json.array(t?) / json.object(t?): tag a table so it encodes as that kind. */
static int tag_with(lua_State *L, int ref) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  else luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_setmetatable(L, 1);
  return 1;
}
static int l_array(lua_State *L) { return tag_with(L, upctx(L)->array_mt_ref); }
static int l_object(lua_State *L) { return tag_with(L, upctx(L)->object_mt_ref); }

static int l_is_array(lua_State *L) {
  lua_pushboolean(L, lua_type(L, 1) == LUA_TTABLE && has_mt(L, 1, upctx(L)->array_mt_ref));
  return 1;
}

void mz_json_open(lua_State *L) {
  int t = lua_gettop(L);
  mz_json_ctx *ctx = mz_json_ctx_new(L);
  (void)ctx;
  static const luaL_Reg fns[] = {
      {"decode", l_decode}, {"encode", l_encode}, {"canonical", l_canonical},
      {"array", l_array},   {"object", l_object}, {"is_array", l_is_array},
      {NULL, NULL}};
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushvalue(L, t + 1);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, t, f->name);
  }
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, t, "null");
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->array_mt_ref);
  lua_setfield(L, t, "array_mt");
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->object_mt_ref);
  lua_setfield(L, t, "object_mt");
  lua_setfield(L, t, "_ctx"); /* keeps the ctx alive with the module */
}
