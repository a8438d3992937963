#!/usr/bin/env bash
# Single-stream TCP throughput between two namespaces: plain veth, two
# knitds, and two of Debian's wireguard-go, interleaved round by round so
# that all three see the same machine.  Prints every run, the medians, and
# the ratios knit/veth and knit/wireguard-go.  A benchmark: it never fails on
# a figure.
#
#   bench-a                                   bench-b
#   eth0 192.168.241.1 ------- veth ------- eth0 192.168.241.2     (veth)
#   knitd  ${RUN}ka 10.9.0.1 <=====>  knitd  ${RUN}kb 10.9.0.2      (knit)
#   wg-go  ${RUN}wa 10.8.0.1 <=====>  wg-go  ${RUN}wb 10.8.0.2      (wireguard-go)
#
# Usage: bench/throughput.sh [--json FILE]   (ROUNDS=5 SECONDS=5 by default)
set -eu
source "$(dirname "$0")/../tests/system/lib.sh"

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-${SECONDS_:-5}}
JSON=""
[[ ${1:-} == --json ]] && JSON=$2

netns_add a
netns_add b
veth a b
n a ip addr add 192.168.241.1/24 dev eth0
n b ip addr add 192.168.241.2/24 dev eth0

KA=$(genkey); KB=$(genkey); PA=$(pubkey "$KA"); PB=$(pubkey "$KB")
# side_conf ME PEER PORT PEERPORT NET FORMAT
side_conf() {
	local me=$1 peer=$2 key pub port=$3 peer_port=$4 net=$5 format=$6
	if [[ $me == 1 ]]; then key=$KA pub=$PB; else key=$KB pub=$PA; fi
	printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n' "$key" "$port"
	[[ $format == quick ]] && printf 'Address = %s.%s/24\n' "$net" "$me"
	printf '[Peer]\nPublicKey = %s\nAllowedIPs = %s.%s/32\nEndpoint = 192.168.241.%s:%s\n' \
		"$pub" "$net" "$peer" "$peer" "$peer_port"
}
side_conf 1 2 51820 51820 10.9.0 quick >"$TMP/ka.conf"
side_conf 2 1 51820 51820 10.9.0 quick >"$TMP/kb.conf"
side_conf 1 2 51830 51830 10.8.0 wg >"$TMP/wa.conf"
side_conf 2 1 51830 51830 10.8.0 wg >"$TMP/wb.conf"
chmod 600 "$TMP"/*.conf
# Interface names differ per side: wg's socket directory is shared.
start_knitd a "${RUN}ka" "$TMP/ka.conf"
start_knitd b "${RUN}kb" "$TMP/kb.conf"
start_wggo a "${RUN}wa" "$TMP/wa.conf" 10.8.0.1/24
start_wggo b "${RUN}wb" "$TMP/wb.conf" 10.8.0.2/24
n a ping -c 1 -W 2 10.9.0.2 >/dev/null
n a ping -c 1 -W 2 10.8.0.2 >/dev/null

bg b iperf3 -s -p 5201 --logfile "$TMP/iperf-server.log"
wait_until 3 n b sh -c 'ss -ltn | grep -q :5201'

# run ADDR: one iperf3 run, Gbit/s at the receiver.
run() {
	n a iperf3 -c "$1" -p 5201 -t "$SECS" -f g 2>/dev/null |
		awk '/receiver/ { print $(NF-2) }'
}

declare -A results=([veth]="" [knit]="" [wireguard-go]="")
for round in $(seq 1 "$ROUNDS"); do
	for contender in veth knit wireguard-go; do
		case $contender in
		veth) addr=192.168.241.2 ;;
		knit) addr=10.9.0.2 ;;
		wireguard-go) addr=10.8.0.2 ;;
		esac
		g=$(run "$addr")
		printf 'round %d %-13s %6s Gbit/s\n' "$round" "$contender" "${g:-0}"
		results[$contender]+="${g:-0} "
	done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
	print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
veth=$(median "${results[veth]}")
knit=$(median "${results[knit]}")
wggo=$(median "${results[wireguard-go]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf (b > 0) ? "%.2f" : "n/a", a / b }'; }

echo
echo "median over $ROUNDS rounds of $SECS s, single TCP stream:"
printf '  veth          %6s Gbit/s\n  knit          %6s Gbit/s\n  wireguard-go  %6s Gbit/s\n' \
	"$veth" "$knit" "$wggo"
echo "  knit / veth          $(ratio "$knit" "$veth")"
echo "  knit / wireguard-go  $(ratio "$knit" "$wggo")"
if [[ -n $JSON ]]; then
	cat >"$JSON" <<J
{"rounds": $ROUNDS, "seconds": $SECS, "unit": "Gbit/s",
 "runs": {"veth": [${results[veth]// /, }], "knit": [${results[knit]// /, }], "wireguard-go": [${results[wireguard-go]// /, }]},
 "median": {"veth": $veth, "knit": $knit, "wireguard-go": $wggo},
 "ratio": {"knit/veth": $(ratio "$knit" "$veth"), "knit/wireguard-go": $(ratio "$knit" "$wggo")}}
J
	sed -i 's/, \]/]/g' "$JSON"
fi
