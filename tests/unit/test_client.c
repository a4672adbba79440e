/* libjwtauthz against a fake daemon on a temporary Unix socket, served by threads of this process.
 * The fake speaks the wire protocol by hand (no proto/ code), so a codec bug cannot check itself.
 * Each test sets how the fake misbehaves and asserts what the caller sees: a decision, or an
 * ERROR with the right status and reason, never ALLOW by accident. Links the shared library only.
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "jwtauthz.h"

typedef enum {
    FAKE_ANSWER,             /* answer every request properly */
    FAKE_CLOSE_AFTER_FIRST,  /* answer the first request of a connection, then close it */
    FAKE_DROP_SECOND,        /* answer the first; read the second and close without answering */
    FAKE_CLOSE_UNANSWERED,   /* read every request and close without answering */
    FAKE_SILENT,             /* read requests, never answer */
    FAKE_GARBAGE,            /* a frame of non-JSON */
    FAKE_ZERO_FRAME,         /* a header declaring 0 bytes */
    FAKE_HUGE_FRAME,         /* a header declaring 4 GiB */
    FAKE_ALLOW_NO_ID,        /* ALLOW without echoing the id */
    FAKE_ALLOW_WRONG_ID,     /* ALLOW for another request's id */
    FAKE_ERROR_NO_ID,        /* the daemon's own ERROR, which cannot echo an id */
    FAKE_ALLOW_TWICE,        /* the right reply and an unsolicited copy, in one write */
    FAKE_LATE_DUPLICATE,     /* the right reply; 200 ms later an unsolicited copy */
    FAKE_ONE_BYTE_AT_A_TIME, /* the right reply, written a byte per send */
    FAKE_CLOSE_ON_LARGE      /* close as soon as a header declares more than 64 KiB */
} fake_mode_e;

#define FAKE_MAX_CONNS 16

typedef struct fake {
    char path[108];
    int lfd;
    int stop_pipe[2];
    pthread_t acceptor;
    pthread_t conns[FAKE_MAX_CONNS];
    fake_mode_e mode;
    atomic_int connections;
    atomic_int requests;
    pthread_mutex_t lock;
    char last[8192]; /* the last request body, NUL-terminated */
} fake_t;

typedef struct fake_conn {
    fake_t *f;
    int fd;
} fake_conn_t;

static int fd_read_full(int fd, void *p, size_t n)
{
    unsigned char *b = p;
    while (n > 0) {
        ssize_t r = recv(fd, b, n, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return 0;
        }
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

static int fd_write_full(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return 0;
        }
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

static void be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int fake_send_frame(int fd, const char *json, int byte_at_a_time)
{
    unsigned char hdr[4];
    size_t n = strlen(json);
    be32_put(hdr, (uint32_t)n);
    if (!byte_at_a_time) {
        return fd_write_full(fd, hdr, 4) && fd_write_full(fd, json, n);
    }
    for (size_t i = 0; i < 4 + n; i++) {
        unsigned char c = i < 4 ? hdr[i] : (unsigned char)json[i - 4];
        if (!fd_write_full(fd, &c, 1)) {
            return 0;
        }
        usleep(200);
    }
    return 1;
}

/* The request's "id" as the library sends it: a string of digits or letters. */
static void request_id(const char *body, char *id, size_t size)
{
    const char *p = strstr(body, "\"id\":\"");
    size_t n = 0;
    id[0] = '\0';
    if (p) {
        p += 6;
        while (p[n] && p[n] != '"' && n + 1 < size) {
            n++;
        }
        memcpy(id, p, n);
        id[n] = '\0';
    }
}

/* Writes the answer to body: once, or twice in a single write (double). */
static void fake_answer_frames(int fd, const char *body, const char *id, int byte_at_a_time,
                               int twice)
{
    char reply[1024];
    if (strstr(body, "\"cmd\"")) {
        snprintf(reply, sizeof(reply), "{\"ok\":true,\"flushed\":3,\"id\":\"%s\"}", id);
    } else if (strstr(body, "/GET/")) {
        snprintf(reply, sizeof(reply),
                 "{\"verdict\":\"ALLOW\",\"status\":200,\"principalId\":\"user-123\","
                 "\"policyDocument\":{\"Version\":\"2012-10-17\",\"Statement\":[{\"Action\":"
                 "\"execute-api:Invoke\",\"Effect\":\"Allow\",\"Resource\":[\"arn:*\"]}]},"
                 "\"context\":{\"sub\":\"user-123\",\"scope\":\"orders:read\",\"n\":42},"
                 "\"cached\":false,\"ttl\":300,\"id\":\"%s\"}",
                 id);
    } else {
        snprintf(reply, sizeof(reply),
                 "{\"verdict\":\"DENY\",\"status\":403,\"principalId\":\"user-123\",\"id\":\"%s\"}",
                 id);
    }
    if (!twice) {
        fake_send_frame(fd, reply, byte_at_a_time);
        return;
    }
    unsigned char both[2 * (4 + sizeof(reply))];
    size_t n = strlen(reply);
    be32_put(both, (uint32_t)n);
    memcpy(both + 4, reply, n);
    memcpy(both + 4 + n, both, 4 + n);
    fd_write_full(fd, both, 2 * (4 + n));
}

static void fake_answer(int fd, const char *body, const char *id, int byte_at_a_time)
{
    fake_answer_frames(fd, body, id, byte_at_a_time, 0);
}

static void *fake_serve(void *arg)
{
    fake_conn_t *c = arg;
    fake_t *f = c->f;
    int fd = c->fd;
    free(c);
    for (int k = 0;; k++) {
        unsigned char hdr[4];
        char id[64];
        if (!fd_read_full(fd, hdr, 4)) {
            break;
        }
        uint32_t n =
            ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
        if (f->mode == FAKE_CLOSE_ON_LARGE && n > 65536) {
            break;
        }
        char *body = malloc((size_t)n + 1);
        if (body == NULL || !fd_read_full(fd, body, n)) {
            free(body);
            break;
        }
        body[n] = '\0';
        atomic_fetch_add(&f->requests, 1);
        pthread_mutex_lock(&f->lock);
        snprintf(f->last, sizeof(f->last), "%s", body);
        pthread_mutex_unlock(&f->lock);
        request_id(body, id, sizeof(id));
        int close_now = 0;
        switch (f->mode) {
        case FAKE_ANSWER:
        case FAKE_CLOSE_ON_LARGE:
            fake_answer(fd, body, id, 0);
            break;
        case FAKE_ONE_BYTE_AT_A_TIME:
            fake_answer(fd, body, id, 1);
            break;
        case FAKE_CLOSE_AFTER_FIRST:
            fake_answer(fd, body, id, 0);
            close_now = 1;
            break;
        case FAKE_DROP_SECOND:
            if (k == 0) {
                fake_answer(fd, body, id, 0);
            } else {
                close_now = 1;
            }
            break;
        case FAKE_CLOSE_UNANSWERED:
            close_now = 1;
            break;
        case FAKE_SILENT:
            break;
        case FAKE_GARBAGE:
            fake_send_frame(fd, "this is not json", 0);
            break;
        case FAKE_ZERO_FRAME:
            fd_write_full(fd, "\0\0\0\0", 4);
            break;
        case FAKE_HUGE_FRAME:
            fd_write_full(fd, "\xff\xff\xff\xff{}", 6);
            break;
        case FAKE_ALLOW_NO_ID:
            fake_send_frame(fd, "{\"verdict\":\"ALLOW\",\"status\":200,\"principalId\":\"x\"}", 0);
            break;
        case FAKE_ALLOW_WRONG_ID:
            fake_send_frame(fd, "{\"verdict\":\"ALLOW\",\"status\":200,\"id\":\"999999\"}", 0);
            break;
        case FAKE_ERROR_NO_ID:
            fake_send_frame(fd,
                            "{\"verdict\":\"ERROR\",\"status\":500,\"reason\":\"bad_request\","
                            "\"message\":\"frame is not one JSON object\"}",
                            0);
            break;
        case FAKE_ALLOW_TWICE:
            fake_answer_frames(fd, body, id, 0, 1);
            break;
        case FAKE_LATE_DUPLICATE:
            fake_answer(fd, body, id, 0);
            usleep(200 * 1000);
            fake_answer(fd, body, id, 0);
            break;
        }
        free(body);
        if (close_now) {
            break;
        }
    }
    close(fd);
    return NULL;
}

static void *fake_accept(void *arg)
{
    fake_t *f = arg;
    for (;;) {
        struct pollfd p[2] = {{f->lfd, POLLIN, 0}, {f->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (p[1].revents) {
            break;
        }
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        int i = atomic_fetch_add(&f->connections, 1);
        fake_conn_t *c = malloc(sizeof(*c));
        if (i >= FAKE_MAX_CONNS || c == NULL) {
            free(c);
            close(fd);
            continue;
        }
        c->f = f;
        c->fd = fd;
        pthread_create(&f->conns[i], NULL, fake_serve, c);
    }
    return NULL;
}

static void fake_start(fake_t *f, fake_mode_e mode)
{
    struct sockaddr_un a;
    static int serial;
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    pthread_mutex_init(&f->lock, NULL);
    snprintf(f->path, sizeof(f->path), "/tmp/jwtauthz-test-%d-%d.sock", (int)getpid(), serial++);
    unlink(f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", f->path);
    if (bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(f->lfd, 16) != 0 ||
        pipe(f->stop_pipe) != 0) {
        perror("fake daemon");
        exit(2);
    }
    pthread_create(&f->acceptor, NULL, fake_accept, f);
}

/* Call after every client on it is freed: connection threads end on EOF. */
static void fake_stop(fake_t *f)
{
    if (write(f->stop_pipe[1], "x", 1) != 1) {
        perror("fake stop");
    }
    pthread_join(f->acceptor, NULL);
    int n = atomic_load(&f->connections);
    for (int i = 0; i < n && i < FAKE_MAX_CONNS; i++) {
        pthread_join(f->conns[i], NULL);
    }
    close(f->lfd);
    close(f->stop_pipe[0]);
    close(f->stop_pipe[1]);
    unlink(f->path);
    pthread_mutex_destroy(&f->lock);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int reason_is(const jwtauthz_reply_t *r, const char *want)
{
    const char *got = jwtauthz_reply_reason(r);
    return got && strcmp(got, want) == 0;
}

#define TOKEN "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2ln"
#define ARN_GET "arn:aws:execute-api:local:0:api/prod/GET/orders/42"
#define ARN_DELETE "arn:aws:execute-api:local:0:api/prod/DELETE/orders/42"

/* ---- a daemon that answers ---------------------------------------------------------------------
 */

TEST(client_decision_reply_read_whole)
{
    fake_t f;
    jwtauthz_reply_t *r = NULL;
    const char *k, *v;
    fake_start(&f, FAKE_ANSWER);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(c != NULL);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, &r) == JWTAUTHZ_ALLOW);
    CHECK(jwtauthz_reply_status(r) == 200);
    CHECK_STREQ(jwtauthz_reply_principal(r), "user-123");
    CHECK(jwtauthz_reply_context_count(r) == 3);
    CHECK(jwtauthz_reply_context_at(r, 1, &k, &v) && strcmp(k, "scope") == 0 &&
          strcmp(v, "orders:read") == 0);
    CHECK_STREQ(jwtauthz_reply_context_get(r, "n"), "42");
    CHECK(jwtauthz_reply_context_get(r, "missing") == NULL);
    CHECK(jwtauthz_reply_ttl(r) == 300 && jwtauthz_reply_cached(r) == 0);
    CHECK_STREQ(jwtauthz_reply_id(r), "1");
    size_t len;
    const char *json = jwtauthz_reply_json(r, &len);
    CHECK(len > 0 && strncmp(json, "{\"verdict\":\"ALLOW\"", 18) == 0 && json[len] == '\0');
    jwtauthz_reply_free(r);
    pthread_mutex_lock(&f.lock);
    CHECK(strstr(f.last, "\"type\":\"TOKEN\"") != NULL);
    CHECK(strstr(f.last, "\"authorizationToken\":\"" TOKEN "\"") != NULL);
    pthread_mutex_unlock(&f.lock);
    /* The same connection carries the next call. */
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_DELETE, &r) == JWTAUTHZ_DENY);
    CHECK(jwtauthz_reply_status(r) == 403 && strcmp(jwtauthz_reply_id(r), "2") == 0);
    jwtauthz_reply_free(r);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    CHECK(atomic_load(&f.connections) == 1 && atomic_load(&f.requests) == 3);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_request_type_sends_headers_joined)
{
    fake_t f;
    jwtauthz_reply_t *r;
    jwtauthz_pair_t headers[] = {
        {{"Authorization", 13}, {TOKEN, sizeof(TOKEN) - 1}},
        {{"authorization", 13}, {"Bearer other", 12}},
        {{"Host", 4}, {"api.example", 11}},
    };
    jwtauthz_request_t req;
    memset(&req, 0, sizeof(req));
    req.method_arn = (jwtauthz_str_t){ARN_GET, sizeof(ARN_GET) - 1};
    req.http_method = (jwtauthz_str_t){"GET", 3};
    req.path = (jwtauthz_str_t){"/orders/42", 10};
    req.headers = headers;
    req.header_count = 3;
    req.source_ip = (jwtauthz_str_t){"192.0.2.9", 9};
    fake_start(&f, FAKE_ANSWER);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_request(c, &req, &r) == JWTAUTHZ_ALLOW);
    jwtauthz_reply_free(r);
    pthread_mutex_lock(&f.lock);
    CHECK(strstr(f.last, "\"type\":\"REQUEST\"") != NULL);
    CHECK(strstr(f.last, "\"Authorization\":\"" TOKEN ", Bearer other\"") != NULL);
    CHECK(strstr(f.last, "\"sourceIp\":\"192.0.2.9\"") != NULL);
    pthread_mutex_unlock(&f.lock);
    /* No methodArn: not sent at all. */
    req.method_arn.ptr = NULL;
    CHECK(jwtauthz_check_request(c, &req, &r) == JWTAUTHZ_ERROR);
    CHECK(jwtauthz_reply_status(r) == 500 && reason_is(r, "bad_request"));
    jwtauthz_reply_free(r);
    CHECK(atomic_load(&f.requests) == 1);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_reply_split_into_single_bytes)
{
    fake_t f;
    fake_start(&f, FAKE_ONE_BYTE_AT_A_TIME);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 5000);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_admin_commands)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, FAKE_ANSWER);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_admin(c, JWTAUTHZ_ADMIN_FLUSH_PRINCIPAL, "user-123", &r) == 1);
    CHECK(jwtauthz_reply_ok(r) && jwtauthz_reply_verdict(r) == JWTAUTHZ_ERROR);
    jwtauthz_reply_free(r);
    pthread_mutex_lock(&f.lock);
    CHECK(strstr(f.last, "\"cmd\":\"flush\",\"principal\":\"user-123\"") != NULL);
    pthread_mutex_unlock(&f.lock);
    CHECK(jwtauthz_admin(c, JWTAUTHZ_ADMIN_STATS, NULL, NULL) == 1);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(admin_targeted_flush_without_target_is_not_sent)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, FAKE_ANSWER);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    /* Sent as it stands, it would flush every decision. */
    CHECK(jwtauthz_admin(c, JWTAUTHZ_ADMIN_FLUSH_PRINCIPAL, NULL, &r) == 0);
    CHECK(reason_is(r, "bad_request") && jwtauthz_reply_status(r) == 500);
    jwtauthz_reply_free(r);
    CHECK(jwtauthz_admin(c, JWTAUTHZ_ADMIN_STATS, "extra", NULL) == 0);
    CHECK(jwtauthz_admin(c, (jwtauthz_admin_cmd_t)99, NULL, NULL) == 0);
    CHECK(atomic_load(&f.requests) == 0);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

/* ---- connections that break --------------------------------------------------------------------
 */

TEST(client_reconnects_after_daemon_closed_idle_connection)
{
    fake_t f;
    fake_start(&f, FAKE_CLOSE_AFTER_FIRST);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_DELETE, NULL) == JWTAUTHZ_DENY);
    CHECK(atomic_load(&f.connections) == 3);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_resends_once_when_reused_connection_drops_request)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, FAKE_DROP_SECOND);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    /* Read, then EOF before a reply: reconnect and send again, once. */
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, &r) == JWTAUTHZ_ALLOW);
    CHECK_STREQ(jwtauthz_reply_id(r), "2");
    jwtauthz_reply_free(r);
    CHECK(atomic_load(&f.connections) == 2 && atomic_load(&f.requests) == 3);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_fresh_connection_closed_unanswered_is_unavailable)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, FAKE_CLOSE_UNANSWERED);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, &r) == JWTAUTHZ_ERROR);
    CHECK(jwtauthz_reply_status(r) == 503 && reason_is(r, "daemon_unavailable"));
    jwtauthz_reply_free(r);
    /* A fresh connection failing is the daemon's trouble: no second try. */
    CHECK(atomic_load(&f.connections) == 1 && atomic_load(&f.requests) == 1);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_daemon_closes_mid_request_does_not_raise_sigpipe)
{
    fake_t f;
    jwtauthz_reply_t *r;
    static char big[600 * 1024];
    jwtauthz_pair_t headers[] = {{{"X-Big", 5}, {big, sizeof(big)}}};
    jwtauthz_request_t req;
    memset(big, 'b', sizeof(big));
    memset(&req, 0, sizeof(req));
    req.method_arn = (jwtauthz_str_t){ARN_GET, sizeof(ARN_GET) - 1};
    req.headers = headers;
    req.header_count = 1;
    /* Default disposition: if the library let SIGPIPE through, this test process would die. */
    signal(SIGPIPE, SIG_DFL);
    fake_start(&f, FAKE_CLOSE_ON_LARGE);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_request(c, &req, &r) == JWTAUTHZ_ERROR);
    CHECK(jwtauthz_reply_status(r) == 503 && reason_is(r, "daemon_unavailable"));
    jwtauthz_reply_free(r);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_no_answer_times_out_as_error)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, FAKE_SILENT);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 300);
    long long t0 = now_ms();
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, &r) == JWTAUTHZ_ERROR);
    long long took = now_ms() - t0;
    CHECK_MSG(took >= 280 && took < 1500, "took %lld ms for a 300 ms timeout", took);
    CHECK(jwtauthz_reply_status(r) == 503 && reason_is(r, "daemon_timeout"));
    jwtauthz_reply_free(r);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_no_socket_is_unavailable)
{
    jwtauthz_reply_t *r;
    jwtauthz_client_t *c = jwtauthz_client_new("/tmp/jwtauthz-test-no-such.sock", 500);
    CHECK(c != NULL);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, &r) == JWTAUTHZ_ERROR);
    CHECK(jwtauthz_reply_status(r) == 503 && reason_is(r, "daemon_unavailable"));
    CHECK(jwtauthz_reply_message(r) && strstr(jwtauthz_reply_message(r), "no-such.sock"));
    size_t len;
    const char *json = jwtauthz_reply_json(r, &len);
    CHECK(strstr(json, "\"reason\":\"daemon_unavailable\"") != NULL && strlen(json) == len);
    jwtauthz_reply_free(r);
    CHECK(jwtauthz_admin(c, JWTAUTHZ_ADMIN_STATS, NULL, &r) == 0);
    CHECK(reason_is(r, "daemon_unavailable"));
    jwtauthz_reply_free(r);
    jwtauthz_client_free(c);
}

TEST(client_socket_path_too_long_refused)
{
    char path[200];
    memset(path, 'p', sizeof(path));
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    CHECK(jwtauthz_client_new(path, 100) == NULL);
}

/* ---- replies that must not be believed ------------------------------------------------------- */

static void expect_bad_reply(fake_mode_e mode)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, mode);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK_MSG(jwtauthz_check_token(c, TOKEN, ARN_GET, &r) == JWTAUTHZ_ERROR, "mode %d", mode);
    CHECK_MSG(jwtauthz_reply_status(r) == 503 && reason_is(r, "bad_reply"), "mode %d: %s", mode,
              jwtauthz_reply_json(r, NULL));
    jwtauthz_reply_free(r);
    /* The stream is not trusted again: the next call opens a new connection. */
    jwtauthz_check_token(c, TOKEN, ARN_GET, NULL);
    CHECK_MSG(atomic_load(&f.connections) == 2, "mode %d reused a bad stream", mode);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_garbage_reply_is_error)
{
    expect_bad_reply(FAKE_GARBAGE);
}

TEST(client_zero_length_reply_frame_is_error)
{
    expect_bad_reply(FAKE_ZERO_FRAME);
}

TEST(client_4gib_reply_frame_is_error_without_allocating)
{
    expect_bad_reply(FAKE_HUGE_FRAME);
}

TEST(client_allow_without_our_id_is_not_believed)
{
    expect_bad_reply(FAKE_ALLOW_NO_ID);
}

TEST(client_allow_for_another_request_is_not_believed)
{
    expect_bad_reply(FAKE_ALLOW_WRONG_ID);
}

TEST(client_daemon_error_without_id_is_passed_on)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, FAKE_ERROR_NO_ID);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, &r) == JWTAUTHZ_ERROR);
    CHECK(jwtauthz_reply_status(r) == 500 && reason_is(r, "bad_request"));
    jwtauthz_reply_free(r);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_unsolicited_second_reply_not_taken_for_next_call)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, FAKE_ALLOW_TWICE);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    /* The stale ALLOW for request 1 must not answer request 2 (a DELETE). */
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_DELETE, &r) == JWTAUTHZ_DENY);
    CHECK_STREQ(jwtauthz_reply_id(r), "2");
    jwtauthz_reply_free(r);
    CHECK(atomic_load(&f.connections) == 2);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_late_duplicate_reply_never_allows_next_call)
{
    fake_t f;
    jwtauthz_reply_t *r;
    fake_start(&f, FAKE_LATE_DUPLICATE);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    /* The copy of reply 1 arrives while request 2 waits: it carries id 1, so it is refused (or,
     * on a slow machine, seen as stale before sending); either way never the DELETE's ALLOW. */
    jwtauthz_verdict_t v = jwtauthz_check_token(c, TOKEN, ARN_DELETE, &r);
    CHECK_MSG((v == JWTAUTHZ_ERROR && reason_is(r, "bad_reply")) ||
                  (v == JWTAUTHZ_DENY && strcmp(jwtauthz_reply_id(r), "2") == 0),
              "%s", jwtauthz_reply_json(r, NULL));
    jwtauthz_reply_free(r);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

/* ---- arguments ---------------------------------------------------------------------------------
 */

TEST(client_bad_arguments_are_errors_not_sent)
{
    fake_t f;
    jwtauthz_reply_t *r;
    static char huge[300 * 1024];
    fake_start(&f, FAKE_ANSWER);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_token(NULL, TOKEN, ARN_GET, &r) == JWTAUTHZ_ERROR);
    CHECK(jwtauthz_reply_status(r) == 500);
    jwtauthz_reply_free(r);
    CHECK(jwtauthz_check_token(c, TOKEN, NULL, &r) == JWTAUTHZ_ERROR);
    CHECK(reason_is(r, "bad_request"));
    jwtauthz_reply_free(r);
    CHECK(jwtauthz_check_token(c, TOKEN, "arn:\xc0\xaf", &r) == JWTAUTHZ_ERROR);
    CHECK(reason_is(r, "bad_request"));
    jwtauthz_reply_free(r);
    memset(huge, 'a', sizeof(huge) - 1);
    CHECK(jwtauthz_check_token(c, huge, ARN_GET, &r) == JWTAUTHZ_UNAUTHORIZED);
    CHECK(jwtauthz_reply_status(r) == 401 && reason_is(r, "token_too_large"));
    jwtauthz_reply_free(r);
    CHECK(atomic_load(&f.requests) == 0);
    /* No Authorization at all is the daemon's call (UNAUTHORIZED token_missing), so it is sent. */
    jwtauthz_check_token(c, NULL, ARN_GET, NULL);
    pthread_mutex_lock(&f.lock);
    CHECK(strstr(f.last, "authorizationToken") == NULL);
    pthread_mutex_unlock(&f.lock);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

TEST(client_null_accessors_read_as_error)
{
    CHECK(jwtauthz_reply_verdict(NULL) == JWTAUTHZ_ERROR);
    CHECK(jwtauthz_reply_status(NULL) == 503);
    CHECK(jwtauthz_reply_principal(NULL) == NULL);
    CHECK(jwtauthz_reply_context_at(NULL, 0, NULL, NULL) == 0);
    CHECK(jwtauthz_reply_json(NULL, NULL) != NULL);
    CHECK(strcmp(jwtauthz_verdict_name((jwtauthz_verdict_t)77), "ERROR") == 0);
    jwtauthz_reply_free(NULL);
    jwtauthz_client_free(NULL);
}

/* ---- fork --------------------------------------------------------------------------------------
 */

TEST(client_after_fork_child_opens_its_own_connection)
{
    fake_t f;
    int status = -1;
    fake_start(&f, FAKE_ANSWER);
    jwtauthz_client_t *c = jwtauthz_client_new(f.path, 2000);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = jwtauthz_check_token(c, TOKEN, ARN_DELETE, NULL) == JWTAUTHZ_DENY;
        _exit(ok ? 0 : 1);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(jwtauthz_check_token(c, TOKEN, ARN_GET, NULL) == JWTAUTHZ_ALLOW);
    CHECK(atomic_load(&f.connections) == 2);
    jwtauthz_client_free(c);
    fake_stop(&f);
}

/* ---- sans-I/O ----------------------------------------------------------------------------------
 */

TEST(sans_io_pipelined_replies_in_order)
{
    fake_t f;
    struct sockaddr_un a;
    unsigned char out[3 * 512];
    size_t off = 0, len = 0;
    const char *ids[] = {"a", "b", "c"};
    const char *arns[] = {ARN_GET, ARN_DELETE, ARN_GET};
    jwtauthz_verdict_t want[] = {JWTAUTHZ_ALLOW, JWTAUTHZ_DENY, JWTAUTHZ_ALLOW};
    jwtauthz_str_t tok = {TOKEN, sizeof(TOKEN) - 1};

    for (int i = 0; i < 3; i++) {
        jwtauthz_str_t arn = {arns[i], strlen(arns[i])}, id = {ids[i], 1};
        CHECK(jwtauthz_encode_token(tok, arn, id, NULL, 0, &len) == JWTAUTHZ_E_SPACE && len > 4);
        CHECK(jwtauthz_encode_token(tok, arn, id, out + off, sizeof(out) - off, &len) ==
              JWTAUTHZ_OK);
        off += len;
    }
    fake_start(&f, FAKE_ANSWER);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", f.path);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(fd_write_full(fd, out, off));
    shutdown(fd, SHUT_WR);

    jwtauthz_decoder_t *d = jwtauthz_decoder_new(0);
    int got = 0;
    unsigned char byte;
    /* One byte at a time: every split the decoder can see. */
    while (got < 3 && recv(fd, &byte, 1, 0) == 1) {
        jwtauthz_reply_t *r;
        CHECK(jwtauthz_decoder_feed(d, &byte, 1) == JWTAUTHZ_OK);
        int st;
        while ((st = jwtauthz_decoder_next(d, &r)) == JWTAUTHZ_OK) {
            CHECK(got < 3 && jwtauthz_reply_verdict(r) == want[got]);
            CHECK(got < 3 && strcmp(jwtauthz_reply_id(r), ids[got]) == 0);
            CHECK(got < 3 && jwtauthz_reply_answers(r, ids[got]) &&
                  !jwtauthz_reply_answers(r, ids[(got + 1) % 3]));
            jwtauthz_reply_free(r);
            got++;
        }
        CHECK(st == JWTAUTHZ_NEED_MORE && r == NULL);
    }
    CHECK(got == 3 && jwtauthz_decoder_pending(d) == 0);
    jwtauthz_decoder_free(d);
    close(fd);
    fake_stop(&f);
}

TEST(sans_io_bad_frames_give_error_replies)
{
    jwtauthz_reply_t *r;
    jwtauthz_decoder_t *d = jwtauthz_decoder_new(0);
    CHECK(jwtauthz_decoder_feed(d, "\0\0\0\x05hello", 9) == JWTAUTHZ_OK);
    CHECK(jwtauthz_decoder_next(d, &r) == JWTAUTHZ_E_BAD_REPLY);
    CHECK(jwtauthz_reply_verdict(r) == JWTAUTHZ_ERROR && reason_is(r, "bad_reply"));
    jwtauthz_reply_free(r);
    CHECK(jwtauthz_decoder_feed(d, "\x00\x04\x00\x01", 4) == JWTAUTHZ_OK);
    CHECK(jwtauthz_decoder_next(d, &r) == JWTAUTHZ_E_BAD_REPLY);
    CHECK(jwtauthz_reply_status(r) == 503);
    jwtauthz_reply_free(r);
    CHECK(jwtauthz_decoder_pending(d) == 0);
    /* More bytes than any reply: refused, nothing taken. */
    static unsigned char flood[JWTAUTHZ_DECODER_MAX_BYTES + 1];
    CHECK(jwtauthz_decoder_feed(d, flood, sizeof(flood)) == JWTAUTHZ_E_BAD_REPLY);
    CHECK(jwtauthz_decoder_pending(d) == 0);
    jwtauthz_decoder_free(d);
}

/* A reply body of n bytes: an ALLOW whose principalId fills it (caller frees). */
static char *reply_of_size(size_t n)
{
    char *doc = malloc(n + 1);
    int head = snprintf(doc, n, "{\"verdict\":\"ALLOW\",\"status\":200,\"principalId\":\"");
    memset(doc + head, 'p', n - (size_t)head - 2);
    memcpy(doc + n - 2, "\"}", 3);
    return doc;
}

static int decode_one(const char *doc, size_t n, jwtauthz_reply_t **r)
{
    unsigned char hdr[4];
    be32_put(hdr, (uint32_t)n);
    jwtauthz_decoder_t *d = jwtauthz_decoder_new(0);
    int st = jwtauthz_decoder_feed(d, hdr, 4);
    if (st == JWTAUTHZ_OK) {
        st = jwtauthz_decoder_feed(d, doc, n);
    }
    if (st == JWTAUTHZ_OK) {
        st = jwtauthz_decoder_next(d, r);
    }
    jwtauthz_decoder_free(d);
    return st;
}

TEST(sans_io_reply_at_cap_accepted_cap_plus_one_refused)
{
    jwtauthz_reply_t *r = NULL;
    char *doc = reply_of_size(JWTAUTHZ_MAX_REPLY_BYTES);
    CHECK(decode_one(doc, JWTAUTHZ_MAX_REPLY_BYTES, &r) == JWTAUTHZ_OK);
    CHECK(jwtauthz_reply_verdict(r) == JWTAUTHZ_ALLOW);
    CHECK(jwtauthz_reply_principal(r) &&
          strlen(jwtauthz_reply_principal(r)) > JWTAUTHZ_MAX_REPLY_BYTES - 64);
    jwtauthz_reply_free(r);
    free(doc);
    r = NULL;
    doc = reply_of_size(JWTAUTHZ_MAX_REPLY_BYTES + 1);
    CHECK(decode_one(doc, JWTAUTHZ_MAX_REPLY_BYTES + 1, &r) == JWTAUTHZ_E_BAD_REPLY);
    CHECK(jwtauthz_reply_verdict(r) == JWTAUTHZ_ERROR && reason_is(r, "bad_reply"));
    jwtauthz_reply_free(r);
    free(doc);
}

TEST(sans_io_encode_errors)
{
    size_t len = 1;
    jwtauthz_str_t none = {NULL, 0}, arn = {"arn:x", 5};
    jwtauthz_str_t nul_arn = {"arn:\0x", 6};
    CHECK(jwtauthz_encode_token(none, none, none, NULL, 0, &len) == JWTAUTHZ_E_INVALID);
    CHECK(len == 0);
    CHECK(jwtauthz_encode_token(none, nul_arn, none, NULL, 0, &len) == JWTAUTHZ_E_INVALID);
    CHECK(jwtauthz_encode_request(NULL, none, NULL, 0, &len) == JWTAUTHZ_E_INVALID);
    CHECK(jwtauthz_encode_admin(JWTAUTHZ_ADMIN_REFRESH, none, none, NULL, 0, &len) ==
          JWTAUTHZ_E_INVALID);
    unsigned char small[8];
    CHECK(jwtauthz_encode_admin(JWTAUTHZ_ADMIN_RELOAD, none, none, small, sizeof(small), &len) ==
          JWTAUTHZ_E_SPACE);
    CHECK(len == 4 + strlen("{\"cmd\":\"reload\"}"));
    CHECK(jwtauthz_encode_token(none, arn, none, NULL, 0, &len) == JWTAUTHZ_E_SPACE);
    jwtauthz_reply_t *r = jwtauthz_reply_for_status(JWTAUTHZ_E_TIMEOUT, NULL);
    CHECK(jwtauthz_reply_verdict(r) == JWTAUTHZ_ERROR && reason_is(r, "daemon_timeout"));
    /* An ERROR without an id answers any request: it decides nothing. */
    CHECK(jwtauthz_reply_answers(r, "7") && !jwtauthz_reply_answers(r, NULL));
    jwtauthz_reply_free(r);
    r = jwtauthz_reply_for_status(JWTAUTHZ_E_TOKEN_TOO_LARGE, NULL);
    CHECK(jwtauthz_reply_verdict(r) == JWTAUTHZ_UNAUTHORIZED && jwtauthz_reply_status(r) == 401);
    jwtauthz_reply_free(r);
}

/* ---- the shared library's surface --------------------------------------------------------------
 */

TEST(library_exports_only_its_public_api)
{
    CHECK(dlsym(RTLD_DEFAULT, "jwtauthz_check_token") != NULL);
    CHECK(dlsym(RTLD_DEFAULT, "proto_frame_next") == NULL);
    CHECK(dlsym(RTLD_DEFAULT, "proto_msg_reply_decode") == NULL);
    CHECK(dlsym(RTLD_DEFAULT, "reply_decode") == NULL);
    CHECK(dlsym(RTLD_DEFAULT, "conn_open") == NULL);
    CHECK(jwtauthz_version() != NULL && jwtauthz_version()[0] != '\0');
}

int main(void)
{
    RUN(client_decision_reply_read_whole);
    RUN(client_request_type_sends_headers_joined);
    RUN(client_reply_split_into_single_bytes);
    RUN(client_admin_commands);
    RUN(admin_targeted_flush_without_target_is_not_sent);
    RUN(client_reconnects_after_daemon_closed_idle_connection);
    RUN(client_resends_once_when_reused_connection_drops_request);
    RUN(client_fresh_connection_closed_unanswered_is_unavailable);
    RUN(client_daemon_closes_mid_request_does_not_raise_sigpipe);
    RUN(client_no_answer_times_out_as_error);
    RUN(client_no_socket_is_unavailable);
    RUN(client_socket_path_too_long_refused);
    RUN(client_garbage_reply_is_error);
    RUN(client_zero_length_reply_frame_is_error);
    RUN(client_4gib_reply_frame_is_error_without_allocating);
    RUN(client_allow_without_our_id_is_not_believed);
    RUN(client_allow_for_another_request_is_not_believed);
    RUN(client_daemon_error_without_id_is_passed_on);
    RUN(client_unsolicited_second_reply_not_taken_for_next_call);
    RUN(client_late_duplicate_reply_never_allows_next_call);
    RUN(client_bad_arguments_are_errors_not_sent);
    RUN(client_null_accessors_read_as_error);
    RUN(client_after_fork_child_opens_its_own_connection);
    RUN(sans_io_pipelined_replies_in_order);
    RUN(sans_io_bad_frames_give_error_replies);
    RUN(sans_io_reply_at_cap_accepted_cap_plus_one_refused);
    RUN(sans_io_encode_errors);
    RUN(library_exports_only_its_public_api);
    return harness_report();
}
