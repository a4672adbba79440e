/* Fuzzes libjwtauthz's reply decoder through its public sans-I/O API, as the web-server modules
 * drive it: daemon bytes fed in pieces (the first input byte picks decision or admin replies and
 * the piece size), replies taken out until NEED_MORE. What a module sees must fail closed: every
 * reply's status goes with its verdict, every failure is ERROR 500/503, and each accessor's
 * strings are whole C strings. */
#include <string.h>

#include "client/lib/jwtauthz.h"
#include "fuzz/fuzz.h"

static void cstr_check(const char *s)
{
    if (s != NULL) {
        fuzz_touch(s, strlen(s) + 1);
    }
}

static void reply_check(const jwtauthz_reply_t *r, int rc, int admin)
{
    jwtauthz_verdict_t v = jwtauthz_reply_verdict(r);
    int status = jwtauthz_reply_status(r);
    size_t len = 0, n;
    const char *json;

    FUZZ_CHECK(r != NULL);
    switch (v) {
    case JWTAUTHZ_ALLOW:
        FUZZ_CHECK(status == 200);
        break;
    case JWTAUTHZ_DENY:
        FUZZ_CHECK(status == 403);
        break;
    case JWTAUTHZ_UNAUTHORIZED:
        FUZZ_CHECK(status == 401);
        break;
    case JWTAUTHZ_ERROR:
        /* An admin reply without a verdict carries no status. */
        FUZZ_CHECK(status == 500 || status == 503 || (admin && rc == JWTAUTHZ_OK && status == 0));
        break;
    default:
        FUZZ_FAIL("verdict out of range");
    }
    if (rc != JWTAUTHZ_OK) {
        FUZZ_CHECK(v == JWTAUTHZ_ERROR);
    }
    cstr_check(jwtauthz_reply_principal(r));
    cstr_check(jwtauthz_reply_reason(r));
    cstr_check(jwtauthz_reply_message(r));
    cstr_check(jwtauthz_reply_id(r));
    cstr_check(jwtauthz_reply_error(r));
    (void)jwtauthz_reply_cached(r);
    FUZZ_CHECK(jwtauthz_reply_ttl(r) >= -1);
    (void)jwtauthz_reply_ok(r);
    json = jwtauthz_reply_json(r, &len);
    FUZZ_CHECK(json != NULL);
    fuzz_touch(json, len);
    n = jwtauthz_reply_context_count(r);
    for (size_t i = 0; i < n; i++) {
        const char *key = NULL, *value = NULL;
        FUZZ_CHECK(jwtauthz_reply_context_at(r, i, &key, &value) == 1);
        FUZZ_CHECK(key != NULL && value != NULL);
        cstr_check(key);
        cstr_check(value);
        FUZZ_CHECK(jwtauthz_reply_context_get(r, key) != NULL);
    }
    FUZZ_CHECK(jwtauthz_reply_context_at(r, n, NULL, NULL) == 0);
    /* Matching a pipelined reply to its request: an ALLOW needs the request's id echoed. */
    if (jwtauthz_reply_answers(r, "1") && v == JWTAUTHZ_ALLOW) {
        FUZZ_CHECK(jwtauthz_reply_id(r) != NULL && strcmp(jwtauthz_reply_id(r), "1") == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jwtauthz_decoder_t *dec;
    int admin, rc = JWTAUTHZ_OK;
    size_t piece, fed = 0;

    if (size < 1) {
        return 0;
    }
    admin = data[0] & 1;
    piece = (size_t)(data[0] >> 1) + 1; /* 1..128 bytes per read */
    data++;
    size--;
    dec = jwtauthz_decoder_new(admin);
    FUZZ_CHECK(dec != NULL);
    while (fed < size && rc != JWTAUTHZ_E_BAD_REPLY) {
        size_t n = size - fed < piece ? size - fed : piece;
        rc = jwtauthz_decoder_feed(dec, data + fed, n);
        if (rc != JWTAUTHZ_OK) {
            /* Only a stream that outgrew the decoder is refused, and nothing was taken. */
            FUZZ_CHECK(rc == JWTAUTHZ_E_BAD_REPLY);
            break;
        }
        fed += n;
        for (;;) {
            jwtauthz_reply_t *reply = NULL;
            size_t before = jwtauthz_decoder_pending(dec);
            rc = jwtauthz_decoder_next(dec, &reply);
            if (rc == JWTAUTHZ_NEED_MORE) {
                FUZZ_CHECK(reply == NULL);
                FUZZ_CHECK(jwtauthz_decoder_pending(dec) == before);
                break;
            }
            FUZZ_CHECK(rc == JWTAUTHZ_OK || rc == JWTAUTHZ_E_BAD_REPLY || rc == JWTAUTHZ_E_NOMEM);
            FUZZ_CHECK(jwtauthz_decoder_pending(dec) < before);
            reply_check(reply, rc, admin);
            jwtauthz_reply_free(reply);
            if (rc == JWTAUTHZ_E_BAD_REPLY) {
                break; /* the stream is lost: a module closes the connection here */
            }
        }
    }
    jwtauthz_decoder_reset(dec);
    FUZZ_CHECK(jwtauthz_decoder_pending(dec) == 0);
    jwtauthz_decoder_free(dec);
    return 0;
}
