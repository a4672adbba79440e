/* fault_client: a well-behaved web server worker for the fault tests (tests/faults). THREADS
 * threads, each with its own libjwtauthz client (as each mod_jwtauthz worker has), ask for
 * decisions in a loop for DURATION ms, alternating a valid token with an invalid one, and report
 * what they saw. It observes and never judges: the Python test decides what is acceptable.
 *
 * Output, one JSON object per line on stdout:
 *   {"event":"change","thread":N,"at":EPOCH_S,"verdict":V,"status":S,"reason":R}
 *       each time the answer a thread gets for the valid token changes (daemon gone, back);
 *   {"event":"summary","calls":N,"good":{...},"bad":{...},"bad_allowed":N,"max_us":N,...}
 *       once at the end: verdict counts per token, latency quantiles of every call.
 * Usage: fault_client -s SOCKET -r ARN -g AUTHORIZATION [-b AUTHORIZATION] [-t TIMEOUT_MS]
 *                     [-d DURATION_MS] [-n THREADS] [-p PAUSE_US] */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jwtauthz.h"

/* A loop of clients, not a load generator: a handful of threads is what one web server host
 * puts on the socket at once. */
#define FC_MAX_THREADS 64
/* Room for the latency of every call of a 10-minute run at full speed, grown on demand. */
#define FC_LATENCY_INITIAL 65536u
#define FC_REASON_BYTES 64

typedef struct fc_counts {
    uint64_t verdict[4]; /* indexed by jwtauthz_verdict_t */
} fc_counts_t;

typedef struct fc_thread {
    pthread_t tid;
    unsigned index;
    fc_counts_t good, bad;
    uint64_t bad_allowed;
    uint32_t *lat_us;
    size_t nlat, caplat;
    int failed; /* out of memory: the run is void */
} fc_thread_t;

static struct {
    const char *socket_path, *arn, *good, *bad;
    int timeout_ms;
    long duration_ms;
    long pause_us;
    unsigned nthreads;
    uint64_t end_ns;
    pthread_mutex_t out_lock;
} fc = {.timeout_ms = 1000, .duration_ms = 5000, .nthreads = 4};

static volatile sig_atomic_t fc_stop;

static uint64_t fc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double fc_epoch_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fc_on_signal(int sig)
{
    (void)sig;
    fc_stop = 1;
}

static void fc_record_latency(fc_thread_t *t, uint64_t ns)
{
    if (t->nlat == t->caplat) {
        size_t cap = t->caplat ? t->caplat * 2 : FC_LATENCY_INITIAL;
        uint32_t *p = realloc(t->lat_us, cap * sizeof(*p));
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->lat_us = p;
        t->caplat = cap;
    }
    uint64_t us = ns / 1000u;
    t->lat_us[t->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* One call; returns its verdict and copies status and reason out of the reply. */
static jwtauthz_verdict_t fc_call(fc_thread_t *t, jwtauthz_client_t *c, const char *auth,
                                  int *status, char reason[FC_REASON_BYTES])
{
    jwtauthz_reply_t *reply = NULL;
    uint64_t t0 = fc_mono_ns();
    jwtauthz_verdict_t v = jwtauthz_check_token(c, auth, fc.arn, &reply);
    fc_record_latency(t, fc_mono_ns() - t0);
    *status = reply ? jwtauthz_reply_status(reply) : 0;
    const char *r = reply ? jwtauthz_reply_reason(reply) : NULL;
    snprintf(reason, FC_REASON_BYTES, "%s", r ? r : "");
    jwtauthz_reply_free(reply);
    return (unsigned)v < 4 ? v : JWTAUTHZ_ERROR;
}

static void *fc_thread_main(void *data)
{
    fc_thread_t *t = data;
    jwtauthz_client_t *c = jwtauthz_client_new(fc.socket_path, fc.timeout_ms);
    jwtauthz_verdict_t last_v = (jwtauthz_verdict_t)-1;
    int last_status = -1;
    char last_reason[FC_REASON_BYTES] = "";
    if (c == NULL) {
        t->failed = 1;
        return NULL;
    }
    while (!fc_stop && fc_mono_ns() < fc.end_ns && !t->failed) {
        int status;
        char reason[FC_REASON_BYTES];
        jwtauthz_verdict_t v = fc_call(t, c, fc.good, &status, reason);
        t->good.verdict[v]++;
        if (v != last_v || status != last_status || strcmp(reason, last_reason) != 0) {
            pthread_mutex_lock(&fc.out_lock);
            printf("{\"event\":\"change\",\"thread\":%u,\"at\":%.3f,\"verdict\":\"%s\","
                   "\"status\":%d,\"reason\":\"%s\"}\n",
                   t->index, fc_epoch_s(), jwtauthz_verdict_name(v), status, reason);
            fflush(stdout);
            pthread_mutex_unlock(&fc.out_lock);
            last_v = v;
            last_status = status;
            memcpy(last_reason, reason, sizeof(last_reason));
        }
        if (fc.bad != NULL) {
            v = fc_call(t, c, fc.bad, &status, reason);
            t->bad.verdict[v]++;
            t->bad_allowed += v == JWTAUTHZ_ALLOW;
        }
        if (fc.pause_us > 0) {
            usleep((useconds_t)fc.pause_us);
        }
    }
    jwtauthz_client_free(c);
    return NULL;
}

static int fc_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void fc_print_counts(const char *name, const fc_counts_t *c)
{
    printf("\"%s\":{\"ALLOW\":%llu,\"DENY\":%llu,\"UNAUTHORIZED\":%llu,\"ERROR\":%llu}", name,
           (unsigned long long)c->verdict[JWTAUTHZ_ALLOW],
           (unsigned long long)c->verdict[JWTAUTHZ_DENY],
           (unsigned long long)c->verdict[JWTAUTHZ_UNAUTHORIZED],
           (unsigned long long)c->verdict[JWTAUTHZ_ERROR]);
}

static uint32_t fc_quantile(const uint32_t *sorted, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)((double)n * q);
    return sorted[i < n ? i : n - 1];
}

static int fc_report(fc_thread_t *threads)
{
    fc_counts_t good = {{0}}, bad = {{0}};
    uint64_t bad_allowed = 0;
    size_t n = 0;
    int failed = 0;
    for (unsigned i = 0; i < fc.nthreads; i++) {
        for (int v = 0; v < 4; v++) {
            good.verdict[v] += threads[i].good.verdict[v];
            bad.verdict[v] += threads[i].bad.verdict[v];
        }
        bad_allowed += threads[i].bad_allowed;
        n += threads[i].nlat;
        failed |= threads[i].failed;
    }
    uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
    if (all == NULL) {
        return 1;
    }
    size_t k = 0;
    for (unsigned i = 0; i < fc.nthreads; i++) {
        memcpy(all + k, threads[i].lat_us, threads[i].nlat * sizeof(*all));
        k += threads[i].nlat;
    }
    qsort(all, n, sizeof(*all), fc_cmp_u32);
    printf("{\"event\":\"summary\",\"calls\":%zu,", n);
    fc_print_counts("good", &good);
    putchar(',');
    fc_print_counts("bad", &bad);
    printf(",\"bad_allowed\":%llu,\"p50_us\":%u,\"p99_us\":%u,\"p999_us\":%u,\"max_us\":%u,"
           "\"failed\":%s}\n",
           (unsigned long long)bad_allowed, fc_quantile(all, n, 0.50), fc_quantile(all, n, 0.99),
           fc_quantile(all, n, 0.999), n ? all[n - 1] : 0, failed ? "true" : "false");
    free(all);
    return failed;
}

static void fc_usage(void)
{
    fprintf(stderr, "usage: fault_client -s SOCKET -r ARN -g AUTHORIZATION [-b AUTHORIZATION] "
                    "[-t TIMEOUT_MS] [-d DURATION_MS] [-n THREADS] [-p PAUSE_US]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "s:r:g:b:t:d:n:p:")) != -1) {
        switch (opt) {
        case 's':
            fc.socket_path = optarg;
            break;
        case 'r':
            fc.arn = optarg;
            break;
        case 'g':
            fc.good = optarg;
            break;
        case 'b':
            fc.bad = optarg;
            break;
        case 't':
            fc.timeout_ms = atoi(optarg);
            break;
        case 'd':
            fc.duration_ms = atol(optarg);
            break;
        case 'n':
            fc.nthreads = (unsigned)atoi(optarg);
            break;
        case 'p':
            fc.pause_us = atol(optarg);
            break;
        default:
            fc_usage();
        }
    }
    if (fc.socket_path == NULL || fc.arn == NULL || fc.good == NULL || fc.nthreads == 0 ||
        fc.nthreads > FC_MAX_THREADS || fc.duration_ms <= 0 || optind != argc) {
        fc_usage();
    }
    signal(SIGTERM, fc_on_signal);
    signal(SIGINT, fc_on_signal);
    /* Only the main thread takes SIGTERM: a worker's poll() cut short by it would end a call
     * early and report an ERROR the daemon never gave. Workers inherit the blocked mask. */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    pthread_mutex_init(&fc.out_lock, NULL);
    fc.end_ns = fc_mono_ns() + (uint64_t)fc.duration_ms * 1000000u;
    fc_thread_t threads[FC_MAX_THREADS];
    memset(threads, 0, sizeof(threads));
    for (unsigned i = 0; i < fc.nthreads; i++) {
        threads[i].index = i;
        int e = pthread_create(&threads[i].tid, NULL, fc_thread_main, &threads[i]);
        if (e != 0) {
            fprintf(stderr, "fault_client: pthread_create: %s\n", strerror(e));
            return 1;
        }
    }
    pthread_sigmask(SIG_UNBLOCK, &stop_sigs, NULL);
    for (unsigned i = 0; i < fc.nthreads; i++) {
        pthread_join(threads[i].tid, NULL);
    }
    int rc = fc_report(threads);
    for (unsigned i = 0; i < fc.nthreads; i++) {
        free(threads[i].lat_us);
    }
    return rc;
}
