/* SPDX-License-Identifier: MIT */
#ifndef KNIT_KNIT_COMMANDS_H
#define KNIT_KNIT_COMMANDS_H
#include <stdbool.h>

/* Key commands (keys.c). */
int cmd_genkey(bool clamp);
int cmd_pubkey(void);
/* Commands for a running knitd (node.c); argv[0] is the command's name. */
int cmd_node(const char *socket_path, int argc, char **argv);
#endif
