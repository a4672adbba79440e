/* Admin commands (see admin.h). Flushes touch only the decision cache; refresh only queues a
 * fetch (the fetcher thread does the network); reload loads a new generation and keeps the old
 * one when the new config is bad. Nothing here may block on the network. */
#include "daemon/admin.h"

#include <string.h>

#include <openssl/evp.h>

#include "daemon/epoch_file.h"
#include "daemon/jwks_store.h"
#include "daemon/log.h"
#include "jose/pool.h"
#include "jose/token.h"
#include "proto/json_write.h"
#include "proto/msg.h"
#include "proto/msg_gen.h"

/* An admin reply (stats with every issuer's keys) is bounded like any reply. */
#define ADMIN_REPLY_MAX_BYTES PROTO_MAX_REPLY_BYTES

/* CONTRACT "Wire protocol (both sockets)": every reply has "verdict" and "status", admin replies
 * included; "ok" says the same for the admin commands' own shape (ALLOW 200 or ERROR 500). */
static void admin_begin(proto_msg_writer_t *w, int ok, const proto_admin_request_t *req)
{
    proto_msg_gen_map_open(w);
    proto_msg_gen_key(w, "ok");
    proto_msg_gen_bool(w, ok);
    proto_msg_gen_key(w, "verdict");
    proto_msg_gen_str(w, ok ? PROTO_STR_LIT("ALLOW") : PROTO_STR_LIT("ERROR"));
    proto_msg_gen_key(w, "status");
    proto_msg_gen_int(w, ok ? 200 : 500);
    if (req && req->id_json) {
        proto_msg_gen_key(w, "id");
        proto_msg_gen_json(w, req->id_json);
    }
}

static void admin_finish(proto_msg_writer_t *w, proto_buf_t *out)
{
    proto_msg_error_t err;
    proto_msg_gen_map_close(w);
    if (proto_msg_writer_end(w, &err) != PROTO_MSG_OK) {
        log_msg(LOGL_ERROR, "admin reply not written: %s", err.message);
        proto_msg_writer_t w2;
        if (proto_msg_writer_begin(&w2, out, ADMIN_REPLY_MAX_BYTES) == PROTO_MSG_OK) {
            admin_begin(&w2, 0, NULL);
            proto_msg_gen_key(&w2, "error");
            proto_msg_gen_text(&w2, proto_str_make(err.message, strlen(err.message)));
            proto_msg_gen_map_close(&w2);
            proto_msg_writer_end(&w2, &err);
        }
    }
}

static void admin_error(proto_buf_t *out, const proto_admin_request_t *req, const char *msg)
{
    proto_msg_writer_t w;
    if (proto_msg_writer_begin(&w, out, ADMIN_REPLY_MAX_BYTES) != PROTO_MSG_OK) {
        return;
    }
    admin_begin(&w, 0, req);
    proto_msg_gen_key(&w, "error");
    proto_msg_gen_text(&w, proto_str_make(msg, strlen(msg)));
    admin_finish(&w, out);
}

/* The cache key of a token as the decision path computes it: SHA-256 of the compact JWS (a
 * "Bearer " prefix, as an Authorization header carries it, is taken off first). */
static int admin_token_key(proto_str_t token, unsigned char key[DCACHE_KEY_BYTES])
{
    proto_str_t bare;
    if (jose_bearer_extract(token, &bare) != JOSE_OK) {
        bare = token;
    }
    unsigned int n = 0;
    return EVP_Digest(bare.ptr, bare.len, key, &n, EVP_sha256(), NULL) == 1 &&
           n == DCACHE_KEY_BYTES;
}

static void admin_flush(srv_t *srv, gen_t *g, const proto_admin_request_t *req, proto_buf_t *out)
{
    size_t n = 0;
    if (g->dcache) {
        if (req->principal.ptr) {
            n = dcache_flush_principal(g->dcache, req->principal);
        } else if (req->token.ptr) {
            unsigned char key[DCACHE_KEY_BYTES];
            if (!admin_token_key(req->token, key)) {
                admin_error(out, req, "cannot hash the token");
                return;
            }
            n = dcache_flush_key(g->dcache, key);
        } else {
            n = dcache_flush_all(g->dcache);
        }
    }
    /* Web servers keep decisions of their own (keyed by request, not by principal or token):
     * every flush, of any scope, ends all of them. */
    epoch_file_bump(srv->epoch);
    log_msg(LOGL_INFO, "admin: flushed %zu cached decision(s)", n);
    proto_msg_writer_t w;
    if (proto_msg_writer_begin(&w, out, ADMIN_REPLY_MAX_BYTES) != PROTO_MSG_OK) {
        return;
    }
    admin_begin(&w, 1, req);
    proto_msg_gen_key(&w, "flushed");
    proto_msg_gen_int(&w, (long long)n);
    admin_finish(&w, out);
}

static void admin_cache_stats(yajl_gen g, gen_t *gen)
{
    dcache_stats_t cs;
    memset(&cs, 0, sizeof(cs));
    if (gen->dcache) {
        dcache_stats(gen->dcache, &cs);
    }
    proto_json_write_cstr(g, "decision_cache");
    yajl_gen_map_open(g);
    proto_json_write_cstr(g, "enabled");
    yajl_gen_bool(g, gen->dcache != NULL);
    const struct {
        const char *name;
        uint64_t v;
    } f[] = {
        {"entries", cs.entries},        {"capacity", cs.capacity}, {"hits", cs.hits},
        {"misses", cs.misses},          {"inserts", cs.inserts},   {"expired", cs.expired},
        {"evictions", cs.evictions},    {"flushed", cs.flushed},   {"uncacheable", cs.uncacheable},
        {"memory_bytes", cs.slab_bytes}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        proto_json_write_cstr(g, f[i].name);
        yajl_gen_integer(g, (long long)f[i].v);
    }
    proto_json_write_cstr(g, "ttl");
    yajl_gen_integer(g, gen->conf->cache_ttl_s);
    yajl_gen_map_close(g);
}

static void admin_stats(srv_t *srv, gen_t *g, const proto_admin_request_t *req, int64_t now,
                        int keys_only, proto_buf_t *out)
{
    proto_msg_writer_t w;
    if (proto_msg_writer_begin(&w, out, ADMIN_REPLY_MAX_BYTES) != PROTO_MSG_OK) {
        return;
    }
    admin_begin(&w, 1, req);
    if (!keys_only) {
        proto_msg_gen_key(&w, "generation");
        proto_msg_gen_int(&w, g->id);
        stats_write(&srv->stats, w.gen, now);
        admin_cache_stats(w.gen, g);
    }
    proto_msg_gen_key(&w, "issuers");
    if (w.failed == PROTO_MSG_OK) {
        jwks_store_report(srv->jwks, w.gen, now);
    }
    admin_finish(&w, out);
}

static void admin_reload(srv_t *srv, apr_pool_t *rp, const proto_admin_request_t *req,
                         proto_buf_t *out)
{
    conf_errors_t *errs = apr_palloc(rp, sizeof(*errs)); /* ~20 KiB: not on a loop's stack */
    apr_status_t st = srv_reload(srv, errs);
    proto_msg_writer_t w;
    if (proto_msg_writer_begin(&w, out, ADMIN_REPLY_MAX_BYTES) == PROTO_MSG_OK) {
        admin_begin(&w, st == APR_SUCCESS, req);
        if (st == APR_SUCCESS) {
            proto_msg_gen_key(&w, "generation");
            proto_msg_gen_int(&w, apr_atomic_read32(&srv->gen_id));
        } else {
            proto_msg_gen_key(&w, "error");
            proto_msg_gen_text(&w, PROTO_STR_LIT("config not loaded; the old one stays"));
            proto_msg_gen_key(&w, "errors");
            proto_msg_gen_array_open(&w);
            for (size_t i = 0; i < errs->nerrors; i++) {
                proto_msg_gen_text(&w, proto_str_make(errs->errors[i], strlen(errs->errors[i])));
            }
            proto_msg_gen_array_close(&w);
        }
        admin_finish(&w, out);
    }
}

int admin_request(srv_t *srv, gen_t *g, apr_pool_t *rp, proto_str_t frame, int64_t now,
                  proto_buf_t *out)
{
    proto_alloc_t alloc = jose_pool_allocator(rp);
    proto_admin_request_t req;
    proto_msg_error_t err;
    apr_atomic_inc64(&srv->stats.admin_requests);
    proto_msg_status_e ms = proto_msg_admin_decode(frame.ptr, frame.len, &alloc, &req, &err);
    if (ms != PROTO_MSG_OK) {
        /* req.id_json is set when the id was read (first), NULL otherwise: echoed either way. */
        admin_error(out, &req, err.message);
        return ms == PROTO_MSG_ERR_JSON || ms == PROTO_MSG_ERR_NOT_OBJECT;
    }
    switch (req.cmd) {
    case PROTO_ADMIN_FLUSH:
        admin_flush(srv, g, &req, out);
        return 0;
    case PROTO_ADMIN_STATS:
        admin_stats(srv, g, &req, now, 0, out);
        return 0;
    case PROTO_ADMIN_KEYS:
        admin_stats(srv, g, &req, now, 1, out);
        return 0;
    case PROTO_ADMIN_REFRESH: {
        if (jwks_store_refresh(srv->jwks, req.issuer) != APR_SUCCESS) {
            admin_error(out, &req, "no fetched issuer by that name");
            return 0;
        }
        log_msg(LOGL_INFO, "admin: refresh of %.*s queued", (int)req.issuer.len, req.issuer.ptr);
        proto_msg_writer_t w;
        if (proto_msg_writer_begin(&w, out, ADMIN_REPLY_MAX_BYTES) == PROTO_MSG_OK) {
            admin_begin(&w, 1, &req);
            proto_msg_gen_key(&w, "queued");
            proto_msg_gen_bool(&w, 1);
            admin_finish(&w, out);
        }
        return 0;
    }
    case PROTO_ADMIN_RELOAD:
        admin_reload(srv, rp, &req, out);
        return 0;
    case PROTO_ADMIN_UNKNOWN:
        break;
    }
    admin_error(out, &req, "unknown command");
    return 0;
}
