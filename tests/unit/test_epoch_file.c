/* daemon/epoch_file: the file next to the decision socket that web server modules map to learn,
 * with one load, that cached decisions are void. Made with our magic, a random instance and the
 * socket's reach (never writable by others); bumped; locked while we live (seen from another
 * process, as a module sees it); unlinked with the epoch moved at close, never a successor's;
 * a killed daemon's file taken over with a new instance and a later epoch; symlinks, hard links,
 * a foreign lock and a missing socket refused. Everything lives in a fresh temp directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "daemon/epoch_file.h"
#include "daemon/log.h"
#include "harness.h"
#include "proto/epoch.h"
#include "test_unix_socket.h"

static apr_pool_t *pool;
static char tmpdir[] = "/tmp/jwtauthz-test-epoch-XXXXXX";

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

/* A socket file at path with mode, as listen.c leaves one; returns its fd. */
static int make_socket(const char *path, mode_t mode)
{
    int fd = test_unix_bind(path);

    if (chmod(path, mode) != 0) {
        perror("make_socket");
        abort();
    }
    return fd;
}

static void remove_socket(const char *path, int fd)
{
    close(fd);
    unlink(path);
}

/* The page as a reader sees it: its own read-only mapping of the file at path, or NULL. */
static const proto_epoch_page_t *reader_map(const char *path, int *fd_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    void *m;

    *fd_out = fd;
    if (fd < 0) {
        return NULL;
    }
    m = mmap(NULL, sizeof(proto_epoch_page_t), PROT_READ, MAP_SHARED, fd, 0);
    return m == MAP_FAILED ? NULL : m;
}

static void reader_unmap(const proto_epoch_page_t *pg, int fd)
{
    if (pg != NULL) {
        munmap((void *)pg, sizeof(*pg));
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* What a module in another process sees through F_GETLK: 1 when some process holds a write lock
 * on the file at path, 0 when none does, -1 on error. */
static int locked_seen_from_another_process(const char *path)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        struct flock fl;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_RDLCK;
        fl.l_whence = SEEK_SET;
        if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0) {
            _exit(2);
        }
        _exit(fl.l_type == F_WRLCK ? 1 : 0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status) == 2 ? -1 : WEXITSTATUS(status);
}

TEST(epoch_file_made_with_magic_instance_and_socket_reach)
{
    const char *sock = tmp_path("d.sock"), *path = tmp_path("d.sock.epoch");
    int sfd = make_socket(sock, 0660), rfd;
    epoch_file_t *ef = NULL;
    char err[256];
    struct stat st;
    const proto_epoch_page_t *pg;

    CHECK_MSG(epoch_file_open(pool, sock, &ef, err, sizeof(err)) == APR_SUCCESS, "%s", err);
    if (ef == NULL) {
        remove_socket(sock, sfd);
        return;
    }
    CHECK_STREQ(epoch_file_path(ef), path);
    CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    /* The group may connect (0660), so it may read; nobody but the owner may write. */
    CHECK_MSG((st.st_mode & 07777) == 0640, "mode %o", (unsigned)(st.st_mode & 07777));
    CHECK(st.st_size == PROTO_EPOCH_FILE_BYTES);
    CHECK(st.st_uid == geteuid());
    pg = reader_map(path, &rfd);
    CHECK(pg != NULL);
    if (pg != NULL) {
        CHECK(memcmp(pg->magic, PROTO_EPOCH_MAGIC, PROTO_EPOCH_MAGIC_BYTES) == 0);
        CHECK(pg->instance != 0);
        CHECK(pg->epoch == 1);
        CHECK(epoch_file_epoch(ef) == 1);
        epoch_file_bump(ef);
        epoch_file_bump(ef);
        CHECK(__atomic_load_n(&pg->epoch, __ATOMIC_ACQUIRE) == 3);
        CHECK(epoch_file_epoch(ef) == 3);
    }
    CHECK(locked_seen_from_another_process(path) == 1);

    epoch_file_close(ef);
    /* A clean exit: the epoch moved (mapped readers see it), the name is gone, the lock too. */
    if (pg != NULL) {
        CHECK(pg->epoch == 4);
        CHECK(fstat(rfd, &st) == 0 && st.st_nlink == 0);
    }
    CHECK(lstat(path, &st) != 0 && errno == ENOENT);
    epoch_file_close(ef); /* idempotent */
    epoch_file_bump(ef);  /* a no-op once closed */
    CHECK(epoch_file_epoch(ef) == 0);
    reader_unmap(pg, rfd);
    remove_socket(sock, sfd);
}

TEST(epoch_file_mode_follows_who_may_connect)
{
    static const struct {
        mode_t sock, want;
    } cases[] = {{0600, 0600}, {0660, 0640}, {0666, 0644}, {0606, 0604}, {0640, 0600}};
    const char *sock = tmp_path("m.sock"), *path = tmp_path("m.sock.epoch");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int sfd = make_socket(sock, cases[i].sock);
        epoch_file_t *ef = NULL;
        struct stat st;

        CHECK(epoch_file_open(pool, sock, &ef, NULL, 0) == APR_SUCCESS);
        CHECK_MSG(lstat(path, &st) == 0 && (st.st_mode & 07777) == cases[i].want,
                  "socket %o: file %o, want %o", (unsigned)cases[i].sock,
                  (unsigned)(st.st_mode & 07777), (unsigned)cases[i].want);
        epoch_file_close(ef);
        remove_socket(sock, sfd);
    }
}

TEST(epoch_file_of_a_killed_daemon_gets_new_instance_and_later_epoch)
{
    const char *sock = tmp_path("k.sock"), *path = tmp_path("k.sock.epoch");
    int sfd = make_socket(sock, 0660), fd, rfd;
    proto_epoch_page_t left;
    epoch_file_t *ef = NULL;
    const proto_epoch_page_t *pg;

    /* What SIGKILL leaves: our file, unlocked, a page long, the old pair in it. */
    memset(&left, 0, sizeof(left));
    memcpy(left.magic, PROTO_EPOCH_MAGIC, PROTO_EPOCH_MAGIC_BYTES);
    left.instance = 0x1234;
    left.epoch = 41;
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
    CHECK(fd >= 0 && write(fd, &left, sizeof(left)) == (ssize_t)sizeof(left));
    CHECK(ftruncate(fd, PROTO_EPOCH_FILE_BYTES) == 0);
    close(fd);
    CHECK(locked_seen_from_another_process(path) == 0);
    pg = reader_map(path, &rfd); /* a module that mapped it before the restart */

    CHECK(epoch_file_open(pool, sock, &ef, NULL, 0) == APR_SUCCESS);
    CHECK(pg != NULL);
    if (pg != NULL) {
        CHECK(pg->instance != 0x1234 && pg->instance != 0);
        CHECK(pg->epoch == 42);
    }
    CHECK(locked_seen_from_another_process(path) == 1);
    epoch_file_close(ef);
    reader_unmap(pg, rfd);
    remove_socket(sock, sfd);
}

TEST(epoch_file_not_ours_is_rewritten_magic_last)
{
    const char *sock = tmp_path("f.sock"), *path = tmp_path("f.sock.epoch");
    int sfd = make_socket(sock, 0660), fd, rfd;
    epoch_file_t *ef = NULL;
    const proto_epoch_page_t *pg;
    char junk[64];

    memset(junk, 'x', sizeof(junk));
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    CHECK(fd >= 0 && write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    close(fd);
    CHECK(epoch_file_open(pool, sock, &ef, NULL, 0) == APR_SUCCESS);
    pg = reader_map(path, &rfd);
    CHECK(pg != NULL);
    if (pg != NULL) {
        CHECK(memcmp(pg->magic, PROTO_EPOCH_MAGIC, PROTO_EPOCH_MAGIC_BYTES) == 0);
        CHECK(pg->epoch == 1 && pg->instance != 0);
    }
    /* The 0666 it had is gone: a file others may write is a file others may hold still. */
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0022) == 0);
    CHECK(st.st_size == PROTO_EPOCH_FILE_BYTES);
    epoch_file_close(ef);
    reader_unmap(pg, rfd);
    remove_socket(sock, sfd);
}

TEST(epoch_file_refuses_symlink_hardlink_and_no_socket)
{
    const char *sock = tmp_path("r.sock"), *path = tmp_path("r.sock.epoch");
    const char *target = tmp_path("elsewhere");
    int sfd, fd;
    epoch_file_t *ef = (epoch_file_t *)1;
    char err[256];
    struct stat st;

    /* No socket at all, and a regular file where the socket should be. */
    CHECK(epoch_file_open(pool, sock, &ef, err, sizeof(err)) == APR_FROM_OS_ERROR(ENOENT));
    CHECK(ef == NULL);
    fd = open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(fd);
    CHECK(epoch_file_open(pool, sock, &ef, err, sizeof(err)) == APR_FROM_OS_ERROR(ENOTSOCK));
    unlink(sock);

    sfd = make_socket(sock, 0660);
    /* A symlink planted at the path must not make us write through it. */
    CHECK(symlink(target, path) == 0);
    CHECK(epoch_file_open(pool, sock, &ef, err, sizeof(err)) != APR_SUCCESS);
    CHECK(ef == NULL);
    CHECK(lstat(target, &st) != 0);
    unlink(path);

    /* A second name for the file: a clean exit could not take it away from readers. */
    fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(fd);
    CHECK(link(target, path) == 0);
    CHECK(epoch_file_open(pool, sock, &ef, err, sizeof(err)) == APR_FROM_OS_ERROR(EEXIST));
    CHECK_MSG(strstr(err, path) != NULL, "%s", err);
    unlink(path);
    unlink(target);
    remove_socket(sock, sfd);
}

TEST(epoch_file_locked_by_another_process_is_refused)
{
    const char *sock = tmp_path("l.sock"), *path = tmp_path("l.sock.epoch");
    int sfd = make_socket(sock, 0660), ready[2], done[2], status;
    epoch_file_t *ef = NULL;
    char err[256], c = 0;
    struct stat st;
    pid_t pid;

    CHECK(pipe(ready) == 0 && pipe(done) == 0);
    pid = fork();
    if (pid == 0) {
        /* Another daemon serving the same path. */
        epoch_file_t *mine = NULL;
        char b;
        if (epoch_file_open(pool, sock, &mine, NULL, 0) != APR_SUCCESS) {
            _exit(1);
        }
        if (write(ready[1], "r", 1) != 1 || read(done[0], &b, 1) != 1) {
            _exit(1);
        }
        _exit(0); /* killed, in effect: no close, the file stays */
    }
    CHECK(read(ready[0], &c, 1) == 1);
    CHECK(epoch_file_open(pool, sock, &ef, err, sizeof(err)) == APR_FROM_OS_ERROR(EAGAIN));
    CHECK(ef == NULL);
    CHECK(lstat(path, &st) == 0); /* the other daemon's file is left alone */
    CHECK(write(done[1], "d", 1) == 1);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Its process is gone and with it the lock: the file can be taken over. */
    CHECK(epoch_file_open(pool, sock, &ef, err, sizeof(err)) == APR_SUCCESS);
    epoch_file_close(ef);
    close(ready[0]);
    close(ready[1]);
    close(done[0]);
    close(done[1]);
    remove_socket(sock, sfd);
}

TEST(epoch_file_close_spares_a_successors_file)
{
    const char *sock = tmp_path("s.sock"), *path = tmp_path("s.sock.epoch");
    int sfd = make_socket(sock, 0660), fd;
    epoch_file_t *ef = NULL;
    struct stat st;

    CHECK(epoch_file_open(pool, sock, &ef, NULL, 0) == APR_SUCCESS);
    /* Someone replaced the file under us (an operator, a successor): ours is no longer there. */
    CHECK(unlink(path) == 0);
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(fd);
    epoch_file_close(ef);
    CHECK(lstat(path, &st) == 0);
    unlink(path);
    remove_socket(sock, sfd);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    log_set_level(LOGL_WARN);

    RUN(epoch_file_made_with_magic_instance_and_socket_reach);
    RUN(epoch_file_mode_follows_who_may_connect);
    RUN(epoch_file_of_a_killed_daemon_gets_new_instance_and_later_epoch);
    RUN(epoch_file_not_ours_is_rewritten_magic_last);
    RUN(epoch_file_refuses_symlink_hardlink_and_no_socket);
    RUN(epoch_file_locked_by_another_process_is_refused);
    RUN(epoch_file_close_spares_a_successors_file);

    apr_pool_destroy(pool);
    apr_terminate();
    if (rmdir(tmpdir) != 0) {
        fprintf(stderr, "left behind: %s (%s)\n", tmpdir, strerror(errno));
    }
    return harness_report();
}
