/* Key sets on local disk: the last good set of each fetched issuer, kept under the config's
 * cache_dir so a restart during an IdP outage still serves (one file per issuer, named by the hex
 * SHA-256 of the issuer string, written atomically with mode 0600), and the bounded reading of an
 * operator's jwks_file. Nothing here decides whether a set is usable or still fresh: the store
 * does, with the times recorded here. */
#ifndef JWTAUTHZ_DAEMON_JWKS_PERSIST_H
#define JWTAUTHZ_DAEMON_JWKS_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>

#include "proto/str.h"

/* The first line of a cache file names its layout; a file of another layout is ignored. */
#define JWKS_PERSIST_FORMAT "jwtauthz-jwks-cache/1"
/* File name: 64 hex digits of SHA-256(issuer) and this suffix. */
#define JWKS_PERSIST_SUFFIX ".jwks"
/* The header line holds the issuer, two URLs (≤ 2 KiB each per the config's bound), an ETag and two
 * times: 16 KiB is ample, and bounds what a damaged file can make us read before the body. */
#define JWKS_PERSIST_MAX_HEADER_BYTES (16u * 1024u)
/* Mode of cache files (and of cache_dir when we create it): the daemon's own, nobody else's. */
#define JWKS_PERSIST_FILE_MODE 0600
#define JWKS_PERSIST_DIR_MODE 0700

/* One persisted set. Strings are NUL-terminated; body holds the key set document exactly as the
 * IdP served it. */
typedef struct jwks_persist_record {
    proto_str_t issuer;   /* the issuer it belongs to, byte for byte */
    const char *source;   /* the configured URL it came through (jwks_uri or discovery URL): a
                             file from another source is not this issuer's set any more */
    const char *jwks_uri; /* where the body itself was fetched */
    int64_t fetched_at;   /* when the body was fetched */
    int64_t confirmed_at; /* the last good fetch of it (200, or 304 since) */
    const char *etag;     /* its ETag, for If-None-Match after a restart; NULL when none */
    const char *body;
    size_t body_len;
} jwks_persist_record_t;

/* Sets *path to cache_dir "/" hex(SHA-256(issuer)) ".jwks", in p. Returns APR_SUCCESS, or
 * APR_EINVAL when cache_dir is NULL or empty, APR_ENOMEM when hashing fails. */
apr_status_t jwks_persist_path(apr_pool_t *p, const char *cache_dir, proto_str_t issuer,
                               const char **path);

/* Writes rec to its issuer's file under cache_dir: a temporary file in the same directory (mode
 * 0600 whatever the umask), written, fsync'd, renamed over the old one, and the directory fsync'd,
 * so a crash leaves the old file or the new one, never a mix. Creates cache_dir (0700) when it
 * does not exist (not its parents). Returns APR_SUCCESS, or the errno-based status of the step
 * that failed with a message naming the path in err; the temporary file is removed on failure.
 * Scratch allocations and the cleanups go to scratch. */
apr_status_t jwks_persist_save(apr_pool_t *scratch, const char *cache_dir,
                               const jwks_persist_record_t *rec, char *err, size_t errlen);

/* Reads issuer's file under cache_dir into out (strings in p). confirmed_at is the earlier of the
 * file's recorded time and its mtime: a file cannot claim to be fresher than when it was written.
 * Returns APR_SUCCESS; APR_ENOENT when there is no file (not an error worth a log line);
 * APR_EINVAL with a message when the file is not a regular file, is larger than the header bound
 * plus JWKS_MAX_BYTES, is not of JWKS_PERSIST_FORMAT, or names another issuer; another status when
 * reading fails. The caller checks source and parses the body. */
apr_status_t jwks_persist_load(apr_pool_t *p, const char *cache_dir, proto_str_t issuer,
                               jwks_persist_record_t *out, char *err, size_t errlen);

/* Reads a whole regular file of at most max bytes into p, NUL-terminated (the NUL not counted in
 * *len). follow_links 0 refuses a symbolic link (the cache files, which we wrote ourselves); an
 * operator's jwks_file may be a link. Returns APR_SUCCESS; APR_ENOENT; APR_EINVAL with a message
 * when it is not a regular file or is larger than max (checked before allocation, and again while
 * reading, as the file may grow); or the errno-based status of open/read. */
apr_status_t jwks_file_read(apr_pool_t *p, const char *path, size_t max, int follow_links,
                            const char **text, size_t *len, int64_t *mtime, char *err,
                            size_t errlen);

#endif
