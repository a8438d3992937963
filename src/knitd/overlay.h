/* SPDX-License-Identifier: MIT */
/*
 * knitd as a node of an overlay (the tailscale model): the node key in the
 * state directory, a control session that logs in and keeps the peer map,
 * WireGuard peers that follow it, relays that carry what no direct path does,
 * and the local API that `knit` drives.
 */
#ifndef KNIT_KNITD_OVERLAY_H
#define KNIT_KNITD_OVERLAY_H
#include <stdbool.h>
#include <stdint.h>

#define OVERLAY_DEFAULT_IFNAME "knit0"
#define OVERLAY_DEFAULT_PORT   41641

struct overlay_options {
	const char *state_dir;
	const char *socket_path;
	const char *ifname;
	uint16_t port;
	unsigned timer_divisor;
	bool hide_lan; /* tests: offer and use no LAN candidates */
	const char *nat_class; /* declared instead of measured: "eim-adf", … */
};

/* Runs until SIGINT/SIGTERM; returns the exit status. */
int overlay_run(const struct overlay_options *o);
#endif
