/* Bridges the strict JSON reader's allocator to an APR pool: jose's parsed values live in the
 * caller's pool and go with it. */
#ifndef JWTAUTHZ_JOSE_POOL_H
#define JWTAUTHZ_JOSE_POOL_H

#include <apr_pools.h>

#include "proto/arena.h"
#include "proto/json.h"

static inline void *jose_pool_alloc(void *pool, size_t size)
{
    return apr_palloc((apr_pool_t *)pool, size);
}

static inline proto_alloc_t jose_pool_allocator(apr_pool_t *p)
{
    proto_alloc_t a = {jose_pool_alloc, p};
    return a;
}

/* Strict JSON (no comments) into a pool: tokens and key sets. */
static inline proto_json_status_e jose_json_read(apr_pool_t *p, const char *text, size_t len,
                                                 proto_json_t **out, proto_json_error_t *err)
{
    proto_alloc_t a = jose_pool_allocator(p);
    return proto_json_read(text, len, NULL, &a, out, err);
}

#endif
