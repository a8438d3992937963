#!/usr/bin/env bash
# Direct paths that outlive the NAT's memory, and heal when the NAT moves.
# A lab (lab/knit-lab) with two NATs that forget idle UDP mappings quickly,
# control and a relay on the public switch, a knitd behind each NAT:
#
#   peer1-1 -- router1 eim-adpf, mappings kept 3 s  --+
#                                                      switch -- control, relay
#   peer2-1 -- router2 eim-adf, mappings kept 12 s  --+
#
# Each knitd measures how long its NAT keeps an idle mapping (RFC 5780
# binding lifetime, through the relay's STUN server and RESPONSE-PORT) and
# pings an idle peer's direct path at half that: about every second behind
# router1, every 5 s behind router2 (a fixed 10 s would lose router1's
# mapping, a fixed 500 ms floods idle paths).  Then router1 forgets every
# mapping and hands out new ports, as a node that roams does: the pair must
# leave the dead path for the relay and find the new one by itself.
set -u
source "$(dirname "$0")/lib.sh"

LAB=$ROOT/lab/knit-lab
CONTROL=$ROOT/build/knit-control
RELAY=$ROOT/build/knit-relay
PUB=198.51.100
P=ka$$
P=${P:0:12}
export LAB_QUIET=1

trap 'cleanup; KNIT_LAB_PREFIX=$P "$LAB" down >/dev/null 2>&1' EXIT

path_of() { k "$1" status --json 2>/dev/null | jq -r '.peers[0].path // "none"'; }
direct() { [[ $(path_of "$1") == direct ]]; }
lifetime_of() { k "$1" status --json 2>/dev/null | jq -c '.self.mapping_lifetime'; }
measured() { [[ $(lifetime_of "$1" | jq -r .state) == measured ]]; }

if ! KNIT_LAB_PREFIX=$P "$LAB" up --public-peers 0 --nat1 eim-adpf --timeout 3 \
	--nat2 eim-adf --timeout 12 >/dev/null; then
	fail "knit-lab up"
	summary keepalive
	exit 1
fi

CK=$("$CONTROL" key --state-dir "$TMP/ctl")
RK=$("$RELAY" key --state-dir "$TMP/rly")
"$CONTROL" relay add --id 1 --region lab --host "$PUB.2" --port 8443 --stun-port 3478 \
	--key "$RK" --state-dir "$TMP/ctl" >/dev/null
AUTH=$("$CONTROL" authkey create --reusable --state-dir "$TMP/ctl")
lbg control control "$CONTROL" serve --listen "$PUB.1:8080" --state-dir "$TMP/ctl"
wait_until 5 listening control t 8080
lbg relay relay "$RELAY" serve --listen "$PUB.2:8443" --stun "$PUB.2:3478" \
	--control "http://$PUB.1:8080" --control-key "$CK" --state-dir "$TMP/rly"
wait_until 5 listening relay u 3478
for h in peer1-1 peer2-1; do
	lbg "$h" "knitd-$h" "$KNITD" --state-dir "$TMP/$h" --socket "$TMP/$h.sock"
	wait_until 5 test -S "$TMP/$h.sock"
	k "$h" up --control "http://$PUB.1:8080" --control-key "$CK" --auth-key "$AUTH" \
		--hostname "$h" --timeout 10 >/dev/null 2>>"$TMP/up.log" || fail "knit up on $h"
done
IP1=$(k peer1-1 ip -4)
lx peer2-1 ping -c 3 -i 0.2 -W 1 "$IP1" >/dev/null 2>&1
check "peer1 and peer2 are direct (EIM on both sides: plain punching)" \
	wait_until 10 eval 'direct peer1-1 && direct peer2-1'

echo "== the mapping lifetime each knitd measures"
check "both measure their NAT's mapping lifetime within 60 s" \
	wait_until 60 eval 'measured peer1-1 && measured peer2-1'
L1=$(lifetime_of peer1-1) L2=$(lifetime_of peer2-1)
echo "  peer1-1 (3 s NAT): $L1"
echo "  peer2-1 (12 s NAT): $L2"
check "behind the 3 s NAT: a 2 s silence survived, a 5 s one did not" \
	jqe '.survived_ms == 2000 and .failed_ms == 5000' <<<"$L1"
check "behind the 12 s NAT: a 10 s silence survived, a 20 s one did not" \
	jqe '.survived_ms == 10000 and .failed_ms == 20000' <<<"$L2"
check "idle keepalives: every 1 s behind the 3 s NAT, every 5 s behind the 12 s one" \
	eval '[[ $(k peer1-1 status --json | jq .self.idle_keepalive_ms) == 1000 &&
		 $(k peer2-1 status --json | jq .self.idle_keepalive_ms) == 5000 ]]'

echo "== an idle direct path, 20 s"
# The disco pings each knitd sends to the other's NAT while no data flows
# (a ping is 123 bytes of UDP payload, a pong 109: src/disco/disco.h).
lbg peer1-1 cap1 tcpdump -i eth0 -n -U --immediate-mode -w "$TMP/idle1.pcap" \
	"udp and dst host $PUB.12 and udp[4:2] = 131"
lbg peer2-1 cap2 tcpdump -i eth0 -n -U --immediate-mode -w "$TMP/idle2.pcap" \
	"udp and dst host $PUB.11 and udp[4:2] = 131"
CAP1=${PIDS[-2]} CAP2=${PIDS[-1]}
sleep 1
flips=0
for _ in $(seq 20); do
	sleep 1
	direct peer1-1 && direct peer2-1 || flips=$((flips + 1))
done
stop_pid "$CAP1"
stop_pid "$CAP2"
# gaps FILE: "COUNT MEDIAN_MS" of the gaps between the captured pings.
gaps() {
	tcpdump -n -tt -r "$1" 2>/dev/null | awk 'NR > 1 { print int(($1 - p) * 1000) } { p = $1 }' |
		sort -n | awk '{ g[NR] = $1 } END { print NR + 1, (NR ? g[int((NR + 1) / 2)] : 0) }'
}
read -r n1 g1 <<<"$(gaps "$TMP/idle1.pcap")"
read -r n2 g2 <<<"$(gaps "$TMP/idle2.pcap")"
echo "  pings to the other NAT in ~22 idle seconds: peer1-1 $n1 (median gap $g1 ms), peer2-1 $n2 ($g2 ms)"
check "both stayed direct every second of it ($flips seconds not)" [ "$flips" -eq 0 ]
check "peer1-1 (3 s NAT) pinged about every second (median gap $g1 ms)" \
	eval '((g1 >= 900 && g1 <= 1300))'
check "peer2-1 (12 s NAT) pinged every 5 s, not every 500 ms (median gap $g2 ms, $n2 pings)" \
	eval '((g2 >= 4500 && g2 <= 6000 && n2 <= 6))'
check "after the silence, the first packet from peer2-1 gets through router1 at once" \
	lx peer2-1 ping -c 1 -W 1 "$IP1"

echo "== router1 forgets every mapping and allocates new ports (a roaming node)"
OLD=$(k peer2-1 status --json | jq -r '.peers[0].endpoint')
lx peer2-1 ping -c 100 -i 0.1 -W 1 "$IP1" >"$TMP/roam-ping.log" 2>&1 &
PING=$!
PIDS+=("$PING")
sleep 1
KNIT_LAB_PREFIX=$P "$LAB" nat router1 eim-adpf,alloc=random,timeout=3 >>"$TMP/renat.log" 2>&1
t0=$EPOCHREALTIME
moved() { direct peer2-1 && [[ $(k peer2-1 status --json | jq -r '.peers[0].endpoint') != "$OLD" ]]; }
check "peer2-1 is direct again, on router1's new mapping, within 6 s (was $OLD)" \
	wait_until 6 moved
ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
EP=$(k peer2-1 status --json | jq -r '.peers[0].endpoint')
echo "  direct again after $ms ms at $EP"
check "the new endpoint is router1's address" eval '[[ $EP == $PUB.11:* ]]'
check "peer1-1 is direct too" wait_until 3 direct peer1-1
wait "$PING"
lost=$(awk '/packets transmitted/ { print $1 - $4 }' "$TMP/roam-ping.log")
echo "  pings during the move: ${lost:-?} of 100 lost (one every 100 ms)"
check "the ping ran through the move: at most 3 s of it lost (${lost:-?} pings)" \
	eval '[[ -n $lost ]] && ((lost <= 30))'

check "no crash or sanitizer report in the daemons' logs" daemon_logs_clean
summary keepalive
