/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 Upgrade, the opening of knit's TCP protocols (control and relay):
 * just enough HTTP to switch protocols, as pure functions with no I/O.
 *
 * Every byte parsed here comes off the network: a head is at most
 * HTTPUP_MAX_HEAD bytes, lines end in CRLF (a bare LF is accepted), header
 * names are case-insensitive, and control characters are refused.
 */
#ifndef KNIT_NET_HTTPUP_H
#define KNIT_NET_HTTPUP_H

#include <stddef.h>
#include <stdint.h>

#define HTTPUP_MAX_HEAD 4096
/* Enough for any request or response head the format functions write with
 * reasonable arguments (a 256-byte reason, a long host name). */
#define HTTPUP_BUF_LEN 1024

/*
 * A request head "GET PATH HTTP/1.1" whose Connection header has the token
 * "upgrade" and that has an Upgrade header.  Returns the head's length (> 0)
 * and copies the path and the Upgrade value (NUL-terminated); 0 while the
 * head is incomplete; -EINVAL when malformed (or when path or upgrade does not
 * fit); -EMSGSIZE when no head ends within HTTPUP_MAX_HEAD bytes.
 */
int httpup_parse_request(const uint8_t *buf, size_t len, char *path, size_t path_size,
			 char *upgrade, size_t upgrade_size);

/*
 * A response head "HTTP/1.1 NNN reason".  Returns as httpup_parse_request;
 * *status is 100..599.  A 101 must carry Upgrade and Connection: upgrade;
 * other statuses may omit Upgrade (then upgrade is "").  The body of an error
 * response (Content-Length bytes) follows the head and is not consumed.
 */
int httpup_parse_response(const uint8_t *buf, size_t len, int *status, char *upgrade,
			  size_t upgrade_size);

/*
 * "GET path HTTP/1.1" with Host, Upgrade and Connection: Upgrade.  host_port
 * is what goes in Host ("192.0.2.1:443", "[2001:db8::1]:443").  Returns the
 * length written (without the NUL), -ENOSPC when out is too small, -EINVAL
 * when an argument is empty or has a control character or space.
 */
int httpup_format_request(char *out, size_t size, const char *host_port, const char *path,
			  const char *upgrade);

/*
 * status 101: "101 Switching Protocols" with Upgrade: upgrade_or_reason and
 * Connection: Upgrade.  Any other status (400..599): the standard reason
 * phrase, Content-Type text/plain, Content-Length, Connection: close and a
 * one-line body upgrade_or_reason (at most 256 bytes, printable).
 * Returns the length or -ENOSPC / -EINVAL.
 */
int httpup_format_response(char *out, size_t size, int status, const char *upgrade_or_reason);

/*
 * "http://HOST:PORT" or "http://HOST" (port 80), optionally with a trailing
 * "/".  HOST is an IPv4 address, an IPv6 address in brackets (copied without
 * them), or a DNS name.  Returns 0 or -EINVAL (anything else: another
 * scheme, a path, a user, a port out of 1..65535, a host that does not fit).
 */
int httpup_parse_url(const char *url, char *host, size_t host_size, uint16_t *port);

#endif
