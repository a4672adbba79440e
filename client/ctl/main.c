/* jwtauthzctl: decision queries (check), admin commands, and offline verification (verify).
 * Only argument handling and dispatch live here; each subcommand has its own file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "version.h"

/* CONTRACT "Programs and files". */
#define CTL_DEFAULT_SOCKET "/run/jwtauthz/jwtauthz.sock"
#define CTL_DEFAULT_ADMIN_SOCKET "/run/jwtauthz/admin.sock"
/* Long enough for a daemon that waits for its first key fetch (2 s), short enough for a shell. */
#define CTL_DEFAULT_TIMEOUT_MS 5000
#define CTL_MAX_TIMEOUT_MS 600000

static void ctl_usage(FILE *f)
{
    fprintf(f, "usage: jwtauthzctl [-s SOCKET] [-a ADMIN_SOCKET] [-T TIMEOUT_MS] COMMAND ...\n"
               "  check --token VALUE --resource ARN   ask the daemon (VALUE as an Authorization\n"
               "                                       header carries it: \"Bearer eyJ...\")\n"
               "  flush [--principal P | --token T]    drop cached decisions\n"
               "  stats | keys                         counters / issuers and their keys\n"
               "  refresh ISSUER                       fetch an issuer's keys now\n"
               "  reload                               reload the daemon's config\n"
               "  verify --jwks FILE [...] TOKEN       check a token offline (verify --help)\n"
               "exit: check 0 ALLOW, 1 DENY, 2 UNAUTHORIZED, 3 ERROR/no daemon; admin 0 when ok;\n"
               "      verify 0 valid, 2 invalid, 3 could not check\n");
}

int main(int argc, char **argv)
{
    const char *sock = CTL_DEFAULT_SOCKET, *admin = CTL_DEFAULT_ADMIN_SOCKET;
    int timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *o = argv[i];
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            ctl_usage(stdout);
            return CTL_EXIT_OK;
        }
        if (strcmp(o, "-V") == 0 || strcmp(o, "--version") == 0) {
            printf("jwtauthzctl %s\n", JWTAUTHZ_VERSION);
            return CTL_EXIT_OK;
        }
        if (i + 1 >= argc) {
            ctl_usage(stderr);
            return CTL_EXIT_ERROR;
        }
        if (strcmp(o, "-s") == 0) {
            sock = argv[++i];
        } else if (strcmp(o, "-a") == 0) {
            admin = argv[++i];
        } else if (strcmp(o, "-T") == 0) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v <= 0 || v > CTL_MAX_TIMEOUT_MS) {
                fprintf(stderr, "jwtauthzctl: bad timeout \"%s\"\n", argv[i]);
                return CTL_EXIT_ERROR;
            }
            timeout_ms = (int)v;
        } else {
            fprintf(stderr, "jwtauthzctl: unknown option \"%s\"\n", o);
            ctl_usage(stderr);
            return CTL_EXIT_ERROR;
        }
    }
    if (i >= argc) {
        ctl_usage(stderr);
        return CTL_EXIT_ERROR;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "verify") == 0) {
        return ctl_verify_main(argc - i, argv + i);
    }
    if (strcmp(cmd, "check") == 0) {
        return ctl_check_main(sock, timeout_ms, argc - i, argv + i);
    }
    if (strcmp(cmd, "flush") == 0 || strcmp(cmd, "stats") == 0 || strcmp(cmd, "keys") == 0 ||
        strcmp(cmd, "refresh") == 0 || strcmp(cmd, "reload") == 0) {
        return ctl_admin_main(admin, timeout_ms, argc - i, argv + i);
    }
    fprintf(stderr, "jwtauthzctl: unknown command \"%s\"\n", cmd);
    ctl_usage(stderr);
    return CTL_EXIT_ERROR;
}
