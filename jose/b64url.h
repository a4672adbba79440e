/* Strict base64url (RFC 7515 §2, RFC 4648 §5): URL alphabet only, no padding, no whitespace,
 * and the unused low bits of the last character must be zero, so each byte string has exactly one
 * encoding. Neither APR's decoder nor EVP_DecodeBlock is strict; we validate here first and let
 * OpenSSL's decoder do the arithmetic. */
#ifndef JWTAUTHZ_JOSE_B64URL_H
#define JWTAUTHZ_JOSE_B64URL_H

#include <stddef.h>

#include <apr_pools.h>

#include "proto/str.h"

/* Bytes a decode of len characters yields (valid only once jose_b64url_valid() said yes). */
size_t jose_b64url_decoded_len(size_t len);

/* 1 when in is canonical base64url (the empty string is valid), else 0. */
int jose_b64url_valid(proto_str_t in);

/* Decodes into pool memory (NUL-terminated for convenience; *out_len is exact). Returns 0 on
 * success, -1 when the input is not canonical base64url or longer than max_out bytes decoded. */
int jose_b64url_decode(apr_pool_t *p, proto_str_t in, size_t max_out, unsigned char **out,
                       size_t *out_len);

/* Decodes into a caller buffer of at least jose_b64url_decoded_len(in.len) bytes. Returns the
 * decoded length, or -1 when not canonical. */
long jose_b64url_decode_into(proto_str_t in, unsigned char *out, size_t out_size);

/* Encodes without padding into pool memory (NUL-terminated). */
char *jose_b64url_encode(apr_pool_t *p, const unsigned char *in, size_t len, size_t *out_len);

#endif
