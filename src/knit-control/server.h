/* SPDX-License-Identifier: MIT */
#ifndef KNIT_CONTROL_SERVER_H
#define KNIT_CONTROL_SERVER_H
/* `knit-control serve ...`: returns the process's exit status. */
int serve_main(int argc, char **argv);
#endif
