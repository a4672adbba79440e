/* jwtauthzd's configuration: the structures one config generation holds, and conf_load(), which
 * reads the JSON file (comments allowed), checks every key and value, and reports every problem as
 * "FILE:LINE: message". Nothing here opens sockets, fetches keys or reads a key file: it only says
 * what the daemon is to do. docs/config.md is the operator's side of this header. */
#ifndef JWTAUTHZ_DAEMON_CONF_H
#define JWTAUTHZ_DAEMON_CONF_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <apr_pools.h>

#include "daemon/policy.h"
#include "jose/alg.h"
#include "proto/str.h"

/* CONTRACT "Programs and files". */
#define CONF_DEFAULT_PATH "/etc/jwtauthz/jwtauthz.conf"

/* --- defaults, each with why ------------------------------------------------------------------ */
/* CONTRACT default socket; /run/jwtauthz is made by tmpfiles.d for the daemon user. */
#define CONF_DEFAULT_LISTEN "/run/jwtauthz/jwtauthz.sock"
/* Owner and group may connect: the web server joins the socket's group, nobody else gets in. */
#define CONF_DEFAULT_LISTEN_MODE 0660
/* Admin commands flush caches and force fetches: root and the daemon user only. */
#define CONF_DEFAULT_ADMIN_LISTEN "/run/jwtauthz/admin.sock"
#define CONF_DEFAULT_ADMIN_MODE 0600
/* Where the last good key set of each fetched issuer is kept, so a restart while the IdP is down
 * still verifies tokens (within jwks_max_stale). /var/cache is what the FHS gives such data. */
#define CONF_DEFAULT_CACHE_DIR "/var/cache/jwtauthz"
/* Seconds a decision is reused for one token: API Gateway's own authorizer default. */
#define CONF_DEFAULT_CACHE_TTL_S 300u
/* ~1 KiB each (policy + context): at most ~100 MiB, far above a host's distinct live tokens. */
#define CONF_DEFAULT_CACHE_MAX_ENTRIES 100000u

/* --- bounds on what a config may ask for ------------------------------------------------------ */
/* Verification is CPU-bound: threads past the core count only contend; no host has more. */
#define CONF_MAX_THREADS 256u
/* API Gateway caps its authorizer cache TTL at one hour; a longer one outlives revocations. */
#define CONF_MAX_CACHE_TTL_S 3600u
/* ~1 KiB per entry: past this the cache outgrows what a host-local daemon should hold (~10 GiB). */
#define CONF_MAX_CACHE_ENTRIES 10000000u
/* The smallest real compact JWS (ES256, three short claims) is ~250 bytes: a lower cap refuses
 * every token, which is a typo, not a policy. */
#define CONF_MIN_TOKEN_BYTES 512u
/* Each issuer has its own key set and fetch schedule; a host-local daemon trusting more than this
 * many IdPs is misconfigured. */
#define CONF_MAX_ISSUERS 64u
/* Entries in one issuer's audiences or context_claims list. */
#define CONF_MAX_LIST_ITEMS 64u
/* Entries in one rule's scopes list, and values per claim requirement. */
#define CONF_MAX_RULE_ITEMS 64u
/* Claim requirements in one rule. */
#define CONF_MAX_RULE_CLAIMS 32u
/* RFC 8725 §3.8 advises small skew; past five minutes "leeway" is a second token lifetime. */
#define CONF_MAX_LEEWAY_S 300u
/* A key rotation must be noticed within a day. */
#define CONF_MAX_JWKS_REFRESH_S 86400u
/* A key the IdP has withdrawn must stop verifying within a week, even when the IdP is down. */
#define CONF_MAX_JWKS_MAX_STALE_S 604800u
/* A fetch slower than a minute is a dead IdP; the old keys serve meanwhile. */
#define CONF_MAX_FETCH_TIMEOUT_S 60u
/* URLs past this are not JWKS endpoints anyone publishes. */
#define CONF_MAX_URL_BYTES 2048u
/* Errors kept per load: by then a typo storm is recognisable; more are counted, not kept. */
#define CONF_MAX_ERRORS 20u
/* Warnings kept per load. */
#define CONF_MAX_WARNINGS 20u
/* One "FILE:LINE: message" line; longer ones are cut with "...". */
#define CONF_MESSAGE_BYTES 512u

/* --- defaults of an issuer -------------------------------------------------------------------- */
/* RFC 8725 §3.8 clock skew: one minute covers NTP-synchronised hosts with margin. */
#define CONF_DEFAULT_LEEWAY_S 60u
/* Ten minutes: a rotated key is picked up well within a typical IdP's overlap window (≥ 1 h). */
#define CONF_DEFAULT_JWKS_REFRESH_S 600u
/* An unknown kid triggers an early fetch at most this often: a token stream with random kids must
 * not turn the daemon into a load generator against the IdP. */
#define CONF_DEFAULT_JWKS_MIN_REFRESH_S 30u
/* Keep verifying with the last good keys for a day while the IdP is unreachable. */
#define CONF_DEFAULT_JWKS_MAX_STALE_S 86400u
/* A JWKS endpoint answers in well under a second; ten covers a slow TLS handshake. */
#define CONF_DEFAULT_FETCH_TIMEOUT_S 10u
/* Every asymmetric algorithm: the key set decides what verifies (each key is bound to one family,
 * RFC 8725 §3.1), so listing fewer adds no safety against confusion attacks, only breaks IdPs that
 * sign with PS256 or EdDSA. HS* is never a default: it needs an explicit list and a jwks_file. */
#define CONF_ALG_SET_HMAC                                                                          \
    (JOSE_ALG_BIT(JOSE_ALG_HS256) | JOSE_ALG_BIT(JOSE_ALG_HS384) | JOSE_ALG_BIT(JOSE_ALG_HS512))
#define CONF_DEFAULT_ALGORITHMS (JOSE_ALG_SET_ALL & ~CONF_ALG_SET_HMAC)

/* In log.h's log_level_e order, so a level converts by value. */
typedef enum {
    CONF_LOG_ERROR = 0, /* "error" */
    CONF_LOG_WARN,      /* "warn" */
    CONF_LOG_INFO,      /* "info" (default): one line per load, fetch and refusal worth a look */
    CONF_LOG_DEBUG      /* "debug" */
} conf_log_level_e;

/* Where an issuer's keys come from: exactly one per issuer. */
typedef enum {
    CONF_KEYS_FILE = 1, /* jwks_file: read at load and on every reload; may hold HS keys */
    CONF_KEYS_URI,      /* jwks_uri: fetched over HTTPS every jwks_refresh seconds */
    CONF_KEYS_DISCOVERY /* discovery: true: discovery_uri gives jwks_uri, then as CONF_KEYS_URI */
} conf_key_source_e;

/* One trusted token issuer. Strings as proto_str_t point at NUL-terminated copies in the
 * generation pool (an embedded NUL is refused at load), so .ptr may also go to %s and C APIs.
 * The fetch settings (jwks_refresh_s ... ca_file) keep their defaults for CONF_KEYS_FILE, where
 * the file refuses them. */
typedef struct conf_issuer {
    /* "issuer": the iss value, byte for byte (RFC 7519 §4.1.1). */
    proto_str_t issuer;
    conf_key_source_e key_source;
    /* "jwks_uri": an https URL; NULL unless CONF_KEYS_URI. */
    const char *jwks_uri;
    /* The issuer less a trailing "/", + "/.well-known/openid-configuration" (OpenID Connect
     * Discovery 1.0 §4.1); NULL unless CONF_KEYS_DISCOVERY. */
    const char *discovery_uri;
    /* "jwks_file": an absolute path; NULL unless CONF_KEYS_FILE. */
    const char *jwks_file;
    /* "audiences": one must be in aud. None: aud is not checked (weaker: warned at load). */
    proto_str_t *audiences;
    size_t naudiences;
    /* "algorithms": CONF_DEFAULT_ALGORITHMS when absent. HS* only with CONF_KEYS_FILE: read that
     * file with JOSE_JWK_ALLOW_OCT exactly when algorithms & CONF_ALG_SET_HMAC. */
    jose_alg_set_t algorithms;
    /* "leeway": seconds of skew allowed on exp, nbf and iat. */
    unsigned leeway_s;
    /* "jwks_refresh": seconds between scheduled fetches. */
    unsigned jwks_refresh_s;
    /* "jwks_min_refresh": least seconds between two fetches, those an unknown kid triggers too. */
    unsigned jwks_min_refresh_s;
    /* "jwks_max_stale": seconds the last good set serves while fetches fail; after that the
     * issuer's tokens get ERROR. */
    unsigned jwks_max_stale_s;
    /* "fetch_timeout": seconds one fetch (connect to last byte) may take. */
    unsigned fetch_timeout_s;
    /* "ca_file": CA bundle for the fetch; NULL: the system's trust store. */
    const char *ca_file;
    /* "principal_claim": the claim that becomes principalId. */
    proto_str_t principal_claim;
    /* "context_claims": the claims copied into the reply's context. */
    proto_str_t *context_claims;
    size_t ncontext_claims;
    /* "typ": the required JWS typ (RFC 9068 "at+jwt"), for jose_jws_typ_matches; ptr NULL: typ
     * is not checked. */
    proto_str_t typ;
    /* Line of the issuer's object in the file, for messages about it. */
    unsigned line;
} conf_issuer_t;

/* One config generation. Everything it points at lives in pool; nothing is freed one by one. */
typedef struct conf {
    apr_pool_t *pool; /* the generation pool conf_load() was given */
    const char *path; /* the file it was read from */

    const char *listen;       /* "listen": decision socket path (absolute, fits sun_path) */
    mode_t listen_mode;       /* "listen_mode": octal string, never world-writable */
    const char *listen_group; /* "listen_group": NULL or "" in the file: keep the daemon's group */
    gid_t listen_gid;         /* listen_group resolved with getgrnam_r at load; valid when set */
    int listen_gid_set;
    const char *admin_listen; /* "admin_listen": admin socket path; never the same as listen */
    mode_t admin_mode;        /* "admin_mode": owner bits only (root and the daemon user) */

    unsigned threads;           /* worker threads, resolved: "threads" 0 means one per online CPU */
    int threads_auto;           /* 1 when the file said 0 (or nothing) and sysconf chose */
    size_t max_frame_bytes;     /* "max_frame_bytes": ≤ PROTO_MAX_FRAME_BYTES_CEILING */
    size_t max_token_bytes;     /* "max_token_bytes": ≤ JOSE_MAX_TOKEN_BYTES_CEILING, < frame */
    conf_log_level_e log_level; /* "log_level" */

    /* Project additions (docs/config.md): where a REQUEST event's token may come from when it
     * has no Authorization header. ptr NULL: that source is not used. */
    proto_str_t token_cookie; /* "token_cookie": cookie name (RFC 6265 §4.1.1 token) */
    proto_str_t token_query;  /* "token_query": query string parameter name */
    const char *cache_dir;    /* "cache_dir": last good key set per issuer; NULL: disabled ("") */

    conf_issuer_t *issuers; /* "issuers": at least one, issuer strings distinct */
    size_t nissuers;
    policy_rules_t rules; /* "rules": in file order; none: every request is denied */

    unsigned cache_ttl_s;     /* "decision_cache.ttl": 0 disables the decision cache */
    size_t cache_max_entries; /* "decision_cache.max_entries": 0 disables it too */
} conf_t;

/* What a load found wrong, as ready-made lines. Fixed storage, so the lines outlive the
 * generation pool the caller destroys after a failed load. */
typedef struct conf_errors {
    char errors[CONF_MAX_ERRORS][CONF_MESSAGE_BYTES]; /* "FILE:LINE: message" */
    size_t nerrors;
    size_t nerrors_dropped; /* found past CONF_MAX_ERRORS: counted, not kept */
    char warnings[CONF_MAX_WARNINGS][CONF_MESSAGE_BYTES]; /* "FILE:LINE: warning: message" */
    size_t nwarnings;
    size_t nwarnings_dropped;
} conf_errors_t;

/* Reads and checks the config at path into gen_pool. Clears *errs first; on success it may hold
 * warnings (settings that work but are weaker than they look: log them). Returns:
 *   APR_SUCCESS  *out is the new generation;
 *   APR_EINVAL   the file is not a valid config (syntax, unknown or duplicate keys, bad values,
 *                over CONF_MAX_BYTES, not a regular file): every problem found is in errs;
 *   APR_ENOMEM   out of memory;
 *   other        the status of opening or reading the file (APR_ENOENT, APR_EACCES...).
 * On failure *out is NULL, errs holds at least one line, and what was allocated stays in gen_pool
 * (destroy it). Not thread-safe with respect to the same errs. */
apr_status_t conf_load(apr_pool_t *gen_pool, const char *path, conf_t **out, conf_errors_t *errs);

/* As conf_load() for a config already in memory: text[0..len) (need not be NUL-terminated) is
 * read as the file name would be, and name stands for the path in every message and in
 * conf->path. Nothing is opened, so the "not a regular file" and world-writable checks do not
 * apply; over CONF_MAX_BYTES is APR_EINVAL as for a file. text is not kept: what the config holds
 * is copied into gen_pool. For the config fuzzer and for tests. */
apr_status_t conf_load_text(apr_pool_t *gen_pool, const char *name, const char *text, size_t len,
                            conf_t **out, conf_errors_t *errs);

/* Writes the error lines, a count of dropped ones, then the warnings, one per line: what
 * `jwtauthzd -t` prints to stderr. */
void conf_errors_print(const conf_errors_t *errs, FILE *fp);

/* "error", "warn", "info", "debug". */
const char *conf_log_level_name(conf_log_level_e level);

#endif
