/* bench_loadgen: a closed-loop load generator for jwtauthzd (or the ping-pong anchor). One epoll
 * thread drives N persistent AF_UNIX connections; each sends one TOKEN frame, waits for its reply,
 * sends the next. Tokens come from a pre-minted file (round-robin, or each once) or are minted
 * HS256 on the fly (the memory fill). Prints one JSON object: throughput, a latency histogram's
 * quantiles, and the server's CPU time over the measured window (the kernel's accounting of --pid:
 * its process CPU clock, and utime+stime from /proc/PID/stat). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_tokens.h"

/* A reply larger than this is a protocol error for the benchmark (the daemon's cap is 64 KiB). */
#define LG_REPLY_MAX_BYTES 65536u
/* The request around the token. */
#define LG_FRAME_MAX_BYTES (BENCH_TOKEN_MAX_BYTES + 512u)
#define LG_MAX_CLIENTS 1024u
/* The methodArn every request carries (API Gateway's are well under this). */
#define LG_ARN_MAX_BYTES 256u
/* HS256 tokens (the memory fill) live this long: past any fill, and the cache's ttl cap. */
#define LG_HS256_EXP_IN_S 86400
/* Latency histogram: 2^6 sub-buckets per octave of nanoseconds, i.e. within 1.6 %. */
#define LG_HIST_SUB_BITS 6u
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
#define LG_HIST_BUCKETS (LG_HIST_SUB * 40u)

typedef struct lg_conn {
    int fd;
    uint64_t sent_ns;
    size_t req_len; /* its body bytes */
    size_t in_len;
    unsigned char *in;
} lg_conn_t;

typedef struct lg_tokens {
    char **tok; /* file mode */
    size_t *len;
    unsigned long n;       /* how many to use */
    bench_minter_t minter; /* HS256 on-the-fly mode */
    int minting;
    unsigned long start; /* minting: first index */
} lg_tokens_t;

typedef struct lg_stats {
    uint64_t hist[LG_HIST_BUCKETS];
    uint64_t requests, allow, other, cached, lat_sum_ns, lat_max_ns;
    uint64_t req_bytes, reply_bytes;
} lg_stats_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned hist_index(uint64_t ns)
{
    if (ns < LG_HIST_SUB) {
        return (unsigned)ns;
    }
    unsigned hi = 63u - (unsigned)__builtin_clzll(ns);
    unsigned shift = hi - LG_HIST_SUB_BITS;
    unsigned idx = (shift + 1u) * LG_HIST_SUB + (unsigned)((ns >> shift) - LG_HIST_SUB);
    return idx < LG_HIST_BUCKETS ? idx : LG_HIST_BUCKETS - 1u;
}

/* The bucket's upper bound: quantiles are reported on the pessimistic side. */
static uint64_t hist_upper(unsigned idx)
{
    if (idx < LG_HIST_SUB) {
        return idx + 1u;
    }
    unsigned shift = idx / LG_HIST_SUB - 1u;
    uint64_t m = idx % LG_HIST_SUB + LG_HIST_SUB;
    return (m + 1u) << shift;
}

static double hist_quantile_us(const lg_stats_t *s, double q)
{
    uint64_t want = (uint64_t)((double)s->requests * q), seen = 0;
    if (want >= s->requests) {
        want = s->requests ? s->requests - 1 : 0;
    }
    for (unsigned b = 0; b < LG_HIST_BUCKETS; b++) {
        seen += s->hist[b];
        if (seen > want) {
            return (double)hist_upper(b) / 1000.0;
        }
    }
    return 0;
}

/* The server's CPU seconds two ways: its process CPU clock (ns) and /proc/PID/stat's
 * utime+stime (clock ticks). Both are the kernel's accounting of all its threads. */
static int server_cpu(int pid, double *clock_s, double *stat_s)
{
    clockid_t cid;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &cid) != 0 || clock_gettime(cid, &ts) != 0) {
        return -1;
    }
    *clock_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    buf[n] = '\0';
    /* Fields after the ")" that ends comm: state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return -1;
    }
    *stat_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

/* CPU seconds the whole box spent busy (all CPUs, from /proc/stat): what is left after the
 * server's and our own is other processes', which the report shows as the run's noise. */
static double box_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                       &v[4], &v[5], &v[6], &v[7])
              : 0;
    if (f) {
        fclose(f);
    }
    if (n != 8) {
        return 0;
    }
    /* user nice system [idle iowait] irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double own_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tokens_load(lg_tokens_t *t, const char *path, unsigned long skip, unsigned long first)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 1024;
    t->tok = malloc(cap * sizeof(*t->tok));
    t->len = malloc(cap * sizeof(*t->len));
    char line[BENCH_TOKEN_MAX_BYTES + 2];
    while (t->tok && t->len && (first == 0 || t->n < first) && fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\r\n");
        if (n == 0 || (skip > 0 && skip--)) {
            continue;
        }
        if (t->n == cap) {
            cap *= 2;
            char **nt = realloc(t->tok, cap * sizeof(*t->tok));
            t->tok = nt ? nt : t->tok;
            size_t *nl = nt ? realloc(t->len, cap * sizeof(*t->len)) : NULL;
            if (nl == NULL) {
                break;
            }
            t->len = nl;
        }
        t->tok[t->n] = malloc(n);
        if (t->tok[t->n] == NULL) {
            break;
        }
        memcpy(t->tok[t->n], line, n);
        t->len[t->n++] = n;
    }
    fclose(f);
    if (t->n == 0) {
        fprintf(stderr, "bench_loadgen: %s: no tokens\n", path);
        return -1;
    }
    return 0;
}

static const char lg_prefix[] = "{\"type\":\"TOKEN\",\"authorizationToken\":\"Bearer ";

/* Builds the request frame for token k into out; returns its length (header included). */
static size_t frame_build(lg_tokens_t *t, unsigned long k, const char *arn, unsigned char *out)
{
    char minted[BENCH_TOKEN_MAX_BYTES];
    const char *tok;
    size_t tlen;
    if (t->minting) {
        tlen = bench_mint(&t->minter, NULL, t->start + k, minted, sizeof(minted));
        tok = minted;
    } else {
        tok = t->tok[k % t->n];
        tlen = t->len[k % t->n];
    }
    size_t n = 4;
    memcpy(out + n, lg_prefix, sizeof(lg_prefix) - 1);
    n += sizeof(lg_prefix) - 1;
    memcpy(out + n, tok, tlen);
    n += tlen;
    n += (size_t)snprintf((char *)out + n, LG_FRAME_MAX_BYTES - n, "\",\"methodArn\":\"%s\"}", arn);
    uint32_t body = (uint32_t)(n - 4);
    out[0] = (unsigned char)(body >> 24);
    out[1] = (unsigned char)(body >> 16);
    out[2] = (unsigned char)(body >> 8);
    out[3] = (unsigned char)body;
    return n;
}

/* Writes the whole frame; the socket buffer takes a ~1 KiB frame at once, so waiting here for
 * room (poll-free, by retrying) happens only if the server stops reading. */
static int send_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_loadgen --socket PATH\n"
            "         (--tokens FILE [--skip N] [--first K] |\n"
            "          --hs256 KEY_FILE --count N [--start I] [--kid K] [--iss I] [--aud A])\n"
            "         [--once] [--spin] [--clients N] [--seconds S] [--warmup S] [--pid PID]\n"
            "         [--arn ARN]\n");
}

typedef struct lg_opts {
    const char *sock_path, *tokens_path, *hs_key, *kid, *iss, *aud, *arn;
    unsigned long first, skip, count, start;
    unsigned clients;
    int once, spin, pid;
    double seconds, warmup;
} lg_opts_t;

static int opts_parse(lg_opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->kid = "hs256-1";
    o->iss = "https://bench.test/";
    o->aud = "api://bench";
    o->arn = "arn:aws:execute-api:local:0:api/prod/GET/orders/42";
    o->clients = 32;
    o->seconds = 10;
    o->warmup = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--once") == 0) {
            o->once = 1;
            continue;
        }
        if (strcmp(a, "--spin") == 0) {
            o->spin = 1;
            continue;
        }
        if (v == NULL) {
            return -1;
        }
        i++;
        if (strcmp(a, "--socket") == 0) {
            o->sock_path = v;
        } else if (strcmp(a, "--tokens") == 0) {
            o->tokens_path = v;
        } else if (strcmp(a, "--first") == 0) {
            o->first = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--skip") == 0) {
            o->skip = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--hs256") == 0) {
            o->hs_key = v;
        } else if (strcmp(a, "--count") == 0) {
            o->count = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--start") == 0) {
            o->start = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--kid") == 0) {
            o->kid = v;
        } else if (strcmp(a, "--iss") == 0) {
            o->iss = v;
        } else if (strcmp(a, "--aud") == 0) {
            o->aud = v;
        } else if (strcmp(a, "--clients") == 0) {
            o->clients = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = atof(v);
        } else if (strcmp(a, "--warmup") == 0) {
            o->warmup = atof(v);
        } else if (strcmp(a, "--pid") == 0) {
            o->pid = atoi(v);
        } else if (strcmp(a, "--arn") == 0) {
            o->arn = v;
        } else {
            return -1;
        }
    }
    if (o->sock_path == NULL || (o->tokens_path == NULL) == (o->hs_key == NULL) ||
        o->clients == 0 || o->clients > LG_MAX_CLIENTS || strlen(o->arn) > LG_ARN_MAX_BYTES ||
        (o->hs_key && o->count == 0)) {
        return -1;
    }
    /* HS256 tokens are minted as they are sent (a million need not sit in memory), each once. */
    o->once |= o->hs_key != NULL;
    return 0;
}

static int conns_open(const lg_opts_t *o, int ep, lg_conn_t *conns)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(o->sock_path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "bench_loadgen: socket path too long\n");
        return -1;
    }
    strcpy(sa.sun_path, o->sock_path);
    for (unsigned c = 0; c < o->clients; c++) {
        conns[c].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        conns[c].in = malloc(LG_REPLY_MAX_BYTES + 4);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c};
        if (conns[c].fd < 0 || conns[c].in == NULL ||
            connect(conns[c].fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, conns[c].fd, &ev) != 0) {
            fprintf(stderr, "bench_loadgen: connect %s: %s\n", o->sock_path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* The measured window's edges: wall clock, the server's CPU, ours, the box's. */
typedef struct lg_mark {
    uint64_t t_ns;
    double server_s, server_stat_s, own_s, box_s;
} lg_mark_t;

static int mark_take(lg_mark_t *m, int pid, uint64_t t)
{
    m->t_ns = t;
    m->own_s = own_cpu_s();
    m->box_s = box_busy_s();
    if (pid && server_cpu(pid, &m->server_s, &m->server_stat_s) != 0) {
        fprintf(stderr, "bench_loadgen: cannot read the CPU time of pid %d\n", pid);
        return -1;
    }
    return 0;
}

/* Counts one reply of the measured window: latency, verdict, whether it says it came from the
 * cache. Keeps the first reply that is not ALLOW for the error message. */
static void reply_count(lg_stats_t *st, const lg_conn_t *c, size_t body, uint64_t t,
                        char *first_bad, size_t first_bad_size)
{
    static const char allow[] = "{\"verdict\":\"ALLOW\"";
    uint64_t lat = t - c->sent_ns;
    st->hist[hist_index(lat)]++;
    st->requests++;
    st->lat_sum_ns += lat;
    st->lat_max_ns = lat > st->lat_max_ns ? lat : st->lat_max_ns;
    st->reply_bytes += body;
    st->req_bytes += c->req_len;
    if (body >= sizeof(allow) - 1 && memcmp(c->in + 4, allow, sizeof(allow) - 1) == 0) {
        st->allow++;
    } else if (st->other++ == 0) {
        snprintf(first_bad, first_bad_size, "%.*s", (int)(body < 200 ? body : 200),
                 (const char *)c->in + 4);
    }
    if (memmem(c->in + 4, body, "\"cached\":true", 13) != NULL) {
        st->cached++;
    }
}

static int request_send(lg_tokens_t *toks, const lg_opts_t *o, lg_conn_t *c, unsigned long k,
                        unsigned char *frame)
{
    size_t n = frame_build(toks, k, o->arn, frame);
    if (n == 0) {
        fprintf(stderr, "bench_loadgen: minting failed\n");
        return -1;
    }
    c->sent_ns = now_ns();
    c->req_len = n - 4;
    if (send_all(c->fd, frame, n) != 0) {
        perror("bench_loadgen: send");
        return -1;
    }
    return 0;
}

/* The closed loop. Phases: warm-up (not counted), then the measured window, which ends after
 * `seconds` or, with --once, when the last token's reply is in. Replies still in flight at the
 * end of a timed window are drained but not counted. */
static int run(const lg_opts_t *o, lg_tokens_t *toks, int ep, lg_conn_t *conns, lg_stats_t *st,
               lg_mark_t *m0, lg_mark_t *m1)
{
    static struct epoll_event evs[LG_MAX_CLIENTS];
    static unsigned char frame[LG_FRAME_MAX_BYTES];
    char first_bad[256] = "";
    unsigned long next = 0;
    unsigned inflight = 0;
    int measuring = o->warmup <= 0, stopping = 0;
    uint64_t t_start = now_ns();
    if (measuring && mark_take(m0, o->pid, t_start) != 0) {
        return -1;
    }
    for (unsigned c = 0; c < o->clients && !(o->once && next >= toks->n); c++) {
        if (request_send(toks, o, &conns[c], next++, frame) != 0) {
            return -1;
        }
        inflight++;
    }
    while (inflight > 0) {
        /* --spin: poll without sleeping, so a reply never has to wake this process up (a
         * cross-CPU wake-up the kernel charges to the sender: the server). */
        int ne = epoll_wait(ep, evs, (int)o->clients, o->spin ? 0 : 1000);
        if (ne < 0 && errno != EINTR) {
            perror("bench_loadgen: epoll_wait");
            return -1;
        }
        for (int e = 0; e < ne; e++) {
            lg_conn_t *c = &conns[evs[e].data.u32];
            ssize_t r = read(c->fd, c->in + c->in_len, LG_REPLY_MAX_BYTES + 4 - c->in_len);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                    continue;
                }
                fprintf(stderr, "bench_loadgen: the server closed a connection\n");
                return -1;
            }
            c->in_len += (size_t)r;
            if (c->in_len < 4) {
                continue;
            }
            size_t body =
                (size_t)c->in[0] << 24 | (size_t)c->in[1] << 16 | (size_t)c->in[2] << 8 | c->in[3];
            /* Closed loop: one request in flight, so never more than one reply's bytes. */
            if (body == 0 || body > LG_REPLY_MAX_BYTES || c->in_len > body + 4) {
                fprintf(stderr, "bench_loadgen: bad reply frame\n");
                return -1;
            }
            if (c->in_len < body + 4) {
                continue;
            }
            uint64_t t = now_ns();
            c->in_len = 0;
            inflight--;
            if (measuring && !stopping) {
                reply_count(st, c, body, t, first_bad, sizeof(first_bad));
            }
            if (!measuring && (double)(t - t_start) / 1e9 >= o->warmup) {
                measuring = 1;
                if (mark_take(m0, o->pid, t) != 0) {
                    return -1;
                }
            }
            if (measuring && !stopping && !o->once && (double)(t - m0->t_ns) / 1e9 >= o->seconds) {
                stopping = 1;
                if (mark_take(m1, o->pid, t) != 0) {
                    return -1;
                }
            }
            if (stopping || (o->once && next >= toks->n)) {
                continue;
            }
            if (request_send(toks, o, c, next++, frame) != 0) {
                return -1;
            }
            inflight++;
        }
    }
    if (!stopping && mark_take(m1, o->pid, now_ns()) != 0) {
        return -1;
    }
    if (st->other) {
        fprintf(stderr, "bench_loadgen: %llu replies were not ALLOW; the first: %s\n",
                (unsigned long long)st->other, first_bad);
    }
    return 0;
}

static void report_print(const lg_opts_t *o, const lg_tokens_t *toks, const lg_stats_t *st,
                         const lg_mark_t *m0, const lg_mark_t *m1)
{
    double wall = (double)(m1->t_ns - m0->t_ns) / 1e9, reqs = (double)st->requests;
    double server = m1->server_s - m0->server_s, own = m1->own_s - m0->own_s;
    printf("{\"clients\":%u,\"mode\":\"%s\",\"spin\":%d,\"tokens\":%lu,\"requests\":%llu,"
           "\"seconds\":%.3f,\"rps\":%.1f,",
           o->clients, o->once ? "once" : "cycle", o->spin, toks->n,
           (unsigned long long)st->requests, wall, wall > 0 ? reqs / wall : 0);
    printf("\"latency_us\":{\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,"
           "\"max\":%.2f},",
           reqs > 0 ? (double)st->lat_sum_ns / reqs / 1000.0 : 0, hist_quantile_us(st, 0.50),
           hist_quantile_us(st, 0.90), hist_quantile_us(st, 0.99), hist_quantile_us(st, 0.999),
           (double)st->lat_max_ns / 1000.0);
    printf("\"allow\":%llu,\"not_allow\":%llu,\"cached\":%llu,\"request_bytes\":%.1f,"
           "\"reply_bytes\":%.1f,",
           (unsigned long long)st->allow, (unsigned long long)st->other,
           (unsigned long long)st->cached, reqs > 0 ? (double)st->req_bytes / reqs : 0,
           reqs > 0 ? (double)st->reply_bytes / reqs : 0);
    printf("\"server_cpu_s\":%.4f,\"server_stat_cpu_s\":%.2f,\"server_cpu_us_per_req\":%.3f,"
           "\"server_cpu_util\":%.3f,\"client_cpu_s\":%.3f,\"others_cpu_s\":%.2f}\n",
           server, m1->server_stat_s - m0->server_stat_s, reqs > 0 ? server / reqs * 1e6 : 0,
           wall > 0 ? server / wall : 0, own, (m1->box_s - m0->box_s) - server - own);
}

int main(int argc, char **argv)
{
    lg_opts_t o;
    if (opts_parse(&o, argc, argv) != 0) {
        usage();
        return 2;
    }
    lg_tokens_t toks;
    memset(&toks, 0, sizeof(toks));
    if (o.hs_key) {
        if (bench_minter_init(&toks.minter, BENCH_ALG_HS256, o.hs_key, o.kid, o.iss, o.aud,
                              LG_HS256_EXP_IN_S) != 0) {
            return 1;
        }
        toks.minting = 1;
        toks.n = o.count;
        toks.start = o.start;
    } else if (tokens_load(&toks, o.tokens_path, o.skip, o.first) != 0) {
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    lg_conn_t *conns = calloc(o.clients, sizeof(*conns));
    lg_stats_t *st = calloc(1, sizeof(*st));
    if (ep < 0 || conns == NULL || st == NULL) {
        perror("bench_loadgen");
        return 1;
    }
    lg_mark_t m0, m1;
    memset(&m0, 0, sizeof(m0));
    memset(&m1, 0, sizeof(m1));
    if (conns_open(&o, ep, conns) != 0 || run(&o, &toks, ep, conns, st, &m0, &m1) != 0) {
        return 1;
    }
    report_print(&o, &toks, st, &m0, &m1);
    return st->other ? 3 : 0;
}
