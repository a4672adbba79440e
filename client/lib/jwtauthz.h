/* libjwtauthz: asks jwtauthzd for decisions over its Unix socket. The one public header.
 * A blocking API (a client object per thread) and a sans-I/O API (encode a request into your
 * buffer, feed reply bytes in) for event loops such as nginx's. Plain libc + yajl, no APR.
 * Every failure reads as a reply whose verdict is JWTAUTHZ_ERROR, never as JWTAUTHZ_ALLOW.
 * Strings given as (ptr, len) may be unterminated; const char * arguments are NUL-terminated. */
#ifndef JWTAUTHZ_H
#define JWTAUTHZ_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define JWTAUTHZ_API __attribute__((visibility("default")))
#else
#define JWTAUTHZ_API
#endif

/* Defaults (CONTRACT "Programs and files"). */
#define JWTAUTHZ_DEFAULT_SOCKET "/run/jwtauthz/jwtauthz.sock"
#define JWTAUTHZ_DEFAULT_ADMIN_SOCKET "/run/jwtauthz/admin.sock"
/* Per call, connect + send + reply: a decision takes well under a millisecond; this leaves room
 * for a daemon that is busy, not for one that is gone. */
#define JWTAUTHZ_DEFAULT_TIMEOUT_MS 2000
/* The largest reply body the library accepts (a frame declaring more is a bad reply), and what a
 * decoder buffers at most: two replies with their headers, so a whole read can always be fed. */
#define JWTAUTHZ_MAX_REPLY_BYTES (256u * 1024u)
#define JWTAUTHZ_DECODER_MAX_BYTES (2u * (JWTAUTHZ_MAX_REPLY_BYTES + 4u))

/* The verdict. JWTAUTHZ_ERROR is zero, so a zeroed or unset value never reads as ALLOW. */
typedef enum {
    JWTAUTHZ_ERROR = 0,   /* no decision: answer with jwtauthz_reply_status() (500 or 503) */
    JWTAUTHZ_ALLOW,       /* 200 */
    JWTAUTHZ_DENY,        /* 403 */
    JWTAUTHZ_UNAUTHORIZED /* 401, with WWW-Authenticate: Bearer error="invalid_token" */
} jwtauthz_verdict_t;

/* Status codes of the library's own functions. */
typedef enum {
    JWTAUTHZ_OK = 0,
    JWTAUTHZ_NEED_MORE = 1,          /* decoder: no whole reply yet */
    JWTAUTHZ_E_SPACE = -1,           /* the output buffer is too small; *len says what is needed */
    JWTAUTHZ_E_INVALID = -2,         /* an argument cannot be sent: NULL where required, not UTF-8
                                        or holding a NUL where it must not, unknown command */
    JWTAUTHZ_E_TOKEN_TOO_LARGE = -3, /* the Authorization value is longer than any daemon accepts */
    JWTAUTHZ_E_TOO_LARGE = -4,       /* the request would not fit in a frame */
    JWTAUTHZ_E_NOMEM = -5,           /* out of memory */
    JWTAUTHZ_E_UNAVAILABLE = -6,     /* cannot reach the daemon (no socket, refused, closed) */
    JWTAUTHZ_E_TIMEOUT = -7,         /* the daemon did not answer in time */
    JWTAUTHZ_E_BAD_REPLY = -8        /* the daemon's bytes are not a valid reply */
} jwtauthz_status_t;

/* Admin commands (CONTRACT "Admin requests"). */
typedef enum {
    JWTAUTHZ_ADMIN_FLUSH = 1,       /* all cached decisions; arg NULL */
    JWTAUTHZ_ADMIN_FLUSH_PRINCIPAL, /* decisions of principal arg */
    JWTAUTHZ_ADMIN_FLUSH_TOKEN,     /* decisions of token arg */
    JWTAUTHZ_ADMIN_STATS,           /* arg NULL */
    JWTAUTHZ_ADMIN_KEYS,            /* arg NULL */
    JWTAUTHZ_ADMIN_REFRESH,         /* refetch the keys of issuer arg */
    JWTAUTHZ_ADMIN_RELOAD           /* arg NULL */
} jwtauthz_admin_cmd_t;

/* A string as (pointer, length); ptr NULL means absent. */
typedef struct jwtauthz_str {
    const char *ptr;
    size_t len;
} jwtauthz_str_t;

typedef struct jwtauthz_pair {
    jwtauthz_str_t name;
    jwtauthz_str_t value;
} jwtauthz_pair_t;

/* A REQUEST-type decision request (API Gateway's request authorizer event). The daemon takes the
 * token from the Authorization header (any case), else a configured cookie or query parameter.
 * Headers that repeat (ignoring case) are sent once, values joined by ", " ("; " for Cookie);
 * repeated query parameters are joined by ",". Header and query bytes that are not UTF-8 are sent
 * as U+FFFD; method_arn, http_method, path and source_ip must be UTF-8 without NUL. */
typedef struct jwtauthz_request {
    /* Required: arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/VERB/PATH */
    jwtauthz_str_t method_arn;
    jwtauthz_str_t http_method; /* optional */
    jwtauthz_str_t path;        /* optional */
    const jwtauthz_pair_t *headers;
    size_t header_count;
    const jwtauthz_pair_t *query;
    size_t query_count;
    jwtauthz_str_t source_ip; /* optional: requestContext.identity.sourceIp */
} jwtauthz_request_t;

typedef struct jwtauthz_client jwtauthz_client_t;
typedef struct jwtauthz_reply jwtauthz_reply_t;
typedef struct jwtauthz_decoder jwtauthz_decoder_t;

/* The library's version ("0.1.0"). Never NULL. */
JWTAUTHZ_API const char *jwtauthz_version(void);

/* "ALLOW", "DENY", "UNAUTHORIZED", "ERROR" (anything out of range is "ERROR"). Never NULL. */
JWTAUTHZ_API const char *jwtauthz_verdict_name(jwtauthz_verdict_t v);

/* ---- blocking API ------------------------------------------------------------------------------
 * A client holds one connection and reuses it across calls; a connection the daemon closed
 * between calls (EPIPE, ECONNRESET, EOF before the reply) is reopened and the request sent once
 * more. Each call is bounded by the timeout as a whole (connect, send, reply). A call that times
 * out or reads a bad reply closes the connection, so a late reply is never taken for the next
 * request's. SIGPIPE is never raised (MSG_NOSIGNAL). After fork() the child opens its own
 * connection. NOT thread-safe: use one client per thread (or serialise calls yourself). */

/* Makes a client for the socket at socket_path (NULL: JWTAUTHZ_DEFAULT_SOCKET) with a per-call
 * timeout in milliseconds (<= 0: JWTAUTHZ_DEFAULT_TIMEOUT_MS). Connects lazily, on the first call.
 * Returns NULL when socket_path is too long for a Unix socket address or out of memory. */
JWTAUTHZ_API jwtauthz_client_t *jwtauthz_client_new(const char *socket_path, int timeout_ms);

/* Closes the connection and frees the client. NULL is ignored. */
JWTAUTHZ_API void jwtauthz_client_free(jwtauthz_client_t *client);

/* Asks for a decision on a TOKEN request: authorization is the Authorization header's value as
 * sent ("Bearer eyJ..."; NULL when the request had none), method_arn the resource.
 * Returns the verdict and sets *reply (never NULL; free it with jwtauthz_reply_free) to the
 * daemon's reply, or on failure to a reply the library made up:
 *   client or method_arn NULL, bad UTF-8 in method_arn  -> ERROR 500 "bad_request"
 *   authorization past any daemon's token limit          -> UNAUTHORIZED 401 "token_too_large"
 *   no socket, connection refused or closed twice        -> ERROR 503 "daemon_unavailable"
 *   no whole reply within the timeout                    -> ERROR 503 "daemon_timeout"
 *   a reply that is not a valid reply, or for another id -> ERROR 503 "bad_reply"
 *   out of memory                                        -> ERROR 500 "no_memory"
 * reply may be NULL when only the verdict is wanted. */
JWTAUTHZ_API jwtauthz_verdict_t jwtauthz_check_token(jwtauthz_client_t *client,
                                                     const char *authorization,
                                                     const char *method_arn,
                                                     jwtauthz_reply_t **reply);

/* As jwtauthz_check_token() for a REQUEST-type request. req NULL or req->method_arn absent, or
 * a strict field that is not UTF-8 or holds a NUL -> ERROR 500 "bad_request"; a request too large
 * for a frame -> ERROR 500 "request_too_large". */
JWTAUTHZ_API jwtauthz_verdict_t jwtauthz_check_request(jwtauthz_client_t *client,
                                                       const jwtauthz_request_t *req,
                                                       jwtauthz_reply_t **reply);

/* Sends an admin command (the client must point at the admin socket). arg is the principal,
 * token or issuer the command takes, NULL for the others.
 * Returns 1 when the daemon answered {"ok":true,...}, 0 otherwise, and sets *reply as above
 * (never NULL): a command given an argument it does not take, or missing one, gives ERROR 500
 * "bad_request"; the I/O failures give the ERROR 503 replies listed at jwtauthz_check_token(). */
JWTAUTHZ_API int jwtauthz_admin(jwtauthz_client_t *client, jwtauthz_admin_cmd_t cmd,
                                const char *arg, jwtauthz_reply_t **reply);

/* ---- replies -----------------------------------------------------------------------------------
 * A reply owns its strings; they live until jwtauthz_reply_free(). Strings are NUL-terminated and
 * never hold an inner NUL (a reply with one is refused as "bad_reply"). Every accessor accepts
 * NULL and then answers as for an ERROR reply. */

/* The verdict; JWTAUTHZ_ERROR for admin replies without one and for every failure. */
JWTAUTHZ_API jwtauthz_verdict_t jwtauthz_reply_verdict(const jwtauthz_reply_t *reply);
/* The HTTP status to answer with: 200, 403, 401, 500 or 503 (0 for an admin reply that carries
 * none; 503 for NULL). */
JWTAUTHZ_API int jwtauthz_reply_status(const jwtauthz_reply_t *reply);
/* principalId, or NULL when absent. */
JWTAUTHZ_API const char *jwtauthz_reply_principal(const jwtauthz_reply_t *reply);
/* The short reason code ("token_expired", "daemon_unavailable"), or NULL when absent. */
JWTAUTHZ_API const char *jwtauthz_reply_reason(const jwtauthz_reply_t *reply);
/* The human message, or NULL when absent. */
JWTAUTHZ_API const char *jwtauthz_reply_message(const jwtauthz_reply_t *reply);
/* "cached": 1 when true, 0 when false or absent. */
JWTAUTHZ_API int jwtauthz_reply_cached(const jwtauthz_reply_t *reply);
/* "ttl" in seconds, or -1 when absent. */
JWTAUTHZ_API long long jwtauthz_reply_ttl(const jwtauthz_reply_t *reply);
/* The echoed "id" (a string's value or a number's text), or NULL when absent. */
JWTAUTHZ_API const char *jwtauthz_reply_id(const jwtauthz_reply_t *reply);
/* The number of context entries (0 when none). */
JWTAUTHZ_API size_t jwtauthz_reply_context_count(const jwtauthz_reply_t *reply);
/* Context entry i in the daemon's order: sets *key and *value and returns 1, or returns 0 when i
 * is out of range. Values that are not JSON strings come as their JSON text ("42", "true",
 * "[\"a\",\"b\"]"). key or value may be NULL. */
JWTAUTHZ_API int jwtauthz_reply_context_at(const jwtauthz_reply_t *reply, size_t i,
                                           const char **key, const char **value);
/* The value of context entry key (exact match), or NULL when absent. */
JWTAUTHZ_API const char *jwtauthz_reply_context_get(const jwtauthz_reply_t *reply, const char *key);
/* Admin replies: 1 for "ok": true, else 0. */
JWTAUTHZ_API int jwtauthz_reply_ok(const jwtauthz_reply_t *reply);
/* Admin replies: "error", or NULL when absent. */
JWTAUTHZ_API const char *jwtauthz_reply_error(const jwtauthz_reply_t *reply);
/* The whole reply as JSON (the daemon's bytes, or the library's own for the failures above), to
 * print. Sets *len when len is not NULL. Never NULL. */
JWTAUTHZ_API const char *jwtauthz_reply_json(const jwtauthz_reply_t *reply, size_t *len);

/* Frees a reply. NULL is ignored. */
JWTAUTHZ_API void jwtauthz_reply_free(jwtauthz_reply_t *reply);

/* ---- sans-I/O API ------------------------------------------------------------------------------
 * For callers that do their own non-blocking I/O: encode a request (frame header included) into
 * a buffer, write it, feed what the socket gives back into a decoder, take replies out in request
 * order. Nothing here touches a file descriptor. */

/* Each encodes one request into out[0..size): sets *len to the frame's length (also when it does
 * not fit, so a caller can call again with out NULL, size 0 to learn the size).
 * id is optional (ptr NULL): the daemon echoes it, for matching replies to pipelined requests.
 * Returns JWTAUTHZ_OK; JWTAUTHZ_E_SPACE (size too small, out untouched); JWTAUTHZ_E_INVALID;
 * JWTAUTHZ_E_TOKEN_TOO_LARGE (authorization only); JWTAUTHZ_E_TOO_LARGE; JWTAUTHZ_E_NOMEM.
 * Turn a failure into a reply with jwtauthz_reply_for_status(). */
JWTAUTHZ_API int jwtauthz_encode_token(jwtauthz_str_t authorization, jwtauthz_str_t method_arn,
                                       jwtauthz_str_t id, void *out, size_t size, size_t *len);
JWTAUTHZ_API int jwtauthz_encode_request(const jwtauthz_request_t *req, jwtauthz_str_t id,
                                         void *out, size_t size, size_t *len);
JWTAUTHZ_API int jwtauthz_encode_admin(jwtauthz_admin_cmd_t cmd, jwtauthz_str_t arg,
                                       jwtauthz_str_t id, void *out, size_t size, size_t *len);

/* Makes a decoder for the replies of one connection: decision replies, or admin replies when
 * admin is nonzero. Returns NULL when out of memory. */
JWTAUTHZ_API jwtauthz_decoder_t *jwtauthz_decoder_new(int admin);

/* Hands len received bytes to the decoder (any split: a byte at a time, or several replies).
 * The decoder holds at most JWTAUTHZ_DECODER_MAX_BYTES unread: take replies out with
 * jwtauthz_decoder_next() until JWTAUTHZ_NEED_MORE before feeding more, and feed at most
 * JWTAUTHZ_MAX_REPLY_BYTES at a time, and it never fills up with a well-behaved daemon.
 * Returns JWTAUTHZ_OK, JWTAUTHZ_E_BAD_REPLY (the bytes would not fit: nothing was taken, the
 * stream is broken, close the connection) or JWTAUTHZ_E_NOMEM (nothing was taken). */
JWTAUTHZ_API int jwtauthz_decoder_feed(jwtauthz_decoder_t *dec, const void *bytes, size_t len);

/* Takes the next whole reply out (reply must not be NULL). Returns
 *   JWTAUTHZ_OK           *reply is the reply (free it);
 *   JWTAUTHZ_NEED_MORE    *reply is NULL: feed more bytes;
 *   JWTAUTHZ_E_BAD_REPLY  *reply is an ERROR 503 "bad_reply" reply (free it): the frame or its
 *                         JSON is not a valid reply; close the connection, the stream is lost;
 *   JWTAUTHZ_E_NOMEM      *reply is an ERROR 500 "no_memory" reply (free it).
 * Call again after JWTAUTHZ_OK: pipelined replies may already be buffered. */
JWTAUTHZ_API int jwtauthz_decoder_next(jwtauthz_decoder_t *dec, jwtauthz_reply_t **reply);

/* 1 when reply answers the request sent with id: it echoes id, or it is an ERROR without an id
 * (the daemon could not read the request, so it could not echo it; such a reply decides nothing).
 * 0 otherwise, including an ALLOW without an id: the stream is out of step, close it. This is the
 * rule the blocking API applies. reply or id NULL gives 0. */
JWTAUTHZ_API int jwtauthz_reply_answers(const jwtauthz_reply_t *reply, const char *id);

/* The number of bytes fed and not yet taken out as replies (nonzero at EOF: a truncated reply). */
JWTAUTHZ_API size_t jwtauthz_decoder_pending(const jwtauthz_decoder_t *dec);

/* Drops every buffered byte, for a new connection. NULL is ignored. */
JWTAUTHZ_API void jwtauthz_decoder_reset(jwtauthz_decoder_t *dec);
/* Frees the decoder (wiping what it held). NULL is ignored. */
JWTAUTHZ_API void jwtauthz_decoder_free(jwtauthz_decoder_t *dec);

/* The reply the blocking API gives for a failure status, so an event-loop caller fails the same
 * way: JWTAUTHZ_E_UNAVAILABLE -> ERROR 503 "daemon_unavailable", JWTAUTHZ_E_TIMEOUT -> ERROR 503
 * "daemon_timeout", JWTAUTHZ_E_BAD_REPLY -> ERROR 503 "bad_reply", JWTAUTHZ_E_TOKEN_TOO_LARGE ->
 * UNAUTHORIZED 401 "token_too_large", JWTAUTHZ_E_TOO_LARGE -> ERROR 500 "request_too_large",
 * JWTAUTHZ_E_NOMEM -> ERROR 500 "no_memory", anything else -> ERROR 500 "bad_request".
 * message (NULL: a default) is copied. Never returns NULL. */
JWTAUTHZ_API jwtauthz_reply_t *jwtauthz_reply_for_status(int status, const char *message);

#ifdef __cplusplus
}
#endif

#endif
