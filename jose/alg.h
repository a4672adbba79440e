/* JWS algorithms (RFC 7518 §3, RFC 8037 §3.1) and the key types they need. Each key is bound to
 * exactly one family (RFC 8725 §3.1): an RSA key never verifies HS256, an EC key never RS256. */
#ifndef JWTAUTHZ_JOSE_ALG_H
#define JWTAUTHZ_JOSE_ALG_H

#include "proto/str.h"

typedef enum {
    JOSE_ALG_UNKNOWN = 0,
    JOSE_ALG_HS256,
    JOSE_ALG_HS384,
    JOSE_ALG_HS512,
    JOSE_ALG_RS256,
    JOSE_ALG_RS384,
    JOSE_ALG_RS512,
    JOSE_ALG_PS256,
    JOSE_ALG_PS384,
    JOSE_ALG_PS512,
    JOSE_ALG_ES256,
    JOSE_ALG_ES384,
    JOSE_ALG_ES512,
    JOSE_ALG_EDDSA,
    JOSE_ALG_COUNT
} jose_alg_e;

/* A set of algorithms, as a bit mask. */
typedef unsigned jose_alg_set_t;
#define JOSE_ALG_BIT(a) (1u << (unsigned)(a))
#define JOSE_ALG_SET_ALL (((1u << JOSE_ALG_COUNT) - 1u) & ~1u)

typedef enum {
    JOSE_KTY_UNKNOWN = 0,
    JOSE_KTY_RSA,
    JOSE_KTY_EC,
    JOSE_KTY_OKP,
    JOSE_KTY_OCT
} jose_kty_e;

typedef enum {
    JOSE_CRV_NONE = 0,
    JOSE_CRV_P256,
    JOSE_CRV_P384,
    JOSE_CRV_P521,
    JOSE_CRV_ED25519
} jose_crv_e;

/* Exact, case-sensitive name match (RFC 7515 §4.1.1: "alg" is case-sensitive).
 * Returns JOSE_ALG_UNKNOWN for "none" and for anything not listed above. */
jose_alg_e jose_alg_from_name(proto_str_t name);
/* "RS256" ...; "unknown" for JOSE_ALG_UNKNOWN. */
const char *jose_alg_name(jose_alg_e alg);
/* The key type an algorithm needs. */
jose_kty_e jose_alg_kty(jose_alg_e alg);
/* The curve an EC/OKP algorithm needs (ES256 -> P-256, EdDSA -> Ed25519), else JOSE_CRV_NONE. */
jose_crv_e jose_alg_crv(jose_alg_e alg);
/* Returns 1 when name is any spelling of "none" (case-insensitive): refused with alg_none. */
int jose_alg_is_none(proto_str_t name);
/* Parses a comma/space separated list or single name into a set; returns 0 on an unknown name. */
int jose_alg_set_add(jose_alg_set_t *set, proto_str_t name);

#endif
