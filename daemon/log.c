/* The daemon's log writer: formats into a stack buffer, escapes what could break a line or drive a
 * terminal, and hands the line to the kernel in one write(2). No allocation, no lock, no stdio:
 * it runs on every worker thread and before APR is up. It must never be given a token, only its
 * log_token_id(). */
#include "daemon/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* C11 atomics rather than apr_atomic_*: logging works before apr_initialize() and owns no pool. */
static _Atomic int log_level_now = LOGL_INFO;

/* Where fd 2 goes: not looked at yet, the journal, or elsewhere (a terminal, a file, a pipe). */
enum { LOG_SINK_UNKNOWN = -1, LOG_SINK_PLAIN = 0, LOG_SINK_JOURNAL = 1 };
static _Atomic int log_sink = LOG_SINK_UNKNOWN;

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

/* sd-daemon(3) prefixes: syslog priorities err(3), warning(4), info(6), debug(7). */
static const char *const log_journal_prefixes[] = {"<3>", "<4>", "<6>", "<7>"};

#define LOG_LEVEL_COUNT (sizeof(log_level_names) / sizeof(log_level_names[0]))

int log_level_parse(const char *name, log_level_e *out)
{
    if (name == NULL || out == NULL)
        return -1;
    for (size_t i = 0; i < LOG_LEVEL_COUNT; i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *out = (log_level_e)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(log_level_e level)
{
    if ((unsigned)level >= LOG_LEVEL_COUNT)
        return "?";
    return log_level_names[level];
}

void log_set_level(log_level_e level)
{
    if ((unsigned)level >= LOG_LEVEL_COUNT)
        return;
    atomic_store_explicit(&log_level_now, (int)level, memory_order_relaxed);
}

log_level_e log_get_level(void)
{
    return (log_level_e)atomic_load_explicit(&log_level_now, memory_order_relaxed);
}

int log_enabled(log_level_e level)
{
    return (unsigned)level < LOG_LEVEL_COUNT &&
           (int)level <= atomic_load_explicit(&log_level_now, memory_order_relaxed);
}

/* systemd.exec(5), $JOURNAL_STREAM: "DEV:INODE" of the stream the service manager connected to
 * stdout/stderr. A child whose fd 2 was redirected since inherits the variable, so the documented
 * check is that fd 2's st_dev and st_ino still match it. */
static int log_stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char *end;
    struct stat st;

    if (env == NULL || *env == '\0')
        return 0;
    errno = 0;
    dev = strtoull(env, &end, 10);
    if (errno != 0 || end == env || *end != ':')
        return 0;
    env = end + 1;
    ino = strtoull(env, &end, 10);
    if (errno != 0 || end == env || *end != '\0')
        return 0;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_reopen(void)
{
    int saved_errno = errno;
    atomic_store(&log_sink, log_stderr_is_journal() ? LOG_SINK_JOURNAL : LOG_SINK_PLAIN);
    errno = saved_errno;
}

/* Length of the UTF-8 sequence at s that may be copied as it is, or 0 when the byte at s must be
 * escaped: C0 controls and DEL (newline, carriage return, ESC), C1 controls (some terminals act
 * on them), U+2028/U+2029 (line breaks to some viewers), and anything that is not well-formed
 * UTF-8 per RFC 3629 §4 (overlongs, surrogates, past U+10FFFF, truncated sequences). */
static size_t log_copyable_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (b < 0x80)
        return (b < 0x20 || b == 0x7F) ? 0 : 1;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        lo = (b == 0xC2) ? 0xA0 : 0x80; /* C2 80..C2 9F are the C1 controls */
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    if (len == 3 && b == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
        return 0;
    return len;
}

/* The visible form of a byte that must not be written raw, into esc (5 bytes with the NUL). */
static size_t log_escape_byte(unsigned char b, char esc[5])
{
    static const char hex[] = "0123456789abcdef";

    switch (b) {
    case '\n':
        memcpy(esc, "\\n", 3);
        return 2;
    case '\r':
        memcpy(esc, "\\r", 3);
        return 2;
    case '\t':
        memcpy(esc, "\\t", 3);
        return 2;
    default:
        esc[0] = '\\';
        esc[1] = 'x';
        esc[2] = hex[b >> 4];
        esc[3] = hex[b & 0xF];
        esc[4] = '\0';
        return 4;
    }
}

/* Appends msg to line[*pos..room), escaping as log_copyable_utf8_len() says. Never splits an
 * escape or a character. Returns 1 when all of msg fit, 0 when it was cut. */
static int log_append_escaped(char *line, size_t *pos, size_t room, const char *msg, size_t len)
{
    const unsigned char *s = (const unsigned char *)msg;
    size_t i = 0;

    while (i < len) {
        size_t n = log_copyable_utf8_len(s + i, len - i);
        char esc[5];
        const char *piece = (const char *)s + i;
        size_t piece_len = n;

        if (n == 0) {
            piece = esc;
            piece_len = log_escape_byte(s[i], esc);
        }
        if (room - *pos < piece_len)
            return 0;
        memcpy(line + *pos, piece, piece_len);
        *pos += piece_len;
        i += n ? n : 1;
    }
    return 1;
}

/* The line's head: "<6>" for the journal (which stamps time itself), else
 * "2025-01-31T12:34:56.789Z info ". Returns its length. */
static size_t log_format_prefix(char *line, size_t cap, log_level_e level, int journal)
{
    struct timespec ts;
    struct tm tm;
    int n;

    if (journal) {
        n = snprintf(line, cap, "%s", log_journal_prefixes[level]);
    } else {
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, log_level_names[level]);
    }
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

/* One write(2) carries the line; a loop only for EINTR or a short write to a full pipe. */
static void log_write_line(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, line, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        line += w;
        len -= (size_t)w;
    }
}

void log_vmsg(log_level_e level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX_BYTES];
    char line[LOG_LINE_MAX_BYTES];
    const size_t tail = sizeof(LOG_TRUNCATED_MARK) - 1 + 1; /* mark and newline */
    int saved_errno = errno;
    int sink, n, fits;
    size_t pos, msg_len;

    if (!log_enabled(level) || fmt == NULL)
        goto out;
    sink = atomic_load(&log_sink);
    if (sink == LOG_SINK_UNKNOWN) {
        log_reopen();
        sink = atomic_load(&log_sink);
    }
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0) {
        /* Only an invalid format gets here; say so rather than write nothing. */
        n = snprintf(msg, sizeof(msg), "(unformattable log message: %s)", fmt);
        if (n < 0)
            goto out;
    }
    msg_len = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;

    pos = log_format_prefix(line, sizeof(line), level, sink == LOG_SINK_JOURNAL);
    fits = log_append_escaped(line, &pos, sizeof(line) - tail, msg, msg_len);
    if (!fits || (size_t)n >= sizeof(msg)) {
        memcpy(line + pos, LOG_TRUNCATED_MARK, sizeof(LOG_TRUNCATED_MARK) - 1);
        pos += sizeof(LOG_TRUNCATED_MARK) - 1;
    }
    line[pos++] = '\n';
    log_write_line(line, pos);
out:
    errno = saved_errno;
}

void log_msg(log_level_e level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

void log_token_id(const unsigned char sha256[32], char out[17])
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = hex[sha256[i] >> 4];
        out[2 * i + 1] = hex[sha256[i] & 0xF];
    }
    out[16] = '\0';
}
