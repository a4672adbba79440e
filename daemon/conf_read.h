/* Inside conf_load(): the load context, error and warning recording with the line a value sits on,
 * and readers for the value kinds a config holds (integers in a range, booleans, strings without
 * NUL, absolute paths, https URLs, lists of strings), each naming key and value when it refuses.
 * Only conf*.c include this; nothing here knows which keys exist. */
#ifndef JWTAUTHZ_DAEMON_CONF_READ_H
#define JWTAUTHZ_DAEMON_CONF_READ_H

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>

#include "daemon/conf.h"
#include "proto/json.h"
#include "proto/str.h"

/* Values longer than this are quoted up to here and "..." in messages. */
#define CONF_QUOTE_MAX_BYTES 80u

typedef struct conf_ctx {
    apr_pool_t *pool;    /* the generation pool: what the config keeps */
    apr_pool_t *scratch; /* the parse tree, file text and message names: gone when the load ends */
    const char *path;
    const char *text; /* the file, for offset -> line */
    size_t len;
    size_t *line_starts; /* offsets just past each newline, made on first use by conf_line() */
    size_t nline_starts;
    int line_index_made;
    conf_errors_t *errs;
} conf_ctx_t;

/* Results of the member readers. */
#define CONF_ABSENT 0 /* no such member: *out untouched (the caller set the default) */
#define CONF_SET 1    /* present and valid: *out set */
#define CONF_BAD (-1) /* present and refused: an error was recorded, *out untouched */

/* String flags. */
#define CONF_STR_NONEMPTY 0x1u       /* "" refused */
#define CONF_STR_EMPTY_IS_UNSET 0x2u /* "" reads as absent-by-choice: *out stays NULL/empty */

/* The 1-based line of v in the file (1 when v is NULL), as proto_json_line_of() counts it. */
unsigned conf_line(conf_ctx_t *c, const proto_json_t *v);

/* Records "FILE: message" as an error: for what has no line (the file cannot be read). */
void conf_error_file(conf_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records "FILE:LINE: message" (LINE of at) as an error, or as a warning ("warning: " added).
 * Past the caps they are counted only. */
void conf_error(conf_ctx_t *c, const proto_json_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conf_warning(conf_ctx_t *c, const proto_json_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As conf_error, for a line known without a value (one reported by another module). */
void conf_error_line(conf_ctx_t *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* printf (libc's, %zu and all) into scratch. */
const char *conf_sprintf(conf_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s quoted for a message: "..." with \" \\ and control bytes escaped, cut at CONF_QUOTE_MAX_BYTES
 * on a UTF-8 boundary. Lives in scratch. */
const char *conf_quote(conf_ctx_t *c, proto_str_t s);
/* A JSON value as a message names it: the string "x", the number 1e3, true, null, an array... */
const char *conf_describe(conf_ctx_t *c, const proto_json_t *v);
/* "where.key", or "key" at the top level (where NULL). Lives in scratch. */
const char *conf_name(conf_ctx_t *c, const char *where, const char *key);

/* Records an error for every member of obj whose name is not in known (NULL-terminated), with a
 * "did you mean" when one known name is close. where names obj ("issuers[0]"), NULL at the top.
 * Returns the number of unknown members. */
size_t conf_keys_check(conf_ctx_t *c, const proto_json_t *obj, const char *where,
                       const char *const *known);

/* Value readers: name is what messages call the value ("issuers[0].leeway"). Each returns CONF_SET
 * or CONF_BAD (error recorded). */
int conf_value_uint(conf_ctx_t *c, const proto_json_t *v, const char *name, uint64_t min,
                    uint64_t max, uint64_t *out);
int conf_value_string(conf_ctx_t *c, const proto_json_t *v, const char *name, unsigned flags,
                      proto_str_t *out);

/* Member readers: look key up in obj (where names obj, NULL at the top) and read it as above.
 * Return CONF_ABSENT, CONF_SET or CONF_BAD. */
int conf_member_unsigned(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                         unsigned min, unsigned max, unsigned *out);
int conf_member_size(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                     size_t min, size_t max, size_t *out);
int conf_member_bool(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                     int *out);
/* A string copied into the generation pool, NUL-terminated, never holding a NUL. */
int conf_member_string(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                       unsigned flags, proto_str_t *out);
/* An absolute path (no NUL, no more than PATH_MAX - 1 bytes). With CONF_STR_EMPTY_IS_UNSET, ""
 * sets *out to NULL and returns CONF_SET. */
int conf_member_path(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                     unsigned flags, const char **out);
/* An array of strings, each non-empty and without NUL, at most max of them. An empty array is
 * CONF_SET with *n = 0. */
int conf_member_strings(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                        size_t max, proto_str_t **out, size_t *n);

/* Returns NULL when s is an https URL with a host, no credentials, no whitespace or control
 * bytes, at most CONF_MAX_URL_BYTES; else why not (a phrase for a message). */
const char *conf_https_url_problem(conf_ctx_t *c, proto_str_t s);

/* The sections with files of their own; each records its errors and returns nothing. */
/* "issuers" of root into conf->issuers (conf_issuer.c). */
void conf_issuers_parse(conf_ctx_t *c, const proto_json_t *root, conf_t *conf);
/* "rules" of root into *rules (conf_rules.c). */
void conf_rules_parse(conf_ctx_t *c, const proto_json_t *root, policy_rules_t *rules);

#endif
