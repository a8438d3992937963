#!/usr/bin/env bash
# natprobe classifies the NAT or firewall in front of it.  A client behind a
# router, a natprobe server with two addresses and two ports; the router's
# nftables changes from one case to the next, and each case checks the class
# natprobe reports against what the rules build.
#
#   $RUN-cli                 $RUN-rtr                      $RUN-srv
#   +----------------+       +-------------------------+   +--------------------+
#   | eth0           |       | eth1          eth0      |   | eth0               |
#   | 192.168.1.2    |-veth--| 192.168.1.1   203.0.113.254 |-| 203.0.113.1, .2  |
#   | fd00:1::2      |       | fd00:1::1     2001:db8::fe|   | 2001:db8::1, ::2   |
#   +----------------+       +-------------------------+   +--------------------+
#                              nftables: the case's NAT      natprobe server
#                                                            ports 3478, 3479
set -eu
source "$(dirname "$0")/lib.sh"

NATPROBE=${NATPROBE:-$ROOT/build/lab/natprobe}
PUB=203.0.113.254

# topo_up: the three namespaces, addressed and routed, the server running.
topo_up() {
	local ns
	netns_add cli
	netns_add rtr
	netns_add srv
	# No duplicate address detection: link-local addresses would stay
	# tentative for seconds, and neighbour discovery with them.
	for ns in cli rtr srv; do
		n $ns sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	done
	ip -n "$RUN-rtr" link add eth1 type veth peer name eth0 netns "$RUN-cli"
	ip -n "$RUN-rtr" link add eth0 type veth peer name eth0 netns "$RUN-srv"
	n rtr ip link set eth0 up
	n rtr ip link set eth1 up
	n cli ip link set eth0 up
	n srv ip link set eth0 up
	n cli ip addr add 192.168.1.2/24 dev eth0
	n cli ip addr add fd00:1::2/64 dev eth0 nodad
	n rtr ip addr add 192.168.1.1/24 dev eth1
	n rtr ip addr add fd00:1::1/64 dev eth1 nodad
	n rtr ip addr add $PUB/24 dev eth0
	n rtr ip addr add 2001:db8::fe/64 dev eth0 nodad
	n srv ip addr add 203.0.113.1/24 dev eth0
	n srv ip addr add 203.0.113.2/24 dev eth0
	n srv ip addr add 2001:db8::1/64 dev eth0 nodad
	n srv ip addr add 2001:db8::2/64 dev eth0 nodad
	n cli ip route add default via 192.168.1.1
	n cli ip -6 route add default via fd00:1::1
	# Without NAT the server must still find the way back.
	n srv ip route add 192.168.1.0/24 via $PUB
	n srv ip -6 route add fd00:1::/64 via 2001:db8::fe
	n rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	bg srv "$NATPROBE" server --addr 203.0.113.1 --addr 203.0.113.2 \
		--port 3478 --port 3479 2>>"$TMP/server4.log"
	bg srv "$NATPROBE" server --addr 2001:db8::1 --addr 2001:db8::2 \
		--port 3478 --port 3479 2>>"$TMP/server6.log"
	wait_until 5 grep -q '2001:db8::2.*3479' "$TMP/server6.log"
	wait_until 5 grep -q '203.0.113.2:3479' "$TMP/server4.log"
}

topo_down() {
	local pid
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	netns_del cli
	netns_del rtr
	netns_del srv
}

# nat RULES: replace the router's ruleset; forget the old flows and their
# bindings, so that each case starts from an empty NAT.
nat() {
	n rtr nft -f - <<<"flush ruleset
$1"
	n rtr conntrack -F 2>/dev/null || true
}

# probe [SERVER]: natprobe client in cli, JSON in $OUT, exit status in $RC.
probe() {
	local server=${1:-203.0.113.1:3478}
	RC=0
	OUT=$(n cli "$NATPROBE" client --server "$server" --json 2>>"$TMP/client.log") || RC=$?
	echo "  natprobe -> $OUT (exit $RC)"
	[[ $RC -eq 0 ]]
}

# expect MAPPING FILTERING ALLOCATION HAIRPIN MAPPED_IP: $OUT is exactly that.
expect() {
	local lit
	lit="{\"udp\":true,\"mapping\":\"$1\",\"filtering\":\"$2\",\"allocation\":\"$3\""
	lit+=",\"hairpin\":$4,\"mapped\":\"$5:"
	[[ $OUT =~ ^"$lit"[0-9]+\"\}$ ]]
}

MASQ='table ip nat {
	chain post { type nat hook postrouting priority srcnat; oifname "eth0" masquerade; }
}'

topo_up

echo "case: no NAT, no firewall"
if probe; then pass "no NAT: natprobe exits 0"; else fail "no NAT: natprobe exits 0"; fi
check "no NAT: eim, eif, preserving, hairpin, mapped = own address" \
	expect eim eif preserving true 192.168.1.2

echo "case: no NAT over IPv6"
if probe "[2001:db8::1]:3478"; then pass "IPv6: exits 0"; else fail "IPv6: exits 0"; fi
check "IPv6: eim, eif, preserving, mapped = own address" \
	expect eim eif preserving true "[fd00:1::2]"

echo "case: Linux masquerade"
nat "$MASQ"
probe || true
check "masquerade: eim (ports kept per flow), adpf (conntrack), preserving, no hairpin" \
	expect eim adpf preserving false $PUB

echo "case: masquerade with fully random ports"
nat 'table ip nat {
	chain post { type nat hook postrouting priority srcnat; oifname "eth0" masquerade fully-random; }
}'
probe || true
check "random masquerade: adpm, adpf, random" expect adpm adpf random false $PUB

echo "case: full cone with hairpinning (static DNAT back to the client)"
FULLCONE="table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat;
		ip daddr $PUB meta l4proto udp dnat to 192.168.1.2
	}
	chain post {
		type nat hook postrouting priority srcnat;
		oifname \"eth0\" masquerade
		oifname \"eth1\" ip saddr 192.168.1.0/24 snat to $PUB
	}
}"
nat "$FULLCONE"
probe || true
check "full cone: eim, eif, preserving, hairpin" expect eim eif preserving true $PUB

# Retransmissions: with 30% of the answers lost, nothing changes.
echo "case: full cone, 30% of inbound UDP lost"
nat "$FULLCONE
table inet fw {
	chain fw_forward {
		type filter hook forward priority filter;
		iifname \"eth0\" meta l4proto udp numgen random mod 10 < 3 drop
	}
}"
probe || true
check "full cone with loss: still eim, eif, preserving, hairpin" \
	expect eim eif preserving true $PUB

# Filtering alone: no NAT, a stateful firewall keyed on what left.
echo "case: firewall, address-dependent filtering"
nat 'table inet fw {
	set sent { type ipv4_addr . inet_service . ipv4_addr; flags dynamic, timeout; timeout 60s; }
	chain fw_forward {
		type filter hook forward priority filter; policy accept;
		iifname "eth1" meta l4proto udp update @sent { ip saddr . udp sport . ip daddr }
		iifname "eth0" meta l4proto udp ip daddr . udp dport . ip saddr @sent accept
		iifname "eth0" meta l4proto udp drop
	}
}'
probe || true
check "ADF firewall: eim, adf, preserving" expect eim adf preserving true 192.168.1.2

echo "case: firewall, endpoint-independent filtering"
nat 'table inet fw {
	set sent { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 60s; }
	chain fw_forward {
		type filter hook forward priority filter; policy accept;
		iifname "eth1" meta l4proto udp update @sent { ip saddr . udp sport }
		iifname "eth0" meta l4proto udp ip daddr . udp dport @sent accept
		iifname "eth0" meta l4proto udp drop
	}
}'
probe || true
check "EIF firewall: eim, eif, preserving" expect eim eif preserving true 192.168.1.2

echo "case: router drops all UDP"
nat 'table inet fw {
	chain fw_forward { type filter hook forward priority filter; meta l4proto udp drop; }
}'
t0=$(date +%s%N)
probe || true
ms=$((($(date +%s%N) - t0) / 1000000))
check "UDP blocked: exit 0 and udp false" \
	test "$RC:$OUT" = '0:{"udp":false,"mapping":null,"filtering":null,"allocation":null,"hairpin":false,"mapped":null}'
check "UDP blocked: the error names the server" \
	grep -q 'no answer from 203.0.113.1:3478 after 8 tries: UDP blocked?' "$TMP/client.log"
check "UDP blocked: gives up within 3 s (took $ms ms)" test "$ms" -lt 3000

echo "case: a STUN server without a second address and port"
nat ''
bg srv "$NATPROBE" server --addr 203.0.113.1 --port 3480 2>>"$TMP/server1.log"
wait_until 5 grep -q '203.0.113.1:3480' "$TMP/server1.log"
RC=0
n cli "$NATPROBE" client --server 203.0.113.1:3480 >/dev/null 2>"$TMP/err" || RC=$?
check "no OTHER-ADDRESS: exit 1 saying why" \
	bash -c "[[ $RC -eq 1 ]] && grep -q 'sent no OTHER-ADDRESS' '$TMP/err'"
RC=0
n srv "$NATPROBE" client --server 198.51.100.1:3478 >/dev/null 2>"$TMP/err" || RC=$?
check "no route to the server: exit 1, not a classification" \
	bash -c "[[ $RC -eq 1 ]] && grep -q 'cannot send to 198.51.100.1:3478' '$TMP/err'"
RC=0
n cli "$NATPROBE" client --server nonsense >/dev/null 2>"$TMP/err" || RC=$?
check "bad --server: exit 1 with a message" \
	bash -c "[[ $RC -eq 1 ]] && grep -q 'bad --server' '$TMP/err'"

# A loss-free run must be quick: the lab runs natprobe for every NAT kind.
echo "case: timing"
nat "$MASQ"
t0=$(date +%s%N)
probe || true
ms=$((($(date +%s%N) - t0) / 1000000))
check "masquerade probe finishes within 3 s (took $ms ms)" test "$ms" -lt 3000

topo_down
summary natprobe
