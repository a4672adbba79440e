/* Value readers for conf_load(): each checks one kind of value (integer in range, string without
 * NUL, absolute path, https URL, list of strings) and, when it refuses, records an error naming
 * the key and the value as written, on the line the value sits on. It does not know which keys
 * exist or what they mean: conf.c, conf_issuer.c and conf_rules.c do. */
#include "daemon/conf_read.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>

/* Names longer than this get no "did you mean": a typo is a short key, and the distance table is
 * a fixed array. */
#define CONF_SUGGEST_MAX_BYTES 32u
/* Edits (insert, delete, replace) that still count as a typo of a known key: "thraeds" is two. */
#define CONF_SUGGEST_MAX_EDITS 2u

/* Offsets where each line after the first starts, made once per load: every rule and issuer
 * records its line, and a scan from the top for each would cost rules x file size. */
static void line_index_make(conf_ctx_t *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->len; i++) {
        n += c->text[i] == '\n';
    }
    c->line_starts = apr_palloc(c->scratch, (n ? n : 1) * sizeof(*c->line_starts));
    c->nline_starts = 0;
    for (size_t i = 0; i < c->len; i++) {
        if (c->text[i] == '\n') {
            c->line_starts[c->nline_starts++] = i + 1;
        }
    }
    c->line_index_made = 1;
}

unsigned conf_line(conf_ctx_t *c, const proto_json_t *v)
{
    if (v == NULL || c->text == NULL) {
        return 1;
    }
    if (!c->line_index_made) {
        line_index_make(c);
    }
    /* Line = 1 + number of line starts at or before the offset (as proto_json_line_of counts). */
    size_t lo = 0, hi = c->nline_starts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->line_starts[mid] <= v->offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return (unsigned)(lo + 1);
}

/* printf into scratch with libc's formatter (APR's has no %zu), so the format attributes on the
 * recording functions below say the truth. */
__attribute__((format(printf, 2, 0))) static const char *conf_vsprintf(conf_ctx_t *c,
                                                                       const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return "(unprintable message)";
    }
    char *out = apr_palloc(c->scratch, (size_t)n + 1);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    return out;
}

const char *conf_sprintf(conf_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *out = conf_vsprintf(c, fmt, ap);
    va_end(ap);
    return out;
}

/* Copies line into slot, cutting it with "..." on a UTF-8 boundary when it does not fit. */
static void message_store(char *slot, const char *line)
{
    size_t n = strlen(line);
    if (n < CONF_MESSAGE_BYTES) {
        memcpy(slot, line, n + 1);
        return;
    }
    size_t keep = CONF_MESSAGE_BYTES - 4;
    while (keep > 0 && ((unsigned char)line[keep] & 0xC0u) == 0x80u) {
        keep--; /* line[keep] continues a UTF-8 sequence: cut before its lead byte */
    }
    memcpy(slot, line, keep);
    memcpy(slot + keep, "...", 4);
}

__attribute__((format(printf, 4, 0))) static void
message_add(conf_ctx_t *c, unsigned line, int warning, const char *fmt, va_list ap)
{
    conf_errors_t *e = c->errs;
    size_t *n = warning ? &e->nwarnings : &e->nerrors;
    size_t cap = warning ? CONF_MAX_WARNINGS : CONF_MAX_ERRORS;
    if (*n >= cap) {
        (*(warning ? &e->nwarnings_dropped : &e->nerrors_dropped))++;
        return;
    }
    const char *msg = conf_vsprintf(c, fmt, ap);
    const char *text =
        conf_sprintf(c, "%s:%u: %s%s", c->path, line, warning ? "warning: " : "", msg);
    message_store(warning ? e->warnings[*n] : e->errors[*n], text);
    (*n)++;
}

void conf_error_file(conf_ctx_t *c, const char *fmt, ...)
{
    conf_errors_t *e = c->errs;
    va_list ap;
    if (e->nerrors >= CONF_MAX_ERRORS) {
        e->nerrors_dropped++;
        return;
    }
    va_start(ap, fmt);
    const char *msg = conf_vsprintf(c, fmt, ap);
    va_end(ap);
    message_store(e->errors[e->nerrors++], apr_pstrcat(c->scratch, c->path, ": ", msg, NULL));
}

void conf_error(conf_ctx_t *c, const proto_json_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message_add(c, conf_line(c, at), 0, fmt, ap);
    va_end(ap);
}

void conf_error_line(conf_ctx_t *c, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message_add(c, line, 0, fmt, ap);
    va_end(ap);
}

void conf_warning(conf_ctx_t *c, const proto_json_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message_add(c, conf_line(c, at), 1, fmt, ap);
    va_end(ap);
}

const char *conf_quote(conf_ctx_t *c, proto_str_t s)
{
    size_t n = s.len;
    int cut = 0;
    if (n > CONF_QUOTE_MAX_BYTES) {
        n = CONF_QUOTE_MAX_BYTES;
        while (n > 0 && ((unsigned char)s.ptr[n] & 0xC0u) == 0x80u) {
            n--;
        }
        cut = 1;
    }
    /* Worst case every byte becomes \xNN; plus quotes, "..." and the NUL. */
    char *out = apr_palloc(c->scratch, n * 4 + 8);
    char *w = out;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s.ptr[i];
        if (b == '"' || b == '\\') {
            *w++ = '\\';
            *w++ = (char)b;
        } else if (b < 0x20 || b == 0x7f) {
            /* A control byte could forge a line in a log or move a terminal's cursor. */
            w += snprintf(w, 5, "\\x%02x", b);
        } else {
            *w++ = (char)b;
        }
    }
    *w++ = '"';
    if (cut) {
        memcpy(w, "...", 3);
        w += 3;
    }
    *w = '\0';
    return out;
}

const char *conf_describe(conf_ctx_t *c, const proto_json_t *v)
{
    if (v == NULL) {
        return "nothing";
    }
    switch (v->type) {
    case PROTO_JSON_NULL:
        return "null";
    case PROTO_JSON_BOOL:
        return v->u.boolean ? "true" : "false";
    case PROTO_JSON_NUMBER: {
        /* yajl checked the number grammar: the text is ASCII; only its length needs a bound. */
        proto_str_t t = v->u.number.text;
        if (t.len > CONF_QUOTE_MAX_BYTES) {
            return conf_sprintf(c, "%.*s...", (int)CONF_QUOTE_MAX_BYTES, t.ptr);
        }
        return apr_pstrmemdup(c->scratch, t.ptr, t.len);
    }
    case PROTO_JSON_STRING:
        return apr_pstrcat(c->scratch, "the string ", conf_quote(c, v->u.string), NULL);
    case PROTO_JSON_ARRAY:
        return "an array";
    case PROTO_JSON_OBJECT:
        return "an object";
    }
    return "an unknown value";
}

const char *conf_name(conf_ctx_t *c, const char *where, const char *key)
{
    return where ? apr_pstrcat(c->scratch, where, ".", key, NULL) : key;
}

/* Levenshtein distance between two short names, or CONF_SUGGEST_MAX_EDITS + 1 when either is too
 * long to be a typo of the other. */
static size_t name_distance(proto_str_t a, const char *b)
{
    size_t bl = strlen(b);
    if (a.len > CONF_SUGGEST_MAX_BYTES || bl > CONF_SUGGEST_MAX_BYTES) {
        return CONF_SUGGEST_MAX_EDITS + 1;
    }
    size_t row[CONF_SUGGEST_MAX_BYTES + 1];
    for (size_t j = 0; j <= bl; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= a.len; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bl; j++) {
            size_t up = row[j];
            size_t best = diag + (a.ptr[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            diag = up;
            row[j] = best;
        }
    }
    return row[bl];
}

size_t conf_keys_check(conf_ctx_t *c, const proto_json_t *obj, const char *where,
                       const char *const *known)
{
    size_t unknown = 0;
    for (size_t i = 0; i < obj->u.object.count; i++) {
        const proto_json_member_t *m = &obj->u.object.members[i];
        const char *closest = NULL;
        size_t closest_edits = CONF_SUGGEST_MAX_EDITS + 1;
        int found = 0;
        for (const char *const *k = known; *k && !found; k++) {
            if (proto_str_eq_cstr(m->key, *k)) {
                found = 1;
            } else {
                size_t d = name_distance(m->key, *k);
                if (d < closest_edits) {
                    closest_edits = d;
                    closest = *k;
                }
            }
        }
        if (found) {
            continue;
        }
        unknown++;
        conf_error(c, m->value, "%s%sunknown key %s%s%s%s", where ? where : "", where ? ": " : "",
                   conf_quote(c, m->key), closest ? " (did you mean \"" : "",
                   closest ? closest : "", closest ? "\"?)" : "");
    }
    return unknown;
}

int conf_value_uint(conf_ctx_t *c, const proto_json_t *v, const char *name, uint64_t min,
                    uint64_t max, uint64_t *out)
{
    if (v->type != PROTO_JSON_NUMBER) {
        conf_error(c, v, "%s must be an integer, not %s", name, conf_describe(c, v));
        return CONF_BAD;
    }
    if (!v->u.number.is_integer) {
        /* 1e3 and 1.0 are integers to strtod, but not to a reader of the file: refuse the doubt. */
        conf_error(c, v, "%s must be an integer written without fraction or exponent, not %s", name,
                   conf_describe(c, v));
        return CONF_BAD;
    }
    proto_str_t t = v->u.number.text;
    size_t i = 0;
    int negative = 0;
    if (t.len > 0 && t.ptr[0] == '-') {
        negative = 1;
        i = 1;
    }
    uint64_t value = 0;
    int over = 0;
    for (; i < t.len; i++) {
        uint64_t digit = (uint64_t)(t.ptr[i] - '0');
        if (value > (UINT64_MAX - digit) / 10u) {
            over = 1;
            break;
        }
        value = value * 10u + digit;
    }
    if (over || (negative && value != 0) || value < min || value > max) {
        conf_error(c, v, "%s must be between %llu and %llu, not %s", name, (unsigned long long)min,
                   (unsigned long long)max, conf_describe(c, v));
        return CONF_BAD;
    }
    *out = value;
    return CONF_SET;
}

int conf_value_string(conf_ctx_t *c, const proto_json_t *v, const char *name, unsigned flags,
                      proto_str_t *out)
{
    if (v->type != PROTO_JSON_STRING) {
        conf_error(c, v, "%s must be a string, not %s", name, conf_describe(c, v));
        return CONF_BAD;
    }
    proto_str_t s = v->u.string;
    if (proto_str_has_nul(s)) {
        /* A NUL would cut the value short wherever it becomes a C string: two readers of one
         * setting would disagree. */
        conf_error(c, v, "%s must not contain a NUL byte: %s", name, conf_quote(c, s));
        return CONF_BAD;
    }
    if (s.len == 0 && (flags & CONF_STR_NONEMPTY)) {
        conf_error(c, v, "%s must not be empty", name);
        return CONF_BAD;
    }
    out->ptr = apr_pstrmemdup(c->pool, s.ptr, s.len);
    out->len = s.len;
    return CONF_SET;
}

int conf_member_unsigned(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                         unsigned min, unsigned max, unsigned *out)
{
    const proto_json_t *v = proto_json_get(obj, key);
    uint64_t value;
    if (v == NULL) {
        return CONF_ABSENT;
    }
    if (conf_value_uint(c, v, conf_name(c, where, key), min, max, &value) != CONF_SET) {
        return CONF_BAD;
    }
    *out = (unsigned)value;
    return CONF_SET;
}

int conf_member_size(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                     size_t min, size_t max, size_t *out)
{
    const proto_json_t *v = proto_json_get(obj, key);
    uint64_t value;
    if (v == NULL) {
        return CONF_ABSENT;
    }
    if (conf_value_uint(c, v, conf_name(c, where, key), min, max, &value) != CONF_SET) {
        return CONF_BAD;
    }
    *out = (size_t)value;
    return CONF_SET;
}

int conf_member_bool(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                     int *out)
{
    const proto_json_t *v = proto_json_get(obj, key);
    if (v == NULL) {
        return CONF_ABSENT;
    }
    if (v->type != PROTO_JSON_BOOL) {
        conf_error(c, v, "%s must be true or false, not %s", conf_name(c, where, key),
                   conf_describe(c, v));
        return CONF_BAD;
    }
    *out = v->u.boolean;
    return CONF_SET;
}

int conf_member_string(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                       unsigned flags, proto_str_t *out)
{
    const proto_json_t *v = proto_json_get(obj, key);
    if (v == NULL) {
        return CONF_ABSENT;
    }
    if (v->type == PROTO_JSON_STRING && v->u.string.len == 0 && (flags & CONF_STR_EMPTY_IS_UNSET)) {
        out->ptr = NULL;
        out->len = 0;
        return CONF_SET;
    }
    return conf_value_string(c, v, conf_name(c, where, key), flags, out);
}

int conf_member_path(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                     unsigned flags, const char **out)
{
    const proto_json_t *v = proto_json_get(obj, key);
    const char *name = conf_name(c, where, key);
    proto_str_t s;
    if (v == NULL) {
        return CONF_ABSENT;
    }
    if (conf_value_string(c, v, name, flags & CONF_STR_EMPTY_IS_UNSET ? 0 : CONF_STR_NONEMPTY,
                          &s) != CONF_SET) {
        return CONF_BAD;
    }
    if (s.len == 0) {
        *out = NULL;
        return CONF_SET;
    }
    /* The daemon runs from "/" under systemd: a relative path would mean one thing to -t in a
     * shell and another to the service. */
    if (s.ptr[0] != '/') {
        conf_error(c, v, "%s must be an absolute path, not %s", name, conf_quote(c, s));
        return CONF_BAD;
    }
    if (s.len >= PATH_MAX) {
        conf_error(c, v, "%s is longer than %d bytes: %s", name, PATH_MAX - 1, conf_quote(c, s));
        return CONF_BAD;
    }
    *out = s.ptr;
    return CONF_SET;
}

int conf_member_strings(conf_ctx_t *c, const proto_json_t *obj, const char *where, const char *key,
                        size_t max, proto_str_t **out, size_t *n)
{
    const proto_json_t *v = proto_json_get(obj, key);
    const char *name = conf_name(c, where, key);
    int rc = CONF_SET;
    if (v == NULL) {
        return CONF_ABSENT;
    }
    if (v->type != PROTO_JSON_ARRAY) {
        conf_error(c, v, "%s must be an array of strings, not %s", name, conf_describe(c, v));
        return CONF_BAD;
    }
    size_t count = v->u.array.count;
    if (count > max) {
        conf_error(c, v, "%s lists %zu entries; at most %zu are allowed", name, count, max);
        return CONF_BAD;
    }
    proto_str_t *items = apr_pcalloc(c->pool, (count ? count : 1) * sizeof(*items));
    for (size_t i = 0; i < count; i++) {
        const char *item_name = conf_sprintf(c, "%s[%zu]", name, i);
        if (conf_value_string(c, v->u.array.items[i], item_name, CONF_STR_NONEMPTY, &items[i]) !=
            CONF_SET) {
            rc = CONF_BAD;
        }
    }
    if (rc == CONF_SET) {
        *out = items;
        *n = count;
    }
    return rc;
}

static int ascii_prefix_caseless(proto_str_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && strncasecmp(s.ptr, prefix, n) == 0;
}

const char *conf_https_url_problem(conf_ctx_t *c, proto_str_t s)
{
    if (s.len > CONF_MAX_URL_BYTES) {
        return conf_sprintf(c, "longer than %u bytes", CONF_MAX_URL_BYTES);
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned char b = (unsigned char)s.ptr[i];
        /* RFC 3986 §2: anything else must be percent-encoded; curl and a log reader could
         * otherwise see two different URLs. */
        if (b <= 0x20 || b >= 0x7f) {
            return "holds a space, a control byte or a non-ASCII byte (percent-encode it)";
        }
    }
    /* The fetcher checks URLs with discovery_url_is_https(), which refuses these: a config that
     * loads must not name a URL every fetch then refuses. A fragment is never sent (RFC 3986
     * §3.5); some parsers read '\\' as '/'. */
    if (memchr(s.ptr, '#', s.len) != NULL) {
        return "holds a fragment ('#'), which is never sent to the server";
    }
    if (memchr(s.ptr, '\\', s.len) != NULL) {
        return "holds a backslash, which some URL parsers read as '/'";
    }
    if (ascii_prefix_caseless(s, "http://")) {
        return "plain http: anyone on the path could replace the keys";
    }
    if (!ascii_prefix_caseless(s, "https://")) {
        return "not an https:// URL";
    }
    size_t start = sizeof("https://") - 1, end = start;
    while (end < s.len && s.ptr[end] != '/' && s.ptr[end] != '?') {
        end++;
    }
    if (end == start) {
        return "no host";
    }
    /* Credentials in the URL would end up in logs and in `keys` output. */
    if (memchr(s.ptr + start, '@', end - start) != NULL) {
        return "carries credentials (user@host)";
    }
    return NULL;
}
