/* mod_jwtauthz's internal interface: the per-directory configuration, the note one decision leaves
 * on a request, and the functions the module's files share. Nothing here is part of the public
 * API (only jwtauthz_module leaves the .so), and nothing here talks to the daemon itself: that is
 * libjwtauthz's job (client/lib/jwtauthz.h). */
#ifndef MOD_JWTAUTHZ_H
#define MOD_JWTAUTHZ_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "jwtauthz.h"

/* mod_jwtauthz.c defines the module record, and with it (AP_DECLARE_MODULE) the per-module log
 * index; every other file declares both here, so its ap_log_rerror lines carry the module. */
#ifndef MOD_JWTAUTHZ_DEFINES_MODULE
APLOG_USE_MODULE(jwtauthz);
#endif

/* The AuthType this module answers for (compared case-insensitively, as httpd compares
 * "Basic"). */
#define JWTAUTHZ_AUTH_TYPE "jwtauthz"

/* methodArn prefix when JwtAuthzResourcePrefix is not set: the shape API Gateway uses
 * (arn:aws:execute-api:REGION:ACCOUNT:API/STAGE), with the placeholders the project's examples
 * and the daemon's sample rules use. */
#define JWTAUTHZ_DEFAULT_RESOURCE_PREFIX "arn:aws:execute-api:local:0:api/prod"

/* JwtAuthzTimeout's bounds. A decision blocks one httpd worker thread for at most this long, so
 * the ceiling keeps a hung daemon from parking every worker for minutes; the floor is the
 * library's unit. */
#define JWTAUTHZ_TIMEOUT_MIN_MS 1
#define JWTAUTHZ_TIMEOUT_MAX_MS 60000

/* Per-directory configuration. Every field has an "unset" value so that a merge can tell "the
 * child said so" from "the child said nothing" (httpd's own convention, mod_auth_basic's merge). */
typedef struct jwtauthz_dirconf {
    const char *socket_path;     /* NULL: unset (JWTAUTHZ_DEFAULT_SOCKET) */
    const char *resource_prefix; /* NULL: unset (JWTAUTHZ_DEFAULT_RESOURCE_PREFIX) */
    int timeout_ms;              /* 0: unset (JWTAUTHZ_DEFAULT_TIMEOUT_MS) */
} jwtauthz_dirconf_t;

/* What an ALLOW left on the request (r->request_config) for `Require jwtauthz-claim`. */
typedef struct jwtauthz_note {
    const char *principal;
    apr_hash_t *context; /* claim name (case-sensitive, as JWT names are) -> value text */
} jwtauthz_note_t;

/* ---- mod_jwtauthz.c: configuration ---- */
/* The effective values of a merged config, defaults filled in. Never NULL / never 0. */
const char *dirconf_socket_path(const jwtauthz_dirconf_t *conf);
const char *dirconf_resource_prefix(const jwtauthz_dirconf_t *conf);
int dirconf_timeout_ms(const jwtauthz_dirconf_t *conf);

/* ---- decision.c: AuthType jwtauthz ---- */
/* check_authn hook: DECLINED unless AuthType is jwtauthz; else OK (r->user set), or the HTTP
 * status the daemon's verdict maps to (401, 403, 500, 503), or 400 for a path that cannot be
 * put into a methodArn. */
int decision_check_user_id(request_rec *r);
/* note_auth_failure hook: sets the RFC 6750 §3 challenge when authz refuses a user we
 * authenticated. DECLINED for other auth types. */
int decision_note_auth_failure(request_rec *r, const char *auth_type);
/* 1 when s[0..len) is UTF-8 (RFC 3629: shortest form, no surrogates), as a methodArn must be. */
int decision_utf8_valid(const char *s, size_t len);
/* The note an ALLOW left on r, or NULL. */
const jwtauthz_note_t *decision_note_get(const request_rec *r);

/* ---- claim_require.c: Require jwtauthz-claim NAME VALUE... ---- */
void claim_require_register(apr_pool_t *p);

/* ---- thread_client.c: one libjwtauthz client per (thread, socket, timeout) ---- */
/* child_init: makes the thread-local slot. Returns APR_SUCCESS or the APR error; on error every
 * request falls back to a client of its own (slower, still correct). */
apr_status_t thread_client_init(apr_pool_t *pchild);
/* A client for socket_path with timeout_ms, kept for the calling thread's next requests, or one
 * freed with r->pool when the thread's slots are full. NULL only when out of memory. */
jwtauthz_client_t *thread_client_get(request_rec *r, const char *socket_path, int timeout_ms);

#endif
