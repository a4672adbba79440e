/* Every bound on bytes that come from outside (a socket, a token, a key set, a config file), in
 * one place so a reviewer reads them together and tests walk each one (limit accepted, limit + 1
 * refused). Each has a one-line why. Nothing here allocates; the code that reads checks these
 * before it reserves memory. */
#ifndef JWTAUTHZ_PROTO_LIMITS_H
#define JWTAUTHZ_PROTO_LIMITS_H

/* --- wire protocol -------------------------------------------------------------------------- */
/* Frame header: 4-byte big-endian length (CONTRACT "Wire protocol"). */
#define PROTO_FRAME_HEADER_BYTES 4
/* Default frame cap: a 16 KiB token plus headers of a REQUEST event fits with room to spare. */
#define PROTO_MAX_FRAME_BYTES_DEFAULT 65536u
/* No config may raise the cap past this: a frame is read whole into memory per connection. */
#define PROTO_MAX_FRAME_BYTES_CEILING (1024u * 1024u)
/* Replies carry a policy and context; bounded so a client's reply buffer is fixed up front. */
#define PROTO_MAX_REPLY_BYTES (256u * 1024u)

/* --- tokens (RFC 7519 / RFC 7515 compact) ----------------------------------------------------- */
/* Default token cap: real access tokens are 1-4 KiB; 16 KiB covers fat group claims. */
#define JOSE_MAX_TOKEN_BYTES_DEFAULT 16384u
/* No config may raise the token cap past this (it must also fit in a frame). */
#define JOSE_MAX_TOKEN_BYTES_CEILING (256u * 1024u)
/* Longest Authorization value a client sends: the largest token any config accepts plus scheme
 * and spaces; longer is UNAUTHORIZED token_too_large without a round trip to the daemon. */
#define PROTO_MAX_AUTHORIZATION_BYTES (JOSE_MAX_TOKEN_BYTES_CEILING + 64u)
/* A protected header is a handful of members; 8 KiB decoded is generous. */
#define JOSE_MAX_HEADER_BYTES 8192u
/* Compact JWS has exactly three parts (RFC 7515 §7.1); JWE's five are refused. */
#define JOSE_COMPACT_PARTS 3
/* Largest signature: RSA-8192 is 1024 bytes; ES512 is 132. */
#define JOSE_MAX_SIGNATURE_BYTES 1024u

/* --- JSON (tokens, key sets, frames, config) ---------------------------------------------------
 */
/* Legitimate documents here nest at most 5 deep; 32 leaves room and stops stack games. */
#define JSON_MAX_DEPTH 32u
/* Values in one document: caps the work and memory a hostile document can cost. */
#define JSON_MAX_NODES 20000u
/* A member name longer than this is not a claim, key parameter or config key anyone uses. */
#define JSON_MAX_KEY_BYTES 1024u

/* --- keys (RFC 7517) -----------------------------------------------------------------------------
 */
/* A key set document: big IdPs publish ~10 keys (~20 KiB with x5c); 1 MiB is ample. */
#define JWKS_MAX_BYTES (1024u * 1024u)
/* Keys kept per set: every kid-less token may try each one, so this bounds per-token work. */
#define JWKS_MAX_KEYS 64u
/* RFC 7518 §3.3 requires 2048 bits; below is refused as too weak. */
#define JWK_RSA_MIN_BITS 2048
/* Above 8192 bits a verify costs ~10x RSA-4096: a cheap DoS lever for whoever serves keys. */
#define JWK_RSA_MAX_BITS 8192
/* RFC 7518 §3.2: an HS key must be at least as long as the hash output; 256 bytes is ample. */
#define JWK_OCT_MAX_BYTES 256u
/* A kid is a lookup string; anything longer is hostile. */
#define JWK_MAX_KID_BYTES 256u

/* --- discovery ---------------------------------------------------------------------------------
 */
/* An OpenID configuration document is a few KiB. */
#define DISCOVERY_MAX_BYTES (256u * 1024u)

/* --- config --------------------------------------------------------------------------------------
 */
/* A config file is a few KiB; a megabyte means something is wrong. */
#define CONF_MAX_BYTES (1024u * 1024u)

#endif
