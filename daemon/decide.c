/* The decision pipeline (see decide.h). Order: request → token → cache → verify → policy → reply.
 * A cached entry is believed only while its generation is current and its issuer has removed no
 * key since (the key that verified it may be gone). Nothing here blocks or does I/O. */
#include "daemon/decide.h"

#include <string.h>

#include "daemon/decide_reply.h"
#include "daemon/jwks_store.h"
#include "daemon/policy.h"
#include "daemon/token_source.h"
#include "jose/pool.h"
#include "jose/token.h"
#include "proto/msg.h"

/* What a cache entry holds, followed by the principal and the context JSON text. */
typedef struct decide_entry {
    uint32_t gen_id;
    uint32_t key_epoch; /* the issuer's removal epoch when the token verified */
    int64_t expires_at; /* min(ttl, exp): the cache's own deadline, kept for the reply's ttl */
    uint16_t issuer;
    uint16_t principal_len;
    uint16_t context_len;
    uint16_t pad_;
    policy_match_t match;
} decide_entry_t;

static apr_status_t decide_env_cleanup(void *data)
{
    decide_env_t *env = data;
    EVP_MD_CTX_free(env->md_ctx);
    env->md_ctx = NULL;
    EVP_MD_free(env->sha256);
    env->sha256 = NULL;
    return APR_SUCCESS;
}

apr_status_t decide_env_init(decide_env_t *env, srv_t *srv, apr_pool_t *p)
{
    memset(env, 0, sizeof(*env));
    env->srv = srv;
    /* Fetched explicitly: with EVP_sha256() OpenSSL 3 looks the implementation up again in its
     * provider store (locks included) on every EVP_DigestInit_ex, i.e. on every request. */
    env->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    env->md_ctx = EVP_MD_CTX_new();
    apr_pool_cleanup_register(p, env, decide_env_cleanup, apr_pool_cleanup_null);
    return env->md_ctx && env->sha256 ? APR_SUCCESS : APR_ENOMEM;
}

static int decide_token_hash(decide_env_t *env, proto_str_t token,
                             unsigned char hash[DCACHE_KEY_BYTES])
{
    unsigned int n = 0;
    return EVP_DigestInit_ex(env->md_ctx, env->sha256, NULL) == 1 &&
           EVP_DigestUpdate(env->md_ctx, token.ptr, token.len) == 1 &&
           EVP_DigestFinal_ex(env->md_ctx, hash, &n) == 1 && n == DCACHE_KEY_BYTES;
}

/* A reply's "ttl" tells a client how long it may reuse the decision (ngx_http_jwtauthz_module's
 * per-worker cache does): never past the second the issuer's keys stop serving, after which this
 * daemon answers ERROR 503 for the same token. */
static int64_t decide_ttl_serving(struct jwks_issuer *ji, int64_t ttl, int64_t now)
{
    int64_t until = jwks_issuer_serving_until(ji);
    int64_t left = until > now ? until - now : 0;
    return left < ttl ? left : ttl;
}

/* A cache hit is only as good as what it was decided under: the same rules (generation) and a
 * key that is still published (removal epoch). */
static int decide_from_cache(decide_env_t *env, gen_t *g, const unsigned char *hash,
                             const decide_reply_ctx_t *rc, int64_t now, proto_buf_t *out)
{
    size_t len = 0;
    if (g->dcache == NULL) {
        return 0;
    }
    if (dcache_get(g->dcache, hash, now, env->value, sizeof(env->value), &len) != DCACHE_HIT ||
        len < sizeof(decide_entry_t)) {
        apr_atomic_inc64(&env->srv->stats.cache_misses);
        return 0;
    }
    decide_entry_t e;
    memcpy(&e, env->value, sizeof(e));
    if (e.gen_id != g->id || e.issuer >= g->conf->nissuers ||
        e.key_epoch != jwks_issuer_removal_epoch(g->jwks[e.issuer]) ||
        !jwks_issuer_serving(g->jwks[e.issuer], now) ||
        sizeof(e) + (size_t)e.principal_len + e.context_len > len) {
        apr_atomic_inc64(&env->srv->stats.cache_stale);
        dcache_flush_key(g->dcache, hash);
        return 0;
    }
    apr_atomic_inc64(&env->srv->stats.cache_hits);
    const char *tail = (const char *)env->value + sizeof(e);
    decide_grant_t grant = {
        .match = &e.match,
        .principal = proto_str_make(tail, e.principal_len),
        .context_json = proto_str_make(tail + e.principal_len, e.context_len),
        .cached = 1,
        .ttl = decide_ttl_serving(g->jwks[e.issuer], e.expires_at - now, now),
    };
    decide_reply_grant(rc, &grant, out);
    return 1;
}

/* Stores a fresh decision; too large a principal or context simply is not cached. */
static void decide_cache_store(decide_env_t *env, gen_t *g, const unsigned char *hash, int issuer,
                               uint32_t epoch, const decide_grant_t *grant, int64_t now)
{
    if (g->dcache == NULL || grant->ttl <= 0) {
        return;
    }
    size_t need = sizeof(decide_entry_t) + grant->principal.len + grant->context_json.len;
    if (need > sizeof(env->value) || grant->principal.len > UINT16_MAX ||
        grant->context_json.len > UINT16_MAX) {
        return;
    }
    decide_entry_t e;
    memset(&e, 0, sizeof(e));
    e.gen_id = g->id;
    e.key_epoch = epoch;
    e.expires_at = now + grant->ttl;
    e.issuer = (uint16_t)issuer;
    e.principal_len = (uint16_t)grant->principal.len;
    e.context_len = (uint16_t)grant->context_json.len;
    e.match = *grant->match;
    unsigned char *v = env->value;
    memcpy(v, &e, sizeof(e));
    memcpy(v + sizeof(e), grant->principal.ptr, grant->principal.len);
    memcpy(v + sizeof(e) + grant->principal.len, grant->context_json.ptr, grant->context_json.len);
    dcache_put(g->dcache, hash, e.expires_at, grant->principal, v, need, now);
}

/* The decision cache keeps a token's policy for min(ttl, exp - now) (CONTRACT "Policy
 * semantics"): never past the token's own expiry, which mod_oauth2 gets wrong. */
static int64_t decide_ttl(const gen_t *g, const jose_claims_t *c, int64_t now)
{
    double left = c->exp - (double)now;
    int64_t ttl = (int64_t)g->conf->cache_ttl_s;
    if (left < (double)ttl) {
        ttl = left > 0 ? (int64_t)left : 0;
    }
    return ttl;
}

/* Verifies a token not found in the cache. Returns DECIDE_WAIT_KEYS when it must wait. */
static decide_result_e decide_verify(decide_env_t *env, gen_t *g, apr_pool_t *rp,
                                     const decide_reply_ctx_t *rc, proto_str_t token,
                                     const unsigned char *hash, int may_wait, int64_t now,
                                     proto_buf_t *out)
{
    jose_token_t t;
    jose_reason_e r = jose_token_parse(rp, token, g->conf->max_token_bytes, 0, &t);
    if (r != JOSE_OK) {
        decide_reply_refusal(rc, r, out);
        return DECIDE_REPLIED;
    }
    if (!t.claims.has_iss) {
        decide_reply_refusal(rc, JOSE_R_ISSUER_MISSING, out);
        return DECIDE_REPLIED;
    }
    int idx = gen_issuer_index(g, t.claims.iss);
    if (idx < 0) {
        decide_reply_refusal(rc, JOSE_R_ISSUER_MISMATCH, out);
        return DECIDE_REPLIED;
    }
    const conf_issuer_t *iss = &g->conf->issuers[idx];
    struct jwks_issuer *ji = g->jwks[idx];
    /* The epoch that goes with this very set (read under the same lock): an entry stored with it
     * goes stale as soon as a later set drops a key. */
    uint32_t epoch = 0;
    jwks_set_t *set = jwks_issuer_acquire_with_epoch(ji, now, &epoch);
    if (set == NULL) {
        /* No keys yet (first fetch under way, or the IdP has been down past jwks_max_stale):
         * wait for a fetch if one is coming, else ERROR 503; never a guess. */
        if (may_wait && (jwks_issuer_fetch_pending(ji) || jwks_issuer_request_refresh(ji, now))) {
            return DECIDE_WAIT_KEYS;
        }
        decide_reply_error(rc, 503, JOSE_E_NO_KEYS, out);
        return DECIDE_REPLIED;
    }
    jose_verify_opts_t o;
    memset(&o, 0, sizeof(o));
    o.algorithms = iss->algorithms;
    o.typ = iss->typ.ptr ? &iss->typ : NULL;
    o.claims.issuer = &iss->issuer;
    o.claims.audiences = iss->audiences;
    o.claims.naudiences = iss->naudiences;
    o.claims.leeway_s = (long)iss->leeway_s;
    r = jose_token_verify(&t, set->keys, &o, (double)now, NULL);
    jwks_set_release(set);
    if (r == JOSE_R_UNKNOWN_KID) {
        /* A new kid may mean the IdP rotated: fetch now, at most once per jwks_min_refresh
         * (a flood of random kids must not become a flood of fetches). */
        if (jwks_issuer_request_refresh(ji, now) && may_wait) {
            return DECIDE_WAIT_KEYS;
        }
    }
    if (r != JOSE_OK) {
        if (jose_reason_is_token_fault(r)) {
            decide_reply_refusal(rc, r, out);
        } else {
            decide_reply_error(rc, r == JOSE_E_NO_KEYS ? 503 : 500, r, out);
        }
        return DECIDE_REPLIED;
    }
    const proto_json_t *pv = proto_json_get_str(t.claims.root, iss->principal_claim);
    if (pv == NULL || pv->type != PROTO_JSON_STRING || pv->u.string.len == 0) {
        decide_reply_refusal(rc, JOSE_R_PRINCIPAL_MISSING, out);
        return DECIDE_REPLIED;
    }
    policy_match_t match;
    policy_match(&g->conf->rules, t.claims.root, &match);
    decide_grant_t grant = {
        .match = &match,
        .principal = pv->u.string,
        .cached = 0,
        .ttl = decide_ttl_serving(ji, decide_ttl(g, &t.claims, now), now),
    };
    if (decide_context_json(rp, iss, t.claims.root, &grant.context_json) != 0) {
        decide_reply_error(rc, 500, JOSE_E_INTERNAL, out);
        return DECIDE_REPLIED;
    }
    decide_reply_grant(rc, &grant, out);
    decide_cache_store(env, g, hash, idx, epoch, &grant, now);
    return DECIDE_REPLIED;
}

decide_result_e decide_request(decide_env_t *env, gen_t *g, apr_pool_t *req_pool, proto_str_t frame,
                               int may_wait, int64_t now, proto_buf_t *out)
{
    proto_alloc_t alloc = jose_pool_allocator(req_pool);
    proto_decision_request_t req;
    proto_msg_error_t err;
    decide_reply_ctx_t rc;
    decide_reply_ctx_init(&rc, env->srv, g, NULL, proto_str_make(NULL, 0));

    proto_msg_status_e ms = proto_msg_request_decode(frame.ptr, frame.len, &alloc, &req, &err);
    if (ms != PROTO_MSG_OK) {
        apr_atomic_inc64(&env->srv->stats.bad_requests);
        /* The decoder reads "id" first: a bad request still gets its id back (CONTRACT). */
        decide_reply_ctx_init(&rc, env->srv, g, req.id_json, proto_str_make(NULL, 0));
        decide_reply_bad_request(&rc, err.message, out);
        /* Bytes that are not one JSON object: the peer does not speak the protocol, so nothing
         * it sends next can be trusted to be framed as it meant (CONTRACT "Wire protocol"). */
        return ms == PROTO_MSG_ERR_JSON || ms == PROTO_MSG_ERR_NOT_OBJECT ? DECIDE_REPLIED_CLOSE
                                                                          : DECIDE_REPLIED;
    }
    decide_reply_ctx_init(&rc, env->srv, g, req.id_json, req.method_arn);
    if (req.method_arn.ptr == NULL || req.method_arn.len == 0) {
        apr_atomic_inc64(&env->srv->stats.bad_requests);
        decide_reply_bad_request(&rc, "\"methodArn\" is required", out);
        return DECIDE_REPLIED;
    }
    proto_str_t token;
    jose_reason_e r = token_source_find(g->conf, &req, &token);
    if (r != JOSE_OK) {
        decide_reply_refusal(&rc, r, out);
        return DECIDE_REPLIED;
    }
    /* CONTRACT: longer tokens are refused before decoding (and before hashing). */
    if (token.len > g->conf->max_token_bytes) {
        decide_reply_refusal(&rc, JOSE_R_TOKEN_TOO_LARGE, out);
        return DECIDE_REPLIED;
    }
    unsigned char hash[DCACHE_KEY_BYTES];
    if (!decide_token_hash(env, token, hash)) {
        decide_reply_error(&rc, 500, JOSE_E_INTERNAL, out);
        return DECIDE_REPLIED;
    }
    rc.token_hash = hash;
    if (decide_from_cache(env, g, hash, &rc, now, out)) {
        return DECIDE_REPLIED;
    }
    return decide_verify(env, g, req_pool, &rc, token, hash, may_wait, now, out);
}
