/* The replay driver: a main() that runs a harness's LLVMFuzzerTestOneInput over every file of the
 * corpus directories (or single files) on its command line, so the seed corpora and every fixed
 * crash run in the ordinary test suite, with gcc and without libFuzzer. It does no mutation.
 * Each input is copied into a buffer of exactly its size, as libFuzzer does, so a sanitizer build
 * sees a read past its end. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/fuzz.h"

/* libFuzzer's own -max_len default is far below this; a bigger file is a mistake in the corpus,
 * not an input worth reading whole. */
#define REPLAY_MAX_INPUT_BYTES (4u * 1024u * 1024u)

/* Defined only by the harnesses that set something up once (a key set). */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    unsigned char *buf;
    size_t got;

    if (fp == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(fp), &st) != 0 || st.st_size < 0 ||
        (unsigned long long)st.st_size > REPLAY_MAX_INPUT_BYTES) {
        fprintf(stderr, "replay: %s: unreadable or over %u bytes\n", path, REPLAY_MAX_INPUT_BYTES);
        fclose(fp);
        return -1;
    }
    /* malloc(0) may return NULL; libFuzzer hands a harness a non-NULL pointer even for 0 bytes. */
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        fclose(fp);
        return -1;
    }
    got = fread(buf, 1, (size_t)st.st_size, fp);
    fclose(fp);
    if (got != (size_t)st.st_size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Replays the regular files of dir in name order (a failure then names the same file every run).
 * Returns the number replayed, or -1. */
static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, room = 0;
    long done = 0;

    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue; /* ., .. and editor droppings */
        }
        if (n == room) {
            room = room ? room * 2 : 64;
            char **grown = realloc(names, room * sizeof(*names));
            if (grown == NULL) {
                done = -1;
                break;
            }
            names = grown;
        }
        names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (names[n] == NULL) {
            done = -1;
            break;
        }
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (done == 0) {
        qsort(names, n, sizeof(*names), name_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (done >= 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            done = replay_file(names[i]) == 0 ? done + 1 : -1;
        }
        free(names[i]);
    }
    free(names);
    return done;
}

int main(int argc, char **argv)
{
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : (replay_file(argv[i]) == 0 ? 1 : -1);
        if (n < 0) {
            return 1;
        }
        total += n;
    }
    /* An empty corpus would make the test pass while replaying nothing. */
    if (total == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replayed %ld inputs\n", total);
    return 0;
}
