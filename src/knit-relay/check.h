/* SPDX-License-Identifier: MIT */
#ifndef KNIT_RELAY_CHECK_H
#define KNIT_RELAY_CHECK_H
/* `knit-relay check ...`: returns the process's exit status. */
int check_main(int argc, char **argv);
#endif
