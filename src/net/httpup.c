// SPDX-License-Identifier: MIT
/* HTTP/1.1 Upgrade heads (see httpup.h). */
#include "net/httpup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct span {
	const char *p;
	size_t len;
};

/* What the parser has learnt from the header lines. */
struct head_fields {
	bool conn_upgrade;
	int n_upgrade;
	struct span upgrade;
};

/*
 * Finds the empty line that ends the head.  Returns the head's length, 0 if
 * not there yet, -EMSGSIZE if not within HTTPUP_MAX_HEAD bytes.
 */
static int head_length(const uint8_t *buf, size_t len)
{
	size_t limit = len < HTTPUP_MAX_HEAD ? len : HTTPUP_MAX_HEAD;
	size_t line = 0;

	for (size_t i = 0; i < limit; i++) {
		if (buf[i] != '\n')
			continue;
		if (i == line || (i == line + 1 && buf[line] == '\r'))
			return line == 0 ? -EINVAL : (int)(i + 1);
		line = i + 1;
	}
	return len >= HTTPUP_MAX_HEAD ? -EMSGSIZE : 0;
}

/* The next line of the head, without its CR LF; false at the empty line. */
static bool next_line(const char **pos, const char *end, struct span *line)
{
	const char *nl = memchr(*pos, '\n', (size_t)(end - *pos));

	if (!nl)
		return false;
	line->p = *pos;
	line->len = (size_t)(nl - *pos);
	if (line->len && line->p[line->len - 1] == '\r')
		line->len--;
	*pos = nl + 1;
	return line->len > 0;
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Visible ASCII, space and tab only: no NUL, CR, DEL or 8-bit bytes. */
static bool is_text(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return false;
	}
	return true;
}

static void trim(struct span *s)
{
	while (s->len && (s->p[0] == ' ' || s->p[0] == '\t')) {
		s->p++;
		s->len--;
	}
	while (s->len && (s->p[s->len - 1] == ' ' || s->p[s->len - 1] == '\t'))
		s->len--;
}

static bool span_eq(struct span s, const char *lit)
{
	return s.len == strlen(lit) && strncasecmp(s.p, lit, s.len) == 0;
}

/* Does a comma-separated list of tokens contain tok (case-insensitive)? */
static bool has_token(struct span list, const char *tok)
{
	while (list.len) {
		const char *comma = memchr(list.p, ',', list.len);
		struct span item = {list.p, comma ? (size_t)(comma - list.p) : list.len};
		trim(&item);
		if (span_eq(item, tok))
			return true;
		if (!comma)
			break;
		list.len -= (size_t)(comma - list.p) + 1;
		list.p = comma + 1;
	}
	return false;
}

static int copy_span(char *out, size_t size, struct span s)
{
	if (!out || s.len >= size)
		return -EINVAL;
	memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return 0;
}

/* Header lines up to the empty line: "Name: value", names made of tchars. */
static int parse_fields(const char **pos, const char *end, struct head_fields *f)
{
	struct span line;

	memset(f, 0, sizeof(*f));
	while (next_line(pos, end, &line)) {
		const char *colon = memchr(line.p, ':', line.len);
		struct span name, value;

		if (!colon || colon == line.p || !is_text(line.p, line.len))
			return -EINVAL;
		name = (struct span){line.p, (size_t)(colon - line.p)};
		for (size_t i = 0; i < name.len; i++)
			if (!is_tchar(name.p[i]))
				return -EINVAL; /* also refuses obsolete line folding */
		value = (struct span){colon + 1, line.len - name.len - 1};
		trim(&value);
		if (span_eq(name, "connection")) {
			if (has_token(value, "upgrade"))
				f->conn_upgrade = true;
		} else if (span_eq(name, "upgrade")) {
			f->n_upgrade++;
			f->upgrade = value;
		}
	}
	if (f->n_upgrade > 1 || (f->n_upgrade == 1 && !f->upgrade.len))
		return -EINVAL;
	return 0;
}

int httpup_parse_request(const uint8_t *buf, size_t len, char *path, size_t path_size,
			 char *upgrade, size_t upgrade_size)
{
	int head = head_length(buf, len);
	const char *pos = (const char *)buf, *end;
	struct head_fields f;
	struct span line, target;
	const char *sp;

	if (head <= 0)
		return head;
	end = pos + head;
	if (!next_line(&pos, end, &line) || !is_text(line.p, line.len))
		return -EINVAL;
	/* "GET " target " HTTP/1.1", exactly one space each. */
	if (line.len < 4 + 1 + 9 || memcmp(line.p, "GET ", 4) != 0 ||
	    memcmp(line.p + line.len - 9, " HTTP/1.1", 9) != 0)
		return -EINVAL;
	target = (struct span){line.p + 4, line.len - 4 - 9};
	sp = memchr(target.p, ' ', target.len);
	if (sp || memchr(target.p, '\t', target.len) || target.p[0] != '/')
		return -EINVAL;
	if (parse_fields(&pos, end, &f) < 0 || !f.conn_upgrade || f.n_upgrade != 1)
		return -EINVAL;
	if (copy_span(path, path_size, target) < 0 ||
	    copy_span(upgrade, upgrade_size, f.upgrade) < 0)
		return -EINVAL;
	return head;
}

int httpup_parse_response(const uint8_t *buf, size_t len, int *status, char *upgrade,
			  size_t upgrade_size)
{
	int head = head_length(buf, len);
	const char *pos = (const char *)buf, *end;
	struct head_fields f;
	struct span line;
	int code = 0;

	if (head <= 0)
		return head;
	end = pos + head;
	if (!next_line(&pos, end, &line) || !is_text(line.p, line.len))
		return -EINVAL;
	/* "HTTP/1.1 NNN" then " reason" (which may be empty). */
	if (line.len < 12 || memcmp(line.p, "HTTP/1.1 ", 9) != 0 ||
	    (line.len > 12 && line.p[12] != ' '))
		return -EINVAL;
	for (int i = 9; i < 12; i++) {
		if (line.p[i] < '0' || line.p[i] > '9')
			return -EINVAL;
		code = code * 10 + (line.p[i] - '0');
	}
	if (code < 100 || code > 599)
		return -EINVAL;
	if (parse_fields(&pos, end, &f) < 0)
		return -EINVAL;
	if (code == 101 && (!f.conn_upgrade || f.n_upgrade != 1))
		return -EINVAL;
	if (copy_span(upgrade, upgrade_size, f.n_upgrade ? f.upgrade : (struct span){"", 0}) < 0)
		return -EINVAL;
	*status = code;
	return head;
}

/* A non-empty argument of visible ASCII without spaces. */
static bool is_word(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int finish(int n, size_t size)
{
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= size ? -ENOSPC : n;
}

int httpup_format_request(char *out, size_t size, const char *host_port, const char *path,
			  const char *upgrade)
{
	if (!is_word(host_port) || !is_word(path) || path[0] != '/' || !is_word(upgrade))
		return -EINVAL;
	return finish(snprintf(out, size,
			       "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: %s\r\n"
			       "Connection: Upgrade\r\n\r\n",
			       path, host_port, upgrade),
		      size);
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 426:
		return "Upgrade Required";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return status < 500 ? "Client Error" : "Server Error";
	}
}

int httpup_format_response(char *out, size_t size, int status, const char *upgrade_or_reason)
{
	const char *text = upgrade_or_reason;
	size_t text_len;

	if (status == 101) {
		if (!is_word(text))
			return -EINVAL;
		return finish(snprintf(out, size,
				       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\n"
				       "Connection: Upgrade\r\n\r\n",
				       text),
			      size);
	}
	if (status < 400 || status > 599 || !text)
		return -EINVAL;
	text_len = strlen(text);
	if (text_len > 256 || !is_text(text, text_len) || strchr(text, '\t'))
		return -EINVAL;
	return finish(snprintf(out, size,
			       "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
			       status, reason_phrase(status), text_len + 1, text),
		      size);
}

/* RFC 1123 host name: labels of letters, digits and '-', not at the ends. */
static bool is_dns_name(const char *s, size_t len)
{
	size_t label = 0;

	if (!len || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (!label || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c == '-' && label)))
			return false;
		if (++label > 63)
			return false;
	}
	return label && s[len - 1] != '-';
}

static int parse_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long v = 0;

	if (!len || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int httpup_parse_url(const char *url, char *host, size_t host_size, uint16_t *port)
{
	const char *h, *end, *hend, *colon = NULL;
	char tmp[INET6_ADDRSTRLEN + 1];
	struct in6_addr a6;
	size_t len;

	if (!url || strncasecmp(url, "http://", 7) != 0)
		return -EINVAL;
	h = url + 7;
	end = h + strlen(h);
	if (end > h && end[-1] == '/')
		end--;
	if (memchr(h, '/', (size_t)(end - h)) || memchr(h, '@', (size_t)(end - h)))
		return -EINVAL;
	if (*h == '[') {
		hend = memchr(h, ']', (size_t)(end - h));
		if (!hend)
			return -EINVAL;
		len = (size_t)(hend - h - 1);
		if (len >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, h + 1, len);
		tmp[len] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return -EINVAL;
		h++;
		if (hend + 1 < end && hend[1] != ':')
			return -EINVAL;
		colon = hend + 1 < end ? hend + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hend = colon ? colon : end;
		len = (size_t)(hend - h);
		/* A dotted quad is also a valid-looking name; inet_pton decides
		 * for all-numeric ones so that "1.2.3.999" is refused. */
		if (!is_dns_name(h, len))
			return -EINVAL;
		if (strspn(h, "0123456789.") >= len) {
			struct in_addr a4;
			if (len >= sizeof(tmp))
				return -EINVAL;
			memcpy(tmp, h, len);
			tmp[len] = '\0';
			if (inet_pton(AF_INET, tmp, &a4) != 1)
				return -EINVAL;
		}
	}
	if (colon) {
		if (parse_port(colon + 1, (size_t)(end - colon - 1), port) < 0)
			return -EINVAL;
	} else {
		*port = 80;
	}
	if (!host || len >= host_size)
		return -EINVAL;
	memcpy(host, h, len);
	host[len] = '\0';
	return 0;
}
