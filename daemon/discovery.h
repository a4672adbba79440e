/* OpenID Connect Discovery 1.0 for a configured issuer: the URL of its configuration document,
 * and the checks on what comes back (its "issuer" equal to ours byte for byte, an https
 * "jwks_uri"). Pure: the fetch itself is jwks_fetch.c's. Key URLs come only from the config or
 * from the configured issuer's own document, never from a token. */
#ifndef JWTAUTHZ_DAEMON_DISCOVERY_H
#define JWTAUTHZ_DAEMON_DISCOVERY_H

#include <stddef.h>

#include <apr_pools.h>

#include "proto/str.h"

/* OpenID Connect Discovery 1.0 §4: the path appended to the issuer. */
#define DISCOVERY_WELL_KNOWN_PATH "/.well-known/openid-configuration"

/* Builds "{issuer less one trailing '/'}/.well-known/openid-configuration" (Discovery §4, which
 * says to remove a terminating '/' before appending) into out, NUL-terminated. Returns 0, or -1
 * when issuer is not an https URL (discovery_url_is_https) or the result does not fit outlen. */
int discovery_url_build(proto_str_t issuer, char *out, size_t outlen);

/* Returns 1 when url is one keys may be fetched from: "https://" (scheme case-insensitive,
 * RFC 3986 §3.1) then a non-empty host, no userinfo, no fragment, only printable ASCII (no
 * space, control byte or NUL), at most max_len bytes. 0 otherwise. */
int discovery_url_is_https(proto_str_t url, size_t max_len);

/* Reads the configuration document of issuer. On success returns APR_SUCCESS and writes its
 * jwks_uri, NUL-terminated, to jwks_uri (jwks_uri_len bytes including the NUL; longer ones are
 * refused). Returns APR_EINVAL with a message in err when the document is over
 * DISCOVERY_MAX_BYTES, is not a JSON object (strict: duplicates refused), has no string "issuer"
 * equal to issuer byte for byte (Discovery §4.3: anything else is an impersonation attempt), or no
 * string "jwks_uri" that passes discovery_url_is_https. Parse values go to scratch. */
apr_status_t discovery_read(apr_pool_t *scratch, const char *doc, size_t len, proto_str_t issuer,
                            char *jwks_uri, size_t jwks_uri_len, char *err, size_t errlen);

#endif
