/* APR for the harnesses whose code takes pools (jose/, daemon/): APR initialised and a root pool
 * made once per process, for what lives as long as the fuzzer (fixed key sets); and one subpool
 * that each input's work goes into and that is cleared after it, as the daemon clears a request
 * pool after each reply. */
#ifndef JWTAUTHZ_FUZZ_FUZZ_APR_H
#define JWTAUTHZ_FUZZ_FUZZ_APR_H

#include <stdio.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>

typedef struct fuzz_pools {
    apr_pool_t *root;  /* process lifetime */
    apr_pool_t *input; /* cleared after every input */
} fuzz_pools_t;

static inline fuzz_pools_t *fuzz_pools(void)
{
    static fuzz_pools_t pools;
    if (pools.root == NULL) {
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&pools.root, NULL) != APR_SUCCESS ||
            apr_pool_create(&pools.input, pools.root) != APR_SUCCESS) {
            fprintf(stderr, "fuzz: cannot initialise APR\n");
            abort();
        }
    }
    return &pools;
}

/* Debian's APR takes pool memory with mmap, which LeakSanitizer does not scan: an object only a
 * pool points at (an EVP_PKEY of a fixed key set) reads as leaked at exit unless the pool's
 * cleanups run first. Call once what lives in the root pool is made; atexit handlers run in
 * reverse order, so this one runs before OpenSSL's own cleanup, registered on its first use. */
static inline void fuzz_pools_destroy(void)
{
    fuzz_pools_t *pools = fuzz_pools();
    apr_pool_destroy(pools->root);
    pools->root = pools->input = NULL;
    apr_terminate();
}

static inline void fuzz_pools_destroy_at_exit(void)
{
    if (atexit(fuzz_pools_destroy) != 0) {
        abort();
    }
}

#endif
