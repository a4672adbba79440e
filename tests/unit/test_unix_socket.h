/* Test setup shared by the unit tests that need a Unix socket file of their own (a listener "of
 * another daemon", a socket an epoch file sits beside): made directly with libc, not by the code
 * under test. Aborts on failure: a test that cannot set up must not pass. */
#ifndef JWTAUTHZ_TESTS_UNIX_SOCKET_H
#define JWTAUTHZ_TESTS_UNIX_SOCKET_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A Unix stream socket bound at path; returns its fd. */
static inline int test_unix_bind(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror(path);
        abort();
    }
    return fd;
}

#endif
