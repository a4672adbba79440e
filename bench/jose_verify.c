/* Whole-token verification rate on one core: jose_token_parse + jose_token_verify, exactly what
 * the daemon runs on a cache miss, on tokens minted by python3-jwt. Prints one line per token:
 * "ALG verifications_per_cpu_second". CPU time, not wall time: the box is shared.
 * Usage: bench_jose_verify SECONDS ALG:TOKEN_FILE:JWKS_FILE... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "jose/token.h"
#include "proto/limits.h"

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_all(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = malloc(max + 1);
    *len = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    while (buf && *len && (buf[*len - 1] == '\n' || buf[*len - 1] == ' ')) {
        (*len)--;
    }
    if (buf) {
        buf[*len] = '\0';
    }
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_jose_verify SECONDS ALG:TOKEN_FILE:JWKS_FILE...\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    apr_pool_t *p, *rp;
    apr_initialize();
    apr_pool_create(&p, NULL);
    apr_pool_create(&rp, p);
    for (int i = 2; i < argc; i++) {
        char *colon = strchr(argv[i], ':');
        char *colon2 = colon ? strchr(colon + 1, ':') : NULL;
        if (colon2 == NULL) {
            return 2;
        }
        *colon = *colon2 = '\0';
        /* Keys are parsed once, as the daemon does: never per token. */
        size_t jlen;
        char *jtext = read_all(colon2 + 1, JWKS_MAX_BYTES, &jlen);
        jose_jwks_t *keys;
        char err[256];
        if (jtext == NULL || jose_jwks_parse(p, jtext, jlen, JOSE_JWK_ALLOW_OCT, &keys, err,
                                             sizeof(err)) != APR_SUCCESS) {
            fprintf(stderr, "bench: key file: %s\n", jtext ? err : "unreadable");
            return 1;
        }
        free(jtext);
        size_t tlen;
        char *tok = read_all(colon + 1, JOSE_MAX_TOKEN_BYTES_CEILING, &tlen);
        if (tok == NULL) {
            return 1;
        }
        jose_verify_opts_t o;
        memset(&o, 0, sizeof(o));
        o.algorithms = JOSE_ALG_SET_ALL;
        o.claims.leeway_s = 60;
        proto_str_t iss = PROTO_STR_LIT("https://bench.test/");
        proto_str_t aud = PROTO_STR_LIT("api://bench");
        o.claims.issuer = &iss;
        o.claims.audiences = &aud;
        o.claims.naudiences = 1;
        double now = (double)time(NULL);
        unsigned long n = 0;
        double t0 = cpu_seconds(), t1 = t0;
        while (t1 - t0 < seconds) {
            for (int k = 0; k < 64; k++) {
                jose_token_t t;
                jose_reason_e r = jose_token_parse(rp, proto_str_make(tok, tlen),
                                                   JOSE_MAX_TOKEN_BYTES_DEFAULT, 0, &t);
                if (r == JOSE_OK) {
                    r = jose_token_verify(&t, keys, &o, now, NULL);
                }
                if (r != JOSE_OK) {
                    fprintf(stderr, "bench: %s token refused: %s\n", argv[i], jose_reason_code(r));
                    return 1;
                }
                apr_pool_clear(rp);
                n++;
            }
            t1 = cpu_seconds();
        }
        printf("%s %.0f\n", argv[i], (double)n / (t1 - t0));
        fflush(stdout);
        free(tok);
    }
    apr_pool_destroy(p);
    apr_terminate();
    return 0;
}
