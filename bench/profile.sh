#!/usr/bin/env bash
# Profiles both knitds while one TCP stream (iperf3) crosses them: perf
# record -g on each for the run, then perf report's top entries.  For
# reading, not for figures (bench/throughput.sh measures).
#
# With RELAYED=1 the stream crosses a knit-relay instead (the overlay of
# bench/relay-overlay.sh): both knitds and the relay are profiled.
#
# Usage: bench/profile.sh [OUTDIR]   (SECONDS_PER_RUN=8; IPERF_ARGS="-u -b 2G"
#        for UDP; KNIT_NO_OFFLOAD=... is passed to knitd; RELAYED=1)
set -eu
source "$(dirname "$0")/../tests/system/lib.sh"
source "$(dirname "$0")/relay-overlay.sh"

SECS=${SECONDS_PER_RUN:-8}
OUT=${1:-$TMP/profile}
mkdir -p "$OUT"

if [[ -n ${RELAYED:-} ]]; then
	relay_overlay_up
	read -r PID_A PID_B <<<"$RELAY_KNITD_PIDS"
	CLIENT=ra SERVER=rb DEST=$RELAY_ADDR SIDES="sender receiver relay"
else
	two_hosts
	KA=$(genkey); KB=$(genkey); PA=$(pubkey "$KA"); PB=$(pubkey "$KB")
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = 10.9.0.1/24\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.9.0.2/32\nEndpoint = 192.168.241.2:51820\n' \
		"$KA" "$PB" >"$TMP/ka.conf"
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = 10.9.0.2/24\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.9.0.1/32\nEndpoint = 192.168.241.1:51820\n' \
		"$KB" "$PA" >"$TMP/kb.conf"
	chmod 600 "$TMP"/*.conf
	start_knitd a "${RUN}ka" "$TMP/ka.conf"
	PID_A=$LAST_PID
	start_knitd b "${RUN}kb" "$TMP/kb.conf"
	PID_B=$LAST_PID
	n a ping -c 1 -W 2 10.9.0.2 >/dev/null
	CLIENT=a SERVER=b DEST=10.9.0.2 SIDES="sender receiver"
fi
bg "$SERVER" iperf3 -s -p 5201 --logfile "$TMP/iperf-server.log"
wait_until 3 n "$SERVER" sh -c 'ss -ltn | grep -q :5201'

# The knitd processes themselves (ip netns exec execs, so the PID is knitd's).
perf record -g -o "$OUT/sender.data" -p "$PID_A" -- sleep "$((SECS + 1))" >/dev/null 2>&1 &
PERF_A=$!
perf record -g -o "$OUT/receiver.data" -p "$PID_B" -- sleep "$((SECS + 1))" >/dev/null 2>&1 &
PERF_B=$!
if [[ -n ${RELAYED:-} ]]; then
	perf record -g -o "$OUT/relay.data" -p "$RELAY_PID" -- sleep "$((SECS + 1))" >/dev/null 2>&1 &
	PERF_R=$!
fi
sleep 0.3
# shellcheck disable=SC2086 # IPERF_ARGS is a list of arguments
n "$CLIENT" iperf3 -c "$DEST" -p 5201 -t "$SECS" -f g ${IPERF_ARGS:-} | tail -4
wait "$PERF_A" "$PERF_B" ${PERF_R:-} || true
[[ -n ${RELAYED:-} ]] && echo "path: $(rpath)"
for side in $SIDES; do
	echo "== $side: top self-time symbols"
	perf report -i "$OUT/$side.data" --no-children --sort sym --stdio 2>/dev/null |
		grep -E '^ +[0-9]' | head -n "${TOP:-25}"
done
echo "perf data in $OUT"
