/* Token minting for the daemon benchmarks: compact JWS tokens with a fixed header and a payload
 * that differs per index (the subject), signed RS256 (EVP_DigestSign) or HS256 (HMAC) straight
 * with OpenSSL. Deliberately independent of jose/: the tokens a benchmark feeds the daemon must
 * not come from the code under test. Keys come from tests/tools/mint.py keygen. */
#ifndef JWTAUTHZ_BENCH_TOKENS_H
#define JWTAUTHZ_BENCH_TOKENS_H

#include <stddef.h>

#include <openssl/evp.h>

/* Room for one token: header and payload stay under 300 bytes, the RSA-2048 signature is 342
 * base64url characters. */
#define BENCH_TOKEN_MAX_BYTES 1024u
/* An HMAC secret read from a key file: mint.py writes 64 bytes. */
#define BENCH_HS_SECRET_MAX_BYTES 256u

typedef enum { BENCH_ALG_RS256, BENCH_ALG_HS256 } bench_alg_e;

typedef struct bench_minter {
    bench_alg_e alg;
    EVP_PKEY *pkey; /* RS256 */
    unsigned char secret[BENCH_HS_SECRET_MAX_BYTES];
    size_t secret_len; /* HS256 */
    char header_b64[160];
    size_t header_b64_len;
    char iss[128], aud[128];
    long iat, exp;
} bench_minter_t;

/* Loads the key (a PEM private key for RS256, a raw secret file for HS256) and fixes the header
 * and the claims every token shares (iat now, exp now + exp_in_s). Returns 0, or -1 with a
 * message on stderr. */
int bench_minter_init(bench_minter_t *m, bench_alg_e alg, const char *key_path, const char *kid,
                      const char *iss, const char *aud, long exp_in_s);

/* Writes token number i (subject "bench-user-<i>") into buf, NUL-terminated. md is the calling
 * thread's own digest context (RS256 only; NULL for HS256). Returns the token length, or 0 when
 * signing failed or cap is too small. */
size_t bench_mint(const bench_minter_t *m, EVP_MD_CTX *md, unsigned long i, char *buf, size_t cap);

void bench_minter_free(bench_minter_t *m);

#endif
