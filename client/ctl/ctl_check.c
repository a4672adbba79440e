/* jwtauthzctl check: one TOKEN decision request through libjwtauthz, the reply printed as the
 * daemon sent it, the verdict as the exit code. No daemon is ERROR (3), never ALLOW. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "jwtauthz.h"

/* Prints the reply's JSON on one line (the daemon's own bytes, or the library's ERROR reply). */
void ctl_print_reply(const jwtauthz_reply_t *reply)
{
    size_t len = 0;
    const char *json = jwtauthz_reply_json(reply, &len);
    if (json) {
        fwrite(json, 1, len, stdout);
        fputc('\n', stdout);
    }
}

int ctl_check_main(const char *socket_path, int timeout_ms, int argc, char **argv)
{
    const char *token = NULL, *resource = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) {
            token = argv[++i];
        } else if (strcmp(argv[i], "--resource") == 0 && i + 1 < argc) {
            resource = argv[++i];
        } else {
            fprintf(stderr, "usage: jwtauthzctl check --token VALUE --resource ARN\n");
            return CTL_EXIT_ERROR;
        }
    }
    if (token == NULL || resource == NULL) {
        fprintf(stderr, "usage: jwtauthzctl check --token VALUE --resource ARN\n");
        return CTL_EXIT_ERROR;
    }
    jwtauthz_client_t *c = jwtauthz_client_new(socket_path, timeout_ms);
    if (c == NULL) {
        fprintf(stderr, "jwtauthzctl: out of memory\n");
        return CTL_EXIT_ERROR;
    }
    jwtauthz_reply_t *reply = NULL;
    jwtauthz_verdict_t v = jwtauthz_check_token(c, token, resource, &reply);
    if (reply) {
        ctl_print_reply(reply);
        jwtauthz_reply_free(reply);
    }
    jwtauthz_client_free(c);
    switch (v) {
    case JWTAUTHZ_ALLOW:
        return CTL_EXIT_OK;
    case JWTAUTHZ_DENY:
        return CTL_EXIT_DENY;
    case JWTAUTHZ_UNAUTHORIZED:
        return CTL_EXIT_INVALID;
    case JWTAUTHZ_ERROR:
        break;
    }
    return CTL_EXIT_ERROR;
}
