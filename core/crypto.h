/*
 * mz_crypto: HMAC-SHA256 and random bytes, through OpenSSL.
 */
#ifndef MZ_CRYPTO_H
#define MZ_CRYPTO_H

#include <lua.h>
#include <stddef.h>

/** HMAC-SHA256 of `n` bytes at `msg` under `key`, as 64 lowercase hex digits + NUL. */
void mz_crypto_hmac_sha256_hex(const char *key, size_t key_len, const char *msg, size_t n, char out[65]);

/** Fill `out` with `n` cryptographically random bytes. 0, or -1 when OpenSSL fails. */
int mz_crypto_random(unsigned char *out, size_t n);

/** Push the `mizan.crypto` module: hmac_sha256_hex(key, msg), random_hex(nbytes). */
int mz_crypto_open(lua_State *L);

#endif
