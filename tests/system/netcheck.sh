#!/usr/bin/env bash
# knit netcheck reports the NAT in front of a node as the lab declares it.
# A lab (lab/knit-lab) with six NAT kinds, a knitd behind each, control,
# and a relay whose STUN server has an RFC 5780 alternate address and port
# (knit-relay --stun-alt) on the public switch:
#
#                        switch 198.51.100.0/24
#   control .1     relay .2 (+ .5)                 router1 .11 ... router6 .16
#   knit-control   knit-relay :8443                 eim-eif  eim-adpf  adpm-adpf
#                  STUN .2:3478, alternate .5:3479   udp-blocked  eim-adf hairpin
#                                                    adm-eif sequential ports
#                                                      |        |
#                                                   peer1-1 ... peer6-1: knitd
#
# For each kind: the relay alone classifies it as the lab's STUN server does
# (natprobe against the relay), and `knit netcheck --json` on the knitd
# behind it reports the declared UDP, mapping, filtering, allocation and
# hairpinning, its public address, the relay's latency and the home relay,
# within the 5 s that knit netcheck may take.  The human form says the same.
set -u
source "$(dirname "$0")/lib.sh"

LAB=$ROOT/lab/knit-lab
NATPROBE=$ROOT/build/lab/natprobe
CONTROL=$ROOT/build/knit-control
RELAY=$ROOT/build/knit-relay
PUB=198.51.100
# shellcheck disable=SC2054  # commas separate a kind's modifiers
KINDS=(eim-eif eim-adpf adpm-adpf udp-blocked eim-adf,hairpin=on adm-eif,alloc=sequential)
P=n$$
P=${P:0:12}
export LAB_QUIET=1

trap 'cleanup; KNIT_LAB_PREFIX=$P "$LAB" down >/dev/null 2>&1' EXIT

# class JSON -> "udp mapping filtering allocation hairpin", as knit-lab
# class writes it (null where nothing can be known).
class_of() {
	jq -r '[.udp, .mapping, .filtering, .allocation, (.hairpin // false)] |
		map(if . == "unknown" then null else . end) | map(tostring) | join(" ")'
}

args=()
for i in "${!KINDS[@]}"; do args+=("--nat$((i + 1))" "${KINDS[$i]}"); done
if ! KNIT_LAB_PREFIX=$P "$LAB" up --public-peers 0 "${args[@]}" >/dev/null; then
	fail "knit-lab up"
	summary netcheck
	exit 1
fi

# The relay host's second address, for the STUN alternate.
lx relay ip addr add "$PUB.5/24" dev eth0
CK=$("$CONTROL" key --state-dir "$TMP/ctl")
RK=$("$RELAY" key --state-dir "$TMP/rly")
"$CONTROL" relay add --id 1 --region lab --host "$PUB.2" --port 8443 --stun-port 3478 \
	--stun-alt "$PUB.5:3479" --key "$RK" --state-dir "$TMP/ctl" >/dev/null
AUTH=$("$CONTROL" authkey create --reusable --state-dir "$TMP/ctl")
lbg control control "$CONTROL" serve --listen "$PUB.1:8080" --state-dir "$TMP/ctl"
wait_until 5 listening control t 8080
lbg relay relay "$RELAY" serve --listen "$PUB.2:8443" --stun "$PUB.2:3478" \
	--stun-alt "$PUB.5:3479" --control "http://$PUB.1:8080" --control-key "$CK" \
	--state-dir "$TMP/rly"
RELAY_PID=${PIDS[-1]}
check "the relay answers STUN on four sockets (two addresses, two ports)" \
	wait_until 5 eval '[[ $(lx relay ss -Hlun | wc -l) -ge 4 ]]'

echo "== the relay as an RFC 5780 server (natprobe against it)"
for i in "${!KINDS[@]}"; do
	kind=${KINDS[$i]}
	host=peer$((i + 1))-1
	declared=$("$LAB" class "$kind")
	got=$(lx "$host" "$NATPROBE" client --json --timeout-ms 600 --server "$PUB.2:3478" \
		2>>"$TMP/natprobe.log" | class_of)
	check "$kind: natprobe against the relay sees $declared (got: $got)" \
		[ "$got" == "$declared" ]
done

echo "== knit netcheck"
for i in "${!KINDS[@]}"; do
	h=peer$((i + 1))-1
	lbg "$h" "knitd-$h" "$KNITD" --state-dir "$TMP/$h" --socket "$TMP/$h.sock"
done
for i in "${!KINDS[@]}"; do
	h=peer$((i + 1))-1
	wait_until 5 test -S "$TMP/$h.sock"
	k "$h" up --control "http://$PUB.1:8080" --control-key "$CK" --auth-key "$AUTH" \
		--hostname "$h" --timeout 10 >/dev/null 2>>"$TMP/up.log" || fail "knit up on $h"
done
# The relay map reaches each node with its login; give the first check a moment.
sleep 1

for i in "${!KINDS[@]}"; do
	kind=${KINDS[$i]}
	h=peer$((i + 1))-1
	declared=$("$LAB" class "$kind")
	t0=$EPOCHREALTIME
	OUT=$(k "$h" netcheck --json 2>&1)
	RC=$?
	ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
	echo "  $h ($kind): $OUT"
	check "$kind: knit netcheck answers ok within 5 s (${ms} ms)" \
		eval '[[ $RC -eq 0 ]] && jqe ".ok and (.stale | not)" <<<"$OUT" && ((ms < 5000))'
	got=$(class_of <<<"$OUT")
	check "$kind: knit netcheck reports $declared (got: $got)" [ "$got" == "$declared" ]
	if [[ $kind == udp-blocked ]]; then
		check "$kind: no relay answered, no address, no latency" \
			jqe '.udp == false and .ipv4 == false and .mapped_v4 == null and
				.relays[0].latency_us == null and .nat.udp == false' <<<"$OUT"
		continue
	fi
	check "$kind: the address the relay saw is the router's ($PUB.$((11 + i)))" \
		jqe --arg a "$PUB.$((11 + i))" '.mapped_v4 | startswith($a + ":")' <<<"$OUT"
	check "$kind: relay 1 has a latency and is the home relay; behind a NAT, not public" \
		jqe '.relays[0].id == 1 and .relays[0].latency_us > 0 and .relays[0].rfc5780 and
			.home_relay == 1 and .public_address == false and .ipv4' <<<"$OUT"
	check "$kind: the class peers get (nat) says the same" \
		jqe '.nat.udp and .nat.mapping == .mapping and .nat.filtering == .filtering' \
		<<<"$OUT"
done

echo "== the human form"
OUT=$(k peer3-1 netcheck)
echo "$OUT" | sed 's/^/  /'
check "knit netcheck prints mapping, filtering and allocation lines" \
	eval 'grep -qx "mapping: *adpm" <<<"$OUT" && grep -qx "filtering: *adpf" <<<"$OUT" &&
	      grep -qx "allocation: *random" <<<"$OUT" && grep -q "^relay 1 .* ms$" <<<"$OUT"'

echo "== a relay without an alternate (no --stun-alt)"
stop_pid "$RELAY_PID"
lbg relay relay "$RELAY" serve --listen "$PUB.2:8443" --stun "$PUB.2:3478" \
	--control "http://$PUB.1:8080" --control-key "$CK" --state-dir "$TMP/rly"
wait_until 5 listening relay u 3478
OUT=$(k peer2-1 netcheck --json)
echo "  peer2-1: $OUT"
check "filtering and mapping unknown (one plain STUN server), UDP and allocation still known" \
	jqe '.ok and .udp and .filtering == "unknown" and .mapping == "unknown" and
		.allocation == "preserving" and (.relays[0].rfc5780 | not)' <<<"$OUT"

echo "== a knitd that never logged in"
lbg control knitd-fresh "$KNITD" --state-dir "$TMP/fresh" --socket "$TMP/fresh.sock"
wait_until 5 test -S "$TMP/fresh.sock"
OUT=$(lx control "$KNIT" --socket "$TMP/fresh.sock" netcheck 2>&1)
RC=$?
check "knit netcheck without a relay map: exit 1 saying why" \
	eval '[[ $RC -eq 1 ]] && grep -q "no relays" <<<"$OUT"'

summary netcheck
