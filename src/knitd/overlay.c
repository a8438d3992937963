// SPDX-License-Identifier: MIT
#include "knitd/overlay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/client.h"
#include "control/netmap.h"
#include "crypto/crypto.h"
#include "disco/disco.h"
#include "knitd/api.h"
#include "knitd/lifetime.h"
#include "knitd/netcheck.h"
#include "knitd/paths.h"
#include "knitd/relays.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/encoding.h"
#include "lib/evloop.h"
#include "lib/keyfile.h"
#include "lib/log.h"
#include "lib/netlink.h"
#include "portmap/portmap.h"
#include "stun/stun.h"
#include "wg/device.h"

#define PEER_BUCKETS 4096
#define MAX_WAITERS  16

enum backend { STOPPED, STARTING, NEEDS_APPROVAL, RUNNING, NEEDS_LOGIN };
static const char *const backend_names[] = {"Stopped", "Starting", "NeedsApproval", "Running",
					     "NeedsLogin"};

struct opeer {
	struct netmap_peer p;
	uint32_t generation;
	struct opeer *next;
};

struct overlay {
	const struct overlay_options *o;
	struct evloop *loop;
	struct wg_device *dev;
	struct api_server *api;
	struct relays relays;
	struct paths paths;
	struct portmap *portmap; /* NAT-PMP, PCP, UPnP: a public port, maybe */
	struct netcheck *nc;
	struct lifetime *lifetime; /* how long our NAT keeps an idle mapping */
	struct lifetime_result lifetime_res;
	struct lifetime_memo lifetime_memo; /* what it measured, when to again */
	bool has_nat;
	struct nat_class nat; /* ours: declared, or from netcheck */
	uint8_t node_priv[32], node_pub[32], disco_priv[32], disco_pub[32];
	/* prefs, kept in DIR/prefs.json */
	char control_url[256];
	uint8_t control_key[32];
	char hostname[256];
	bool want_up;
	char auth_key[128]; /* only until the login it was given for answers */
	struct control_client *ctl;
	enum backend state;
	char error[256];
	char approve[96];
	struct netmap_peer self;
	bool have_self, addrs_set;
	struct ip_prefix v4pfx, v6pfx;
	struct ip_prefix addrs[2]; /* on the interface while addrs_set */
	struct opeer *peers[PEER_BUCKETS];
	size_t n_peers;
	uint32_t generation;
	bool full_in_progress;
	struct api_conn *waiters[MAX_WAITERS]; /* `knit up`s waiting for the login */
	unsigned n_waiters;
};

/* --- prefs --------------------------------------------------------------- */

static void path_in(const struct overlay *ov, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", ov->o->state_dir, name);
}

static int save_prefs(struct overlay *ov)
{
	char path[4096], tmp[4200], key[KEY_BASE64_LEN + 1];
	json_t *j;
	int ret;

	key_to_base64(key, ov->control_key);
	j = json_pack("{s:s,s:s,s:s,s:b}", "control_url", ov->control_url, "control_key", key,
		      "hostname", ov->hostname, "want_up", ov->want_up);
	path_in(ov, "prefs.json", path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ret = j ? json_dump_file(j, tmp, JSON_INDENT(2)) : -1;
	json_decref(j);
	if (ret == 0 && chmod(tmp, 0600) == 0 && rename(tmp, path) == 0)
		return 0;
	log_error("cannot write prefs path=%s error=%s", path, strerror(errno));
	return -EIO;
}

static void load_prefs(struct overlay *ov)
{
	char path[4096];
	json_error_t jerr;
	json_t *j;
	const char *url, *host;

	path_in(ov, "prefs.json", path, sizeof(path));
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		if (access(path, F_OK) == 0)
			log_warn("ignoring prefs path=%s error=\"%s\" line=%d", path, jerr.text,
				 jerr.line);
		return;
	}
	url = json_string_value(json_object_get(j, "control_url"));
	host = json_string_value(json_object_get(j, "hostname"));
	if (url && strlen(url) < sizeof(ov->control_url) &&
	    json_get_key(j, "control_key", ov->control_key) == 0) {
		snprintf(ov->control_url, sizeof(ov->control_url), "%s", url);
		snprintf(ov->hostname, sizeof(ov->hostname), "%s", host ? host : "");
		ov->want_up = json_is_true(json_object_get(j, "want_up"));
	} else {
		log_warn("ignoring prefs path=%s error=\"missing or bad control_url/control_key\"",
			 path);
	}
	json_decref(j);
}

/* --- peers --------------------------------------------------------------- */

static size_t bucket(const uint8_t key[32])
{
	uint32_t h;

	memcpy(&h, key, sizeof(h)); /* keys come from control, not from strangers */
	return h % PEER_BUCKETS;
}

static struct opeer *find_peer(struct overlay *ov, const uint8_t key[32])
{
	for (struct opeer *p = ov->peers[bucket(key)]; p; p = p->next)
		if (!memcmp(p->p.node_key, key, 32))
			return p;
	return NULL;
}

static void forget_peer(struct overlay *ov, struct opeer *victim)
{
	struct opeer **pp = &ov->peers[bucket(victim->p.node_key)];

	while (*pp != victim)
		pp = &(*pp)->next;
	*pp = victim->next;
	free(victim);
	ov->n_peers--;
}

static struct wg_peer_config *config_peer(struct wg_config *cfg, const uint8_t key[32])
{
	struct wg_peer_config *grown, *pc;

	if (cfg->n_peers == cfg->cap_peers) {
		size_t cap = cfg->cap_peers ? cfg->cap_peers * 2 : 16;
		grown = realloc(cfg->peers, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		cfg->peers = grown;
		cfg->cap_peers = cap;
	}
	pc = &cfg->peers[cfg->n_peers++];
	memset(pc, 0, sizeof(*pc));
	memcpy(pc->public_key, key, 32);
	pc->persistent_keepalive = -1;
	return pc;
}

/* fresh: the device does not know the peer yet.  After that the path
 * manager owns the endpoint. */
static void config_add_peer(struct wg_config *cfg, const struct netmap_peer *p, bool fresh)
{
	struct wg_peer_config *pc = config_peer(cfg, p->node_key);

	if (!pc || !(pc->allowed_ips = calloc(2, sizeof(*pc->allowed_ips))))
		return;
	pc->replace_allowed_ips = true;
	pc->cap_allowed_ips = pc->n_allowed_ips = 2;
	pc->allowed_ips[0] = (struct ip_prefix){.family = AF_INET, .bits = 32};
	memcpy(pc->allowed_ips[0].addr.bytes, &p->ipv4, 4);
	pc->allowed_ips[1] = (struct ip_prefix){.family = AF_INET6, .bits = 128};
	memcpy(pc->allowed_ips[1].addr.bytes, &p->ipv6, 16);
	/* The first packet goes through the peer's home relay at once. */
	if (fresh && p->home_relay) {
		pc->has_endpoint = true;
		endpoint_set_relay(&pc->endpoint, (uint16_t)p->home_relay);
	}
}

static void apply(struct overlay *ov, struct wg_config *cfg)
{
	char err[WGCONFIG_ERR_LEN] = "";

	cfg->listen_port = -1;
	if (cfg->n_peers && device_apply(ov->dev, cfg, err, sizeof(err)) < 0)
		log_error("cannot apply the peer map error=\"%s\"", err);
	wg_config_free(cfg);
}

static struct opeer *upsert_peer(struct overlay *ov, struct wg_config *cfg,
				 const struct netmap_peer *np)
{
	struct opeer *p = find_peer(ov, np->node_key);
	bool fresh = !p;

	if (!memcmp(np->node_key, ov->node_pub, 32))
		return NULL;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		p->next = ov->peers[bucket(np->node_key)];
		ov->peers[bucket(np->node_key)] = p;
		ov->n_peers++;
	} else if (!memcmp(&p->p, np, sizeof(*np))) {
		p->generation = ov->generation;
		return NULL; /* nothing new for the device */
	} else if (memcmp(p->p.disco_key, np->disco_key, 32)) {
		/* A new disco key is a restarted peer: its old session is gone
		 * with it, so start a new one at once, not after 15 s. */
		device_peer_reset_session(ov->dev, np->node_key);
	}
	p->p = *np;
	p->generation = ov->generation;
	config_add_peer(cfg, np, fresh);
	return p;
}

static void remove_peer(struct overlay *ov, struct wg_config *cfg, const uint8_t key[32])
{
	struct opeer *p = find_peer(ov, key);
	struct wg_peer_config *pc;

	if (!p)
		return;
	pc = config_peer(cfg, key); /* key may point into p: before freeing it */
	if (pc)
		pc->remove = true;
	paths_peer_remove(&ov->paths, key);
	forget_peer(ov, p);
}

static void remove_all_peers(struct overlay *ov, uint32_t keep_generation, bool keep)
{
	struct wg_config cfg;

	wg_config_init(&cfg);
	for (size_t b = 0; b < PEER_BUCKETS; b++) {
		struct opeer *p = ov->peers[b], *next;
		for (; p; p = next) {
			next = p->next;
			if (!keep || p->generation != keep_generation)
				remove_peer(ov, &cfg, p->p.node_key);
		}
	}
	apply(ov, &cfg);
}

/* --- self ---------------------------------------------------------------- */

/* The interface's overlay addresses go with the node: a new node (after a
 * logout) must not speak from the old one's. */
static void clear_addresses(struct overlay *ov)
{
	for (int i = 0; ov->addrs_set && i < 2; i++)
		netlink_addr_del(ov->dev->ifindex, &ov->addrs[i]);
	ov->addrs_set = false;
}

static void set_addresses(struct overlay *ov)
{
	struct ip_prefix a4 = ov->v4pfx, a6 = ov->v6pfx;
	char text[PREFIX_STRLEN];
	int ret;

	if (!ov->have_self || ov->dev->ifindex <= 0)
		return;
	memcpy(a4.addr.bytes, &ov->self.ipv4, 4);
	memcpy(a6.addr.bytes, &ov->self.ipv6, 16);
	if (ov->addrs_set && !memcmp(&a4, &ov->addrs[0], sizeof(a4)) &&
	    !memcmp(&a6, &ov->addrs[1], sizeof(a6)))
		return;
	clear_addresses(ov);
	ov->addrs[0] = a4;
	ov->addrs[1] = a6;
	/* The prefix length makes the kernel route the whole overlay here. */
	for (int i = 0; i < 2; i++) {
		struct ip_prefix *a = i ? &a6 : &a4;
		ret = netlink_addr_add(ov->dev->ifindex, a);
		prefix_format(a, text, sizeof(text));
		if (ret < 0 && ret != -EEXIST)
			log_error("cannot add address address=%s error=\"%s\"", text,
				  strerror(-ret));
		else
			log_info("address added address=%s interface=%s", text, ov->dev->ifname);
	}
	ov->addrs_set = true;
}

static void take_self(struct overlay *ov, const json_t *msg)
{
	const json_t *j = json_object_get(msg, "self");
	const char *v4 = json_string_value(json_object_get(msg, "ipv4_prefix"));
	const char *v6 = json_string_value(json_object_get(msg, "ipv6_prefix"));
	const char *why;

	if (v4 && prefix_parse(v4, &ov->v4pfx) < 0)
		log_warn("control sent a bad ipv4_prefix=%.64s", v4);
	if (v6 && prefix_parse(v6, &ov->v6pfx) < 0)
		log_warn("control sent a bad ipv6_prefix=%.64s", v6);
	if (!j)
		return;
	if (netmap_peer_from_json(j, &ov->self, &why) < 0) {
		log_warn("control sent a bad self entry error=\"%s\"", why);
		return;
	}
	ov->have_self = true;
	set_addresses(ov);
}

/* --- control session ------------------------------------------------------ */

/* Our candidates: what the relays' STUN saw, then our interfaces' addresses. */
static unsigned gather_endpoints(struct overlay *ov, union sockaddr_inet *eps)
{
	struct ifaddrs *ifa, *i;
	unsigned n = 0;

	if (relays_mapped(&ov->relays, &eps[n]))
		n++;
	if (ov->portmap && portmap_current(ov->portmap, &eps[n], NULL))
		n++;
	if (!ov->o->hide_lan && getifaddrs(&ifa) == 0) {
		for (i = ifa; i && n < NETMAP_MAX_ENDPOINTS; i = i->ifa_next) {
			/* Not the loopback, and no tunnel (ours or another VPN's):
			 * a path through one would carry our packets inside it. */
			if (!i->ifa_addr || (i->ifa_flags & (IFF_LOOPBACK | IFF_POINTOPOINT)) ||
			    !strcmp(i->ifa_name, ov->dev->ifname))
				continue;
			if (i->ifa_addr->sa_family == AF_INET) {
				memset(&eps[n], 0, sizeof(eps[n]));
				memcpy(&eps[n].in, i->ifa_addr, sizeof(eps[n].in));
			} else if (i->ifa_addr->sa_family == AF_INET6 &&
				   !IN6_IS_ADDR_LINKLOCAL(
					   &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr)) {
				memset(&eps[n], 0, sizeof(eps[n]));
				memcpy(&eps[n].in6, i->ifa_addr, sizeof(eps[n].in6));
			} else {
				continue;
			}
			eps[n].in.sin_port = htons(ov->dev->listen_port); /* same offset in v6 */
			n++;
		}
		freeifaddrs(ifa);
	}
	return n;
}

static json_t *endpoints_json(struct overlay *ov)
{
	union sockaddr_inet eps[NETMAP_MAX_ENDPOINTS];

	return json_endpoints(eps, gather_endpoints(ov, eps));
}

/* The candidates we tell control are the ones call-me-maybe offers peers. */
static json_t *advertise_endpoints(struct overlay *ov)
{
	union sockaddr_inet eps[NETMAP_MAX_ENDPOINTS];
	unsigned n = gather_endpoints(ov, eps);

	paths_set_self(&ov->paths, eps, n);
	return json_endpoints(eps, n);
}

static void send_update(void *arg)
{
	struct overlay *ov = arg;
	json_t *msg;

	if (!ov->ctl || ov->state != RUNNING)
		return;
	msg = json_pack("{s:s,s:o,s:i}", "type", "update", "endpoints", advertise_endpoints(ov),
			"home_relay", ov->relays.home);
	if (msg && ov->has_nat)
		json_object_set_new(msg, "nat", netmap_nat_to_json(&ov->nat));
	if (msg)
		control_client_send(ov->ctl, msg);
	json_decref(msg);
}

static void tell_waiters(struct overlay *ov, json_t *msg, bool final)
{
	for (unsigned i = 0; i < ov->n_waiters; i++)
		api_reply(ov->waiters[i], json_deep_copy(msg), final);
	if (final)
		ov->n_waiters = 0;
	json_decref(msg);
}

static void stop_control(struct overlay *ov)
{
	control_client_free(ov->ctl);
	ov->ctl = NULL;
	memzero_explicit(ov->auth_key, sizeof(ov->auth_key));
}

static void on_connected(void *arg)
{
	struct overlay *ov = arg;
	char disco[KEY_BASE64_LEN + 1];
	json_t *msg;

	key_to_base64(disco, ov->disco_pub);
	msg = json_pack("{s:s,s:s,s:s,s:o,s:i}", "type", "login", "hostname", ov->hostname,
			"disco_key", disco, "endpoints", advertise_endpoints(ov), "home_relay",
			ov->relays.home);
	if (msg && ov->auth_key[0])
		json_object_set_new(msg, "auth_key", json_string(ov->auth_key));
	if (msg && ov->has_nat)
		json_object_set_new(msg, "nat", netmap_nat_to_json(&ov->nat));
	if (msg)
		control_client_send(ov->ctl, msg);
	json_decref(msg);
}

static void login_failed(struct overlay *ov, const char *why, enum backend next)
{
	snprintf(ov->error, sizeof(ov->error), "%s", why);
	log_warn("login failed error=\"%s\"", why);
	ov->state = next;
	ov->want_up = false;
	save_prefs(ov);
	stop_control(ov);
	tell_waiters(ov, json_pack("{s:b,s:s}", "ok", 0, "error", why), true);
}

static void on_login_result(struct overlay *ov, json_t *msg)
{
	const char *error = json_string_value(json_object_get(msg, "error"));
	const char *approve = json_string_value(json_object_get(msg, "approve"));

	if (json_is_true(json_object_get(msg, "ok"))) {
		ov->state = RUNNING;
		ov->error[0] = '\0';
		memzero_explicit(ov->auth_key, sizeof(ov->auth_key));
		take_self(ov, msg);
		log_info("logged in name=%s", ov->self.name);
		tell_waiters(ov, json_pack("{s:b,s:s}", "ok", 1, "name", ov->self.name), true);
		send_update(ov);
		return;
	}
	if (json_is_true(json_object_get(msg, "pending"))) {
		ov->state = NEEDS_APPROVAL;
		snprintf(ov->approve, sizeof(ov->approve), "%s", approve ? approve : "");
		tell_waiters(ov, json_pack("{s:b,s:s}", "pending", 1, "approve", ov->approve),
			     false);
		return;
	}
	login_failed(ov, error ? error : "control refused the login", NEEDS_LOGIN);
}

static void on_map(struct overlay *ov, json_t *msg)
{
	const json_t *peers = json_object_get(msg, "peers"), *removed = json_object_get(msg, "removed");
	const json_t *relays = json_object_get(msg, "relays"), *v;
	struct wg_config cfg;
	uint8_t key[32];
	const char *why;
	size_t i;

	take_self(ov, msg);
	if (json_is_array(relays)) {
		struct netmap_relay map[RELAYS_MAX];
		unsigned n = 0;
		json_array_foreach(relays, i, v) {
			if (n < RELAYS_MAX && netmap_relay_from_json(v, &map[n], &why) == 0)
				n++;
			else
				log_warn("relay entry ignored error=\"%s\"", why);
		}
		relays_set_map(&ov->relays, map, n);
		netcheck_set_relays(ov->nc, map, n);
	}
	if (json_is_true(json_object_get(msg, "full"))) {
		ov->generation++;
		ov->full_in_progress = true;
	}
	struct opeer **changed = calloc(json_array_size(peers) + 1, sizeof(*changed));
	size_t n_changed = 0;

	wg_config_init(&cfg);
	json_array_foreach(peers, i, v) {
		struct netmap_peer np;
		struct opeer *op;
		if (netmap_peer_from_json(v, &np, &why) < 0)
			log_warn("peer entry ignored error=\"%s\"", why);
		else if ((op = upsert_peer(ov, &cfg, &np)) && changed)
			changed[n_changed++] = op;
	}
	json_array_foreach(removed, i, v) {
		const char *s = json_string_value(v);
		if (s && key_from_base64(key, s) == 0)
			remove_peer(ov, &cfg, key);
	}
	apply(ov, &cfg);
	/* The device knows them now: the path manager may set their paths. */
	for (i = 0; i < n_changed; i++)
		paths_peer_update(&ov->paths, &changed[i]->p);
	free(changed);
	if (ov->full_in_progress && json_is_true(json_object_get(msg, "done"))) {
		ov->full_in_progress = false;
		remove_all_peers(ov, ov->generation, true); /* those control forgot */
	}
}

static void on_message(void *arg, json_t *msg)
{
	struct overlay *ov = arg;
	const char *type = json_string_value(json_object_get(msg, "type"));

	if (!strcmp(type, "login-result"))
		on_login_result(ov, msg);
	else if (!strcmp(type, "map") && ov->state == RUNNING)
		on_map(ov, msg);
	else if (!strcmp(type, "expired") || !strcmp(type, "removed")) {
		remove_all_peers(ov, 0, false);
		relays_clear(&ov->relays); /* they would refuse us now */
		login_failed(ov,
			     !strcmp(type, "expired")
				     ? "node key expired: run knit up with --auth-key"
				     : "this node was removed by the control server's admin",
			     NEEDS_LOGIN);
	}
}

static void on_disconnected(void *arg, const char *why)
{
	struct overlay *ov = arg;

	/* The data plane keeps the last map; the client reconnects. */
	log_warn("control session lost reason=\"%s\"", why);
	if (ov->state == STARTING && ov->n_waiters)
		tell_waiters(ov, json_pack("{s:b,s:s}", "progress", 1, "error", why), false);
}

static const struct control_client_ops control_ops = {
	.connected = on_connected,
	.message = on_message,
	.disconnected = on_disconnected,
};

static int start_control(struct overlay *ov)
{
	int ret = control_client_new(&ov->ctl, ov->loop, ov->control_url, ov->control_key,
				     ov->node_priv, &control_ops, ov);

	if (ret == 0 && ov->state != RUNNING)
		ov->state = STARTING;
	return ret;
}

/* --- the local API --------------------------------------------------------- */

static void api_up(struct overlay *ov, struct api_conn *c, json_t *req)
{
	const char *url = json_string_value(json_object_get(req, "control"));
	const char *auth = json_string_value(json_object_get(req, "auth_key"));
	const char *host = json_string_value(json_object_get(req, "hostname"));
	uint8_t key[32];
	char h[256] = "";

	if (!url || strlen(url) >= sizeof(ov->control_url))
		return api_reply_error(c, "up needs --control URL");
	if (json_get_key(req, "control_key", key) < 0)
		return api_reply_error(c, "up needs --control-key (the base64 key that "
					  "`knit-control key` prints)");
	if (auth && strlen(auth) >= sizeof(ov->auth_key))
		return api_reply_error(c, "auth key is too long");
	if (ov->n_waiters == MAX_WAITERS)
		return api_reply_error(c, "too many knit up commands waiting");
	if (host && strlen(host) >= sizeof(ov->hostname))
		return api_reply_error(c, "hostname is too long");
	if (!host)
		gethostname(h, sizeof(h) - 1);
	if (ov->ctl && ov->state == RUNNING && !strcmp(url, ov->control_url) &&
	    crypto_memeq(key, ov->control_key, 32) && !auth)
		return api_reply(c, json_pack("{s:b,s:s}", "ok", 1, "name", ov->self.name), true);
	stop_control(ov);
	snprintf(ov->control_url, sizeof(ov->control_url), "%s", url);
	memcpy(ov->control_key, key, 32);
	snprintf(ov->hostname, sizeof(ov->hostname), "%s", host ? host : h);
	snprintf(ov->auth_key, sizeof(ov->auth_key), "%s", auth ? auth : "");
	ov->want_up = true;
	save_prefs(ov);
	if (start_control(ov) < 0) {
		ov->want_up = false;
		return api_reply_error(c, "bad control URL %s (want http://HOST:PORT)", url);
	}
	ov->waiters[ov->n_waiters++] = c;
}

static void api_down(struct overlay *ov, struct api_conn *c, bool logout)
{
	char path[4096];

	stop_control(ov);
	remove_all_peers(ov, 0, false);
	relays_clear(&ov->relays);
	ov->state = logout ? NEEDS_LOGIN : STOPPED;
	ov->want_up = false;
	save_prefs(ov);
	tell_waiters(ov, json_pack("{s:b,s:s}", "ok", 0, "error", "knit down"), true);
	if (logout) {
		/* A new node key: this machine becomes a new node on next up. */
		path_in(ov, "node.key", path, sizeof(path));
		x25519_generate(ov->node_priv);
		if (keyfile_store(path, ov->node_priv) < 0)
			return api_reply_error(c, "cannot write a new node key to %s", path);
		x25519_public(ov->node_pub, ov->node_priv);
		char err[WGCONFIG_ERR_LEN];
		struct wg_config cfg;
		wg_config_init(&cfg);
		cfg.has_private_key = true;
		memcpy(cfg.private_key, ov->node_priv, 32);
		cfg.listen_port = -1;
		device_apply(ov->dev, &cfg, err, sizeof(err));
		wg_config_free(&cfg);
		memcpy(ov->relays.node_priv, ov->node_priv, 32);
		ov->have_self = false;
		clear_addresses(ov);
	}
	api_reply(c, json_pack("{s:b}", "ok", 1), true);
}

static json_t *peer_status(struct overlay *ov, const struct netmap_peer *np)
{
	struct wg_peer *wp = device_find_peer(ov->dev, np->node_key);
	char v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN], ep[ENDPOINT_STRLEN] = "", key[45];
	union sockaddr_inet e;
	const char *path = "none";
	int relay = 0;
	uint64_t hs = 0;
	json_t *j;

	inet_ntop(AF_INET, &np->ipv4, v4, sizeof(v4));
	inet_ntop(AF_INET6, &np->ipv6, v6, sizeof(v6));
	key_to_base64(key, np->node_key);
	const struct peer_paths *pp = paths_find(&ov->paths, np->node_key);

	if (wp && peer_get_endpoint(wp, &e)) {
		if (endpoint_is_relay(&e)) {
			relay = endpoint_relay_id(&e);
			path = relays_connected(&ov->relays, relay) ? "relay" : "none";
		} else {
			path = "direct";
			endpoint_format(&e, ep, sizeof(ep));
		}
	}
	if (wp)
		hs = atomic_load(&wp->last_handshake_wall_ns);
	j = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:i,s:I,s:I,s:I}", "name", np->name,
		      "node_key", key, "ipv4", v4, "ipv6", v6, "online", np->online, "path", path,
		      "endpoint", ep, "relay", relay, "rx_bytes",
		      (json_int_t)(wp ? atomic_load(&wp->rx_bytes) : 0), "tx_bytes",
		      (json_int_t)(wp ? atomic_load(&wp->tx_bytes) : 0), "last_handshake",
		      (json_int_t)(hs / 1000000000ULL));
	if (j && pp && strcmp(path, "direct"))
		json_object_set_new(j, "path_reason", json_string(pp->reason));
	if (j && pp && pp->direct_ns && pp->first_packet_ns && pp->direct_ns >= pp->first_packet_ns)
		json_object_set_new(j, "direct_after_ms",
				    json_integer((json_int_t)((pp->direct_ns - pp->first_packet_ns) /
							      1000000)));
	return j;
}

/* What the lifetime probe found: {"state": "measuring" | "measured" |
 * "unknown", "survived_ms", "failed_ms" (null when it survived every step),
 * "why" (when unknown)}. */
static json_t *lifetime_json(struct overlay *ov)
{
	const struct lifetime_result *r = &ov->lifetime_res;

	if (lifetime_running(ov->lifetime))
		return json_pack("{s:s}", "state", "measuring");
	if (!r->valid)
		return json_pack("{s:s,s:s}", "state", "unknown", "why",
				 r->why[0] ? r->why : "not measured yet");
	return json_pack("{s:s,s:I,s:o}", "state", "measured", "survived_ms", (json_int_t)r->idle_ms,
			 "failed_ms", r->at_least ? json_null() : json_integer(r->failed_ms));
}

static void api_status(struct overlay *ov, struct api_conn *c, bool ip_only)
{
	char v4[INET_ADDRSTRLEN] = "", v6[INET6_ADDRSTRLEN] = "", key[45];
	json_t *peers = json_array(), *self;

	if (ov->have_self) {
		inet_ntop(AF_INET, &ov->self.ipv4, v4, sizeof(v4));
		inet_ntop(AF_INET6, &ov->self.ipv6, v6, sizeof(v6));
	}
	if (ip_only) {
		json_decref(peers);
		if (!ov->have_self)
			return api_reply_error(c, "not logged in: run knit up");
		return api_reply(c, json_pack("{s:b,s:s,s:s}", "ok", 1, "ipv4", v4, "ipv6", v6),
				 true);
	}
	key_to_base64(key, ov->node_pub);
	self = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:i}", "name",
			 ov->have_self ? ov->self.name : "", "node_key", key, "ipv4", v4, "ipv6", v6,
			 "endpoints", endpoints_json(ov), "home_relay", ov->relays.home, "port",
			 ov->dev->listen_port);
	json_object_set_new(self, "mapping_lifetime", lifetime_json(ov));
	json_object_set_new(self, "idle_keepalive_ms", json_integer(ov->paths.idle_keepalive_ms));
	for (size_t b = 0; b < PEER_BUCKETS; b++)
		for (struct opeer *p = ov->peers[b]; p; p = p->next)
			json_array_append_new(peers, peer_status(ov, &p->p));
	api_reply(c,
		  json_pack("{s:b,s:s,s:s,s:s,s:o,s:o}", "ok", 1, "backend_state",
			    backend_names[ov->state], "error", ov->error, "control",
			    ov->control_url, "self", self, "peers", peers),
		  true);
}

static struct opeer *peer_by_name_or_ip(struct overlay *ov, const char *what)
{
	struct in_addr v4;
	struct in6_addr v6;
	bool is4 = inet_pton(AF_INET, what, &v4) == 1, is6 = inet_pton(AF_INET6, what, &v6) == 1;

	for (size_t b = 0; b < PEER_BUCKETS; b++)
		for (struct opeer *p = ov->peers[b]; p; p = p->next)
			if (!strcmp(p->p.name, what) || (is4 && !memcmp(&p->p.ipv4, &v4, 4)) ||
			    (is6 && !memcmp(&p->p.ipv6, &v6, 16)))
				return p;
	return NULL;
}

static void api_ping(struct overlay *ov, struct api_conn *c, json_t *req)
{
	const char *peer = json_string_value(json_object_get(req, "peer"));
	json_int_t count = json_integer_value(json_object_get(req, "count"));
	struct opeer *p = peer ? peer_by_name_or_ip(ov, peer) : NULL;
	int ret;

	if (!p)
		return api_reply_error(c, "no peer %.64s in the map", peer ? peer : "(none)");
	ret = paths_ping(&ov->paths, p->p.node_key, c, count > 0 && count < 1000 ? (unsigned)count : 10,
			 json_is_true(json_object_get(req, "all")));
	if (ret == -EBUSY)
		api_reply_error(c, "another knit ping to %s is running", p->p.name);
	else if (ret < 0)
		api_reply_error(c, "cannot ping %s", p->p.name);
}

static void on_api_request(struct api_conn *c, json_t *req, void *arg)
{
	struct overlay *ov = arg;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!strcmp(cmd, "up"))
		api_up(ov, c, req);
	else if (!strcmp(cmd, "down"))
		api_down(ov, c, false);
	else if (!strcmp(cmd, "logout"))
		api_down(ov, c, true);
	else if (!strcmp(cmd, "status"))
		api_status(ov, c, false);
	else if (!strcmp(cmd, "ip"))
		api_status(ov, c, true);
	else if (!strcmp(cmd, "ping"))
		api_ping(ov, c, req);
	else if (!strcmp(cmd, "netcheck"))
		netcheck_api(ov->nc, c);
	else
		api_reply_error(c, "unknown command \"%.32s\"", cmd);
}

static void on_api_gone(struct api_conn *c, void *arg)
{
	struct overlay *ov = arg;

	paths_api_gone(&ov->paths, c);
	netcheck_api_gone(ov->nc, c);
	for (unsigned i = 0; i < ov->n_waiters; i++) {
		if (ov->waiters[i] == c) {
			ov->waiters[i] = ov->waiters[--ov->n_waiters];
			return;
		}
	}
}

static const struct api_ops api_ops = {
	.request = on_api_request,
	.gone = on_api_gone,
};

/* --- setup ----------------------------------------------------------------- */

static bool is_stun_or_disco(const uint8_t *pkt, size_t len)
{
	return stun_is_message(pkt, len) || disco_is_message(pkt, len);
}

static void relay_send(void *arg, uint16_t relay_id, const uint8_t key[32], const uint8_t *pkt,
		       size_t len)
{
	struct overlay *ov = arg;

	relays_send(&ov->relays, relay_id, key, pkt, len);
}

static void on_relay_disco(void *arg, int relay_id, const uint8_t src[32], const uint8_t *pkt,
			   size_t len)
{
	struct overlay *ov = arg;
	union sockaddr_inet from;

	endpoint_set_relay(&from, (uint16_t)relay_id);
	paths_disco_input(&ov->paths, pkt, len, &from, src);
}

static void on_aside(void *arg, const uint8_t *pkt, size_t len, const union sockaddr_inet *src)
{
	struct overlay *ov = arg;
	union sockaddr_inet from;

	endpoint_unmap(src, &from);
	if (disco_is_message(pkt, len))
		paths_disco_input(&ov->paths, pkt, len, &from, NULL);
	else if (!netcheck_stun_input(ov->nc, pkt, len, &from))
		relays_stun_input(&ov->relays, pkt, len, &from);
}

static void set_nat(struct overlay *ov, const struct nat_class *c);

static void on_portmap(void *arg, const union sockaddr_inet *external, const char *protocol)
{
	struct overlay *ov = arg;
	char ep[ENDPOINT_STRLEN] = "none";

	if (external)
		endpoint_format(external, ep, sizeof(ep));
	log_info("port mapping external=%s protocol=%s", ep, protocol ? protocol : "-");
	if (ov->has_nat)
		set_nat(ov, &ov->nat); /* port_mapped changed; sends the update */
	else
		send_update(ov); /* a new candidate for every peer */
}

static const struct portmap_ops portmap_ops = {.changed = on_portmap};

/* Our NAT class, from netcheck or declared: peers plan their paths by it.
 * A port mapping from the gateway counts whatever the NAT does. */
static void set_nat(struct overlay *ov, const struct nat_class *c)
{
	union sockaddr_inet mapped;

	ov->nat = *c;
	ov->nat.port_mapped = ov->portmap && portmap_current(ov->portmap, &mapped, NULL);
	ov->has_nat = true;
	paths_set_self_nat(&ov->paths, &ov->nat);
	send_update(ov);
}

static void on_lifetime(void *arg, const struct lifetime_result *r)
{
	struct overlay *ov = arg;

	ov->lifetime_res = *r;
	ov->lifetime_memo.ended = true;
	ov->lifetime_memo.valid = r->valid;
	ov->lifetime_memo.ended_ns = clock_mono_ns();
	if (!r->valid) {
		log_warn("mapping lifetime not measured why=\"%s\"", r->why);
		return;
	}
	log_info("mapping lifetime survived_ms=%u failed_ms=%u%s", r->idle_ms, r->failed_ms,
		 r->at_least ? " (every step)" : "");
	paths_set_mapping_lifetime(&ov->paths, r->idle_ms, r->at_least);
}

static const struct lifetime_ops lifetime_ops = {.done = on_lifetime};

/* The home relay's STUN server, which also answers RESPONSE-PORT. */
static bool home_stun(struct overlay *ov, union sockaddr_inet *out)
{
	char text[NETMAP_HOST_LEN + 16];

	for (unsigned i = 0; i < ov->relays.n; i++) {
		const struct netmap_relay *r = &ov->relays.slots[i].info;
		if (r->id != ov->relays.home)
			continue;
		snprintf(text, sizeof(text), strchr(r->host, ':') ? "[%s]:%u" : "%s:%u", r->host,
			 r->stun_port);
		return endpoint_parse(text, true, out) == 0;
	}
	return false;
}

/* Measures the mapping lifetime once UDP is known to work, and again when
 * the NAT in front of us is another one (the node moved). */
static void maybe_measure_lifetime(struct overlay *ov, const struct nat_class *c)
{
	union sockaddr_inet stun;

	if (!ov->lifetime || !c->udp || lifetime_running(ov->lifetime) || !home_stun(ov, &stun) ||
	    !lifetime_due(&ov->lifetime_memo, c, &stun, clock_mono_ns()) ||
	    lifetime_start(ov->lifetime, &stun) < 0)
		return;
	ov->lifetime_memo = (struct lifetime_memo){
		.started = true, .mapping = c->mapping, .filtering = c->filtering, .stun = stun};
}

/* netcheck measured our NAT anew: peers plan with it (unless declared). */
static void on_netcheck(void *arg, const struct netcheck_result *r)
{
	struct overlay *ov = arg;

	if (!r->valid)
		return;
	if (!ov->o->nat_class)
		set_nat(ov, &r->nat);
	maybe_measure_lifetime(ov, &r->nat);
}

static int home_relay_of(void *arg)
{
	return ((struct overlay *)arg)->relays.home;
}

/* "eim-adf", "adpm-adpf", "public", "udp-blocked" */
static int parse_nat_class(const char *s, struct nat_class *c)
{
	char m[8], f[8];

	memset(c, 0, sizeof(*c));
	c->udp = true;
	if (!strcmp(s, "udp-blocked")) {
		c->udp = false;
		return 0;
	}
	if (!strcmp(s, "public")) {
		c->public_address = true;
		c->mapping = NAT_MAP_EIM, c->filtering = NAT_FILTER_EIF;
		return 0;
	}
	if (sscanf(s, "%7[a-z]-%7[a-z]", m, f) != 2)
		return -EINVAL;
	for (int i = NAT_MAP_EIM; i <= NAT_MAP_ADPM; i++)
		if (!strcmp(m, nat_mapping_name(i)))
			c->mapping = i;
	for (int i = NAT_FILTER_EIF; i <= NAT_FILTER_ADPF; i++)
		if (!strcmp(f, nat_filtering_name(i)))
			c->filtering = i;
	return c->mapping && c->filtering ? 0 : -EINVAL;
}

/* SIGUSR1: what the data plane and the path manager dropped. */
static void on_stats(struct evloop *loop, int signo, void *arg)
{
	struct overlay *ov = arg;

	if (ov->dev)
		device_log_stats(ov->dev);
	log_info("stats disco_dropped=%llu peers=%zu",
		 (unsigned long long)ov->paths.disco_dropped, ov->n_peers);
}

static void on_signal(struct evloop *loop, int signo, void *arg)
{
	log_info("stopping signal=%s", strsignal(signo));
	evloop_stop(loop);
}

static int load_keys(struct overlay *ov)
{
	char path[4096];
	bool created;

	if (mkdir(ov->o->state_dir, 0700) < 0 && errno != EEXIST) {
		log_error("cannot create state directory path=%s error=%s", ov->o->state_dir,
			  strerror(errno));
		return -errno;
	}
	path_in(ov, "node.key", path, sizeof(path));
	if (keyfile_load_or_create(path, ov->node_priv, &created) < 0)
		return -EIO;
	/* The disco key lives as long as the process, as in tailscale: a new
	 * one tells peers that this node restarted. */
	x25519_generate(ov->disco_priv);
	x25519_public(ov->node_pub, ov->node_priv);
	x25519_public(ov->disco_pub, ov->disco_priv);
	return 0;
}

static int start_device(struct overlay *ov)
{
	char err[WGCONFIG_ERR_LEN] = "";
	struct wg_config cfg;
	int ret = device_new(&ov->dev, ov->loop, ov->o->ifname, ov->o->timer_divisor);

	if (ret < 0)
		return ret;
	ov->dev->relay_send = relay_send;
	ov->dev->aside_match = is_stun_or_disco;
	ov->dev->aside_recv = on_aside;
	ov->dev->overlay_arg = ov;
	relays_init(&ov->relays, ov->loop, ov->dev, ov->node_priv, send_update, ov);
	ov->relays.disco_recv = on_relay_disco;
	ov->relays.disco_arg = ov;
	paths_init(&ov->paths, ov->loop, ov->dev, &ov->relays, ov->disco_priv, ov->node_pub);
	ov->paths.hide_lan = ov->o->hide_lan;
	wg_config_init(&cfg);
	cfg.has_private_key = true;
	memcpy(cfg.private_key, ov->node_priv, 32);
	cfg.listen_port = ov->o->port;
	ret = device_apply(ov->dev, &cfg, err, sizeof(err));
	wg_config_free(&cfg);
	if (ret < 0) {
		log_error("cannot configure the device error=\"%s\"", err);
		return ret;
	}
	return device_start(ov->dev);
}

int overlay_run(const struct overlay_options *o)
{
	struct overlay *ov = calloc(1, sizeof(*ov));
	int ret;

	if (!ov)
		return 1;
	ov->o = o;
	prefix_parse("100.64.0.0/10", &ov->v4pfx);
	prefix_parse("fd00::/48", &ov->v6pfx);
	if ((ret = load_keys(ov)) < 0 || (ret = evloop_new(&ov->loop)) < 0)
		goto out;
	evloop_add_signal(ov->loop, SIGINT, on_signal, NULL);
	evloop_add_signal(ov->loop, SIGTERM, on_signal, NULL);
	evloop_add_signal(ov->loop, SIGUSR1, on_stats, ov);
	signal(SIGPIPE, SIG_IGN);
	if ((ret = start_device(ov)) < 0 ||
	    (ret = api_server_new(&ov->api, ov->loop, o->socket_path, &api_ops, ov)) < 0)
		goto out;
	/* The gateway may give us a public port: a candidate that beats any NAT. */
	if (portmap_new(&ov->portmap, ov->loop, ov->dev->listen_port, &portmap_ops, ov) < 0)
		log_warn("no port mapping (cannot start the client)");
	struct netcheck_ops nc_ops = {.changed = on_netcheck, .home_relay = home_relay_of, .arg = ov};
	if (netcheck_new(&ov->nc, ov->loop, ov->dev, &nc_ops) < 0)
		log_warn("no netcheck (cannot start it)");
	netcheck_set_portmap(ov->nc, ov->portmap);
	if (lifetime_new(&ov->lifetime, ov->loop, NULL, 0, &lifetime_ops, ov) < 0)
		log_warn("no mapping lifetime probe (out of memory)");
	if (o->nat_class) {
		struct nat_class c;
		if (parse_nat_class(o->nat_class, &c) < 0) {
			log_error("bad --nat-class %s (want MAPPING-FILTERING like eim-adf, "
				  "public or udp-blocked)", o->nat_class);
			ret = -EINVAL;
			goto out;
		}
		set_nat(ov, &c);
	}
	load_prefs(ov);
	if (ov->want_up && start_control(ov) < 0)
		log_warn("cannot resume: bad control URL in prefs url=%s", ov->control_url);
	log_info("knitd ready interface=%s port=%u socket=%s state=%s", ov->dev->ifname,
		 ov->dev->listen_port, o->socket_path, backend_names[ov->state]);
	ret = evloop_run(ov->loop);
out:
	stop_control(ov);
	netcheck_set_portmap(ov->nc, NULL);
	netcheck_free(ov->nc);
	lifetime_free(ov->lifetime);
	portmap_free(ov->portmap);
	api_server_free(ov->api);
	if (ov->dev) {
		paths_destroy(&ov->paths);
		relays_destroy(&ov->relays);
	}
	device_free(ov->dev);
	for (size_t b = 0; b < PEER_BUCKETS; b++)
		while (ov->peers[b])
			forget_peer(ov, ov->peers[b]);
	evloop_free(ov->loop);
	memzero_explicit(ov, sizeof(*ov));
	free(ov);
	return ret < 0 ? 1 : 0;
}
