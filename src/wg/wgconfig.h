/* SPDX-License-Identifier: MIT */
/*
 * Configuration in WireGuard's two text forms: wg-quick's INI file
 * ([Interface]/[Peer], base64 keys) and the cross-platform userspace API's
 * `set=1` body (key=value lines, hex keys).  Both parse into one struct that
 * the device applies.  Input is untrusted: sizes are bounded and every error
 * names its source, line and problem.
 */
#ifndef KNIT_WG_WGCONFIG_H
#define KNIT_WG_WGCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"
#include "wg/messages.h"

#define WGCONFIG_MAX_BYTES	 (4u << 20) /* of text */
#define WGCONFIG_MAX_PEERS	 65536
#define WGCONFIG_MAX_ALLOWED_IPS (1u << 20) /* over all peers */
#define WGCONFIG_MAX_ADDRESSES	 256
#define WGCONFIG_ERR_LEN	 256

struct wg_peer_config {
	uint8_t public_key[NOISE_PUBLIC_KEY_LEN];
	bool has_preshared_key;
	uint8_t preshared_key[NOISE_SYMMETRIC_KEY_LEN]; /* all zero removes it */
	bool has_endpoint;
	union sockaddr_inet endpoint;
	int persistent_keepalive; /* seconds 0..65535; -1 when not given */
	bool remove;
	bool update_only;
	bool replace_allowed_ips;
	struct ip_prefix *allowed_ips;
	size_t n_allowed_ips;
	size_t cap_allowed_ips;
};

struct wg_config {
	bool has_private_key;
	uint8_t private_key[NOISE_PUBLIC_KEY_LEN]; /* all zero removes it */
	int listen_port;			   /* 0..65535; -1 when not given */
	bool has_fwmark;
	uint32_t fwmark;
	bool replace_peers;
	struct wg_peer_config *peers;
	size_t n_peers;
	size_t cap_peers;
	/* wg-quick's [Interface] extras */
	struct ip_prefix *addresses;
	size_t n_addresses;
	size_t cap_addresses;
	int mtu; /* 0 when not given */
	/* wg-quick keys that knitd accepts but does not act on (DNS, PostUp, …),
	 * one "FILE:LINE: Key ignored" message each, for the caller to warn. */
	char **warnings;
	size_t n_warnings;
	size_t cap_warnings;
	/* Set before parsing to refuse Endpoint host names instead of resolving
	 * them (the fuzzer must not send DNS queries). */
	bool no_dns;
};

void wg_config_init(struct wg_config *c);
/* Frees everything and wipes the keys. */
void wg_config_free(struct wg_config *c);

/*
 * wg-quick format.  source names the input in errors ("wg0.conf:12: …").
 * Returns 0, or -EINVAL with err set to "SOURCE:LINE: problem".
 */
int wgquick_parse(struct wg_config *out, const char *text, size_t len, const char *source,
		  char err[WGCONFIG_ERR_LEN]);
/* Reads path (at most WGCONFIG_MAX_BYTES) and parses it; errors as above, or
 * "PATH: strerror" when it cannot be read. */
int wgquick_load(struct wg_config *out, const char *path, char err[WGCONFIG_ERR_LEN]);

/*
 * The body of a `set=1` request: the lines after "set=1" up to (not
 * including) the blank line.  Returns 0 or -EINVAL/-EPROTO with err set
 * ("line 3: invalid public_key"), as wireguard-go answers with errno=.
 */
int uapi_parse_set(struct wg_config *out, const char *text, size_t len, char err[WGCONFIG_ERR_LEN]);

#endif
