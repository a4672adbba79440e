/* Connection reuse: each httpd thread keeps one libjwtauthz client (one open connection to
 * jwtauthzd) per (socket, timeout) it has used, in thread-local storage, so a decision costs one
 * round trip and no connect. The library's clients are not thread-safe (jwtauthz.h), and here no
 * client is ever seen by two threads, so nothing locks. Works the same under prefork (one thread
 * per process), worker and event. Must not hold a client past the call that uses it. */
#include <stdlib.h>
#include <string.h>

#include <apr_thread_proc.h>

#include "mod_jwtauthz.h"

/* Distinct (JwtAuthzSocket, JwtAuthzTimeout) pairs one thread keeps clients for. Real configs
 * have one or two; past this, requests get a client of their own (correct, one connect more). */
#define THREAD_CLIENT_SLOTS 8

/* Slots live as long as their thread, longer than any pool a request can reach, so they are
 * malloc'd and freed by the thread-key destructor when the thread exits. */
typedef struct thread_client_slot {
    char *socket_path;
    int timeout_ms;
    jwtauthz_client_t *client;
} thread_client_slot_t;

typedef struct thread_clients {
    size_t used;
    thread_client_slot_t slot[THREAD_CLIENT_SLOTS];
} thread_clients_t;

/* Set once per child process in child_init, before any request thread runs; read-only after. */
static apr_threadkey_t *thread_clients_key;

static void thread_clients_free(void *data)
{
    thread_clients_t *tc = data;

    for (size_t i = 0; i < tc->used; i++) {
        jwtauthz_client_free(tc->slot[i].client);
        free(tc->slot[i].socket_path);
    }
    free(tc);
}

apr_status_t thread_client_init(apr_pool_t *pchild)
{
    return apr_threadkey_private_create(&thread_clients_key, thread_clients_free, pchild);
}

static apr_status_t thread_client_cleanup(void *data)
{
    jwtauthz_client_free(data);
    return APR_SUCCESS;
}

/* The fallback: a client for this request alone, closed with the request. */
static jwtauthz_client_t *thread_client_for_request(request_rec *r, const char *socket_path,
                                                    int timeout_ms)
{
    jwtauthz_client_t *c = jwtauthz_client_new(socket_path, timeout_ms);

    if (c != NULL) {
        apr_pool_cleanup_register(r->pool, c, thread_client_cleanup, apr_pool_cleanup_null);
    }
    return c;
}

static thread_clients_t *thread_clients_of_this_thread(void)
{
    void *v = NULL;

    if (thread_clients_key == NULL ||
        apr_threadkey_private_get(&v, thread_clients_key) != APR_SUCCESS) {
        return NULL;
    }
    if (v == NULL) {
        thread_clients_t *tc = calloc(1, sizeof(*tc));
        if (tc == NULL || apr_threadkey_private_set(tc, thread_clients_key) != APR_SUCCESS) {
            free(tc);
            return NULL;
        }
        v = tc;
    }
    return v;
}

jwtauthz_client_t *thread_client_get(request_rec *r, const char *socket_path, int timeout_ms)
{
    thread_clients_t *tc = thread_clients_of_this_thread();

    if (tc == NULL) {
        return thread_client_for_request(r, socket_path, timeout_ms);
    }
    for (size_t i = 0; i < tc->used; i++) {
        if (tc->slot[i].timeout_ms == timeout_ms &&
            strcmp(tc->slot[i].socket_path, socket_path) == 0) {
            return tc->slot[i].client;
        }
    }
    if (tc->used == THREAD_CLIENT_SLOTS) {
        return thread_client_for_request(r, socket_path, timeout_ms);
    }
    thread_client_slot_t *slot = &tc->slot[tc->used];
    slot->socket_path = strdup(socket_path);
    slot->client = jwtauthz_client_new(socket_path, timeout_ms);
    if (slot->socket_path == NULL || slot->client == NULL) {
        free(slot->socket_path);
        jwtauthz_client_free(slot->client);
        memset(slot, 0, sizeof(*slot));
        return NULL;
    }
    slot->timeout_ms = timeout_ms;
    tc->used++;
    return slot->client;
}
