/* jwtauthzctl flush | stats | keys | refresh ISSUER | reload: one admin request, the reply
 * printed as JSON, exit 0 when it says ok. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "jwtauthz.h"

static int ctl_admin_usage(void)
{
    fprintf(stderr, "usage: jwtauthzctl flush [--principal P | --token T] | stats | keys |\n"
                    "                   refresh ISSUER | reload\n");
    return CTL_EXIT_ERROR;
}

int ctl_admin_main(const char *socket_path, int timeout_ms, int argc, char **argv)
{
    const char *cmd = argv[0], *arg = NULL;
    jwtauthz_admin_cmd_t c;
    if (strcmp(cmd, "flush") == 0) {
        c = JWTAUTHZ_ADMIN_FLUSH;
        if (argc == 3 && strcmp(argv[1], "--principal") == 0) {
            c = JWTAUTHZ_ADMIN_FLUSH_PRINCIPAL;
            arg = argv[2];
        } else if (argc == 3 && strcmp(argv[1], "--token") == 0) {
            c = JWTAUTHZ_ADMIN_FLUSH_TOKEN;
            arg = argv[2];
        } else if (argc != 1) {
            return ctl_admin_usage();
        }
    } else if (strcmp(cmd, "refresh") == 0) {
        if (argc != 2) {
            return ctl_admin_usage();
        }
        c = JWTAUTHZ_ADMIN_REFRESH;
        arg = argv[1];
    } else if (argc != 1) {
        return ctl_admin_usage();
    } else if (strcmp(cmd, "stats") == 0) {
        c = JWTAUTHZ_ADMIN_STATS;
    } else if (strcmp(cmd, "keys") == 0) {
        c = JWTAUTHZ_ADMIN_KEYS;
    } else {
        c = JWTAUTHZ_ADMIN_RELOAD;
    }
    jwtauthz_client_t *cl = jwtauthz_client_new(socket_path, timeout_ms);
    if (cl == NULL) {
        fprintf(stderr, "jwtauthzctl: out of memory\n");
        return CTL_EXIT_ERROR;
    }
    jwtauthz_reply_t *reply = NULL;
    int rc = jwtauthz_admin(cl, c, arg, &reply);
    int ok = reply && jwtauthz_reply_ok(reply);
    if (reply) {
        ctl_print_reply(reply);
        jwtauthz_reply_free(reply);
    }
    jwtauthz_client_free(cl);
    (void)rc;
    return ok ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}
