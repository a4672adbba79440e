/* daemon/log: one event is one line whatever its message holds (no forged lines, no terminal
 * escapes), lines from threads never interleave, the level filter, the journal and plain formats,
 * and log_token_id. fd 2 is redirected to a temp file while logging; checks run after it is put
 * back, so the harness's own messages go to the real stderr. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "harness.h"

static char capture_path[] = "/tmp/jwtauthz-test-log-XXXXXX";
static int capture_fd = -1, saved_stderr = -1;

/* From here to capture_end() log lines go to a fresh, empty temp file. */
static void capture_begin(void)
{
    fflush(stderr);
    if (ftruncate(capture_fd, 0) != 0 || lseek(capture_fd, 0, SEEK_SET) != 0)
        abort();
    saved_stderr = dup(STDERR_FILENO);
    dup2(capture_fd, STDERR_FILENO);
}

/* Puts stderr back and returns what was logged (static buffer, NUL-terminated). */
static const char *capture_end(size_t *len_out)
{
    static char buf[8u << 20]; /* the thread test writes ~3 MiB */
    ssize_t n;

    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    n = pread(capture_fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    if (len_out)
        *len_out = (size_t)n;
    return buf;
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        k += s[i] == c;
    return k;
}

TEST(log_newline_in_message_cannot_forge_a_line)
{
    size_t len;
    const char *out;

    log_set_level(LOGL_DEBUG);
    capture_begin();
    log_msg(LOGL_WARN, "unknown kid \"%s\"", "k1\n2025-01-01T00:00:00.000Z error forged\r\n<3>x");
    out = capture_end(&len);
    CHECK_MSG(count_char(out, len, '\n') == 1, "got: %s", out);
    CHECK(len > 0 && out[len - 1] == '\n');
    CHECK_MSG(strstr(out, "unknown kid \"k1\\n2025-01-01T00:00:00.000Z error forged\\r\\n<3>x\"") !=
                  NULL,
              "got: %s", out);
}

TEST(log_terminal_escape_and_c1_controls_are_escaped)
{
    size_t len;
    const char *out;

    capture_begin();
    /* ESC [2J clears a terminal; C2 85 is U+0085 NEL, a line break to some viewers; E2 80 A8 is
     * U+2028; FF is never UTF-8; C3 A9 (é) is ordinary text and stays. */
    static const char hostile[] = "a\x1b[2Jb\xc2\x85"
                                  "c\xe2\x80\xa8"
                                  "d\xff"
                                  "e\xc3\xa9\t\x7f";
    log_msg(LOGL_ERROR, "iss=%s", hostile);
    out = capture_end(&len);
    CHECK_MSG(strstr(out, "iss=a\\x1b[2Jb\\xc2\\x85c\\xe2\\x80\\xa8d\\xffe\xc3\xa9\\t\\x7f\n") !=
                  NULL,
              "got: %s", out);
    for (size_t i = 0; i + 1 < len; i++)
        CHECK((unsigned char)out[i] >= 0x20);
}

TEST(log_overlong_and_surrogate_utf8_are_escaped)
{
    const char *out;

    capture_begin();
    /* C0 AF: overlong '/'; ED A0 80: a UTF-16 surrogate; F4 90 80 80: past U+10FFFF; a truncated
     * 3-byte sequence at the end. */
    log_msg(LOGL_ERROR, "%s", "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82");
    out = capture_end(NULL);
    CHECK_MSG(strstr(out, "\\xc0\\xaf|\\xed\\xa0\\x80|\\xf4\\x90\\x80\\x80|\\xe2\\x82\n") != NULL,
              "got: %s", out);
}

TEST(log_long_message_is_cut_with_a_mark)
{
    static char big[3 * LOG_LINE_MAX_BYTES];
    size_t len;
    const char *out;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    capture_begin();
    log_msg(LOGL_ERROR, "%s", big);
    out = capture_end(&len);
    CHECK(len <= LOG_LINE_MAX_BYTES);
    CHECK(count_char(out, len, '\n') == 1);
    CHECK(len > 4 && memcmp(out + len - 4, "...\n", 4) == 0);
}

TEST(log_cut_never_splits_an_escape)
{
    static char nl[LOG_LINE_MAX_BYTES];
    size_t len;
    const char *out;

    /* Each newline grows to two bytes: the line fills up mid-message. */
    memset(nl, '\n', sizeof(nl) - 1);
    nl[sizeof(nl) - 1] = '\0';
    capture_begin();
    log_msg(LOGL_ERROR, "x%s", nl);
    out = capture_end(&len);
    CHECK(len <= LOG_LINE_MAX_BYTES);
    CHECK(count_char(out, len, '\n') == 1);
    CHECK(len > 6 && memcmp(out + len - 6, "\\n...\n", 6) == 0);
}

TEST(log_level_filter_drops_below_the_level)
{
    const char *out;

    log_set_level(LOGL_WARN);
    capture_begin();
    log_msg(LOGL_DEBUG, "d-line");
    log_msg(LOGL_INFO, "i-line");
    log_msg(LOGL_WARN, "w-line");
    log_msg(LOGL_ERROR, "e-line");
    out = capture_end(NULL);
    CHECK(strstr(out, "d-line") == NULL);
    CHECK(strstr(out, "i-line") == NULL);
    CHECK(strstr(out, "w-line") != NULL);
    CHECK(strstr(out, "e-line") != NULL);
    CHECK(log_get_level() == LOGL_WARN);
    CHECK(log_enabled(LOGL_WARN) && !log_enabled(LOGL_INFO));

    log_set_level(LOGL_ERROR);
    capture_begin();
    log_msg(LOGL_WARN, "w-line");
    out = capture_end(NULL);
    CHECK(out[0] == '\0');

    log_set_level(LOGL_DEBUG);
    capture_begin();
    log_msg(LOGL_DEBUG, "d-line");
    out = capture_end(NULL);
    CHECK(strstr(out, "d-line") != NULL);

    log_set_level((log_level_e)42); /* ignored */
    CHECK(log_get_level() == LOGL_DEBUG);
}

TEST(log_level_parse_takes_the_config_words_only)
{
    log_level_e l = LOGL_INFO;

    CHECK(log_level_parse("error", &l) == 0 && l == LOGL_ERROR);
    CHECK(log_level_parse("warn", &l) == 0 && l == LOGL_WARN);
    CHECK(log_level_parse("info", &l) == 0 && l == LOGL_INFO);
    CHECK(log_level_parse("debug", &l) == 0 && l == LOGL_DEBUG);
    l = LOGL_INFO;
    CHECK(log_level_parse("warning", &l) == -1 && l == LOGL_INFO);
    CHECK(log_level_parse("INFO", &l) == -1);
    CHECK(log_level_parse("", &l) == -1);
    CHECK(log_level_parse(NULL, &l) == -1);
    CHECK_STREQ(log_level_name(LOGL_WARN), "warn");
    CHECK_STREQ(log_level_name((log_level_e)9), "?");
}

TEST(log_plain_format_has_utc_timestamp_and_level_word)
{
    const char *out;
    int y, mo, d, h, mi, s, ms, n = 0;

    unsetenv("JOURNAL_STREAM");
    log_reopen();
    capture_begin();
    log_msg(LOGL_INFO, "hello");
    out = capture_end(NULL);
    CHECK_MSG(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ info hello\n%n", &y, &mo, &d, &h, &mi, &s,
                     &ms, &n) == 7 &&
                  n > 0 && out[n] == '\0',
              "got: %s", out);
    CHECK(strlen(out) == sizeof("2025-01-31T12:34:56.789Z info hello\n") - 1);
}

TEST(log_journal_format_has_level_prefix_and_no_timestamp)
{
    struct stat st;
    char env[64];
    const char *out;

    CHECK(fstat(capture_fd, &st) == 0);
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);
    capture_begin();
    log_reopen(); /* fd 2 is now the "journal" stream */
    log_msg(LOGL_ERROR, "e");
    log_msg(LOGL_WARN, "w");
    log_msg(LOGL_INFO, "i");
    log_msg(LOGL_DEBUG, "d");
    out = capture_end(NULL);
    CHECK_STREQ(out, "<3>e\n<4>w\n<6>i\n<7>d\n");

    /* Inherited variable, but fd 2 is elsewhere: plain format. */
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", env, 1);
    capture_begin();
    log_reopen();
    log_msg(LOGL_INFO, "i");
    out = capture_end(NULL);
    CHECK(out[0] != '<');

    setenv("JOURNAL_STREAM", "garbage", 1);
    capture_begin();
    log_reopen();
    log_msg(LOGL_INFO, "i");
    out = capture_end(NULL);
    CHECK(out[0] != '<');
    unsetenv("JOURNAL_STREAM");
    log_reopen();
}

TEST(log_msg_preserves_errno)
{
    capture_begin();
    errno = ENOSPC;
    log_msg(LOGL_ERROR, "x");
    CHECK(errno == ENOSPC);
    errno = EACCES;
    log_msg((log_level_e)(LOGL_DEBUG + 1), "filtered"); /* no such level: dropped */
    CHECK(errno == EACCES);
    capture_end(NULL);
}

#define THREADS 4
#define LINES_PER_THREAD 500
#define PAYLOAD_BYTES 1500

static void *log_thread(void *arg)
{
    char payload[PAYLOAD_BYTES + 1];
    int id = (int)(long)arg;

    memset(payload, 'A' + id, PAYLOAD_BYTES);
    payload[PAYLOAD_BYTES] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++)
        log_msg(LOGL_INFO, "t%d %d %s", id, i, payload);
    return NULL;
}

TEST(log_lines_from_threads_never_interleave)
{
    pthread_t th[THREADS];
    size_t len, lines = 0;
    const char *out, *p;
    int bad = 0;

    /* O_APPEND like the journal's stream or a shared log file; pipes get the same atomicity up to
     * PIPE_BUF, which LOG_LINE_MAX_BYTES does not exceed. */
    fcntl(capture_fd, F_SETFL, fcntl(capture_fd, F_GETFL) | O_APPEND);
    capture_begin();
    for (long i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, log_thread, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    out = capture_end(&len);

    /* Each line: prefix, "tN seq ", then PAYLOAD_BYTES copies of one letter, then '\n'. */
    for (p = out; p < out + len; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(out + len - p));
        const char *t = strstr(p, " info t");
        int id, seq, n = 0;

        if (nl == NULL || t == NULL || t > nl || sscanf(t, " info t%d %d %n", &id, &seq, &n) != 2 ||
            id < 0 || id >= THREADS || nl - (t + n) != PAYLOAD_BYTES) {
            bad++;
            break;
        }
        for (const char *c = t + n; c < nl; c++)
            bad += *c != 'A' + id;
        p = nl + 1;
    }
    CHECK_MSG(bad == 0, "%d malformed line(s)", bad);
    CHECK_MSG(lines == THREADS * LINES_PER_THREAD, "%zu lines", lines);
}

TEST(log_token_id_is_first_8_bytes_in_hex)
{
    unsigned char h[32];
    char id[17];

    for (int i = 0; i < 32; i++)
        h[i] = (unsigned char)(i * 17 + 0xa0);
    memset(id, 'z', sizeof(id));
    log_token_id(h, id);
    CHECK_STREQ(id, "a0b1c2d3e4f50617");
    CHECK(strlen(id) == 16);
}

int main(void)
{
    capture_fd = mkstemp(capture_path);
    if (capture_fd < 0) {
        perror("mkstemp");
        return 1;
    }
    unlink(capture_path);
    unsetenv("JOURNAL_STREAM");
    log_reopen();

    RUN(log_newline_in_message_cannot_forge_a_line);
    RUN(log_terminal_escape_and_c1_controls_are_escaped);
    RUN(log_overlong_and_surrogate_utf8_are_escaped);
    RUN(log_long_message_is_cut_with_a_mark);
    RUN(log_cut_never_splits_an_escape);
    RUN(log_level_filter_drops_below_the_level);
    RUN(log_level_parse_takes_the_config_words_only);
    RUN(log_plain_format_has_utc_timestamp_and_level_word);
    RUN(log_journal_format_has_level_prefix_and_no_timestamp);
    RUN(log_msg_preserves_errno);
    RUN(log_lines_from_threads_never_interleave);
    RUN(log_token_id_is_first_8_bytes_in_hex);
    close(capture_fd);
    return harness_report();
}
