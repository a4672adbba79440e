/* The epoch file (see epoch_file.h; layout in proto/epoch.h). Made with the socket's reach and
 * never more: its owner alone may write it, since whoever can write it can keep a web server
 * reusing decisions after a flush. Must not be truncated below a page while mapped anywhere
 * (readers would fault), and must not unlink a file it did not make. */
#include "daemon/epoch_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "daemon/log.h"
#include "proto/epoch.h"

/* Permission bits the file may ever have: read and write for the owner, read for the group and
 * others at most (each only when the socket lets them connect). */
#define EPOCH_FILE_OWNER_MODE 0600
#define EPOCH_FILE_GROUP_READ 0040
#define EPOCH_FILE_OTHER_READ 0004

struct epoch_file {
    apr_pool_t *pool;
    int fd;
    proto_epoch_page_t *page; /* MAP_SHARED, PROTO_EPOCH_FILE_BYTES; NULL once closed */
    const char *path;
    dev_t dev; /* the file we made or took over, so close spares a successor's */
    ino_t ino;
};

static void epoch_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void epoch_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Whoever may connect to the socket (write permission on it, unix(7)) may read the file. */
static mode_t epoch_file_mode(mode_t socket_mode)
{
    mode_t mode = EPOCH_FILE_OWNER_MODE;

    if (socket_mode & S_IWGRP) {
        mode |= EPOCH_FILE_GROUP_READ;
    }
    if (socket_mode & S_IWOTH) {
        mode |= EPOCH_FILE_OTHER_READ;
    }
    return mode;
}

static apr_status_t epoch_file_cleanup(void *data)
{
    epoch_file_t *ef = data;
    struct stat st;

    if (ef->page != NULL) {
        epoch_file_bump(ef);
        if (lstat(ef->path, &st) == 0 && st.st_dev == ef->dev && st.st_ino == ef->ino) {
            unlink(ef->path);
        }
        munmap(ef->page, PROTO_EPOCH_FILE_BYTES);
        ef->page = NULL;
    }
    if (ef->fd >= 0) {
        close(ef->fd); /* drops the lock */
        ef->fd = -1;
    }
    return APR_SUCCESS;
}

/* Takes the write lock readers test for liveness. EAGAIN when another process holds it. */
static apr_status_t epoch_file_lock(epoch_file_t *ef, char *err, size_t errlen)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(ef->fd, F_SETLK, &fl) == 0) {
        return APR_SUCCESS;
    }
    if (errno != EAGAIN && errno != EACCES) {
        apr_status_t rv = APR_FROM_OS_ERROR(errno);
        epoch_fail(err, errlen, "epoch file \"%s\": lock: %s", ef->path, strerror(errno));
        return rv;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(ef->fd, F_GETLK, &fl) != 0) {
        fl.l_pid = 0;
    }
    epoch_fail(err, errlen, "epoch file \"%s\": locked by process %ld (another daemon?)", ef->path,
               (long)fl.l_pid);
    return APR_FROM_OS_ERROR(EAGAIN);
}

/* A new instance id, never 0 and never the one a previous daemon left in the file. */
static apr_status_t epoch_file_new_instance(uint64_t old, uint64_t *out)
{
    unsigned char b[sizeof(uint64_t)];
    uint64_t v;
    apr_status_t rv;

    do {
        rv = apr_generate_random_bytes(b, sizeof(b));
        if (rv != APR_SUCCESS) {
            return rv;
        }
        memcpy(&v, b, sizeof(v));
    } while (v == 0 || v == old);
    *out = v;
    return APR_SUCCESS;
}

/* Writes the header. A file a killed daemon left (our magic) keeps its epoch, moved first, so a
 * reader holding the old instance never sees the old pair again; anything else starts at 1 with
 * the magic written last. */
static apr_status_t epoch_file_publish(epoch_file_t *ef, uint64_t *instance)
{
    proto_epoch_page_t *pg = ef->page;
    int ours = memcmp(pg->magic, PROTO_EPOCH_MAGIC, PROTO_EPOCH_MAGIC_BYTES) == 0;
    uint64_t old = ours ? __atomic_load_n(&pg->instance, __ATOMIC_ACQUIRE) : 0;
    apr_status_t rv = epoch_file_new_instance(old, instance);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (ours) {
        __atomic_add_fetch(&pg->epoch, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&pg->instance, *instance, __ATOMIC_RELEASE);
        return APR_SUCCESS;
    }
    __atomic_store_n(&pg->instance, *instance, __ATOMIC_RELEASE);
    __atomic_store_n(&pg->epoch, 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(pg->magic, PROTO_EPOCH_MAGIC, PROTO_EPOCH_MAGIC_BYTES);
    return APR_SUCCESS;
}

/* The file at ef->path: opened (made when missing), checked to be a regular file of ours with no
 * other name, locked, given the socket's group and reach, one page long, mapped. */
static apr_status_t epoch_file_make(epoch_file_t *ef, const struct stat *sock, char *err,
                                    size_t errlen)
{
    struct stat st;
    mode_t mode = epoch_file_mode(sock->st_mode);
    apr_status_t rv;
    void *map;

    /* 0600 until fchmod: never more open than the end result, whatever the umask. */
    ef->fd = open(ef->path, O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, EPOCH_FILE_OWNER_MODE);
    if (ef->fd < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        epoch_fail(err, errlen, "epoch file \"%s\": open: %s", ef->path, strerror(errno));
        return rv;
    }
    if (fstat(ef->fd, &st) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        epoch_fail(err, errlen, "epoch file \"%s\": fstat: %s", ef->path, strerror(errno));
        return rv;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
        epoch_fail(err, errlen,
                   "epoch file \"%s\": not a regular file of this user with one name: "
                   "refusing to use it",
                   ef->path);
        return APR_FROM_OS_ERROR(EEXIST);
    }
    ef->dev = st.st_dev;
    ef->ino = st.st_ino;
    rv = epoch_file_lock(ef, err, errlen);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (st.st_gid != sock->st_gid && fchown(ef->fd, (uid_t)-1, sock->st_gid) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        epoch_fail(err, errlen, "epoch file \"%s\": cannot give it to group %u: %s", ef->path,
                   (unsigned)sock->st_gid, strerror(errno));
        return rv;
    }
    if (fchmod(ef->fd, mode) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        epoch_fail(err, errlen, "epoch file \"%s\": chmod %04o: %s", ef->path, (unsigned)mode,
                   strerror(errno));
        return rv;
    }
    /* Grown, never shrunk: a reader may have the first page of a file left by a killed daemon
     * mapped already. */
    if (st.st_size < (off_t)PROTO_EPOCH_FILE_BYTES &&
        ftruncate(ef->fd, (off_t)PROTO_EPOCH_FILE_BYTES) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        epoch_fail(err, errlen, "epoch file \"%s\": ftruncate: %s", ef->path, strerror(errno));
        return rv;
    }
    map = mmap(NULL, PROTO_EPOCH_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, ef->fd, 0);
    if (map == MAP_FAILED) {
        rv = APR_FROM_OS_ERROR(errno);
        epoch_fail(err, errlen, "epoch file \"%s\": mmap: %s", ef->path, strerror(errno));
        return rv;
    }
    ef->page = map;
    return APR_SUCCESS;
}

apr_status_t epoch_file_open(apr_pool_t *p, const char *socket_path, epoch_file_t **out, char *err,
                             size_t errlen)
{
    epoch_file_t *ef;
    struct stat sock;
    uint64_t instance = 0;
    apr_status_t rv;

    *out = NULL;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (socket_path == NULL || socket_path[0] == '\0' ||
        strlen(socket_path) + sizeof(PROTO_EPOCH_SUFFIX) > PATH_MAX) {
        epoch_fail(err, errlen, "epoch file: socket path empty or too long");
        return APR_FROM_OS_ERROR(ENAMETOOLONG);
    }
    if (stat(socket_path, &sock) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        epoch_fail(err, errlen, "epoch file: socket \"%s\": %s", socket_path, strerror(errno));
        return rv;
    }
    if (!S_ISSOCK(sock.st_mode)) {
        epoch_fail(err, errlen, "epoch file: \"%s\" is not a socket", socket_path);
        return APR_FROM_OS_ERROR(ENOTSOCK);
    }
    ef = apr_pcalloc(p, sizeof(*ef));
    ef->pool = p;
    ef->fd = -1;
    ef->path = apr_pstrcat(p, socket_path, PROTO_EPOCH_SUFFIX, NULL);

    rv = epoch_file_make(ef, &sock, err, errlen);
    if (rv == APR_SUCCESS) {
        rv = epoch_file_publish(ef, &instance);
        if (rv != APR_SUCCESS) {
            epoch_fail(err, errlen, "epoch file \"%s\": no random instance id: %d", ef->path, rv);
        }
    }
    if (rv != APR_SUCCESS) {
        /* A file never mapped is left for the next start to take over; a mapped one is ours,
         * removed as at exit. */
        if (ef->page == NULL && ef->fd >= 0) {
            close(ef->fd);
            ef->fd = -1;
        } else {
            epoch_file_cleanup(ef);
        }
        return rv;
    }
    apr_pool_cleanup_register(p, ef, epoch_file_cleanup, apr_pool_cleanup_null);
    log_msg(LOGL_INFO, "epoch file \"%s\" (instance %016llx, epoch %llu)", ef->path,
            (unsigned long long)instance, (unsigned long long)epoch_file_epoch(ef));
    *out = ef;
    return APR_SUCCESS;
}

void epoch_file_bump(epoch_file_t *ef)
{
    if (ef != NULL && ef->page != NULL) {
        __atomic_add_fetch(&ef->page->epoch, 1, __ATOMIC_RELEASE);
    }
}

uint64_t epoch_file_epoch(const epoch_file_t *ef)
{
    if (ef == NULL || ef->page == NULL) {
        return 0;
    }
    return __atomic_load_n(&ef->page->epoch, __ATOMIC_ACQUIRE);
}

const char *epoch_file_path(const epoch_file_t *ef)
{
    return ef != NULL ? ef->path : "";
}

void epoch_file_close(epoch_file_t *ef)
{
    if (ef != NULL) {
        apr_pool_cleanup_run(ef->pool, ef, epoch_file_cleanup);
    }
}
