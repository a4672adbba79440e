/* Key sets on local disk (see jwks_persist.h): the per-issuer cache file, written atomically
 * (temp file, fsync, rename, directory fsync) with mode 0600, and bounded reads of it and of an
 * operator's jwks_file. Every descriptor is held by a pool cleanup, run once at the end of the
 * function that opened it, so error paths just return. No decisions about freshness here. */
#include "daemon/jwks_persist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_errno.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include <yajl/yajl_gen.h>

#include "jose/pool.h"
#include "proto/json.h"
#include "proto/limits.h"

/* Integers above 2^53 do not survive a double; no real time is anywhere near. */
#define JWKS_PERSIST_MAX_TIME 9007199254740991.0

/* A descriptor owned by a pool cleanup, and the temporary file it may stand for. */
typedef struct persist_fd {
    int fd;
    const char *unlink_path; /* a temporary file to remove unless it was renamed into place */
} persist_fd_t;

static apr_status_t persist_fd_cleanup(void *data)
{
    persist_fd_t *h = data;
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
    if (h->unlink_path != NULL) {
        unlink(h->unlink_path);
        h->unlink_path = NULL;
    }
    return APR_SUCCESS;
}

static persist_fd_t *persist_fd_hold(apr_pool_t *p, int fd, const char *unlink_path)
{
    persist_fd_t *h = apr_palloc(p, sizeof(*h));
    h->fd = fd;
    h->unlink_path = unlink_path;
    apr_pool_cleanup_register(p, h, persist_fd_cleanup, apr_pool_cleanup_null);
    return h;
}

static apr_status_t errno_fail(int e, char *err, size_t errlen, const char *what, const char *path)
{
    char buf[128];
    apr_status_t st = APR_FROM_OS_ERROR(e);
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, apr_strerror(st, buf, sizeof(buf)));
    }
    return st;
}

static apr_status_t invalid(char *err, size_t errlen, const char *path, const char *why)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s: %s", path, why);
    }
    return APR_EINVAL;
}

apr_status_t jwks_persist_path(apr_pool_t *p, const char *cache_dir, proto_str_t issuer,
                               const char **path)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char name[2 * 32 + 1];

    if (cache_dir == NULL || cache_dir[0] == '\0') {
        return APR_EINVAL;
    }
    /* The name must not come from the issuer's bytes themselves: issuers are URLs with '/' and
     * may be long; a hash gives a fixed, safe, collision-free name. */
    if (EVP_Digest(issuer.ptr, issuer.len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        return APR_ENOMEM;
    }
    for (unsigned i = 0; i < mdlen; i++) {
        name[2 * i] = hex[md[i] >> 4];
        name[2 * i + 1] = hex[md[i] & 0xf];
    }
    name[2 * mdlen] = '\0';
    *path = apr_pstrcat(p, cache_dir, "/", name, JWKS_PERSIST_SUFFIX, NULL);
    return APR_SUCCESS;
}

/* --- reading ---------------------------------------------------------------------------------- */

static apr_status_t read_all(int fd, struct stat *sb, apr_pool_t *p, size_t max, const char *path,
                             const char **text, size_t *len, char *err, size_t errlen)
{
    if (fstat(fd, sb) != 0) {
        return errno_fail(errno, err, errlen, "cannot stat", path);
    }
    if (!S_ISREG(sb->st_mode)) {
        return invalid(err, errlen, path, "not a regular file");
    }
    if (sb->st_size < 0 || (unsigned long long)sb->st_size > max) {
        return invalid(err, errlen, path, "larger than the limit for key sets");
    }
    /* One byte past the size seen, to notice a file that grew since fstat. */
    size_t want = (size_t)sb->st_size + 1;
    char *buf = apr_palloc(p, want + 1);
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return errno_fail(errno, err, errlen, "cannot read", path);
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    if (got == want) {
        return invalid(err, errlen, path, "changed while it was read");
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return APR_SUCCESS;
}

apr_status_t jwks_file_read(apr_pool_t *p, const char *path, size_t max, int follow_links,
                            const char **text, size_t *len, int64_t *mtime, char *err,
                            size_t errlen)
{
    struct stat sb;
    /* O_NONBLOCK: opening a FIFO someone put in place of the file must not hang the caller; it
     * is refused as not a regular file right after. */
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (follow_links ? 0 : O_NOFOLLOW);
    int fd = open(path, flags);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            errno_fail(e, err, errlen, "no such file", path);
            return APR_ENOENT;
        }
        if (e == ELOOP && !follow_links) {
            return invalid(err, errlen, path, "is a symbolic link");
        }
        return errno_fail(e, err, errlen, "cannot open", path);
    }
    persist_fd_t *h = persist_fd_hold(p, fd, NULL);
    apr_status_t st = read_all(h->fd, &sb, p, max, path, text, len, err, errlen);
    if (st == APR_SUCCESS && mtime != NULL) {
        *mtime = (int64_t)sb.st_mtim.tv_sec;
    }
    apr_pool_cleanup_run(p, h, persist_fd_cleanup);
    return st;
}

static int json_time(const proto_json_t *v, int64_t *out)
{
    if (v == NULL || v->type != PROTO_JSON_NUMBER || !v->u.number.is_integer ||
        !v->u.number.is_finite || v->u.number.value < -JWKS_PERSIST_MAX_TIME ||
        v->u.number.value > JWKS_PERSIST_MAX_TIME) {
        return 0;
    }
    *out = (int64_t)v->u.number.value;
    return 1;
}

static const char *json_cstr(apr_pool_t *p, const proto_json_t *v)
{
    if (v == NULL || v->type != PROTO_JSON_STRING || proto_str_has_nul(v->u.string)) {
        return NULL;
    }
    return apr_pstrmemdup(p, v->u.string.ptr, v->u.string.len);
}

apr_status_t jwks_persist_load(apr_pool_t *p, const char *cache_dir, proto_str_t issuer,
                               jwks_persist_record_t *out, char *err, size_t errlen)
{
    const char *path, *text;
    size_t len;
    int64_t mtime = 0;
    proto_json_t *hdr;
    proto_json_error_t jerr;
    apr_status_t st;

    st = jwks_persist_path(p, cache_dir, issuer, &path);
    if (st != APR_SUCCESS) {
        return st;
    }
    st = jwks_file_read(p, path, JWKS_PERSIST_MAX_HEADER_BYTES + JWKS_MAX_BYTES, 0, &text, &len,
                        &mtime, err, errlen);
    if (st != APR_SUCCESS) {
        return st;
    }
    const char *nl = memchr(
        text, '\n', len < JWKS_PERSIST_MAX_HEADER_BYTES ? len : JWKS_PERSIST_MAX_HEADER_BYTES);
    if (nl == NULL) {
        return invalid(err, errlen, path, "no header line");
    }
    if (jose_json_read(p, text, (size_t)(nl - text), &hdr, &jerr) != PROTO_JSON_OK ||
        hdr->type != PROTO_JSON_OBJECT) {
        return invalid(err, errlen, path, "header line is not a JSON object");
    }
    const proto_json_t *fmt = proto_json_get(hdr, "format");
    const proto_json_t *iss = proto_json_get(hdr, "issuer");
    const proto_json_t *etag = proto_json_get(hdr, "etag");
    if (fmt == NULL || fmt->type != PROTO_JSON_STRING ||
        !proto_str_eq_cstr(fmt->u.string, JWKS_PERSIST_FORMAT)) {
        return invalid(err, errlen, path, "not a " JWKS_PERSIST_FORMAT " file");
    }
    if (iss == NULL || iss->type != PROTO_JSON_STRING || !proto_str_eq(iss->u.string, issuer)) {
        return invalid(err, errlen, path, "belongs to another issuer");
    }
    out->issuer = issuer;
    out->source = json_cstr(p, proto_json_get(hdr, "source"));
    out->jwks_uri = json_cstr(p, proto_json_get(hdr, "jwks_uri"));
    out->etag = (etag != NULL && etag->type == PROTO_JSON_NULL) ? NULL : json_cstr(p, etag);
    if (out->source == NULL || out->jwks_uri == NULL ||
        (etag != NULL && etag->type != PROTO_JSON_NULL && out->etag == NULL) ||
        !json_time(proto_json_get(hdr, "fetched_at"), &out->fetched_at) ||
        !json_time(proto_json_get(hdr, "confirmed_at"), &out->confirmed_at)) {
        return invalid(err, errlen, path, "header line lacks a member or has one of a bad type");
    }
    /* A file cannot vouch for keys more recently than it was written. */
    if (out->confirmed_at > mtime) {
        out->confirmed_at = mtime;
    }
    if (out->fetched_at > out->confirmed_at) {
        out->fetched_at = out->confirmed_at;
    }
    out->body = nl + 1;
    out->body_len = len - (size_t)(nl + 1 - text);
    return APR_SUCCESS;
}

/* --- writing ---------------------------------------------------------------------------------- */

static apr_status_t gen_cleanup(void *data)
{
    yajl_gen_free(data);
    return APR_SUCCESS;
}

static int gen_str(yajl_gen g, const char *key, proto_str_t value)
{
    int bad = yajl_gen_string(g, (const unsigned char *)key, strlen(key));
    bad |= yajl_gen_string(g, (const unsigned char *)value.ptr, value.len);
    return bad;
}

static int gen_int(yajl_gen g, const char *key, int64_t value)
{
    int bad = yajl_gen_string(g, (const unsigned char *)key, strlen(key));
    bad |= yajl_gen_integer(g, (long long)value);
    return bad;
}

static int header_build(apr_pool_t *p, const jwks_persist_record_t *rec, const unsigned char **buf,
                        size_t *len)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }
    apr_pool_cleanup_register(p, g, gen_cleanup, apr_pool_cleanup_null);
    /* yajl escapes every control byte, so the header is one line whatever the strings hold.
     * Each call in its own statement: the order of the members is the order of the calls. */
    int bad = 0;
    bad |= yajl_gen_map_open(g);
    bad |= gen_str(g, "format", PROTO_STR_LIT(JWKS_PERSIST_FORMAT));
    bad |= gen_str(g, "issuer", rec->issuer);
    bad |= gen_str(g, "source", proto_str_make(rec->source, strlen(rec->source)));
    bad |= gen_str(g, "jwks_uri", proto_str_make(rec->jwks_uri, strlen(rec->jwks_uri)));
    bad |= gen_int(g, "fetched_at", rec->fetched_at);
    bad |= gen_int(g, "confirmed_at", rec->confirmed_at);
    if (rec->etag != NULL) {
        bad |= gen_str(g, "etag", proto_str_make(rec->etag, strlen(rec->etag)));
    }
    bad |= yajl_gen_map_close(g);
    if (bad || yajl_gen_get_buf(g, buf, len) != yajl_gen_status_ok) {
        return -1;
    }
    return 0;
}

static apr_status_t write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return APR_FROM_OS_ERROR(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return APR_SUCCESS;
}

/* Writes, syncs and renames the temporary file held by t; each step's failure is returned with
 * its message, and t's cleanup (run by the caller) removes what is left. */
static apr_status_t persist_commit(persist_fd_t *t, const char *path, const unsigned char *hdr,
                                   size_t hdr_len, const jwks_persist_record_t *rec, char *err,
                                   size_t errlen)
{
    apr_status_t st;
    /* mkstemp already makes 0600 files; fchmod states it whatever the libc or umask. */
    if (fchmod(t->fd, JWKS_PERSIST_FILE_MODE) != 0) {
        return errno_fail(errno, err, errlen, "cannot chmod", t->unlink_path);
    }
    if ((st = write_all(t->fd, hdr, hdr_len)) != APR_SUCCESS ||
        (st = write_all(t->fd, "\n", 1)) != APR_SUCCESS ||
        (st = write_all(t->fd, rec->body, rec->body_len)) != APR_SUCCESS) {
        return errno_fail(APR_TO_OS_ERROR(st), err, errlen, "cannot write", t->unlink_path);
    }
    /* The data must be on disk before the name points at it, or a crash right after rename can
     * leave an empty file where the last good set was. */
    if (fsync(t->fd) != 0) {
        return errno_fail(errno, err, errlen, "cannot fsync", t->unlink_path);
    }
    if (close(t->fd) != 0) {
        t->fd = -1;
        return errno_fail(errno, err, errlen, "cannot close", t->unlink_path);
    }
    t->fd = -1;
    if (rename(t->unlink_path, path) != 0) {
        return errno_fail(errno, err, errlen, "cannot rename into place", path);
    }
    t->unlink_path = NULL;
    return APR_SUCCESS;
}

static apr_status_t dir_ensure(const char *dir, char *err, size_t errlen)
{
    struct stat sb;
    if (mkdir(dir, JWKS_PERSIST_DIR_MODE) != 0 && errno != EEXIST) {
        return errno_fail(errno, err, errlen, "cannot create cache directory", dir);
    }
    if (stat(dir, &sb) != 0) {
        return errno_fail(errno, err, errlen, "cannot stat cache directory", dir);
    }
    if (!S_ISDIR(sb.st_mode)) {
        return invalid(err, errlen, dir, "cache_dir is not a directory");
    }
    return APR_SUCCESS;
}

apr_status_t jwks_persist_save(apr_pool_t *scratch, const char *cache_dir,
                               const jwks_persist_record_t *rec, char *err, size_t errlen)
{
    const char *path;
    const unsigned char *hdr;
    size_t hdr_len;
    apr_status_t st;

    st = jwks_persist_path(scratch, cache_dir, rec->issuer, &path);
    if (st != APR_SUCCESS) {
        return invalid(err, errlen, cache_dir ? cache_dir : "(null)", "no cache directory");
    }
    if (header_build(scratch, rec, &hdr, &hdr_len) != 0) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: cannot build the header line", path);
        }
        return APR_ENOMEM;
    }
    st = dir_ensure(cache_dir, err, errlen);
    if (st != APR_SUCCESS) {
        return st;
    }
    /* Same directory as the target, so rename() is atomic (same file system). */
    char *tmp = apr_pstrcat(scratch, path, ".tmp-XXXXXX", NULL);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        return errno_fail(errno, err, errlen, "cannot create", tmp);
    }
    persist_fd_t *t = persist_fd_hold(scratch, fd, tmp);
    st = persist_commit(t, path, hdr, hdr_len, rec, err, errlen);
    apr_pool_cleanup_run(scratch, t, persist_fd_cleanup);
    if (st != APR_SUCCESS) {
        return st;
    }
    /* The rename itself lives in the directory: sync it too, or a crash may forget it. */
    int dfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return errno_fail(errno, err, errlen, "cannot open", cache_dir);
    }
    persist_fd_t *d = persist_fd_hold(scratch, dfd, NULL);
    if (fsync(d->fd) != 0) {
        st = errno_fail(errno, err, errlen, "cannot fsync", cache_dir);
    }
    apr_pool_cleanup_run(scratch, d, persist_fd_cleanup);
    return st;
}
