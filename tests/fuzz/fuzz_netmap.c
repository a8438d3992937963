// SPDX-License-Identifier: MIT
/* What knitd parses from control: a map message's self, peers, removed keys
 * and relays, from any bytes a (compromised or buggy) control could send. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/netmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *msg = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct netmap_peer p;
	struct netmap_relay r;
	const char *why;
	uint8_t key[32];
	json_t *v;
	size_t i;

	if (!msg)
		return 0;
	if (netmap_peer_from_json(json_object_get(msg, "self"), &p, &why) == 0) {
		/* What parses must print and parse back to the same entry. */
		json_t *again = netmap_peer_to_json(&p);
		struct netmap_peer q;
		if (!again || netmap_peer_from_json(again, &q, &why) != 0 ||
		    memcmp(p.node_key, q.node_key, 32) || p.n_endpoints != q.n_endpoints)
			abort();
		json_decref(again);
	} else if (!why) {
		abort();
	}
	json_array_foreach(json_object_get(msg, "peers"), i, v)
		netmap_peer_from_json(v, &p, &why);
	json_array_foreach(json_object_get(msg, "relays"), i, v)
		if (netmap_relay_from_json(v, &r, &why) == 0 && (r.id < 1 || !r.host[0]))
			abort();
	json_array_foreach(json_object_get(msg, "removed"), i, v)
		json_get_key(v, "k", key);
	json_decref(msg);
	return 0;
}
