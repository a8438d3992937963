/* SPDX-License-Identifier: MIT */
/*
 * knit-control's admin commands (everything but `serve`): they open the
 * store in --state-dir directly; a running server notices their changes
 * through the store's change log.
 */
#ifndef KNIT_CONTROL_ADMIN_H
#define KNIT_CONTROL_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONTROL_DEFAULT_STATE_DIR "/var/lib/knit-control"
#define CONTROL_KEY_FILE	  "control.key" /* in the state directory, mode 0600 */

/* Exit statuses. */
#define ADMIN_OK    0
#define ADMIN_ERROR 1 /* the command could not be done (no such node, ...) */
#define ADMIN_USAGE 2 /* the command line is wrong */

/* argv[0] is the command ("nodes", "node", "authkey", ...).  Output goes to
 * out, messages to err.  Returns an exit status. */
int admin_run(int argc, char **argv, FILE *out, FILE *err);
/* True when admin_run knows the command. */
bool admin_has_command(const char *cmd);
/* The one-line summaries of the admin commands, for knit-control --help. */
void admin_usage(FILE *f);

/*
 * The control key in dir (CONTROL_KEY_FILE), created (0600, and dir 0700)
 * if missing; *created says so.  serve and `key` share it.  Returns 0 or
 * -errno (logged).
 */
int control_key_load(const char *dir, uint8_t priv[32], uint8_t pub[32], bool *created);

#endif
