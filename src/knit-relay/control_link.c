// SPDX-License-Identifier: MIT
/*
 * knit-relay's control session: says hello with the relay key, and applies
 * every relay-nodes message to the admission set.  While control is away the
 * set stays as it was (clients keep their relay); a new session's full set
 * replaces it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/client.h"
#include "knit-relay/relay.h"
#include "lib/log.h"

struct relay_control {
	struct relay *relay;
	struct control_client *client;
};

static void on_connected(void *arg)
{
	struct relay_control *ctl = arg;
	json_t *hello = json_pack("{s:s}", "type", "relay-hello");

	if (hello)
		control_client_send(ctl->client, hello);
	json_decref(hello);
}

static void on_message(void *arg, json_t *msg)
{
	struct relay_control *ctl = arg;
	const char *type = json_string_value(json_object_get(msg, "type"));
	char err[160];

	if (!type) /* ctl_conn checks this already; a second look costs nothing */
		return;
	if (!strcmp(type, "relay-nodes")) {
		if (admission_apply_json(relay_admission(ctl->relay), msg, err, sizeof(err)) < 0)
			log_error("control sent a bad relay-nodes message error=\"%s\"", err);
		else
			log_debug("admission set updated keys=%zu",
				  admission_count(relay_admission(ctl->relay)));
	} else if (!strcmp(type, "relay-result") && !json_is_true(json_object_get(msg, "ok"))) {
		log_error("control refused this relay error=\"%s\"",
			  json_string_value(json_object_get(msg, "error")));
	}
}

static void on_disconnected(void *arg, const char *why)
{
	log_warn("control session lost reason=\"%s\" (admitted keys kept)", why);
}

static const struct control_client_ops ops = {
	.connected = on_connected,
	.message = on_message,
	.disconnected = on_disconnected,
};

int relay_control_start(struct relay_control **out, struct relay *r, struct evloop *loop,
			const char *url, const uint8_t control_pub[32],
			const uint8_t relay_priv[32])
{
	struct relay_control *ctl = calloc(1, sizeof(*ctl));
	int ret;

	if (!ctl)
		return -ENOMEM;
	ctl->relay = r;
	ret = control_client_new(&ctl->client, loop, url, control_pub, relay_priv, &ops, ctl);
	if (ret < 0) {
		log_error("bad --control URL url=%s (want http://HOST:PORT)", url);
		free(ctl);
		return ret;
	}
	*out = ctl;
	return 0;
}

void relay_control_stop(struct relay_control *ctl)
{
	if (!ctl)
		return;
	control_client_free(ctl->client);
	free(ctl);
}
