/* The reply object behind jwtauthz_reply_t: built from a decoded reply frame, or made up by the
 * library for a failure (so every failure has the same shape, printable JSON included). Internal
 * to libjwtauthz; not installed. No I/O. */
#ifndef JWTAUTHZ_CLIENT_REPLY_H
#define JWTAUTHZ_CLIENT_REPLY_H

#include <stddef.h>

#include "jwtauthz.h"
#include "proto/arena.h"

struct jwtauthz_reply {
    proto_arena_t arena; /* every string below lives here; wiped when freed */
    jwtauthz_verdict_t verdict;
    int status;
    const char *principal, *reason, *message, *id, *error;
    int ok, cached;
    long long ttl; /* -1: absent */
    const char **ctx_keys, **ctx_values;
    size_t ctx_count;
    const char *json;
    size_t json_len;
};

/* Decodes one reply frame body. Returns the reply, or NULL with *status set to
 * JWTAUTHZ_E_BAD_REPLY (with why in msg) or JWTAUTHZ_E_NOMEM. */
jwtauthz_reply_t *reply_decode(const char *text, size_t len, int admin, int *status, char *msg,
                               size_t msg_size);

/* The reply for a failure status (see jwtauthz_reply_for_status); message NULL for the default.
 * Never NULL: when even that cannot be allocated, a static ERROR 500 no_memory reply that
 * jwtauthz_reply_free() knows not to free. */
jwtauthz_reply_t *reply_for_status(int status, const char *message);

#endif
