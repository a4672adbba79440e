/* The messages of the wire protocol (CONTRACT "Wire protocol"): decision requests (TOKEN and
 * REQUEST), admin requests, and replies, each with an encoder that writes a whole frame into a
 * proto_buf_t through yajl_gen and a decoder that reads one frame body with proto_json_read().
 * Sans-I/O and libc + yajl only: the daemon, libjwtauthz and the nginx module share it. Policy
 * (what a decode error becomes on the wire) belongs to the callers, not here. */
#ifndef JWTAUTHZ_PROTO_MSG_H
#define JWTAUTHZ_PROTO_MSG_H

#include <stddef.h>

#include "arena.h"
#include "buf.h"
#include "json.h"
#include "str.h"

/* --- results --------------------------------------------------------------------------------- */

typedef enum {
    PROTO_MSG_OK = 0,
    PROTO_MSG_ERR_JSON,       /* not one JSON value, or past a JSON bound (depth, values, duplicate
                                 member names, member name length) */
    PROTO_MSG_ERR_NOT_OBJECT, /* JSON, but the document is not an object */
    PROTO_MSG_ERR_MISSING,    /* a required member is absent */
    PROTO_MSG_ERR_TYPE,       /* a member has the wrong JSON type */
    PROTO_MSG_ERR_VALUE,      /* the right type but a refused value: an unknown verdict, type or
                                 cmd, a NUL byte or bad UTF-8 where none may be, a number out of
                                 range, a status that does not go with the verdict */
    PROTO_MSG_ERR_TOO_LARGE,  /* encoding: the message would pass the frame cap or the buffer */
    PROTO_MSG_ERR_NO_MEMORY   /* the allocator (its cap, or malloc) said no */
} proto_msg_status_e;

typedef struct proto_msg_error {
    proto_msg_status_e status;
    /* Names the member and what was wrong: `"headers": expected an object, got a string`.
     * Member names from the input are quoted with non-printable bytes replaced; values never. */
    char message[200];
} proto_msg_error_t;

/* A stable short name for a status ("missing_member"). Never NULL. */
const char *proto_msg_status_name(proto_msg_status_e st);

/* --- shared shapes --------------------------------------------------------------------------- */

typedef enum {
    PROTO_VERDICT_ERROR = 0, /* zero, so a zeroed struct never reads as ALLOW */
    PROTO_VERDICT_ALLOW,
    PROTO_VERDICT_DENY,
    PROTO_VERDICT_UNAUTHORIZED
} proto_verdict_e;

/* "ALLOW", "DENY", "UNAUTHORIZED", "ERROR". Never NULL (an out-of-range value gives "ERROR"). */
const char *proto_verdict_name(proto_verdict_e v);
/* Exact, case-sensitive match of the four names. Returns 1 and sets *out, or 0. */
int proto_verdict_parse(proto_str_t s, proto_verdict_e *out);
/* 1 when status is what the contract pairs with the verdict (ALLOW 200, DENY 403,
 * UNAUTHORIZED 401, ERROR 500 or 503), else 0. */
int proto_verdict_status_match(proto_verdict_e v, long long status);

/* A name and a value: a header, a query parameter, a context entry. */
typedef struct proto_pair {
    proto_str_t name;
    /* The value as a string: a JSON string's bytes; for any other JSON value (decoding a
     * context), its JSON text ("42", "true", "[1,2]"). */
    proto_str_t value;
    /* Decoding: the value as read. Encoding a context: when set, written as this JSON value
     * instead of value (so claims keep their types). NULL otherwise. */
    const proto_json_t *json;
} proto_pair_t;

/* Counts the pairs whose name equals name ignoring ASCII case (HTTP field names, RFC 9110 §5.1)
 * and sets *value to the first one's value when there is one (value may be NULL). A count above 1
 * is ambiguous: a caller looking up Authorization must refuse it. */
size_t proto_pairs_find_ci(const proto_pair_t *pairs, size_t count, proto_str_t name,
                           proto_str_t *value);

/* --- decision requests ----------------------------------------------------------------------- */

typedef enum {
    PROTO_REQ_UNKNOWN = 0,
    PROTO_REQ_TOKEN,  /* API Gateway's token authorizer event */
    PROTO_REQ_REQUEST /* API Gateway's request authorizer event */
} proto_req_type_e;

/* Absent strings have ptr NULL. Decoding fills every field it finds; strings live in the
 * allocator and are checked: methodArn, httpMethod, path, sourceIp and id hold no NUL byte;
 * authorizationToken, header and query names and values may (they are judged as tokens later). */
typedef struct proto_decision_request {
    proto_req_type_e type;
    proto_str_t type_name;           /* "type" as sent (for messages about an unknown type) */
    proto_str_t authorization_token; /* TOKEN: "authorizationToken", e.g. "Bearer eyJ..." */
    proto_str_t method_arn;          /* required for both types */
    proto_str_t http_method;         /* REQUEST, optional */
    proto_str_t path;                /* REQUEST, optional */
    const proto_pair_t *headers;     /* REQUEST: "headers" (null or absent: none) */
    size_t header_count;
    const proto_pair_t *query; /* REQUEST: "queryStringParameters" (null or absent: none) */
    size_t query_count;
    proto_str_t source_ip; /* REQUEST: "requestContext"."identity"."sourceIp", optional */
    /* "id": encoding writes id_json when set, else id as a JSON string when id.ptr is set.
     * Decoding accepts a string or a number: id_json is the value as read (to echo it), id its
     * string or its number text. */
    proto_str_t id;
    const proto_json_t *id_json;
} proto_decision_request_t;

/* Writes one frame holding the request. TOKEN writes type, authorizationToken (when set),
 * methodArn and id; REQUEST writes type, methodArn, httpMethod, path, headers and
 * queryStringParameters (always, possibly {}), requestContext.identity.sourceIp (when set), id.
 * Header names that repeat, ignoring case, are sent once with their values joined by ", "
 * ("; " for Cookie), RFC 9110 §5.3 (RFC 9113 §8.2.3 for Cookie); repeated query parameters are
 * joined by ",": a duplicated credential then reads as malformed instead of one copy winning.
 * Token, header and query bytes that are not UTF-8 are sent as U+FFFD (which can only make a token
 * fail); methodArn, httpMethod, path, sourceIp and id must be UTF-8 without NUL.
 * Returns PROTO_MSG_OK; PROTO_MSG_ERR_MISSING (no methodArn), PROTO_MSG_ERR_VALUE (unknown type,
 * bad UTF-8 or NUL in a strict field), PROTO_MSG_ERR_TOO_LARGE (body past max or past out's
 * maximum), PROTO_MSG_ERR_NO_MEMORY. On failure out is as it was. err may be NULL. */
proto_msg_status_e proto_msg_request_encode(proto_buf_t *out, size_t max,
                                            const proto_decision_request_t *req,
                                            proto_msg_error_t *err);

/* Reads a decision request from one frame body. Unknown members are ignored: API Gateway events
 * carry many (resource, stageVariables, multiValueHeaders, ...). "headers" and
 * "queryStringParameters" must be objects of strings, or null.
 * Returns PROTO_MSG_OK; PROTO_MSG_ERR_JSON, _NOT_OBJECT, _MISSING (type, methodArn), _TYPE,
 * _VALUE (unknown type: req->type is PROTO_REQ_UNKNOWN and req->type_name says what came; NUL in
 * a strict field), _NO_MEMORY. err says which member. On failure *req holds what was read so far
 * (type and id are read first, so an error reply can still echo the id). */
proto_msg_status_e proto_msg_request_decode(const char *text, size_t len,
                                            const proto_alloc_t *alloc,
                                            proto_decision_request_t *req, proto_msg_error_t *err);

/* --- admin requests -------------------------------------------------------------------------- */

typedef enum {
    PROTO_ADMIN_UNKNOWN = 0,
    PROTO_ADMIN_FLUSH, /* all decisions, or those of "principal", or of "token" */
    PROTO_ADMIN_STATS,
    PROTO_ADMIN_KEYS,
    PROTO_ADMIN_REFRESH, /* "issuer" required */
    PROTO_ADMIN_RELOAD
} proto_admin_cmd_e;

/* "cmd" as sent on the wire ("flush"), or NULL for PROTO_ADMIN_UNKNOWN. */
const char *proto_admin_cmd_name(proto_admin_cmd_e cmd);

typedef struct proto_admin_request {
    proto_admin_cmd_e cmd;
    proto_str_t cmd_name;  /* "cmd" as sent */
    proto_str_t principal; /* flush only */
    proto_str_t token;     /* flush only, exclusive with principal; may hold NUL (judged later) */
    proto_str_t issuer;    /* refresh only, required there */
    proto_str_t id;        /* as in proto_decision_request_t */
    const proto_json_t *id_json;
} proto_admin_request_t;

/* Writes one admin request frame. Returns PROTO_MSG_OK; PROTO_MSG_ERR_VALUE (unknown cmd, an
 * argument the cmd does not take, principal and token together, bad UTF-8 or NUL),
 * PROTO_MSG_ERR_MISSING (refresh without issuer), PROTO_MSG_ERR_TOO_LARGE,
 * PROTO_MSG_ERR_NO_MEMORY. On failure out is as it was. */
proto_msg_status_e proto_msg_admin_encode(proto_buf_t *out, size_t max,
                                          const proto_admin_request_t *req, proto_msg_error_t *err);

/* Reads an admin request. Unlike decision requests, unknown members are refused (a misspelt
 * "principal" must not turn a targeted flush into a flush of everything), as are members the cmd
 * does not take. Returns PROTO_MSG_OK, or the statuses of proto_msg_request_decode() (an unknown
 * cmd is PROTO_MSG_ERR_VALUE with req->cmd PROTO_ADMIN_UNKNOWN). */
proto_msg_status_e proto_msg_admin_decode(const char *text, size_t len, const proto_alloc_t *alloc,
                                          proto_admin_request_t *req, proto_msg_error_t *err);

/* --- replies --------------------------------------------------------------------------------- */

typedef enum {
    PROTO_REPLY_DECISION = 0, /* decision socket: verdict and status required */
    PROTO_REPLY_ADMIN         /* admin socket: "ok" (or an ERROR verdict) required */
} proto_reply_kind_e;

/* One policy statement: {"Action":"execute-api:Invoke","Effect":..,"Resource":[..]}. */
typedef struct proto_policy_statement {
    int allow; /* Effect "Allow" when 1, "Deny" when 0 */
    const proto_str_t *resources;
    size_t resource_count;
} proto_policy_statement_t;

typedef struct proto_reply {
    proto_reply_kind_e kind;
    int has_verdict;         /* decoding: 1 when "verdict" was there (always for DECISION) */
    proto_verdict_e verdict; /* PROTO_VERDICT_ERROR unless a verdict said otherwise */
    int status;              /* HTTP status; 0 when absent (admin replies) */
    proto_str_t principal_id;
    /* Encoding only: written as policyDocument when has_policy (Version "2012-10-17"). Decoding
     * checks that a policyDocument is an object and leaves it in raw. */
    int has_policy;
    const proto_policy_statement_t *statements;
    size_t statement_count;
    const proto_pair_t *context; /* "context" members in document order */
    size_t context_count;
    proto_str_t reason;  /* short code: token_expired, bad_request, ... */
    proto_str_t message; /* a sentence for people */
    int has_cached, cached;
    int has_ttl;
    long long ttl;     /* seconds, >= 0 */
    int has_ok, ok;    /* admin replies */
    proto_str_t error; /* admin replies: "error" */
    proto_str_t id;    /* as in proto_decision_request_t: the echo, as a string or number text */
    const proto_json_t *id_json;
    proto_str_t raw; /* decoding: a copy of the whole reply JSON in the allocator */
} proto_reply_t;

/* Writes one reply frame: verdict, status, principalId, policyDocument, context, reason, message,
 * cached, ttl, id (id_json echoed as it was read, else id as a string), each when set; for
 * PROTO_REPLY_ADMIN "ok" and "error" too. reason and message are free text: non-UTF-8 bytes go out
 * as U+FFFD. Everything else must be UTF-8 without NUL.
 * Returns PROTO_MSG_OK; PROTO_MSG_ERR_VALUE (status does not go with the verdict, bad UTF-8 or
 * NUL), PROTO_MSG_ERR_TOO_LARGE, PROTO_MSG_ERR_NO_MEMORY. On failure out is as it was. */
proto_msg_status_e proto_msg_reply_encode(proto_buf_t *out, size_t max, const proto_reply_t *reply,
                                          proto_msg_error_t *err);

/* Writes {"verdict":"ERROR","status":S,"reason":R,"message":M,"id":..} as one frame. status must
 * be 500 or 503; message may be empty (ptr NULL: left out); id_json may be NULL. Returns as
 * proto_msg_reply_encode(). */
proto_msg_status_e proto_msg_error_reply_encode(proto_buf_t *out, size_t max, int status,
                                                proto_str_t reason, proto_str_t message,
                                                const proto_json_t *id_json,
                                                proto_msg_error_t *err);

/* Reads a reply from one frame body into *reply, every string copied into alloc (raw too) and
 * free of NUL bytes (a principal "admin\0x" must never become "admin" in a C string).
 * Unknown members are ignored (newer daemons may add some); known ones must have their types.
 * DECISION: verdict (one of the four names) and status (matching the verdict, see
 * proto_verdict_status_match) are required. ADMIN: "ok" (boolean) is required unless a verdict is
 * present, which is then checked as above; ok is 0 when absent.
 * Context values of any JSON type are kept as strings (pair.value) and as read (pair.json).
 * Returns PROTO_MSG_OK; PROTO_MSG_ERR_JSON, _NOT_OBJECT, _MISSING, _TYPE, _VALUE, _NO_MEMORY.
 * Whatever the failure, the caller must treat the reply as ERROR, never as ALLOW. */
proto_msg_status_e proto_msg_reply_decode(const char *text, size_t len, proto_reply_kind_e kind,
                                          const proto_alloc_t *alloc, proto_reply_t *reply,
                                          proto_msg_error_t *err);

#endif
