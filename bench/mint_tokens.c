/* bench_mint_tokens: pre-mints N distinct signed tokens, one a line, for the daemon benchmarks
 * (uncached decisions need a token the daemon has never seen for every request). RS256 signing
 * costs ~20x a verify, so it runs on every core before the measured run, never during it.
 * Usage: bench_mint_tokens ALG KEY_FILE KID ISS AUD COUNT THREADS EXP_IN_S > tokens.txt */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_tokens.h"

typedef struct mint_job {
    const bench_minter_t *m;
    unsigned long from, to;
    char *text; /* the job's tokens, newline-separated */
    size_t len;
    int failed;
} mint_job_t;

static void *mint_run(void *arg)
{
    mint_job_t *j = arg;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t cap = (j->to - j->from) * (BENCH_TOKEN_MAX_BYTES / 2) + BENCH_TOKEN_MAX_BYTES;
    j->text = malloc(cap);
    if (md == NULL || j->text == NULL) {
        j->failed = 1;
        EVP_MD_CTX_free(md);
        return NULL;
    }
    for (unsigned long i = j->from; i < j->to; i++) {
        if (cap - j->len < BENCH_TOKEN_MAX_BYTES + 1) {
            char *bigger = realloc(j->text, cap * 2);
            if (bigger == NULL) {
                j->failed = 1;
                break;
            }
            j->text = bigger;
            cap *= 2;
        }
        size_t n = bench_mint(j->m, md, i, j->text + j->len, cap - j->len);
        if (n == 0) {
            j->failed = 1;
            break;
        }
        j->len += n;
        j->text[j->len++] = '\n';
    }
    EVP_MD_CTX_free(md);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: bench_mint_tokens RS256|HS256 KEY_FILE KID ISS AUD COUNT THREADS "
                        "EXP_IN_S > tokens.txt\n");
        return 2;
    }
    bench_alg_e alg = strcmp(argv[1], "HS256") == 0 ? BENCH_ALG_HS256 : BENCH_ALG_RS256;
    unsigned long count = strtoul(argv[6], NULL, 10);
    unsigned threads = (unsigned)strtoul(argv[7], NULL, 10);
    if (threads < 1 || threads > 64 || count == 0) {
        fprintf(stderr, "bench_mint_tokens: COUNT > 0 and THREADS 1-64\n");
        return 2;
    }
    bench_minter_t m;
    if (bench_minter_init(&m, alg, argv[2], argv[3], argv[4], argv[5], atol(argv[8])) != 0) {
        return 1;
    }
    pthread_t tid[64];
    mint_job_t jobs[64];
    memset(jobs, 0, sizeof(jobs));
    for (unsigned t = 0; t < threads; t++) {
        jobs[t].m = &m;
        jobs[t].from = count * t / threads;
        jobs[t].to = count * (t + 1) / threads;
        if (pthread_create(&tid[t], NULL, mint_run, &jobs[t]) != 0) {
            fprintf(stderr, "bench_mint_tokens: pthread_create failed\n");
            return 1;
        }
    }
    int rc = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
    }
    /* In index order, so line k is token k: the load generator's "first K" means the same
     * tokens in every run. */
    for (unsigned t = 0; t < threads; t++) {
        if (jobs[t].failed || fwrite(jobs[t].text, 1, jobs[t].len, stdout) != jobs[t].len) {
            fprintf(stderr, "bench_mint_tokens: minting or writing failed\n");
            rc = 1;
        }
        free(jobs[t].text);
    }
    bench_minter_free(&m);
    return rc;
}
