#!/usr/bin/env bash
# ctfilter, the NAT lab's conntrack-to-nftables helper: a masquerading
# router whose inbound filter and DNAT consult a set and a map that ctfilter
# fills from conntrack events.  Checked: the element appears right after the
# client's first packet (or --delay-ms later, with inbound packets dropped
# until then), goes away on DESTROY (counted per flow), on conntrack expiry
# and with --timeout, and only flows that match count.
#
#   $RUN-c                $RUN-r (router)                        $RUN-s
#   +-------------+       +-----------------------------+       +-------------+
#   | client      |       | ctfilter -> set adf, map inbound|       | server      |
#   | 10.0.1.2    |-veth--| eth0 10.0.1.1   eth1 192.0.2.1|-veth--| 192.0.2.2   |
#   | udp 5000... |       | masquerade persistent on eth1|       | 3478, 3479  |
#   +-------------+       +-----------------------------+       +-------------+
#
# Inbound on eth1, a packet from address A to mapped port P is DNATed to the
# inside endpoint inbound[P] only while "A . P" is in adf (ADF filtering); before
# that it is dropped, unconfirmed, so it leaves no conntrack entry behind.
set -eu
source "$(dirname "$0")/lib.sh"

CTFILTER=${CTFILTER:-$ROOT/build/lab/ctfilter}
CLIENT=10.0.1.2 ROUTER_OUT=192.0.2.1 SERVER=192.0.2.2

netns_add c
netns_add r
netns_add s
ip -n "$RUN-c" link add eth0 type veth peer name eth0 netns "$RUN-r"
ip -n "$RUN-r" link add eth1 type veth peer name eth0 netns "$RUN-s"
n c ip link set eth0 up
n r ip link set eth0 up
n r ip link set eth1 up
n s ip link set eth0 up
n c ip addr add $CLIENT/24 dev eth0
n c ip route add default via 10.0.1.1
n r ip addr add 10.0.1.1/24 dev eth0
n r ip addr add $ROUTER_OUT/24 dev eth1
n s ip addr add $SERVER/24 dev eth0
n r sysctl -q -w net.ipv4.ip_forward=1
n r nft -f - <<'NFT'
table ip lab {
	set adf { type ipv4_addr . inet_service; flags timeout; }
	set eif { type inet_service; flags timeout; }
	map inbound { type inet_service : ipv4_addr . inet_service; flags timeout; }
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "eth1" ip saddr . udp dport @adf dnat ip to udp dport map @inbound
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth1" masquerade persistent
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "eth0" oifname "eth1" accept
		ct status dnat accept
	}
	chain in {
		type filter hook input priority filter; policy accept;
		iifname "eth1" ct state new drop
	}
}
NFT

# A UDP client and a blaster that stamp packets with CLOCK_MONOTONIC, which
# every namespace shares.
cat >"$TMP/udp.py" <<'PY'
import select, socket, sys, time
mode = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if mode == "blast":  # blast SPORT DST DPORT INTERVAL_MS COUNT
    sport, dst, dport, ivl, count = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    s.bind(("0.0.0.0", sport))
    for i in range(count):
        s.sendto(b"%d %d" % (i, time.monotonic_ns()), (dst, dport))
        time.sleep(ivl / 1000)
else:  # client LPORT DST SECONDS DPORT...: send one packet to each DPORT, then listen
    lport, dst, secs = int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    s.bind(("0.0.0.0", lport))
    t0 = time.monotonic_ns()
    for dport in sys.argv[5:]:
        s.sendto(b"hello", (dst, int(dport)))
    print("t0 %d" % t0, flush=True)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0, end - time.monotonic()))
        if r:
            data = s.recv(100)
            print("recv %s %d" % (data.decode(), time.monotonic_ns()), flush=True)
PY

# ctf NAME ARGS...: ctfilter in the router, logging to $TMP/NAME.log; ready
# once it says so.  Its PID is left in CTF_PID[NAME].
declare -A CTF_PID
ctf() {
	local name=$1; shift
	bg r "$CTFILTER" "$@" 2>"$TMP/$name.log"
	CTF_PID[$name]=$LAST_PID
	wait_until 5 grep -q "ctfilter ready" "$TMP/$name.log"
}
ctf_stop() { stop_pid "${CTF_PID[$1]}"; }
elements() { n r nft list "$1" ip lab "$2" | sed -n 's/.*elements = { \(.*\) }.*/\1/p'; }
has() { elements "$1" "$2" | grep -q -- "$3"; }
lacks() { ! has "$@"; }

# probe LPORT SECONDS: the server blasts from 3479 to the mapped LPORT every
# 5 ms; 0.2 s in, the client sends its first packet from LPORT to 3478.
# Prints LATENCY_MS (first blast that got through, sent after the client's
# first packet) and GOT (blasts received).
probe() {
	local lport=$1 secs=$2 count
	count=$(awk -v s="$secs" 'BEGIN { print int((s + 0.3) * 200) }')
	bg s python3 "$TMP/udp.py" blast 3479 $ROUTER_OUT "$lport" 5 "$count"
	local blaster=$LAST_PID
	sleep 0.2
	n c python3 "$TMP/udp.py" client "$lport" $SERVER "$secs" 3478 >"$TMP/probe-$lport"
	stop_pid "$blaster"
	GOT=$(grep -c '^recv' "$TMP/probe-$lport" || true)
	LATENCY_MS=$(awk '/^t0/ { t0 = $2 } /^recv/ && (!first || $3 < first) { first = $3 }
		END { if (first) printf "%.1f", (first - t0) / 1e6; else print "none" }' "$TMP/probe-$lport")
}
lt() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x != "none" && x < y) }'; }
ge() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x != "none" && x >= y) }'; }

SRC=(--src 10.0.1.0/24)
ctf inbound --set ip:lab:inbound --key mapped-port --value saddr.sport "${SRC[@]}"

echo "--- no delay"
ctf adf --set ip:lab:adf --key daddr.mapped-port "${SRC[@]}" --snat-only
probe 5000 1
echo "delay 0: first inbound packet accepted ${LATENCY_MS} ms after the client's first packet ($GOT received)"
check "no delay: inbound accepted within 50 ms (${LATENCY_MS} ms)" lt "$LATENCY_MS" 50
check "no delay: adf holds the server's address and the mapped port" has set adf "$SERVER . 5000"
check "no delay: inbound maps the mapped port to the client" has map inbound "5000 : $CLIENT . 5000"
check "no delay: the DNATed inbound flow made no element (not from --src)" \
	test "$(elements set adf | tr ',' '\n' | grep -c .)" = 1
n r conntrack -D -p udp --orig-src $CLIENT --orig-port-src 5000 >/dev/null 2>&1
check "DESTROY: the element leaves adf" wait_until 2 lacks set adf "$SERVER . 5000"
check "DESTROY: the element leaves inbound" wait_until 2 lacks map inbound "5000 :"
ctf_stop adf

echo "--- delay 500 ms"
ctf adf --set ip:lab:adf --key daddr.mapped-port "${SRC[@]}" --delay-ms 500
probe 5001 1.5
echo "delay 500: first inbound packet accepted ${LATENCY_MS} ms after the client's first packet ($GOT received)"
check "delay 500: nothing sent in the first 500 ms got in (first ${LATENCY_MS} ms)" ge "$LATENCY_MS" 500
check "delay 500: accepted within 560 ms (${LATENCY_MS} ms)" lt "$LATENCY_MS" 560
check "delay 500: then the blasts flow (>150 of ~200 received: $GOT)" test "$GOT" -gt 150
ctf_stop adf
check "exit: ctfilter deletes its elements" wait_until 2 lacks set adf "$SERVER . 5001"
check "exit: other instances' elements stay" has map inbound "5001 : $CLIENT . 5001"

echo "--- two flows, one element"
ctf eif --set ip:lab:eif --key mapped-port "${SRC[@]}"
n c python3 "$TMP/udp.py" client 5002 $SERVER 0 3478 3479 >/dev/null
check "EIF: the mapping's port is in eif" wait_until 2 has set eif 5002
n r conntrack -D -p udp --orig-src $CLIENT --orig-port-src 5002 --orig-port-dst 3478 >/dev/null 2>&1
sleep 0.3
check "EIF: one of two flows destroyed, the element stays" has set eif 5002
n r conntrack -D -p udp --orig-src $CLIENT --orig-port-src 5002 --orig-port-dst 3479 >/dev/null 2>&1
check "EIF: the last flow destroyed, the element goes" wait_until 2 lacks set eif 5002

echo "--- filters"
n r python3 "$TMP/udp.py" client 5003 $SERVER 0 3478 >/dev/null
n c python3 "$TMP/udp.py" client 5004 $SERVER 0 3478 >/dev/null
check "filter: a flow from the router itself (not --src) adds nothing" \
	bash -c "sleep 0.3; ! ip netns exec $RUN-r nft list set ip lab eif | grep -q 5003"
check "filter: a flow from inside does" wait_until 2 has set eif 5004
ctf_stop eif

echo "--- timeouts"
ctf eif --set ip:lab:eif --key mapped-port "${SRC[@]}" --timeout 1
n c python3 "$TMP/udp.py" client 5005 $SERVER 0 3478 >/dev/null
check "--timeout: the element carries the timeout" \
	wait_until 2 bash -c "ip netns exec $RUN-r nft list set ip lab eif | grep -q '5005 timeout 1s'"
check "--timeout: the kernel expires it while the flow lives" wait_until 3 lacks set eif 5005
check "--timeout: the flow is still in conntrack" \
	bash -c "ip netns exec $RUN-r conntrack -L -p udp --orig-port-src 5005 2>/dev/null | grep -q 5005"
ctf_stop eif
n r sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=2
ctf eif --set ip:lab:eif --key mapped-port "${SRC[@]}" --reap-ms 250
start=$(date +%s%N)
n c python3 "$TMP/udp.py" client 5006 $SERVER 0 3478 >/dev/null
check "expiry: the element is in" wait_until 2 has set eif 5006
wait_until 10 lacks set eif 5006 || true
gone_ms=$((($(date +%s%N) - start) / 1000000))
echo "expiry: element gone ${gone_ms} ms after the flow's only packet (udp timeout 2 s, --reap-ms 250)"
# The clock starts before python does (~0.1 s); reaping adds up to 0.25 s.
check "expiry: the element goes with the mapping, 2.0-2.8 s (${gone_ms} ms)" \
	test "$gone_ms" -ge 2000 -a "$gone_ms" -le 2800
ctf_stop eif

echo "--- errors"
expect_fail() {
	local what=$1 want=$2; shift 2
	local rc=0
	"$@" >"$TMP/err.out" 2>&1 || rc=$?
	if [[ $rc -ne 0 ]] && grep -q -- "$want" "$TMP/err.out"; then
		pass "$what"
	else
		fail "$what (exit $rc: $(head -c 200 "$TMP/err.out"))"
	fi
}
expect_fail "a missing set is refused" "set ip lab nope: " \
	n r "$CTFILTER" --set ip:lab:nope --key mapped-port
expect_fail "an unknown field is refused" "invalid --key 'daddr.port'" \
	"$CTFILTER" --set ip:lab:adf --key daddr.port
expect_fail "a field twice is refused" "invalid --key 'sport.sport'" \
	"$CTFILTER" --set ip:lab:adf --key sport.sport
expect_fail "a malformed set name is refused" "invalid --set 'ip:lab'" \
	"$CTFILTER" --set ip:lab --key sport
expect_fail "a name that could inject nft syntax is refused" "invalid --set" \
	"$CTFILTER" --set "ip:lab:x } ; flush ruleset" --key sport
expect_fail "a bad prefix is refused" "invalid --src '10.0.1.0/33'" \
	"$CTFILTER" --set ip:lab:adf --key sport --src 10.0.1.0/33
expect_fail "an IPv6 prefix with --ip 4 is refused" "not of the --ip version" \
	"$CTFILTER" --set inet:lab:adf --key sport --src fd00::/64
expect_fail "--key is required" "--key FIELDS is required" "$CTFILTER" --set ip:lab:adf
check "--help documents the fields" bash -c "'$CTFILTER' --help | grep -q 'mapped-port'"

summary ctfilter
