/* jwtauthzctl's subcommands, one file each; main.c only dispatches. Exit codes are the
 * contract's: check 0 ALLOW, 1 DENY, 2 UNAUTHORIZED, 3 ERROR or no daemon; verify 0 valid,
 * 2 invalid, 3 when it could not check (bad key file, usage). */
#ifndef JWTAUTHZ_CTL_H
#define JWTAUTHZ_CTL_H

#define CTL_EXIT_OK 0
#define CTL_EXIT_DENY 1
#define CTL_EXIT_INVALID 2
#define CTL_EXIT_ERROR 3

int ctl_verify_main(int argc, char **argv);
int ctl_check_main(const char *socket_path, int timeout_ms, int argc, char **argv);
int ctl_admin_main(const char *socket_path, int timeout_ms, int argc, char **argv);
/* Prints a reply's JSON on one line (ctl_check.c). */
struct jwtauthz_reply;
void ctl_print_reply(const struct jwtauthz_reply *reply);

#endif
