#!/usr/bin/env bash
# Port mapping (src/portmap, driven by build/lab/portmapctl) against
# miniupnpd on a lab router.  For PCP, NAT-PMP and UPnP-IGD, each from its
# own client at once: a mapping of the client's UDP port is obtained,
# renewed (a short lifetime; PCP's is miniupnpd's minimum, 120 s), reached
# from outside by a host the client never sent to, and deleted when the
# client stops.  Also: PCP is chosen when all three are offered, a router
# without port mapping is answered "none" within the probes' bound, and
# no client ever sends a packet to anything but its gateway.
#
#              switch 198.51.100.0/24                        pub1 .101
#     router1 .11 (miniupnpd)                 router2 .12 (no port mapping)
#      |  lan 10.0.1.254                         |  lan 10.0.2.254
#   peer1-1 (PCP)  peer1-2 (NAT-PMP)  peer1-3 (UPnP)     peer2-1
#   10.0.1.1       10.0.1.2           10.0.1.3           10.0.2.1
set -u
source "$(dirname "$0")/lib.sh"

LAB=$ROOT/lab/knit-lab
PCTL=${PCTL:-$ROOT/build/lab/portmapctl} # PCTL=build/san/lab/portmapctl: sanitized
PFX=pm$$
RUNDIR=/run/knit-lab/$PFX
EXT=198.51.100.11
export LAB_QUIET=1

portmap_cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	PIDS=()
	KNIT_LAB_PREFIX=$PFX "$LAB" down >/dev/null 2>&1
}
trap 'portmap_cleanup; cleanup' EXIT

lab() { KNIT_LAB_PREFIX=$PFX "$LAB" "$@"; }
# inns HOST CMD...: CMD in the lab host's namespace, in the background;
# its PID (CMD's own: ip netns exec execs it) is in $LAST_PID.
inns() {
	local h=$1; shift
	ip netns exec "$PFX-$h" "$@" &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}
# udp_send HOST SRCPORT DST DPORT PAYLOAD: one datagram.
udp_send() {
	lab exec "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.sendto(sys.argv[4].encode(), (sys.argv[2], int(sys.argv[3])))' "$2" "$3" "$4" "$5"
}
# udp_recv HOST PORT SECONDS: prints the first datagram's payload, if any.
udp_recv() {
	lab exec "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.settimeout(float(sys.argv[2]))
try: print(s.recvfrom(100)[0].decode())
except socket.timeout: pass' "$2" "$3"
}
# The DNAT rule miniupnpd installs for an external port.
has_dnat() { lab exec router1 nft list chain inet miniupnpd prerouting_miniupnpd | grep -q "dport $1 dnat ip to $2"; }
# The lease's expiry (wall clock seconds) miniupnpd keeps for a port.
lease_expiry() { awk -F: -v p="$1" '$1 == "UDP" && $2 == p { print $5 }' "$RUNDIR/router1-miniupnpd.leases" 2>/dev/null; }
# The external port of the "mapped" line in a client's output.
mapped_port() { sed -n "s/^mapped protocol=$2 external=$EXT:\([0-9]*\)$/\1/p" "$1" | head -n 1; }
got() { grep -q "^received from=198.51.100.101:[0-9]* bytes=[0-9]* data=$2\$" "$1"; }
renewals() { grep -c "port mapping renewed protocol=$2 external=$EXT:$3 " "$1"; }
# The packets a client host sent to anything but its gateway.
strays() { tcpdump -n -r "$1" "ip and src host $2 and not dst host $3" 2>/dev/null | wc -l; }

if ! command -v miniupnpd >/dev/null || ! command -v natpmpc >/dev/null || [[ ! -x $PCTL ]]; then
	fail "miniupnpd, natpmpc or build/lab/portmapctl missing (scripts/install-deps.sh, make)"
	summary portmap
	exit 1
fi

lab up --nat1 eim-adpf --upnp --peers 3 --nat2 eim-adpf --public-peers 1 >/dev/null ||
	{ fail "lab up"; summary portmap; exit 1; }

# Every packet the clients send, to prove they talk only to the gateway.
declare -A CAP
for h in peer1-1 peer1-2 peer1-3 peer2-1; do
	inns "$h" tcpdump -i eth0 -U -n -w "$TMP/$h.pcap" ip 2>/dev/null
	CAP[$h]=$LAST_PID
done
sleep 0.5

# --- what each gateway offers, within the probes' bound -------------------
t0=$(date +%s%N)
offered=$(lab exec peer1-1 "$PCTL" --port 41660 --offered 2>"$TMP/offered1.log" | head -n 1)
check "router1 offers PCP, NAT-PMP and UPnP-IGD" test "$offered" = "offered pcp=yes nat-pmp=yes upnp=yes"
t1=$(date +%s%N)
offered=$(lab exec peer2-1 "$PCTL" --port 41660 --offered 2>"$TMP/offered2.log" | head -n 1)
t2=$(date +%s%N)
check "router2 offers none" test "$offered" = "offered pcp=no nat-pmp=no upnp=no"
echo "probe time: router1 $(((t1 - t0) / 1000000)) ms, router2 (nothing offered) $(((t2 - t1) / 1000000)) ms"
check "probing a gateway that offers nothing ends within 5 s" test $(((t2 - t1) / 1000000)) -lt 5000

# --- one client per protocol, at once -------------------------------------
# pcp: peer1-1 port 41641; nat-pmp: peer1-2 port 41642; upnp: peer1-3 port 41643.
declare -A HOST=([pcp]=peer1-1 [nat-pmp]=peer1-2 [upnp]=peer1-3)
declare -A PORT=([pcp]=41641 [nat-pmp]=41642 [upnp]=41643)
declare -A ADDR=([pcp]=10.0.1.1 [nat-pmp]=10.0.1.2 [upnp]=10.0.1.3)
declare -A PID EXTP E0
PROTOS=(pcp nat-pmp upnp)
for p in "${PROTOS[@]}"; do
	inns "${HOST[$p]}" "$PCTL" --port "${PORT[$p]}" --protocol "$p" --lifetime 6 \
		>"$TMP/$p.out" 2>"$TMP/$p.log"
	PID[$p]=$LAST_PID
done
# With everything offered, the first that works is PCP.
inns peer1-1 "$PCTL" --port 41650 --hold 2 --no-listen >"$TMP/any.out" 2>"$TMP/any.log"
anypid=$LAST_PID
# A router without port mapping: no mapping, and the client still stops.
inns peer2-1 "$PCTL" --port 41641 --hold 6 >"$TMP/none.out" 2>"$TMP/none.log"
nonepid=$LAST_PID
MAP_T0=$SECONDS

for p in "${PROTOS[@]}"; do
	check "$p: a mapping is obtained within 5 s" wait_until 5 grep -q "^mapped protocol=$p " "$TMP/$p.out"
	EXTP[$p]=$(mapped_port "$TMP/$p.out" "$p")
	EXTP[$p]=${EXTP[$p]:-0}
	check "$p: external $EXT:${EXTP[$p]} forwards to ${ADDR[$p]}:${PORT[$p]} at the router" \
		has_dnat "${EXTP[$p]}" "${ADDR[$p]}:${PORT[$p]}"
	E0[$p]=$(lease_expiry "${EXTP[$p]}")
	udp_send pub1 6001 "$EXT" "${EXTP[$p]}" "unsolicited-$p"
done
for p in "${PROTOS[@]}"; do
	check "$p: an unsolicited packet from outside reaches the client's port" \
		wait_until 2 got "$TMP/$p.out" "unsolicited-$p"
done
wait "$anypid"
check "with all three offered, the first that works is PCP" grep -q "^mapped protocol=pcp external=$EXT:41650$" "$TMP/any.out"
check "... and it is deleted when the client stops" eval "! has_dnat 41650 10.0.1.1:41650"

# Control: a NAT-PMP mapping nobody renews expires, so the renewals below
# are what keeps ours.
lab exec peer1-1 natpmpc -a 42000 42000 udp 3 >/dev/null 2>&1
check "control: natpmpc's mapping is installed" has_dnat 42000 10.0.1.1:42000
wait "$nonepid"
check "router2: no mapping, the client stops cleanly" eval \
	"! grep -q '^mapped' '$TMP/none.out' && grep -q '^stopped' '$TMP/none.out'"

# Two lifetimes (6 s) and more after the mappings were made.
sleep $((MAP_T0 + 14 - SECONDS))
check "control: an unrenewed mapping (lifetime 3 s) is gone after 14 s" eval "! has_dnat 42000 10.0.1.1:42000"
for p in nat-pmp upnp; do
	n=$(renewals "$TMP/$p.log" "$p" "${EXTP[$p]}")
	check "$p: renewed at half its 6 s lifetime (renewals after 14 s: $n)" test "$n" -ge 3
	e1=$(lease_expiry "${EXTP[$p]}")
	check "$p: the gateway moved the lease's expiry forward (${E0[$p]} -> $e1)" \
		test -n "$e1" -a -n "${E0[$p]}" -a "${e1:-0}" -gt "${E0[$p]:-0}"
	udp_send pub1 6002 "$EXT" "${EXTP[$p]}" "late-$p"
	check "$p: the mapping still forwards after two lifetimes" wait_until 2 got "$TMP/$p.out" "late-$p"
done

# A network change (SIGHUP: portmap_restart): the mapping is reported lost,
# and a new round maps again.
remapped() { grep -q "^lost protocol=$2\$" "$1" && test "$(grep -c "^mapped protocol=$2 external=$EXT:$3\$" "$1")" -eq 2; }
for p in nat-pmp upnp; do
	kill -HUP "${PID[$p]}"
	check "$p: after a network change the mapping is reported lost, then obtained again" \
		wait_until 5 remapped "$TMP/$p.out" "$p" "${EXTP[$p]}"
done

# Stop: SIGTERM; the mapping is gone from the gateway within the 1 s budget.
for p in nat-pmp upnp; do
	stop_pid "${PID[$p]}"
	check "$p: the client exits 0 on SIGTERM" test "$STOP_STATUS" -eq 0
	ms=$(sed -n 's/^stopped delete_ms=//p' "$TMP/$p.out")
	check "$p: the delete took ${ms:-?} ms (at most 1000)" test "${ms:-9999}" -le 1000
	check "$p: the router no longer forwards the port" eval "! has_dnat '${EXTP[$p]}' '${ADDR[$p]}:${PORT[$p]}'"
	check "$p: the lease is gone" test -z "$(lease_expiry "${EXTP[$p]}")"
	udp_recv "${HOST[$p]}" "${PORT[$p]}" 1.5 >"$TMP/$p.after" &
	rpid=$!
	sleep 0.3
	udp_send pub1 6003 "$EXT" "${EXTP[$p]}" "after-$p"
	wait "$rpid"
	check "$p: an unsolicited packet no longer reaches the client" test ! -s "$TMP/$p.after"
done

# PCP: miniupnpd grants at least 120 s, so the renewal comes at 60 s.
echo "waiting for PCP's renewal (miniupnpd's minimum lifetime is 120 s)"
wait_until 70 grep -q "port mapping renewed protocol=pcp" "$TMP/pcp.log"
check "pcp: renewed at half its lifetime" grep -q "port mapping renewed protocol=pcp external=$EXT:${EXTP[pcp]} lifetime=120" "$TMP/pcp.log"
echo "pcp: renewed $((SECONDS - MAP_T0)) s after mapping"
e1=$(lease_expiry "${EXTP[pcp]}")
check "pcp: the gateway moved the lease's expiry forward (${E0[pcp]} -> $e1)" \
	test -n "$e1" -a -n "${E0[pcp]}" -a "${e1:-0}" -gt "$((${E0[pcp]:-0} + 30))"
udp_send pub1 6002 "$EXT" "${EXTP[pcp]}" "late-pcp"
check "pcp: the mapping still forwards after its renewal" wait_until 2 got "$TMP/pcp.out" "late-pcp"
stop_pid "${PID[pcp]}"
check "pcp: the client exits 0 on SIGTERM" test "$STOP_STATUS" -eq 0
ms=$(sed -n 's/^stopped delete_ms=//p' "$TMP/pcp.out")
check "pcp: the delete took ${ms:-?} ms (at most 1000)" test "${ms:-9999}" -le 1000
check "pcp: the router no longer forwards the port" eval "! has_dnat '${EXTP[pcp]}' 10.0.1.1:41641"
check "pcp: the lease is gone" test -z "$(lease_expiry "${EXTP[pcp]}")"
udp_recv peer1-1 41641 1.5 >"$TMP/pcp.after" &
rpid=$!
sleep 0.3
udp_send pub1 6003 "$EXT" "${EXTP[pcp]}" "after-pcp"
wait "$rpid"
check "pcp: an unsolicited packet no longer reaches the client" test ! -s "$TMP/pcp.after"

# Nothing but the gateway, ever (SSDP included: unicast, not multicast).
for h in "${!CAP[@]}"; do stop_pid "${CAP[$h]}"; done
for h in peer1-1 peer1-2 peer1-3; do
	n=$(tcpdump -n -r "$TMP/$h.pcap" "ip and src host 10.0.1.${h#peer1-}" 2>/dev/null | wc -l)
	s=$(strays "$TMP/$h.pcap" "10.0.1.${h#peer1-}" 10.0.1.254)
	check "$h sent $n packets, $s of them to anything but its gateway" test "$n" -gt 0 -a "$s" -eq 0
done
n=$(tcpdump -n -r "$TMP/peer2-1.pcap" "ip and src host 10.0.2.1" 2>/dev/null | wc -l)
s=$(strays "$TMP/peer2-1.pcap" 10.0.2.1 10.0.2.254)
check "peer2-1 sent $n packets, $s of them to anything but its gateway" test "$n" -gt 0 -a "$s" -eq 0

summary portmap
