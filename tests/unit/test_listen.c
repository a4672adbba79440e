/* daemon/listen and daemon/sdnotify: the socket is made with its mode and group, a dead daemon's
 * socket file is replaced while a live one, or a file that is not a socket, is refused;
 * SO_PEERCRED; socket activation (forked children with LISTEN_* set and sockets at fd 3 and 4) by
 * name, by path, with unclaimed fds closed and systemd's socket never unlinked; sd_notify
 * datagrams. Everything lives in a fresh temp directory, removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "daemon/listen.h"
#include "daemon/log.h"
#include "daemon/sdnotify.h"
#include "harness.h"
#include "test_unix_socket.h"

static apr_pool_t *pool;
static char tmpdir[] = "/tmp/jwtauthz-test-listen-XXXXXX";

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static listen_spec_t spec_for(const char *path, const char *fdname)
{
    listen_spec_t s = {path, 0660, (gid_t)-1, fdname, 0};
    return s;
}

/* A plain listener at path, not made by listen.c: "another daemon". */
static int raw_listener(const char *path, int do_listen)
{
    int fd = test_unix_bind(path);

    if (do_listen && listen(fd, 8) != 0) {
        perror("raw_listener");
        abort();
    }
    return fd;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

TEST(listen_creates_socket_with_mode_and_group)
{
    const char *path = tmp_path("d.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *l = NULL;
    char err[256];
    struct stat st;
    int c;

    s.gid = getegid();
    CHECK(listen_open(pool, &s, NULL, &l, err, sizeof(err)) == APR_SUCCESS);
    if (l == NULL)
        return;
    CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK_MSG((st.st_mode & 07777) == 0660, "mode %o", (unsigned)(st.st_mode & 07777));
    CHECK(st.st_gid == getegid());
    CHECK(listen_fd(l) >= 0);
    CHECK(listen_socket(l) != NULL);
    CHECK(!listen_is_inherited(l));
    CHECK_STREQ(listen_path(l), path);
    CHECK(fcntl(listen_fd(l), F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(listen_fd(l), F_GETFD) & FD_CLOEXEC);
    c = connect_to(path);
    CHECK(c >= 0);
    if (c >= 0)
        close(c);
    listen_close(l);
    CHECK(!path_exists(path));
    CHECK(listen_fd(l) == -1);
    listen_close(l); /* idempotent */
}

TEST(listen_admin_mode_0600)
{
    const char *path = tmp_path("a.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_ADMIN);
    listen_t *l = NULL;
    struct stat st;

    s.mode = 0600;
    CHECK(listen_open(pool, &s, NULL, &l, NULL, 0) == APR_SUCCESS);
    CHECK(lstat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    listen_close(l);
}

TEST(listen_replaces_stale_socket_of_a_killed_daemon)
{
    const char *path = tmp_path("stale.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *l = NULL;
    struct stat st;
    char err[256];
    int c;

    /* What SIGKILL leaves behind: the socket file, nobody listening. */
    close(raw_listener(path, 1));
    CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK(connect_to(path) == -1);
    CHECK_MSG(listen_open(pool, &s, NULL, &l, err, sizeof(err)) == APR_SUCCESS, "%s", err);
    /* The file is ours now: it answers, and carries our mode. */
    c = connect_to(path);
    CHECK(c >= 0);
    if (c >= 0)
        close(c);
    CHECK(lstat(path, &st) == 0 && (st.st_mode & 07777) == 0660);
    listen_close(l);
    CHECK(!path_exists(path));
}

TEST(listen_refuses_to_displace_a_live_daemon)
{
    const char *path = tmp_path("live.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *first = NULL, *second = (listen_t *)1;
    char err[256];
    int raw, c;

    CHECK(listen_open(pool, &s, NULL, &first, err, sizeof(err)) == APR_SUCCESS);
    CHECK(listen_open(pool, &s, NULL, &second, err, sizeof(err)) == APR_FROM_OS_ERROR(EADDRINUSE));
    CHECK(second == NULL);
    CHECK_MSG(strstr(err, "another process is listening") && strstr(err, path), "%s", err);
    /* The first one is untouched and still serves. */
    c = connect_to(path);
    CHECK(c >= 0);
    if (c >= 0)
        close(c);
    listen_close(first);

    /* Any live listener counts, not only ours. */
    raw = raw_listener(path, 1);
    CHECK(listen_open(pool, &s, NULL, &second, err, sizeof(err)) == APR_FROM_OS_ERROR(EADDRINUSE));
    CHECK(path_exists(path));
    close(raw);
    unlink(path);
}

TEST(listen_refuses_a_regular_file_in_the_way)
{
    const char *path = tmp_path("file.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *l = (listen_t *)1;
    char err[256], buf[8] = {0};
    FILE *f = fopen(path, "w");
    struct stat st;

    fputs("keep", f);
    fclose(f);
    CHECK(listen_open(pool, &s, NULL, &l, err, sizeof(err)) == APR_FROM_OS_ERROR(EEXIST));
    CHECK(l == NULL);
    CHECK_MSG(strstr(err, "not a socket") != NULL, "%s", err);
    f = fopen(path, "r");
    CHECK(f && fread(buf, 1, 4, f) == 4 && strcmp(buf, "keep") == 0);
    if (f)
        fclose(f);
    CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    unlink(path);
}

TEST(listen_close_spares_a_successors_socket)
{
    const char *path = tmp_path("succ.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *old = NULL;
    int successor;

    CHECK(listen_open(pool, &s, NULL, &old, NULL, 0) == APR_SUCCESS);
    /* An operator removed the file and another daemon bound the path since. */
    unlink(path);
    successor = raw_listener(path, 1);
    listen_close(old);
    CHECK(path_exists(path));
    close(successor);
    unlink(path);
}

TEST(listen_makes_a_missing_parent_directory_0755)
{
    const char *dir = tmp_path("run");
    const char *path = tmp_path("run/d.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *l = NULL;
    struct stat st;
    mode_t old = umask(0077);

    CHECK(listen_open(pool, &s, NULL, &l, NULL, 0) == APR_SUCCESS);
    umask(old);
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
    listen_close(l);
    rmdir(dir);
}

TEST(listen_refuses_a_path_too_long_for_sockaddr_un)
{
    char path[200];
    listen_spec_t s;
    listen_t *l = NULL;
    char err[256];

    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    CHECK(listen_open(pool, &s, NULL, &l, err, sizeof(err)) == APR_FROM_OS_ERROR(ENAMETOOLONG));
    CHECK(strstr(err, "too long") != NULL);
    s = spec_for("", LISTEN_FDNAME_DECISIONS);
    CHECK(listen_open(pool, &s, NULL, &l, err, sizeof(err)) == APR_FROM_OS_ERROR(EINVAL));
}

TEST(listen_peer_creds_report_the_connecting_process)
{
    int sv[2], p[2];
    uid_t uid = (uid_t)-2;
    gid_t gid = (gid_t)-2;
    pid_t pid = 0;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(listen_peer_creds(sv[0], &uid, &gid, &pid) == 0);
    CHECK(uid == geteuid());
    CHECK(gid == getegid());
    CHECK(pid == getpid());
    CHECK(listen_peer_creds(sv[0], NULL, NULL, NULL) == 0);
    /* Our own uid (or root) is an admin. */
    CHECK(listen_peer_is_admin(sv[0]) == 1);
    close(sv[0]);
    close(sv[1]);
    /* No credentials to read: not an admin (fail closed). */
    CHECK(pipe(p) == 0);
    CHECK(listen_peer_creds(p[0], &uid, NULL, NULL) == -1);
    CHECK(listen_peer_is_admin(p[0]) == 0);
    close(p[0]);
    close(p[1]);
}

/* --- socket activation: in a child, which owns fds 3.. and its environment ---------------- */

/* Moves fd to exactly target (dup'd high first so fds never collide). */
static void place_fd(int fd, int target)
{
    int high = fcntl(fd, F_DUPFD, 100);
    close(fd);
    dup2(high, target);
    close(high);
}

static int run_in_child(void (*fn)(void))
{
    pid_t pid;
    int status = 0;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        harness_current_failed = 0;
        fn();
        _exit(harness_current_failed ? 1 : 0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void set_listen_env(const char *nfds, const char *names)
{
    char pid[32];

    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", nfds, 1);
    if (names)
        setenv("LISTEN_FDNAMES", names, 1);
    else
        unsetenv("LISTEN_FDNAMES");
}

static void child_activation_by_name(void)
{
    const char *path = tmp_path("sd.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *l = NULL;
    sd_fds_t sd;
    char err[256];

    place_fd(raw_listener(path, 1), 3);
    fcntl(3, F_SETFD, 0); /* systemd passes them without FD_CLOEXEC */
    set_listen_env("1", "jwtauthz");
    CHECK(sdnotify_listen_fds(&sd) == 1);
    CHECK(getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL &&
          getenv("LISTEN_FDNAMES") == NULL);
    CHECK(sd.n == 1 && sd.have_names && sd.fds[0].fd == 3);
    CHECK_STREQ(sd.fds[0].name, "jwtauthz");
    CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);

    CHECK_MSG(listen_open(pool, &s, &sd, &l, err, sizeof(err)) == APR_SUCCESS, "%s", err);
    if (l == NULL)
        return;
    CHECK(listen_fd(l) == 3);
    CHECK(listen_is_inherited(l));
    CHECK(sd.fds[0].claimed);
    CHECK(fcntl(3, F_GETFL) & O_NONBLOCK);
    CHECK(sdnotify_listen_fds_close_unclaimed(&sd) == 0);
    listen_close(l);
    CHECK(fcntl(3, F_GETFD) == -1); /* closed */
    CHECK(path_exists(path));       /* systemd's file: not ours to unlink */
}

TEST(activation_takes_fd_3_by_name_and_never_unlinks_it)
{
    CHECK(run_in_child(child_activation_by_name) == 0);
    CHECK(path_exists(tmp_path("sd.sock")));
    unlink(tmp_path("sd.sock"));
}

static void child_activation_by_path(void)
{
    const char *adm = tmp_path("sd-admin.sock"), *dec = tmp_path("sd-dec.sock");
    listen_spec_t sa = spec_for(adm, LISTEN_FDNAME_ADMIN);
    listen_spec_t sdec = spec_for(dec, LISTEN_FDNAME_DECISIONS);
    listen_t *la = NULL, *ld = NULL;
    sd_fds_t sd;

    place_fd(raw_listener(adm, 1), 3);
    place_fd(raw_listener(dec, 1), 4);
    set_listen_env("2", NULL); /* a systemd without FileDescriptorName= */
    CHECK(sdnotify_listen_fds(&sd) == 2 && !sd.have_names);
    CHECK(listen_open(pool, &sdec, &sd, &ld, NULL, 0) == APR_SUCCESS);
    CHECK(listen_open(pool, &sa, &sd, &la, NULL, 0) == APR_SUCCESS);
    CHECK(ld && listen_fd(ld) == 4 && listen_is_inherited(ld));
    CHECK(la && listen_fd(la) == 3 && listen_is_inherited(la));
    listen_close(ld);
    listen_close(la);
    CHECK(path_exists(adm) && path_exists(dec));
}

TEST(activation_without_names_matches_by_path)
{
    CHECK(run_in_child(child_activation_by_path) == 0);
    unlink(tmp_path("sd-admin.sock"));
    unlink(tmp_path("sd-dec.sock"));
}

static void child_activation_unclaimed(void)
{
    const char *other = tmp_path("other.sock"), *path = tmp_path("own.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *l = NULL;
    sd_fds_t sd;

    place_fd(raw_listener(other, 1), 3);
    set_listen_env("1", "something-else");
    CHECK(sdnotify_listen_fds(&sd) == 1);
    CHECK(listen_open(pool, &s, &sd, &l, NULL, 0) == APR_SUCCESS);
    CHECK(l && !listen_is_inherited(l) && listen_fd(l) != 3);
    CHECK(sdnotify_listen_fds_close_unclaimed(&sd) == 1);
    CHECK(fcntl(3, F_GETFD) == -1);
    listen_close(l);
    CHECK(!path_exists(path));
}

TEST(activation_closes_fds_no_listener_claims)
{
    CHECK(run_in_child(child_activation_unclaimed) == 0);
    unlink(tmp_path("other.sock"));
}

static void child_activation_not_listening(void)
{
    const char *path = tmp_path("nl.sock");
    listen_spec_t s = spec_for(path, LISTEN_FDNAME_DECISIONS);
    listen_t *l = NULL;
    sd_fds_t sd;
    char err[256];

    place_fd(raw_listener(path, 0), 3); /* bound, never listen()ed */
    set_listen_env("1", "jwtauthz");
    CHECK(sdnotify_listen_fds(&sd) == 1);
    CHECK(listen_open(pool, &s, &sd, &l, err, sizeof(err)) == APR_FROM_OS_ERROR(ENOTSOCK));
    CHECK_MSG(strstr(err, "not a listening") != NULL, "%s", err);
    CHECK(!sd.fds[0].claimed && fcntl(3, F_GETFD) != -1); /* left to close_unclaimed */
    CHECK(path_exists(path));
}

TEST(activation_refuses_a_socket_that_is_not_listening)
{
    CHECK(run_in_child(child_activation_not_listening) == 0);
    unlink(tmp_path("nl.sock"));
}

static void child_listen_env_checks(void)
{
    sd_fds_t sd;

    /* Inherited from a parent that was activated: LISTEN_PID is not us. */
    setenv("LISTEN_PID", "1", 1);
    setenv("LISTEN_FDS", "1", 1);
    CHECK(sdnotify_listen_fds(&sd) == 0 && sd.n == 0);
    CHECK(getenv("LISTEN_PID") == NULL && getenv("LISTEN_FDS") == NULL);

    CHECK(sdnotify_listen_fds(&sd) == 0); /* nothing set */

    set_listen_env("x1", NULL);
    errno = 0;
    CHECK(sdnotify_listen_fds(&sd) == -1 && errno == EINVAL && sd.n == 0);

    set_listen_env("-1", NULL);
    CHECK(sdnotify_listen_fds(&sd) == -1);

    set_listen_env("17", NULL); /* past SDNOTIFY_MAX_FDS */
    CHECK(sdnotify_listen_fds(&sd) == -1 && errno == EINVAL);

    place_fd(raw_listener(tmp_path("env.sock"), 1), 3);
    set_listen_env("1", "a:b"); /* two names for one fd */
    CHECK(sdnotify_listen_fds(&sd) == -1 && errno == EINVAL);
    CHECK(getenv("LISTEN_FDNAMES") == NULL);

    close(3);
    set_listen_env("1", "jwtauthz"); /* fd 3 is not open */
    CHECK(sdnotify_listen_fds(&sd) == -1 && errno == EBADF);
}

TEST(activation_env_malformed_or_not_ours)
{
    CHECK(run_in_child(child_listen_env_checks) == 0);
    unlink(tmp_path("env.sock"));
}

/* --- sd_notify ---------------------------------------------------------------------------- */

static int dgram_bound(const char *name, int abstract)
{
    struct sockaddr_un sa;
    socklen_t len;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + (abstract ? 0 : 1));
    if (abstract)
        sa.sun_path[0] = '\0';
    if (bind(fd, (struct sockaddr *)&sa, len) != 0) {
        perror("dgram_bound");
        abort();
    }
    return fd;
}

static const char *dgram_recv(int fd)
{
    static char buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

TEST(sdnotify_is_a_noop_outside_systemd)
{
    unsetenv("NOTIFY_SOCKET");
    CHECK(sdnotify_send("READY=1") == 0);
    setenv("NOTIFY_SOCKET", "", 1);
    CHECK(sdnotify_send("READY=1") == 0);
    unsetenv("NOTIFY_SOCKET");
    CHECK(sdnotify_send(NULL) == -1 && errno == EINVAL);
}

TEST(sdnotify_sends_one_datagram_to_a_path)
{
    const char *path = tmp_path("notify");
    int fd = dgram_bound(path, 0);
    const char *got;

    setenv("NOTIFY_SOCKET", path, 1);
    CHECK(sdnotify_send("READY=1") == 1);
    CHECK_STREQ(dgram_recv(fd), "READY=1");
    CHECK(getenv("NOTIFY_SOCKET") != NULL); /* kept for later notifications */

    CHECK(sdnotify_reloading() == 1);
    got = dgram_recv(fd);
    CHECK_MSG(strncmp(got, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0 && strlen(got) > 27, "%s", got);

    /* A newline in status text must not smuggle in another assignment. */
    CHECK(sdnotify_status("issuer %s down", "x\nREADY=1") == 1);
    CHECK_STREQ(dgram_recv(fd), "STATUS=issuer x READY=1 down");

    CHECK(sdnotify_send("STOPPING=1") == 1);
    CHECK_STREQ(dgram_recv(fd), "STOPPING=1");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path);
}

TEST(sdnotify_abstract_namespace_with_at_sign)
{
    char name[64];
    int fd;

    snprintf(name, sizeof(name), "@jwtauthz-test-notify-%ld", (long)getpid());
    fd = dgram_bound(name, 1);
    setenv("NOTIFY_SOCKET", name, 1);
    CHECK(sdnotify_send("READY=1") == 1);
    CHECK_STREQ(dgram_recv(fd), "READY=1");
    close(fd);

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK(sdnotify_send("READY=1") == -1 && errno == EINVAL);
    setenv("NOTIFY_SOCKET", tmp_path("nobody-listens"), 1);
    CHECK(sdnotify_send("READY=1") == -1 && errno == ENOENT);
    unsetenv("NOTIFY_SOCKET");
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

    RUN(listen_creates_socket_with_mode_and_group);
    RUN(listen_admin_mode_0600);
    RUN(listen_replaces_stale_socket_of_a_killed_daemon);
    RUN(listen_refuses_to_displace_a_live_daemon);
    RUN(listen_refuses_a_regular_file_in_the_way);
    RUN(listen_close_spares_a_successors_socket);
    RUN(listen_makes_a_missing_parent_directory_0755);
    RUN(listen_refuses_a_path_too_long_for_sockaddr_un);
    RUN(listen_peer_creds_report_the_connecting_process);
    RUN(activation_takes_fd_3_by_name_and_never_unlinks_it);
    RUN(activation_without_names_matches_by_path);
    RUN(activation_closes_fds_no_listener_claims);
    RUN(activation_refuses_a_socket_that_is_not_listening);
    RUN(activation_env_malformed_or_not_ours);
    RUN(sdnotify_is_a_noop_outside_systemd);
    RUN(sdnotify_sends_one_datagram_to_a_path);
    RUN(sdnotify_abstract_namespace_with_at_sign);

    apr_pool_destroy(pool);
    apr_terminate();
    if (rmdir(tmpdir) != 0)
        fprintf(stderr, "left behind: %s (%s)\n", tmpdir, strerror(errno));
    return harness_report();
}
