/* Token minting for the daemon benchmarks (see bench_tokens.h). The payload has the claims of
 * tests/tools/mint.py's tokens plus client_id, so a cached decision carries a realistic context
 * (sub, scope, client_id). Only the subject varies: every index is a distinct token. */
#include "bench/bench_tokens.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/hmac.h>
#include <openssl/pem.h>

/* RFC 7515 §2: base64url, no padding. */
static size_t b64url_encode(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int read_secret(const char *path, unsigned char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    *len = fread(buf, 1, cap, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    return *len == 0 || more ? -1 : 0;
}

int bench_minter_init(bench_minter_t *m, bench_alg_e alg, const char *key_path, const char *kid,
                      const char *iss, const char *aud, long exp_in_s)
{
    memset(m, 0, sizeof(*m));
    m->alg = alg;
    if (alg == BENCH_ALG_RS256) {
        FILE *f = fopen(key_path, "r");
        m->pkey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f) {
            fclose(f);
        }
        if (m->pkey == NULL || EVP_PKEY_get_base_id(m->pkey) != EVP_PKEY_RSA) {
            fprintf(stderr, "bench: %s: not an RSA private key in PEM\n", key_path);
            return -1;
        }
    } else if (read_secret(key_path, m->secret, sizeof(m->secret), &m->secret_len) != 0) {
        fprintf(stderr, "bench: %s: no HMAC secret of 1-%u bytes\n", key_path,
                BENCH_HS_SECRET_MAX_BYTES);
        return -1;
    }
    char header[128];
    int n = snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}",
                     alg == BENCH_ALG_RS256 ? "RS256" : "HS256", kid);
    if (n < 0 || (size_t)n >= sizeof(header) || (size_t)n * 4 / 3 + 4 > sizeof(m->header_b64) ||
        strlen(iss) >= sizeof(m->iss) || strlen(aud) >= sizeof(m->aud)) {
        fprintf(stderr, "bench: kid, iss or aud too long\n");
        return -1;
    }
    m->header_b64_len = b64url_encode((const unsigned char *)header, (size_t)n, m->header_b64);
    strcpy(m->iss, iss);
    strcpy(m->aud, aud);
    m->iat = (long)time(NULL);
    m->exp = m->iat + exp_in_s;
    return 0;
}

size_t bench_mint(const bench_minter_t *m, EVP_MD_CTX *md, unsigned long i, char *buf, size_t cap)
{
    char payload[384];
    int n = snprintf(payload, sizeof(payload),
                     "{\"iss\":\"%s\",\"sub\":\"bench-user-%08lu\",\"aud\":\"%s\","
                     "\"scope\":\"orders:read orders:write\",\"iat\":%ld,\"exp\":%ld,"
                     "\"client_id\":\"bench-client\"}",
                     m->iss, i, m->aud, m->iat, m->exp);
    /* header . payload . signature(<= 256 bytes -> 342 chars), NUL */
    if (n < 0 || (size_t)n >= sizeof(payload) ||
        m->header_b64_len + 1 + ((size_t)n * 4 + 2) / 3 + 1 + 342 + 1 > cap) {
        return 0;
    }
    size_t len = m->header_b64_len;
    memcpy(buf, m->header_b64, len);
    buf[len++] = '.';
    len += b64url_encode((const unsigned char *)payload, (size_t)n, buf + len);
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    if (m->alg == BENCH_ALG_RS256) {
        if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, m->pkey) != 1 ||
            EVP_DigestSign(md, sig, &siglen, (const unsigned char *)buf, len) != 1 ||
            siglen > 256) {
            return 0;
        }
    } else {
        unsigned int hl = 0;
        if (HMAC(EVP_sha256(), m->secret, (int)m->secret_len, (const unsigned char *)buf, len, sig,
                 &hl) == NULL) {
            return 0;
        }
        siglen = hl;
    }
    buf[len++] = '.';
    len += b64url_encode(sig, siglen, buf + len);
    return len;
}

void bench_minter_free(bench_minter_t *m)
{
    EVP_PKEY_free(m->pkey);
    OPENSSL_cleanse(m->secret, sizeof(m->secret));
    m->pkey = NULL;
}
