# shellcheck shell=bash
# The topology (docs/lab.md has the diagram):
#
#   switch   bridge br0: the public network 198.51.100.0/24
#   control  198.51.100.1        relay 198.51.100.2
#   stun     198.51.100.3 and .4 (natprobe server, ports 3478 and 3479)
#   routerN  wan 198.51.100.(10+N), lan 10.0.N.254/24 (NAT kind N)
#   cgnatN   (double NAT) wan 198.51.100.(10+N), lan 100.64.N.1/24;
#            routerN's wan is then 100.64.N.2/24
#   lanN     bridge br0: private network N
#   peerN-M  10.0.N.M/24, default route via routerN
#   pubK     198.51.100.(100+K), a peer on the public network
#
# Interfaces are created inside the namespaces (never in the root one):
# each host has eth0 (routers: wan and lan); a switch names its port after
# the host.

STUN_ADDRS=("$PUB_NET.3" "$PUB_NET.4")
STUN_PORTS=(3478 3479)

# host_add NAME ROLE ADDRS [GATEWAY]: the registry status and exec read.
host_add() { echo "$1 $2 $3 ${4:--}" >>"$RUNDIR/hosts"; }

# plug SWITCH HOST HOSTIF ADDR/LEN: a veth from HOST's HOSTIF to a port of
# SWITCH's bridge named HOST.
plug() {
	local sw=$1 h=$2 hif=$3 addr=$4
	ip -n "$P-$sw" link add "$h" type veth peer name "$hif" netns "$P-$h"
	ip -n "$P-$sw" link set "$h" master br0 up
	ip -n "$P-$h" addr add "$addr" dev "$hif"
	ip -n "$P-$h" link set "$hif" up
}

switch_add() {
	ns_add "$1"
	ip -n "$P-$1" link add br0 type bridge stp_state 0 forward_delay 0
	ip -n "$P-$1" link set br0 up
}

# router_add HOST SPEC WAN_SWITCH_OR_PEER WAN_ADDR/LEN LAN_ADDR/LEN LAN_NET
# [GATEWAY]: a NAT router.
router_nat() {
	local h=$1 spec=$2 wan=$3 lannet=$4 gw=${5:-}
	nat_parse "$spec" >/dev/null || return 1
	nsx "$h" sysctl -q -w net.ipv4.ip_forward=1 \
		${NAT_TIMEOUT:+net.netfilter.nf_conntrack_udp_timeout=$NAT_TIMEOUT} \
		${NAT_TIMEOUT:+net.netfilter.nf_conntrack_udp_timeout_stream=$NAT_TIMEOUT}
	[[ -n $gw ]] && ip -n "$P-$h" route add default via "$gw"
	nat_ruleset "$spec" "${wan%/*}" "$lannet" | nsx "$h" nft -f -
	echo "$spec" >"$RUNDIR/nat/$h"
	[[ $NAT_FILTER == ctfilter ]] && ctfilter_start "$h" "$lannet"
	[[ $NAT_UPNP == on ]] && upnp_start "$h" "${wan%/*}" "$lannet"
	return 0
}

# topology_up: builds what lab_parse collected in ROUTERS, CGNATS, PEERS,
# PUBLIC_PEERS.
topology_up() {
	local n m k wan lan
	switch_add switch
	for h in control relay stun; do ns_add "$h"; done
	plug switch control eth0 "$PUB_NET.1/24"
	host_add control server "$PUB_NET.1"
	plug switch relay eth0 "$PUB_NET.2/24"
	host_add relay server "$PUB_NET.2"
	plug switch stun eth0 "${STUN_ADDRS[0]}/24"
	ip -n "$P-stun" addr add "${STUN_ADDRS[1]}/24" dev eth0
	host_add stun server "${STUN_ADDRS[0]},${STUN_ADDRS[1]}"
	stun_start

	for n in "${!ROUTERS[@]}"; do
		wan="$PUB_NET.$((10 + n))"
		ns_add "router$n"
		switch_add "lan$n"
		lan="10.0.$n.254"
		ip -n "$P-lan$n" link add "router$n" type veth peer name lan netns "$P-router$n"
		ip -n "$P-lan$n" link set "router$n" master br0 up
		ip -n "$P-router$n" addr add "$lan/24" dev lan
		ip -n "$P-router$n" link set lan up
		if [[ -n ${CGNATS[$n]:-} ]]; then
			ns_add "cgnat$n"
			plug switch "cgnat$n" wan "$wan/24"
			ip -n "$P-cgnat$n" link add lan type veth peer name wan netns "$P-router$n"
			ip -n "$P-cgnat$n" addr add "100.64.$n.1/24" dev lan
			ip -n "$P-cgnat$n" link set lan up
			ip -n "$P-router$n" addr add "100.64.$n.2/24" dev wan
			ip -n "$P-router$n" link set wan up
			router_nat "cgnat$n" "${CGNATS[$n]}" "$wan/24" "100.64.$n.0/24"
			host_add "cgnat$n" cgnat "$wan,100.64.$n.1"
			wan="100.64.$n.2"
			router_nat "router$n" "${ROUTERS[$n]}" "$wan/24" "10.0.$n.0/24" "100.64.$n.1"
		else
			plug switch "router$n" wan "$wan/24"
			router_nat "router$n" "${ROUTERS[$n]}" "$wan/24" "10.0.$n.0/24"
		fi
		host_add "router$n" router "$wan,$lan"
		for ((m = 1; m <= ${PEERS[$n]:-1}; m++)); do
			ns_add "peer$n-$m"
			plug "lan$n" "peer$n-$m" eth0 "10.0.$n.$m/24"
			ip -n "$P-peer$n-$m" route add default via "$lan"
			host_add "peer$n-$m" peer "10.0.$n.$m" "router$n"
		done
	done
	for ((k = 1; k <= PUBLIC_PEERS; k++)); do
		ns_add "pub$k"
		plug switch "pub$k" eth0 "$PUB_NET.$((100 + k))/24"
		host_add "pub$k" public "$PUB_NET.$((100 + k))"
	done
	stun_wait
}

# The RFC 5780 server: two addresses times two ports.
stun_start() {
	if [[ ! -x $NATPROBE ]]; then
		say "no $NATPROBE (make): the stun host has no server"
		return 0
	fi
	spawn stun natprobe-server "$NATPROBE" server \
		--addr "${STUN_ADDRS[0]}" --addr "${STUN_ADDRS[1]}" \
		--port "${STUN_PORTS[0]}" --port "${STUN_PORTS[1]}"
}

stun_listening() {
	[[ $(nsx stun ss -Hlun | wc -l) -ge 4 ]]
}

stun_wait() {
	[[ -f $RUNDIR/pid/natprobe-server ]] || return 0
	wait_for 3 stun_listening || die "natprobe server did not listen on 4 sockets (log: $RUNDIR/log/natprobe-server.log)"
}

# router_renat ROUTER SPEC: give a running router another NAT kind in
# place (knit-lab nat): its helpers stop, its tables and conntrack entries
# go, its UDP timeouts return to the kernel's defaults, then router_nat
# builds the new kind.  Not for a router behind a CGNAT.
router_renat() {
	local h=$1 spec=$2 n
	[[ $h =~ ^router([1-9][0-9]?)$ ]] || die "nat: '$h' is not a router (routerN)"
	n=${BASH_REMATCH[1]}
	[[ -e /run/netns/$P-$h ]] || die "nat: no $h in lab $P"
	[[ -e /run/netns/$P-cgnat$n ]] && die "nat: $h is behind a CGNAT; bring the lab up again instead"
	nat_parse "$spec" >/dev/null || exit 1
	stop_daemon "ctfilter-$h"
	stop_daemon "miniupnpd-$h"
	nsx "$h" nft delete table ip knitlab 2>/dev/null || true
	nsx "$h" nft delete table inet miniupnpd 2>/dev/null || true
	rm -f "$RUNDIR/$h-miniupnpd."*
	nsx "$h" sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=30 \
		net.netfilter.nf_conntrack_udp_timeout_stream=120
	nsx "$h" conntrack -F 2>/dev/null || true
	router_nat "$h" "$spec" "$PUB_NET.$((10 + n))/24" "10.0.$n.0/24"
}
