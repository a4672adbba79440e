/* jwtauthzctl verify: checks a token offline against a key file with the daemon's own code
 * (jose_token_parse + jose_token_verify) and prints header, claims and verdict as JSON. It reads
 * only the files it is given; no network, no daemon. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <yajl/yajl_gen.h>

#include "ctl.h"
#include "jose/b64url.h"
#include "jose/token.h"
#include "proto/json_write.h"
#include "proto/limits.h"

/* The daemon's defaults (CONTRACT "jwtauthzctl verify"). */
#define VERIFY_DEFAULT_LEEWAY_S 60
#define VERIFY_MAX_AUDIENCES 32
#define VERIFY_MAX_LEEWAY_S 86400

typedef struct verify_args {
    const char *jwks_path;
    jose_alg_set_t algs;
    proto_str_t issuer;
    int has_issuer;
    proto_str_t audiences[VERIFY_MAX_AUDIENCES];
    size_t naudiences;
    long leeway_s;
    size_t max_token_bytes;
    int jws_only;
    double now;
    const char *token;
} verify_args_t;

static void verify_usage(FILE *f)
{
    fprintf(f, "usage: jwtauthzctl verify --jwks FILE [--alg ALG[,ALG...]] [--issuer ISS]\n"
               "                          [--audience AUD]... [--leeway S] [--max-token-bytes N]\n"
               "                          [--now EPOCH] [--jws] TOKEN|-\n");
}

/* Reads a whole file of at most max bytes into the pool; refuses larger files before reading. */
static int verify_read_file(apr_pool_t *p, const char *path, size_t max, char **out, size_t *len,
                            char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = apr_palloc(p, max + 1);
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    if (n > max) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int verify_parse_args(int argc, char **argv, verify_args_t *a)
{
    static const struct option opts[] = {
        {"jwks", required_argument, NULL, 'k'},   {"alg", required_argument, NULL, 'a'},
        {"issuer", required_argument, NULL, 'i'}, {"audience", required_argument, NULL, 'u'},
        {"leeway", required_argument, NULL, 'l'}, {"max-token-bytes", required_argument, NULL, 'm'},
        {"now", required_argument, NULL, 'n'},    {"jws", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->leeway_s = VERIFY_DEFAULT_LEEWAY_S;
    a->max_token_bytes = JOSE_MAX_TOKEN_BYTES_DEFAULT;
    a->now = -1;
    optind = 1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            a->jwks_path = optarg;
            break;
        case 'a': {
            jose_alg_set_t set = 0;
            if (!jose_alg_set_add(&set, proto_str_make(optarg, strlen(optarg)))) {
                fprintf(stderr, "jwtauthzctl verify: unknown algorithm in --alg \"%s\"\n", optarg);
                return -1;
            }
            a->algs |= set;
            break;
        }
        case 'i':
            a->issuer = proto_str_make(optarg, strlen(optarg));
            a->has_issuer = 1;
            break;
        case 'u':
            if (a->naudiences == VERIFY_MAX_AUDIENCES) {
                fprintf(stderr, "jwtauthzctl verify: at most %d --audience\n",
                        VERIFY_MAX_AUDIENCES);
                return -1;
            }
            a->audiences[a->naudiences++] = proto_str_make(optarg, strlen(optarg));
            break;
        case 'l':
            errno = 0;
            a->leeway_s = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || a->leeway_s < 0 ||
                a->leeway_s > VERIFY_MAX_LEEWAY_S) {
                fprintf(stderr, "jwtauthzctl verify: bad --leeway \"%s\"\n", optarg);
                return -1;
            }
            break;
        case 'm': {
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || v == 0 || v > JOSE_MAX_TOKEN_BYTES_CEILING) {
                fprintf(stderr, "jwtauthzctl verify: bad --max-token-bytes \"%s\"\n", optarg);
                return -1;
            }
            a->max_token_bytes = v;
            break;
        }
        case 'n':
            errno = 0;
            a->now = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(a->now >= 0)) {
                fprintf(stderr, "jwtauthzctl verify: bad --now \"%s\"\n", optarg);
                return -1;
            }
            break;
        case 'j':
            a->jws_only = 1;
            break;
        case 'h':
            verify_usage(stdout);
            exit(CTL_EXIT_OK);
        default:
            verify_usage(stderr);
            return -1;
        }
    }
    if (a->jwks_path == NULL || optind != argc - 1) {
        verify_usage(stderr);
        return -1;
    }
    a->token = argv[optind];
    if (a->algs == 0) {
        a->algs = JOSE_ALG_SET_ALL; /* each key's own set still bounds it */
    }
    if (a->now < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        a->now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    return 0;
}

/* The token from the command line, or from standard input with "-" (so it stays out of ps). */
static int verify_token_text(apr_pool_t *p, const verify_args_t *a, proto_str_t *tok)
{
    if (strcmp(a->token, "-") != 0) {
        *tok = proto_str_make(a->token, strlen(a->token));
        return 0;
    }
    size_t cap = JOSE_MAX_TOKEN_BYTES_CEILING + 2;
    char *buf = apr_palloc(p, cap);
    size_t n = fread(buf, 1, cap, stdin);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    *tok = proto_str_make(buf, n);
    return 0;
}

static void verify_print_skipped(yajl_gen g, const jose_jwks_t *keys)
{
    proto_json_write_cstr(g, "skipped_keys");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < keys->nskipped; i++) {
        yajl_gen_map_open(g);
        proto_json_write_cstr(g, "index");
        yajl_gen_integer(g, (long long)keys->skipped[i].index);
        proto_json_write_cstr(g, "kid");
        proto_json_write_str(g, keys->skipped[i].kid);
        proto_json_write_cstr(g, "reason");
        proto_json_write_cstr(g, keys->skipped[i].reason);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
}

static void verify_print(const verify_args_t *a, const jose_token_t *t, const jose_jwks_t *keys,
                         const jose_jwk_t *used, jose_reason_e r)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_map_open(g);
    proto_json_write_cstr(g, "verdict");
    proto_json_write_cstr(g, r == JOSE_OK ? "valid" : "invalid");
    proto_json_write_cstr(g, "reason");
    proto_json_write_cstr(g, jose_reason_code(r));
    proto_json_write_cstr(g, "message");
    proto_json_write_cstr(g, jose_reason_message(r));
    if (t->jws && t->jws->header) {
        proto_json_write_cstr(g, "header");
        proto_json_write(g, t->jws->header);
    }
    if (t->has_claims) {
        proto_json_write_cstr(g, "claims");
        proto_json_write(g, t->claims.root);
    } else if (t->jws && a->jws_only) {
        proto_json_write_cstr(g, "payload_bytes");
        yajl_gen_integer(g, (long long)t->jws->payload_len);
    }
    if (used) {
        proto_json_write_cstr(g, "key");
        yajl_gen_map_open(g);
        proto_json_write_cstr(g, "kid");
        proto_json_write_str(g, used->kid);
        proto_json_write_cstr(g, "alg");
        proto_json_write_cstr(g, jose_alg_name(t->jws->alg));
        yajl_gen_map_close(g);
    }
    verify_print_skipped(g, keys);
    yajl_gen_map_close(g);
    const unsigned char *out;
    size_t len;
    yajl_gen_get_buf(g, &out, &len);
    fwrite(out, 1, len, stdout);
    yajl_gen_free(g);
}

int ctl_verify_main(int argc, char **argv)
{
    verify_args_t a;
    if (verify_parse_args(argc, argv, &a) != 0) {
        return CTL_EXIT_ERROR;
    }
    int rc = CTL_EXIT_ERROR;
    apr_pool_t *p = NULL;
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        fprintf(stderr, "jwtauthzctl verify: cannot initialise APR\n");
        return CTL_EXIT_ERROR;
    }
    char err[512];
    char *text;
    size_t len;
    jose_jwks_t *keys;
    if (verify_read_file(p, a.jwks_path, JWKS_MAX_BYTES, &text, &len, err, sizeof(err)) != 0 ||
        jose_jwks_parse(p, text, len, JOSE_JWK_ALLOW_OCT | JOSE_JWKS_ACCEPT_SINGLE, &keys, err,
                        sizeof(err)) != APR_SUCCESS) {
        fprintf(stderr, "jwtauthzctl verify: %s\n", err);
        goto out;
    }
    proto_str_t tok;
    verify_token_text(p, &a, &tok);

    jose_verify_opts_t o;
    memset(&o, 0, sizeof(o));
    o.algorithms = a.algs;
    o.jws_only = a.jws_only;
    o.claims.issuer = a.has_issuer ? &a.issuer : NULL;
    o.claims.audiences = a.audiences;
    o.claims.naudiences = a.naudiences;
    o.claims.leeway_s = a.leeway_s;

    jose_token_t t;
    const jose_jwk_t *used = NULL;
    jose_reason_e r = jose_token_parse(p, tok, a.max_token_bytes, a.jws_only, &t);
    if (r == JOSE_OK) {
        r = jose_token_verify(&t, keys, &o, a.now, &used);
    }
    verify_print(&a, &t, keys, used, r);
    /* A key file with no usable key cannot make the token valid: that is "invalid" (2), with
     * reason no_keys; only a failure of the checker itself is "could not check" (3). */
    rc = r == JOSE_OK ? CTL_EXIT_OK : (r == JOSE_E_INTERNAL ? CTL_EXIT_ERROR : CTL_EXIT_INVALID);
out:
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
