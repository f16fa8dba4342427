/* mz_crypto: see crypto.h. */
#include "crypto.h"

#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static void to_hex(const unsigned char *in, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * n] = 0;
}

void mz_crypto_hmac_sha256_hex(const char *key, size_t key_len, const char *msg, size_t n, char out[65]) {
  unsigned char mac[32];
  unsigned int len = sizeof mac;
  HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, n, mac, &len);
  to_hex(mac, 32, out);
}

int mz_crypto_random(unsigned char *out, size_t n) { return RAND_bytes(out, (int)n) == 1 ? 0 : -1; }

static int l_hmac(lua_State *L) {
  size_t kn, mn;
  const char *k = luaL_checklstring(L, 1, &kn);
  const char *m = luaL_checklstring(L, 2, &mn);
  char out[65];
  mz_crypto_hmac_sha256_hex(k, kn, m, mn, out);
  lua_pushlstring(L, out, 64);
  return 1;
}

/* random_hex(nbytes) -> hex string | nil, err */
static int l_random_hex(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 1);
  if (n < 1 || n > 256) return luaL_argerror(L, 1, "must be 1..256");
  unsigned char buf[256];
  char hex[513];
  if (mz_crypto_random(buf, (size_t)n)) {
    lua_pushnil(L);
    lua_pushliteral(L, "the random generator failed");
    return 2;
  }
  to_hex(buf, (size_t)n, hex);
  lua_pushlstring(L, hex, (size_t)n * 2);
  return 1;
}

/* equal(a, b) -> boolean, in time that depends on the length only */
static int l_equal(lua_State *L) {
  size_t an, bn;
  const char *a = luaL_checklstring(L, 1, &an);
  const char *b = luaL_checklstring(L, 2, &bn);
  lua_pushboolean(L, an == bn && CRYPTO_memcmp(a, b, an) == 0);
  return 1;
}

typedef struct {
  uv_work_t work;
  mz_task *task;
  char *password;
  size_t plen;
  unsigned char salt[64];
  size_t slen;
  uint64_t N, r, p;
  unsigned char out[64];
  size_t outlen;
  int ok;
} scrypt_job;

static void scrypt_run(uv_work_t *w) {
  scrypt_job *j = w->data;
  j->ok = EVP_PBE_scrypt(j->password, j->plen, j->salt, j->slen, j->N, j->r, j->p,
                         256ull * 1024 * 1024, j->out, j->outlen) == 1;
}

static void scrypt_done(uv_work_t *w, int status) {
  scrypt_job *j = w->data;
  lua_State *co = j->task->co;
  int n = 1;
  if (status || !j->ok) {
    lua_pushnil(co);
    lua_pushliteral(co, "scrypt failed");
    n = 2;
  } else {
    char hex[129];
    to_hex(j->out, j->outlen, hex);
    lua_pushlstring(co, hex, j->outlen * 2);
  }
  mz_task *t = j->task;
  OPENSSL_cleanse(j->password, j->plen);
  free(j->password);
  free(j);
  mz_task_resume(t, n);
}

static int from_hex(const char *s, size_t n, unsigned char *out) {
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v = 0;
    for (int k = 0; k < 2; k++) {
      char c = s[2 * i + (size_t)k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
      else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
      else return -1;
    }
    out[i] = (unsigned char)v;
  }
  return 0;
}

/* scrypt(password, salt_hex, N, r, p, bytes) -> hex | nil, err. CPU-heavy by
   design, so it runs on the libuv thread pool while the task yields. */
static int l_scrypt(lua_State *L) {
  size_t plen, slen;
  const char *password = luaL_checklstring(L, 1, &plen);
  const char *salt = luaL_checklstring(L, 2, &slen);
  lua_Number N = luaL_checknumber(L, 3), r = luaL_checknumber(L, 4), p = luaL_checknumber(L, 5);
  lua_Number bytes = luaL_optnumber(L, 6, 32);
  if (slen % 2 || slen > 128) return luaL_argerror(L, 2, "salt: up to 64 bytes of lowercase hex");
  if (bytes < 16 || bytes > 64) return luaL_argerror(L, 6, "16 to 64 bytes");
  mz_host *h = mz_host_from(L);
  if (!h->current || h->current->co != L) return luaL_error(L, "scrypt must run in a task's own coroutine");
  scrypt_job *j = calloc(1, sizeof *j);
  if (!j) return luaL_error(L, "out of memory");
  if (from_hex(salt, slen, j->salt)) {
    free(j);
    return luaL_argerror(L, 2, "salt: lowercase hex");
  }
  j->password = malloc(plen + 1);
  if (!j->password) {
    free(j);
    return luaL_error(L, "out of memory");
  }
  memcpy(j->password, password, plen);
  j->plen = plen;
  j->slen = slen / 2;
  j->N = (uint64_t)N;
  j->r = (uint64_t)r;
  j->p = (uint64_t)p;
  j->outlen = (size_t)bytes;
  j->task = h->current;
  j->work.data = j;
  if (uv_queue_work(h->loop, &j->work, scrypt_run, scrypt_done)) {
    free(j->password);
    free(j);
    lua_pushnil(L);
    lua_pushliteral(L, "cannot queue scrypt");
    return 2;
  }
  lua_settop(L, 0);
  return lua_yield(L, 0);
}

int mz_crypto_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"hmac_sha256_hex", l_hmac}, {"random_hex", l_random_hex},
                                 {"equal", l_equal}, {"scrypt", l_scrypt}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
