/* The JWS algorithm table (RFC 7518 §3.1, RFC 8037 §3.1): names, and the key type and curve each
 * one needs. Pure lookups over constant data; no crypto and no allocation here. Names are matched
 * byte for byte: "rs256" is not RS256 (RFC 7515 §4.1.1). */
#include "jose/alg.h"

#include <stddef.h>

typedef struct alg_entry {
    const char *name;
    jose_kty_e kty;
    jose_crv_e crv;
} alg_entry_t;

static const alg_entry_t alg_table[JOSE_ALG_COUNT] = {
    [JOSE_ALG_UNKNOWN] = {"unknown", JOSE_KTY_UNKNOWN, JOSE_CRV_NONE},
    [JOSE_ALG_HS256] = {"HS256", JOSE_KTY_OCT, JOSE_CRV_NONE},
    [JOSE_ALG_HS384] = {"HS384", JOSE_KTY_OCT, JOSE_CRV_NONE},
    [JOSE_ALG_HS512] = {"HS512", JOSE_KTY_OCT, JOSE_CRV_NONE},
    [JOSE_ALG_RS256] = {"RS256", JOSE_KTY_RSA, JOSE_CRV_NONE},
    [JOSE_ALG_RS384] = {"RS384", JOSE_KTY_RSA, JOSE_CRV_NONE},
    [JOSE_ALG_RS512] = {"RS512", JOSE_KTY_RSA, JOSE_CRV_NONE},
    [JOSE_ALG_PS256] = {"PS256", JOSE_KTY_RSA, JOSE_CRV_NONE},
    [JOSE_ALG_PS384] = {"PS384", JOSE_KTY_RSA, JOSE_CRV_NONE},
    [JOSE_ALG_PS512] = {"PS512", JOSE_KTY_RSA, JOSE_CRV_NONE},
    [JOSE_ALG_ES256] = {"ES256", JOSE_KTY_EC, JOSE_CRV_P256},
    [JOSE_ALG_ES384] = {"ES384", JOSE_KTY_EC, JOSE_CRV_P384},
    [JOSE_ALG_ES512] = {"ES512", JOSE_KTY_EC, JOSE_CRV_P521},
    /* RFC 8037 §3.1: "EdDSA" names the family; the key's "crv" picks the curve. Only Ed25519 is
     * supported, so EdDSA means Ed25519 here. */
    [JOSE_ALG_EDDSA] = {"EdDSA", JOSE_KTY_OKP, JOSE_CRV_ED25519},
};

jose_alg_e jose_alg_from_name(proto_str_t name)
{
    for (int a = JOSE_ALG_UNKNOWN + 1; a < JOSE_ALG_COUNT; a++) {
        if (proto_str_eq_cstr(name, alg_table[a].name)) {
            return (jose_alg_e)a;
        }
    }
    return JOSE_ALG_UNKNOWN;
}

const char *jose_alg_name(jose_alg_e alg)
{
    if ((int)alg <= JOSE_ALG_UNKNOWN || (int)alg >= JOSE_ALG_COUNT) {
        return alg_table[JOSE_ALG_UNKNOWN].name;
    }
    return alg_table[alg].name;
}

jose_kty_e jose_alg_kty(jose_alg_e alg)
{
    if ((int)alg <= JOSE_ALG_UNKNOWN || (int)alg >= JOSE_ALG_COUNT) {
        return JOSE_KTY_UNKNOWN;
    }
    return alg_table[alg].kty;
}

jose_crv_e jose_alg_crv(jose_alg_e alg)
{
    if ((int)alg <= JOSE_ALG_UNKNOWN || (int)alg >= JOSE_ALG_COUNT) {
        return JOSE_CRV_NONE;
    }
    return alg_table[alg].crv;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

int jose_alg_is_none(proto_str_t name)
{
    /* RFC 8725 §3.1 / CVE-2015-9235: libraries that compared "none" case-sensitively let "None"
     * and "NONE" through; every spelling is refused by name, before any lookup. */
    static const char none[] = "none";
    if (name.len != sizeof(none) - 1) {
        return 0;
    }
    for (size_t i = 0; i < name.len; i++) {
        if (ascii_lower(name.ptr[i]) != none[i]) {
            return 0;
        }
    }
    return 1;
}

static int is_list_separator(char c)
{
    return c == ',' || c == ' ' || c == '\t';
}

int jose_alg_set_add(jose_alg_set_t *set, proto_str_t name)
{
    jose_alg_set_t add = 0;
    size_t i = 0;
    while (i < name.len) {
        if (is_list_separator(name.ptr[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < name.len && !is_list_separator(name.ptr[i])) {
            i++;
        }
        jose_alg_e a = jose_alg_from_name(proto_str_make(name.ptr + start, i - start));
        if (a == JOSE_ALG_UNKNOWN) {
            return 0;
        }
        add |= JOSE_ALG_BIT(a);
    }
    /* A list that names nothing is a mistake in a config, not "allow nothing". */
    if (add == 0) {
        return 0;
    }
    *set |= add;
    return 1;
}
