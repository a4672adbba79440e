/* The epoch file: how jwtauthzd tells the web server modules on the same host, with one memory
 * load, that something which could change a decision has happened since a decision was made
 * (a flush, a reload, a withdrawn or expired key, a restart). The layout only: the daemon writes
 * it (daemon/epoch_file.c), ngx_http_jwtauthz_module reads it (client/nginx/..._cache.c). No I/O
 * here, and nothing beyond libc's fixed-width types. */
#ifndef JWTAUTHZ_PROTO_EPOCH_H
#define JWTAUTHZ_PROTO_EPOCH_H

#include <stdint.h>

/* The file is the decision socket's path with this appended ("/run/jwtauthz/jwtauthz.sock"
 * -> "/run/jwtauthz/jwtauthz.sock.epoch"): a module that knows the socket knows the file. */
#define PROTO_EPOCH_SUFFIX ".epoch"

/* The first 16 bytes. Version 1 of the layout below; a reader that does not find these exact
 * bytes (a stranger's file, a later layout) must not trust anything else in the file. */
#define PROTO_EPOCH_MAGIC "JWTAUTHZEPOCH1\0\0"
#define PROTO_EPOCH_MAGIC_BYTES 16u

/* The daemon sizes the file to one page (and never shrinks it), so a reader that mapped it
 * after checking its size can never touch a page past its end (SIGBUS). */
#define PROTO_EPOCH_FILE_BYTES 4096u

/* At offset 0, native byte order (the file never leaves the host). The two counters are
 * naturally aligned 64-bit words, written and read with __atomic builtins: the daemon adds with
 * __ATOMIC_RELEASE after the change is in place, readers load with __ATOMIC_ACQUIRE.
 * - instance: random, new at every daemon start. A decision is only as good as the process that
 *   made it: a different instance means none of the old decisions count.
 * - epoch: moves (never back) on every admin flush, config generation, withdrawn key, key set
 *   expired past jwks_max_stale, start and clean exit. A decision made while the file said
 *   (instance, epoch) may be reused only while it still says exactly that. */
typedef struct proto_epoch_page {
    unsigned char magic[PROTO_EPOCH_MAGIC_BYTES];
    uint64_t instance;
    uint64_t epoch;
} proto_epoch_page_t;

#endif
