/* The decisions behind an issuer's key set (see jwks_policy.h): pure arithmetic on times the
 * caller passes in, and key comparison. No I/O, no locks, no allocation, no clock: whatever is
 * decided here can be replayed by a scenario file. */
#include "daemon/jwks_policy.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "proto/str.h"

/* Floor for any wait: a zero or negative setting must not make the fetcher spin. */
#define JWKS_POLICY_MIN_WAIT_S 1

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    /* hi < lo (min_refresh above refresh) resolves to lo: never fetch more often than asked. */
    if (v > hi) {
        v = hi;
    }
    if (v < lo) {
        v = lo;
    }
    return v;
}

static int64_t sat_add(int64_t t, int64_t d)
{
    if (t == JWKS_NEVER) {
        return JWKS_NEVER;
    }
    if (d > 0 && t > INT64_MAX - d) {
        return INT64_MAX;
    }
    return t + d;
}

void jwks_policy_state_init(jwks_policy_state_t *st, int64_t now)
{
    st->confirmed_at = JWKS_NEVER;
    st->last_attempt_at = JWKS_NEVER;
    st->next_refresh_at = now;
    st->failures = 0;
    st->queued = 1;
    st->in_flight = 0;
}

/* --- Cache-Control and Age (RFC 9111) ------------------------------------------------------- */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int name_is(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (len != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(s[i]) != lit[i]) {
            return 0;
        }
    }
    return 1;
}

/* RFC 9111 §1.2.2 delta-seconds = 1*DIGIT; too large saturates at 2^31. Returns -1 when the text
 * is not delta-seconds. */
static int64_t read_delta_seconds(const char *s, size_t len)
{
    int64_t v = 0;
    if (len == 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        if (v < JWKS_DELTA_SECONDS_MAX) {
            v = v * 10 + (s[i] - '0');
        }
    }
    return v > JWKS_DELTA_SECONDS_MAX ? JWKS_DELTA_SECONDS_MAX : v;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_ows(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_ows((*s)[*len - 1])) {
        (*len)--;
    }
}

static void read_directive(jwks_freshness_t *f, const char *d, size_t len)
{
    const char *eq = memchr(d, '=', len);
    size_t name_len = eq ? (size_t)(eq - d) : len;
    const char *arg = eq ? eq + 1 : NULL;
    size_t arg_len = eq ? len - name_len - 1 : 0;
    trim(&d, &name_len);
    if (name_is(d, name_len, "no-cache") || name_is(d, name_len, "no-store")) {
        /* The IdP asks not to reuse the document: fetch again as soon as min_refresh allows. A
         * no-cache with a field-name list still means revalidate, so it reads the same. */
        f->has_max_age = 1;
        f->max_age_s = 0;
        return;
    }
    if (!name_is(d, name_len, "max-age") || arg == NULL) {
        return;
    }
    trim(&arg, &arg_len);
    /* §5.2: senders use the token form; a recipient should accept the quoted one too. */
    if (arg_len >= 2 && arg[0] == '"' && arg[arg_len - 1] == '"') {
        arg++;
        arg_len -= 2;
    }
    int64_t v = read_delta_seconds(arg, arg_len);
    if (v >= 0 && !f->has_max_age) {
        f->has_max_age = 1;
        f->max_age_s = v;
    }
}

void jwks_policy_read_cache_control(jwks_freshness_t *f, const char *value, size_t len)
{
    /* Directives are comma-separated (§5.2); a quoted argument with a comma inside is not one a
     * JWKS server sends, and at worst splits into a directive we ignore. */
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || value[i] == ',') {
            read_directive(f, value + start, i - start);
            start = i + 1;
        }
    }
}

void jwks_policy_read_age(jwks_freshness_t *f, const char *value, size_t len)
{
    trim(&value, &len);
    int64_t v = read_delta_seconds(value, len);
    if (v >= 0) {
        f->age_s = v;
    }
}

int64_t jwks_policy_refresh_interval(const jwks_policy_params_t *p, const jwks_freshness_t *f)
{
    int64_t lo =
        p->min_refresh_s > JWKS_POLICY_MIN_WAIT_S ? p->min_refresh_s : JWKS_POLICY_MIN_WAIT_S;
    if (f == NULL || !f->has_max_age) {
        return clamp64(p->refresh_s, lo, p->refresh_s);
    }
    /* RFC 9111 §4.2.3: what is left of the freshness lifetime is max-age minus the Age a cache
     * on the way already spent. */
    int64_t left = f->max_age_s - (f->age_s > 0 ? f->age_s : 0);
    return clamp64(left, lo, p->refresh_s);
}

int64_t jwks_policy_retry_delay(const jwks_policy_params_t *p, unsigned failures)
{
    int64_t lo =
        p->min_refresh_s > JWKS_POLICY_MIN_WAIT_S ? p->min_refresh_s : JWKS_POLICY_MIN_WAIT_S;
    int64_t hi = p->refresh_s > lo ? p->refresh_s : lo;
    int64_t d = lo;
    for (unsigned i = 1; i < failures && d < hi; i++) {
        d *= 2;
    }
    return d > hi ? hi : d;
}

int jwks_policy_etag_is_valid(const char *value, size_t len, size_t max_len)
{
    size_t i = 0;
    if (value == NULL || len >= max_len) {
        return 0;
    }
    if (len >= 2 && value[0] == 'W' && value[1] == '/') {
        i = 2;
    }
    if (len - i < 2 || value[i] != '"' || value[len - 1] != '"') {
        return 0;
    }
    for (i++; i < len - 1; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x21 || c == '"' || c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* --- the schedule --------------------------------------------------------------------------- */

int jwks_policy_fetch_due(const jwks_policy_params_t *p, const jwks_policy_state_t *st, int64_t now)
{
    if (st->in_flight) {
        return 0;
    }
    if (st->queued || now >= st->next_refresh_at) {
        return 1;
    }
    /* A clock stepped back by more than an interval would otherwise postpone fetches for as long
     * as it stepped. */
    return st->next_refresh_at - now > p->refresh_s + p->min_refresh_s;
}

void jwks_policy_fetch_begin(jwks_policy_state_t *st, int64_t now)
{
    st->queued = 0;
    st->in_flight = 1;
    st->last_attempt_at = now;
}

void jwks_policy_fetch_succeeded(const jwks_policy_params_t *p, jwks_policy_state_t *st,
                                 int64_t now, const jwks_freshness_t *f)
{
    st->in_flight = 0;
    st->failures = 0;
    st->confirmed_at = now;
    st->next_refresh_at = sat_add(now, jwks_policy_refresh_interval(p, f));
}

void jwks_policy_fetch_failed(const jwks_policy_params_t *p, jwks_policy_state_t *st, int64_t now)
{
    st->in_flight = 0;
    if (st->failures < UINT32_MAX) {
        st->failures++;
    }
    st->next_refresh_at = sat_add(now, jwks_policy_retry_delay(p, st->failures));
}

int jwks_policy_may_refetch(const jwks_policy_params_t *p, const jwks_policy_state_t *st,
                            int64_t now)
{
    if (st->in_flight || st->queued) {
        return 0;
    }
    if (st->last_attempt_at == JWKS_NEVER || now < st->last_attempt_at) {
        return 1;
    }
    return now - st->last_attempt_at >= p->min_refresh_s;
}

int64_t jwks_policy_stale_at(const jwks_policy_params_t *p, const jwks_policy_state_t *st)
{
    if (st->confirmed_at == JWKS_NEVER) {
        return JWKS_NO_DEADLINE;
    }
    return sat_add(sat_add(st->confirmed_at, p->max_stale_s), 1);
}

int jwks_policy_is_stale(const jwks_policy_params_t *p, const jwks_policy_state_t *st, int64_t now)
{
    if (st->confirmed_at == JWKS_NEVER) {
        return 1;
    }
    return now >= jwks_policy_stale_at(p, st);
}

int jwks_policy_rediscover(const jwks_policy_params_t *p, const jwks_policy_state_t *st,
                           int64_t discovered_at, int64_t now)
{
    if (discovered_at == JWKS_NEVER || st->failures > 0 || now < discovered_at) {
        return 1;
    }
    return now - discovered_at >= p->refresh_s;
}

/* --- key comparison -------------------------------------------------------------------------- */

int jwks_policy_same_key(const jose_jwk_t *a, const jose_jwk_t *b)
{
    if (a->has_kid != b->has_kid || !proto_str_eq(a->kid, b->kid) || a->kty != b->kty) {
        return 0;
    }
    if (a->pkey != NULL || b->pkey != NULL) {
        /* EVP_PKEY_eq compares the public parts (and parameters) only: 1 means equal; 0, -1 and
         * -2 (different, or cannot tell) all count as a different key. */
        return a->pkey != NULL && b->pkey != NULL && EVP_PKEY_eq(a->pkey, b->pkey) == 1;
    }
    return a->secret != NULL && b->secret != NULL && a->secret_len == b->secret_len &&
           CRYPTO_memcmp(a->secret, b->secret, a->secret_len) == 0;
}

int jwks_policy_drops_key(const jose_jwks_t *old_set, const jose_jwks_t *new_set)
{
    if (old_set == NULL) {
        return 0;
    }
    for (size_t i = 0; i < old_set->nkeys; i++) {
        int kept = 0;
        for (size_t j = 0; new_set != NULL && j < new_set->nkeys && !kept; j++) {
            kept = jwks_policy_same_key(old_set->keys[i], new_set->keys[j]);
        }
        if (!kept) {
            return 1;
        }
    }
    return 0;
}
