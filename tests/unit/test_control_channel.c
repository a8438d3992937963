// SPDX-License-Identifier: MIT
/* src/control/channel.c: the Noise IK channel control sessions run over. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "control/channel.h"
#include "crypto/crypto.h"

struct pair {
	uint8_t node_priv[32], node_pub[32], ctl_priv[32], ctl_pub[32];
	struct channel node, ctl;
	struct buf to_ctl, to_node;
};

static void keys(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	x25519_generate(p->node_priv);
	x25519_generate(p->ctl_priv);
	x25519_public(p->node_pub, p->node_priv);
	x25519_public(p->ctl_pub, p->ctl_priv);
	buf_init(&p->to_ctl, 1 << 22);
	buf_init(&p->to_node, 1 << 22);
}

static void done(struct pair *p)
{
	channel_destroy(&p->node);
	channel_destroy(&p->ctl);
	buf_free(&p->to_ctl);
	buf_free(&p->to_node);
}

/* Delivers the first record of b to ch's handshake; returns its result. */
static int deliver_handshake(struct channel *ch, struct buf *b, struct buf *reply)
{
	const uint8_t *body;
	size_t len;
	long n = channel_next_record(b->data, b->len, CHANNEL_MAX_RECORD, &body, &len);

	assert_true(n > 0);
	int ret = channel_handshake(ch, body, len, reply);
	buf_consume(b, (size_t)n);
	return ret;
}

static void open_pair(struct pair *p, const uint8_t *pinned)
{
	assert_int_equal(channel_init_initiator(&p->node, p->node_priv, pinned, &p->to_ctl), 0);
	assert_int_equal(channel_init_responder(&p->ctl, p->ctl_priv), 0);
	assert_int_equal(deliver_handshake(&p->ctl, &p->to_ctl, &p->to_node), 0);
	assert_int_equal(p->ctl.state, CHANNEL_OPEN);
	/* The responder learns the node key the initiator proved. */
	assert_memory_equal(p->ctl.remote_static, p->node_pub, 32);
}

static void test_handshake_and_records(void **state)
{
	struct pair p;
	const uint8_t *body;
	size_t len, plain;
	long n;

	keys(&p);
	open_pair(&p, p.ctl_pub);
	assert_int_equal(deliver_handshake(&p.node, &p.to_node, NULL), 0);
	assert_int_equal(p.node.state, CHANNEL_OPEN);
	for (int i = 0; i < 3; i++) {
		char msg[64];
		snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"n\":%d}", i);
		assert_int_equal(channel_seal(&p.node, msg, strlen(msg), &p.to_ctl), 0);
	}
	for (int i = 0; i < 3; i++) {
		char want[64];
		n = channel_next_record(p.to_ctl.data, p.to_ctl.len, CHANNEL_MAX_RECORD, &body, &len);
		assert_true(n > 0);
		assert_int_equal(channel_open(&p.ctl, (uint8_t *)body, len, &plain), 0);
		snprintf(want, sizeof(want), "{\"type\":\"ping\",\"n\":%d}", i);
		assert_int_equal(plain, strlen(want));
		assert_memory_equal(body, want, plain);
		buf_consume(&p.to_ctl, (size_t)n);
	}
	/* And the other way. */
	assert_int_equal(channel_seal(&p.ctl, "{}", 2, &p.to_node), 0);
	n = channel_next_record(p.to_node.data, p.to_node.len, CHANNEL_MAX_RECORD, &body, &len);
	assert_int_equal(channel_open(&p.node, (uint8_t *)body, len, &plain), 0);
	assert_memory_equal(body, "{}", 2);
	done(&p);
}

static void test_wrong_pinned_key_fails(void **state)
{
	uint8_t other_priv[32], other_pub[32];
	struct pair p;

	keys(&p);
	x25519_generate(other_priv);
	x25519_public(other_pub, other_priv);
	/* The node pins another key: control cannot even read the initiation. */
	assert_int_equal(channel_init_initiator(&p.node, p.node_priv, other_pub, &p.to_ctl), 0);
	assert_int_equal(channel_init_responder(&p.ctl, p.ctl_priv), 0);
	assert_int_equal(deliver_handshake(&p.ctl, &p.to_ctl, &p.to_node), -EBADMSG);
	assert_int_equal(p.ctl.state, CHANNEL_FAILED);
	done(&p);
}

static void test_impostor_control_fails(void **state)
{
	struct pair p, q;

	/* q's control answers p's node: the response does not authenticate. */
	keys(&p);
	keys(&q);
	assert_int_equal(channel_init_initiator(&p.node, p.node_priv, p.ctl_pub, &p.to_ctl), 0);
	assert_int_equal(channel_init_initiator(&q.node, q.node_priv, q.ctl_pub, &q.to_ctl), 0);
	assert_int_equal(channel_init_responder(&q.ctl, q.ctl_priv), 0);
	assert_int_equal(deliver_handshake(&q.ctl, &q.to_ctl, &q.to_node), 0);
	assert_int_equal(deliver_handshake(&p.node, &q.to_node, NULL), -EBADMSG);
	done(&p);
	done(&q);
}

static void test_tampered_replayed_and_reordered_records_fail(void **state)
{
	struct pair p;
	const uint8_t *body;
	size_t len, plain;
	uint8_t copy[256];
	long n;

	keys(&p);
	open_pair(&p, p.ctl_pub);
	assert_int_equal(deliver_handshake(&p.node, &p.to_node, NULL), 0);
	assert_int_equal(channel_seal(&p.node, "{\"a\":1}", 7, &p.to_ctl), 0);
	n = channel_next_record(p.to_ctl.data, p.to_ctl.len, CHANNEL_MAX_RECORD, &body, &len);
	memcpy(copy, body, len);
	copy[3] ^= 1;
	assert_int_equal(channel_open(&p.ctl, copy, len, &plain), -EBADMSG);
	assert_int_equal(p.ctl.state, CHANNEL_FAILED); /* one bad record ends it */
	done(&p);

	keys(&p);
	open_pair(&p, p.ctl_pub);
	assert_int_equal(deliver_handshake(&p.node, &p.to_node, NULL), 0);
	assert_int_equal(channel_seal(&p.node, "{\"a\":1}", 7, &p.to_ctl), 0);
	n = channel_next_record(p.to_ctl.data, p.to_ctl.len, CHANNEL_MAX_RECORD, &body, &len);
	memcpy(copy, body, len);
	assert_int_equal(channel_open(&p.ctl, (uint8_t *)body, len, &plain), 0);
	/* The same record again: its nonce is used up. */
	assert_int_equal(channel_open(&p.ctl, copy, len, &plain), -EBADMSG);
	done(&p);
	(void)n;
}

static void test_framing_limits(void **state)
{
	uint8_t huge[4] = {0x00, 0x20, 0x00, 0x00}; /* 2 MiB announced */
	uint8_t part[6] = {0, 0, 0, 5, 'a', 'b'};
	const uint8_t *body;
	size_t len;
	struct pair p;

	assert_int_equal(channel_next_record(huge, 4, CHANNEL_MAX_RECORD, &body, &len), -EMSGSIZE);
	assert_int_equal(channel_next_record(part, 6, CHANNEL_MAX_RECORD, &body, &len), 0);
	assert_int_equal(channel_next_record(part, 3, CHANNEL_MAX_RECORD, &body, &len), 0);
	keys(&p);
	open_pair(&p, p.ctl_pub);
	assert_int_equal(channel_seal(&p.ctl, "x", CHANNEL_MAX_PLAINTEXT + 1, &p.to_node),
			 -EMSGSIZE);
	/* Sealing before the channel is open is refused. */
	assert_int_equal(channel_seal(&p.node, "x", 1, &p.to_ctl), -ENOTCONN);
	/* A handshake record of the wrong size is refused. */
	struct channel c;
	assert_int_equal(channel_init_responder(&c, p.ctl_priv), 0);
	assert_int_equal(channel_handshake(&c, part, sizeof(part), &p.to_node), -EBADMSG);
	channel_destroy(&c);
	done(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_records),
		cmocka_unit_test(test_wrong_pinned_key_fails),
		cmocka_unit_test(test_impostor_control_fails),
		cmocka_unit_test(test_tampered_replayed_and_reordered_records_fail),
		cmocka_unit_test(test_framing_limits),
	};

	crypto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
