/* mz_crypto: see crypto.h. */
#include "crypto.h"

#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

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

int mz_crypto_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"hmac_sha256_hex", l_hmac}, {"random_hex", l_random_hex}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
