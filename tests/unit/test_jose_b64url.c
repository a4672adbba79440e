/* Strict base64url: RFC 4648 §10 vectors in the URL alphabet, and every way a lenient decoder
 * lets two encodings mean one byte string (padding, whitespace, the '+' '/' alphabet, non-zero
 * trailing bits) refused. The max_out bound is walked: limit accepted, limit + 1 refused. */
#include <apr_general.h>
#include <apr_pools.h>

#include "jose/b64url.h"
#include "harness.h"

static apr_pool_t *pool;

static int decodes_to(const char *in, const char *want)
{
    unsigned char *out = NULL;
    size_t len = 0;
    if (jose_b64url_decode(pool, proto_str_make(in, strlen(in)), 1024, &out, &len) != 0) {
        return 0;
    }
    return len == strlen(want) && memcmp(out, want, len) == 0 && out[len] == '\0';
}

static int refused(const char *in)
{
    unsigned char *out = NULL, buf[64];
    size_t len = 0;
    proto_str_t s = proto_str_make(in, strlen(in));
    return !jose_b64url_valid(s) && jose_b64url_decode(pool, s, 1024, &out, &len) == -1 &&
           jose_b64url_decode_into(s, buf, sizeof(buf)) == -1;
}

TEST(b64url_rfc4648_vectors_decode)
{
    CHECK(decodes_to("", ""));
    CHECK(decodes_to("Zg", "f"));
    CHECK(decodes_to("Zm8", "fo"));
    CHECK(decodes_to("Zm9v", "foo"));
    CHECK(decodes_to("Zm9vYg", "foob"));
    CHECK(decodes_to("Zm9vYmE", "fooba"));
    CHECK(decodes_to("Zm9vYmFy", "foobar"));
}

TEST(b64url_url_alphabet_decodes)
{
    unsigned char buf[4];
    /* 0xfb 0xff: 111110 111111 1111(00) -> '-' '_' '8' */
    CHECK(jose_b64url_decode_into(PROTO_STR_LIT("-_8"), buf, sizeof(buf)) == 2);
    CHECK(buf[0] == 0xfb && buf[1] == 0xff);
}

TEST(b64url_empty_string_valid)
{
    unsigned char *out = NULL;
    size_t len = 99;
    CHECK(jose_b64url_valid(PROTO_STR_LIT("")));
    CHECK(jose_b64url_decode(pool, PROTO_STR_LIT(""), 0, &out, &len) == 0);
    CHECK(len == 0 && out != NULL && out[0] == '\0');
}

TEST(b64url_noncanonical_trailing_bits_refused)
{
    /* "QQ" is "A"; "QR" differs only in bits past the last byte: the same bytes, a second
     * spelling, so a signature could be changed without changing what it decodes to. */
    CHECK(decodes_to("QQ", "A"));
    CHECK(refused("QR"));
    CHECK(refused("QX"));
    CHECK(decodes_to("QUE", "AA"));
    CHECK(refused("QUF"));
    CHECK(refused("Zm9vYmF"));
}

TEST(b64url_padding_refused)
{
    CHECK(refused("Zg=="));
    CHECK(refused("Zm8="));
    CHECK(refused("Zm9v===="));
    CHECK(refused("="));
}

TEST(b64url_whitespace_and_newline_refused)
{
    CHECK(refused("Zm9v Zg"));
    CHECK(refused("Zm9v\nZg"));
    CHECK(refused("Zm9v\r\n"));
    CHECK(refused(" Zm9v"));
    CHECK(refused("Zm9v\t"));
}

TEST(b64url_standard_alphabet_refused)
{
    CHECK(refused("+_8"));
    CHECK(refused("-/8"));
    CHECK(refused("ab+/"));
}

TEST(b64url_other_bytes_refused)
{
    CHECK(refused("Zm9v.Zg"));
    CHECK(refused("Zm9\x80"));
    unsigned char buf[8];
    CHECK(jose_b64url_decode_into(proto_str_make("Zm\0v", 4), buf, sizeof(buf)) == -1);
}

TEST(b64url_len_mod4_1_refused)
{
    CHECK(refused("Z"));
    CHECK(refused("Zm9vY"));
    CHECK(refused("Zm9vYmFyZ"));
}

TEST(b64url_max_out_limit_accepted_limit_plus_one_refused)
{
    unsigned char *out = NULL;
    size_t len = 0;
    /* "Zm9vYmFy" is 6 bytes. */
    CHECK(jose_b64url_decode(pool, PROTO_STR_LIT("Zm9vYmFy"), 6, &out, &len) == 0 && len == 6);
    CHECK(jose_b64url_decode(pool, PROTO_STR_LIT("Zm9vYmFy"), 5, &out, &len) == -1);
    /* "Zm9vYmE" is 5 bytes: the bound applies to partial groups too. */
    CHECK(jose_b64url_decode(pool, PROTO_STR_LIT("Zm9vYmE"), 5, &out, &len) == 0 && len == 5);
    CHECK(jose_b64url_decode(pool, PROTO_STR_LIT("Zm9vYmE"), 4, &out, &len) == -1);
    unsigned char buf[8];
    memset(buf, 0xAA, sizeof(buf));
    CHECK(jose_b64url_decode_into(PROTO_STR_LIT("Zm9vYmE"), buf, 5) == 5);
    CHECK(buf[5] == 0xAA); /* nothing written past the decoded length */
    CHECK(jose_b64url_decode_into(PROTO_STR_LIT("Zm9vYmE"), buf, 4) == -1);
}

TEST(b64url_decoded_len_matches)
{
    CHECK(jose_b64url_decoded_len(0) == 0);
    CHECK(jose_b64url_decoded_len(2) == 1);
    CHECK(jose_b64url_decoded_len(3) == 2);
    CHECK(jose_b64url_decoded_len(4) == 3);
    CHECK(jose_b64url_decoded_len(342) == 256); /* an RS256 signature */
}

TEST(b64url_encode_round_trip)
{
    unsigned char data[3000];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (unsigned char)(i * 37 + 11);
    }
    /* Every length mod 3, and lengths that cross the encoder's and decoder's chunk sizes. */
    static const size_t lens[] = {0, 1, 2, 3, 4, 5, 767, 768, 769, 1024, 2047, 3000};
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        size_t n = lens[k], enc_len = 0, dec_len = 0;
        char *enc = jose_b64url_encode(pool, data, n, &enc_len);
        CHECK_MSG(enc != NULL && enc_len == strlen(enc), "len %zu", n);
        if (enc == NULL) {
            continue;
        }
        CHECK_MSG(strchr(enc, '=') == NULL && strchr(enc, '+') == NULL && strchr(enc, '/') == NULL,
                  "len %zu", n);
        CHECK(enc_len == (n * 4 + 2) / 3);
        unsigned char *dec = NULL;
        CHECK(jose_b64url_decode(pool, proto_str_make(enc, enc_len), n, &dec, &dec_len) == 0);
        CHECK_MSG(dec_len == n && (n == 0 || memcmp(dec, data, n) == 0), "len %zu", n);
    }
    size_t l = 0;
    CHECK_STREQ(jose_b64url_encode(pool, (const unsigned char *)"\xfb\xff", 2, &l), "-_8");
    CHECK_STREQ(jose_b64url_encode(pool, (const unsigned char *)"foobar", 6, &l), "Zm9vYmFy");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    RUN(b64url_rfc4648_vectors_decode);
    RUN(b64url_url_alphabet_decodes);
    RUN(b64url_empty_string_valid);
    RUN(b64url_noncanonical_trailing_bits_refused);
    RUN(b64url_padding_refused);
    RUN(b64url_whitespace_and_newline_refused);
    RUN(b64url_standard_alphabet_refused);
    RUN(b64url_other_bytes_refused);
    RUN(b64url_len_mod4_1_refused);
    RUN(b64url_max_out_limit_accepted_limit_plus_one_refused);
    RUN(b64url_decoded_len_matches);
    RUN(b64url_encode_round_trip);
    apr_pool_destroy(pool);
    apr_terminate();
    return harness_report();
}
