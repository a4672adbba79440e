/* jwtauthzd's log: one line per event on stderr, written whole by one write(2) so lines from
 * worker threads never interleave, with control characters escaped so a hostile kid, issuer or URL
 * cannot forge a line. Under systemd the journal reads stderr (sd-daemon "<N>" level prefixes);
 * elsewhere each line carries a UTC timestamp and a level word. Log a token only by
 * log_token_id(), never itself. */
#ifndef JWTAUTHZ_DAEMON_LOG_H
#define JWTAUTHZ_DAEMON_LOG_H

#include <stdarg.h>

/* Not LOG_*: syslog.h owns those names. Ordered by verbosity: a level shows itself and above. */
typedef enum { LOGL_ERROR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG } log_level_e;

/* One whole line, prefix and newline included. PIPE_BUF (4096 on Linux) is the size up to which
 * POSIX makes a write to a pipe atomic, and the journal's stream socket takes a line that size in
 * one piece too: a longer line could be split by another thread's. */
#define LOG_LINE_MAX_BYTES 4096u
/* Marks a line cut at LOG_LINE_MAX_BYTES. */
#define LOG_TRUNCATED_MARK "..."

/* "error", "warn", "info" or "debug" (the config's log_level values) into *out.
 * Returns 0, or -1 (and *out untouched) for NULL or any other name. */
int log_level_parse(const char *name, log_level_e *out);

/* The config word for a level; "?" for a value outside the enum. */
const char *log_level_name(log_level_e level);

/* Events below this level are dropped. Safe from any thread at any time (a reload changes it while
 * workers log). The level before the first call is LOGL_INFO. */
void log_set_level(log_level_e level);
log_level_e log_get_level(void);

/* 1 when an event at this level would be written: lets a caller skip building costly arguments. */
int log_enabled(log_level_e level);

/* Looks again at where stderr goes (the journal, per $JOURNAL_STREAM, or anything else) and picks
 * the line format. log_msg() does this once by itself; call it again after fd 2 is redirected. */
void log_reopen(void);

/* Formats one event and writes it as one line to fd 2 when level is enabled. The message is cut
 * (ending in LOG_TRUNCATED_MARK) to fit LOG_LINE_MAX_BYTES; a newline inside it is written as the
 * two characters \n, other control bytes and invalid UTF-8 as \xNN. Preserves errno. A failed
 * write is dropped: there is nowhere else to report it. */
void log_msg(log_level_e level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(log_level_e level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The first 8 bytes of a token's SHA-256 as 16 lowercase hex digits and a NUL: how logs name a
 * token. Enough to correlate lines and cache entries; far too little to recover the token. */
void log_token_id(const unsigned char sha256[32], char out[17]);

#endif
