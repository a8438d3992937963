#!/usr/bin/env bash
# The data plane side by side: plain veth, two knitds, and two of Debian's
# wireguard-go between two namespaces, interleaved round by round so that
# all three see the same machine.  Per round and contender:
#   - one TCP stream (iperf3, Gbit/s at the receiver), and the CPU-seconds
#     both daemons spent on it (/proc/PID/stat), as bytes per CPU-second;
#   - UDP at 1 and 2 Gbit/s offered (iperf3 -u, 1,372-byte datagrams that
#     fit every contender's MTU; 4 MiB socket buffers, rmem_max here,
#     since with the default 208 KiB iperf3's own receiver drops first):
#     loss % at the receiver;
#   - ping RTT (PINGS pings 5 ms apart): median, and the overlay's overhead
#     over the underlay's median in the same round;
#   - with "awake" in TESTS, the same pings while two `nice -n 19` busy loops
#     keep both cores from halting: what the overhead is when waking a
#     thread does not first wake a halted virtual CPU;
#   - with ping, build/bench/wakeup each round: what one thread hand-off
#     costs on this machine (eventfd ping-pong across CPUs and on one).
# And the CPU two knitds would need for half of veth's throughput at the
# bytes per CPU-second they showed in this run.
# Prints every run, the medians over rounds, and the ratios knit/veth and
# knit/wireguard-go.  A benchmark: it never fails on a figure.
#
#   bench-a                                   bench-b
#   eth0 192.168.241.1 ------- veth ------- eth0 192.168.241.2     (veth)
#   knitd  ${RUN}ka 10.9.0.1 <=====>  knitd  ${RUN}kb 10.9.0.2      (knit)
#   wg-go  ${RUN}wa 10.8.0.1 <=====>  wg-go  ${RUN}wb 10.8.0.2      (wireguard-go)
#   knitd  ${RUN}pa 10.7.0.1 <=====>  knitd  ${RUN}pb 10.7.0.2      (knit-plain: knitd
#          with KNIT_NO_OFFLOAD=all, its fallback without any offload; only
#          when CONTENDERS names it)
#
# knit-relay (only when CONTENDERS names it): an overlay on its own switch,
# knit-control and knit-relay in ${RUN}-rs (10.78.0.2), two knitds in
# ${RUN}-ra and ${RUN}-rb (10.78.0.11, .12) whose firewalls drop UDP to
# each other's knitd port, so every packet between them crosses the relay
# (TCP frames).  Its CPU-seconds are both knitds' and the relay's; the
# ratio knit-relay / knit compares it with the direct path of the same run.
#
# Usage: bench/throughput.sh [--json FILE] [--markdown FILE]
#   ROUNDS=5 SECONDS_PER_RUN=5 PINGS=200 UDP_RATES="1G 2G" TESTS="tcp udp ping awake"
#   CONTENDERS="veth knit wireguard-go" (also knit-plain, knit-relay); KNIT_NO_OFFLOAD=tun,gso,gro (see
#   docs/dataplane.md) reaches knitd through the environment.
set -eu
source "$(dirname "$0")/../tests/system/lib.sh"
source "$(dirname "$0")/relay-overlay.sh"

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-5}
PINGS=${PINGS:-200}
UDP_RATES=${UDP_RATES:-"1G 2G"}
TESTS=${TESTS:-"tcp udp ping awake"}
CONTENDERS=${CONTENDERS:-"veth knit wireguard-go"}
JSON="" MD=""
while (($#)); do
	case $1 in
	--json) JSON=$2; shift 2 ;;
	--markdown) MD=$2; shift 2 ;;
	*) echo "usage: $0 [--json FILE] [--markdown FILE]" >&2; exit 2 ;;
	esac
done
COMMAND="ROUNDS=$ROUNDS SECONDS_PER_RUN=$SECS PINGS=$PINGS TESTS='$TESTS' CONTENDERS='$CONTENDERS' bench/throughput.sh"
# The machine is shared: its load before and after says how quiet it was.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

two_hosts

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
side_conf 1 2 51840 51840 10.7.0 quick >"$TMP/pa.conf"
side_conf 2 1 51840 51840 10.7.0 quick >"$TMP/pb.conf"
chmod 600 "$TMP"/*.conf
declare -A PIDS_OF=([veth]="")
# Interface names differ per side: wg's socket directory is shared.
start_knitd a "${RUN}ka" "$TMP/ka.conf"; PIDS_OF[knit]=$LAST_PID
start_knitd b "${RUN}kb" "$TMP/kb.conf"; PIDS_OF[knit]+=" $LAST_PID"
start_wggo a "${RUN}wa" "$TMP/wa.conf" 10.8.0.1/24; PIDS_OF[wireguard-go]=$LAST_PID
start_wggo b "${RUN}wb" "$TMP/wb.conf" 10.8.0.2/24; PIDS_OF[wireguard-go]+=" $LAST_PID"
if [[ " $CONTENDERS " == *" knit-plain "* ]]; then
	KNIT_NO_OFFLOAD=all start_knitd a "${RUN}pa" "$TMP/pa.conf"; PIDS_OF[knit-plain]=$LAST_PID
	KNIT_NO_OFFLOAD=all start_knitd b "${RUN}pb" "$TMP/pb.conf"; PIDS_OF[knit-plain]+=" $LAST_PID"
	n a ping -c 1 -W 2 10.7.0.2 >/dev/null
fi
n a ping -c 1 -W 2 10.9.0.2 >/dev/null
n a ping -c 1 -W 2 10.8.0.2 >/dev/null
grep -h "TUN offloads" "$TMP/${RUN}ka.log" || true

bg b iperf3 -s -p 5201 --logfile "$TMP/iperf-server.log"
wait_until 3 n b sh -c 'ss -ltn | grep -q :5201'

declare -A NS_OF=([veth]=a [knit]=a [wireguard-go]=a [knit-plain]=a [knit-relay]=ra)
RELAY_ADDR=""
if [[ " $CONTENDERS " == *" knit-relay "* ]]; then
	relay_overlay_up
	PIDS_OF[knit-relay]="$RELAY_PID$RELAY_KNITD_PIDS"
	bg rb iperf3 -s -p 5201 --logfile "$TMP/iperf-server-relay.log"
	wait_until 3 n rb sh -c 'ss -ltn | grep -q :5201'
fi

addr_of() {
	case $1 in
	veth) echo 192.168.241.2 ;;
	knit) echo 10.9.0.2 ;;
	wireguard-go) echo 10.8.0.2 ;;
	knit-plain) echo 10.7.0.2 ;;
	knit-relay) echo "$RELAY_ADDR" ;;
	esac
}

# cpu_ticks PID...: utime + stime of the processes (all threads), in ticks.
cpu_ticks() {
	local pid sum=0 stat
	for pid in "$@"; do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		stat=${stat##*) } # past the command name, which may hold spaces
		read -r -a f <<<"$stat"
		sum=$((sum + f[11] + f[12]))
	done
	echo "$sum"
}

# tcp CONTENDER: "Gbit/s bytes cpu_seconds" of one run.
tcp() {
	local c=$1 before after json
	# shellcheck disable=SC2086
	before=$(cpu_ticks ${PIDS_OF[$c]})
	json=$(n "${NS_OF[$c]}" iperf3 -c "$(addr_of "$c")" -p 5201 -t "$SECS" --json 2>/dev/null) || json='{}'
	# shellcheck disable=SC2086
	after=$(cpu_ticks ${PIDS_OF[$c]})
	jq -r --arg cpu "$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
		'BEGIN { print t / hz }')" \
		'"\((.end.sum_received.bits_per_second // 0) / 1e9) \(.end.sum_received.bytes // 0) \($cpu)"' \
		<<<"$json"
}

# udp CONTENDER RATE: loss % at the receiver.
udp() {
	local json
	json=$(n "${NS_OF[$1]}" iperf3 -c "$(addr_of "$1")" -p 5201 -u -b "$2" -l 1372 -w 4M -t "$SECS" --json \
		2>/dev/null) || json='{}'
	jq -r '.end.sum.lost_percent // 100' <<<"$json"
}

# rtt CONTENDER: median ping RTT in microseconds.
rtt() {
	n "${NS_OF[$1]}" ping -c "$PINGS" -i 0.005 -W 1 "$(addr_of "$1")" 2>/dev/null |
		sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -g |
		awk '{ v[NR] = $1 } END { if (!NR) { print "nan"; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.1f\n", m * 1000 }'
}

# awake_start / awake_stop: two busy loops at the lowest priority, ended
# by PID (and by lib.sh's cleanup should the run stop between the two).
SPIN_PIDS=()
awake_start() {
	for _ in 1 2; do
		nice -n 19 bash -c 'while :; do :; done' &
		SPIN_PIDS+=("$!")
		PIDS+=("$!")
	done
	sleep 0.2
}
awake_stop() {
	local pid keep=()
	kill "${SPIN_PIDS[@]}" 2>/dev/null
	wait "${SPIN_PIDS[@]}" 2>/dev/null || true
	for pid in "${PIDS[@]}"; do [[ " ${SPIN_PIDS[*]} " == *" $pid "* ]] || keep+=("$pid"); done
	PIDS=("${keep[@]}")
	SPIN_PIDS=()
}
WAKEUP=$ROOT/build/bench/wakeup
if [[ " $TESTS " == *" ping "* && ! -x $WAKEUP ]]; then
	make -s -C "$ROOT" build/bench/wakeup >/dev/null 2>&1 || echo "no $WAKEUP: hand-off costs not measured" >&2
fi

declare -A R # R[metric,contender] = "v1 v2 ..."
add() { R[$1,$2]+="$3 "; }
# add_overhead RTT OVERHEAD: each contender's latest RTT less this round's
# veth RTT (the underlay), as metric OVERHEAD.
add_overhead() {
	local base last c
	[[ " $CONTENDERS " == *" veth "* ]] || return 0
	base=$(awk '{ print $NF }' <<<"${R[$1,veth]}")
	for c in $CONTENDERS; do
		[[ $c == veth ]] && continue
		last=$(awk '{ print $NF }' <<<"${R[$1,$c]}")
		add "$2" "$c" "$(awk -v a="$last" -v b="$base" 'BEGIN { printf "%.1f", a - b }')"
	done
}
for round in $(seq 1 "$ROUNDS"); do
	for c in $CONTENDERS; do
		if [[ " $TESTS " == *" tcp "* ]]; then
			read -r g bytes cpu <<<"$(tcp "$c")"
			add tcp "$c" "$g"
			if [[ -n ${PIDS_OF[$c]} ]]; then
				bpc=$(awk -v b="$bytes" -v c="$cpu" 'BEGIN { printf (c > 0) ? "%.0f" : "nan", b / c }')
				add cpu "$c" "$cpu"
				add bpc "$c" "$bpc"
			fi
			printf 'round %d %-13s tcp %6.2f Gbit/s  daemons %5s CPU-s  %s bytes/CPU-s\n' \
				"$round" "$c" "$g" "${cpu:-}" "${bpc:--}"
			bpc=""
		fi
		if [[ " $TESTS " == *" udp "* ]]; then
			for rate in $UDP_RATES; do
				loss=$(udp "$c" "$rate")
				add "udp$rate" "$c" "$loss"
				printf 'round %d %-13s udp %s offered: %s%% lost\n' "$round" "$c" "$rate" "$loss"
			done
		fi
		if [[ " $TESTS " == *" ping "* ]]; then
			us=$(rtt "$c")
			add rtt "$c" "$us"
			printf 'round %d %-13s ping median %s us\n' "$round" "$c" "$us"
		fi
	done
	[[ " $TESTS " == *" ping "* ]] && add_overhead rtt overhead
	if [[ " $TESTS " == *" awake "* ]]; then
		awake_start
		for c in $CONTENDERS; do
			us=$(rtt "$c")
			add rtt_awake "$c" "$us"
			printf 'round %d %-13s ping median %s us, cores kept awake\n' "$round" "$c" "$us"
		done
		awake_stop
		add_overhead rtt_awake overhead_awake
	fi
	if [[ " $TESTS " == *" ping "* && -x $WAKEUP ]] && w=$("$WAKEUP" 400 5000); then
		echo "round $round $w"
		add wake_cross machine "$(sed 's/.*cross_cpu_wake_us=\([0-9.]*\).*/\1/' <<<"$w")"
		add rtt_same machine "$(sed 's/.*same_cpu_rtt_us=\([0-9.]*\).*/\1/' <<<"$w")"
	fi
done

median() { tr ' ' '\n' <<<"$1" | grep -v -e '^$' -e nan | sort -g | awk '{ v[NR] = $1 } END {
	if (!NR) { print "null"; exit }
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf (m == int(m) || m >= 1e5) ? "%d\n" : "%.3g\n", m }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {
	if (a == "null" || b == "null" || b + 0 <= 0) print "null"; else printf "%.2f\n", a / b }'; }
med() { median "${R[$1,$2]:-}"; }

METRICS="tcp cpu bpc $(for r in $UDP_RATES; do printf 'udp%s ' "$r"; done)rtt overhead rtt_awake overhead_awake"
declare -A UNIT=([tcp]="Gbit/s" [cpu]="CPU-s per run" [bpc]="bytes per CPU-s" [rtt]="us" [overhead]="us over veth"
	[rtt_awake]="us, cores awake" [overhead_awake]="us over veth, awake")
echo
echo "load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians over $ROUNDS rounds ($SECS s runs, $PINGS pings):"
printf '  %-38s' metric; for c in $CONTENDERS; do printf ' %14s' "$c"; done; echo
for m in $METRICS; do
	[[ -n ${R[$m,knit]:-}${R[$m,veth]:-} ]] || continue
	unit=${UNIT[$m]:-}
	[[ $m == udp* ]] && unit="% lost at ${m#udp}"
	printf '  %-38s' "$m ($unit)"
	for c in $CONTENDERS; do printf ' %14s' "$(med "$m" "$c")"; done
	echo
done
TCP_KV=$(ratio "$(med tcp knit)" "$(med tcp veth)")
TCP_RK=$(ratio "$(med tcp knit-relay)" "$(med tcp knit)")
TCP_KW=$(ratio "$(med tcp knit)" "$(med tcp wireguard-go)")
BPC_KW=$(ratio "$(med bpc knit)" "$(med bpc wireguard-go)")
# The CPU both knitds would need for half of veth at this run's efficiency.
CORES_HALF=$(awk -v v="$(med tcp veth)" -v b="$(med bpc knit)" 'BEGIN {
	if (v == "null" || b == "null" || b + 0 <= 0) print "null"; else printf "%.2f\n", v / 2 * 1e9 / 8 / b }')
WAKE=$(median "${R[wake_cross,machine]:-}") SAME=$(median "${R[rtt_same,machine]:-}")
echo "  tcp knit / veth          $TCP_KV"
echo "  tcp knit / wireguard-go  $TCP_KW"
echo "  bytes per CPU-s knit / wireguard-go  $BPC_KW"
echo "  cores both knitds would need for 0.5 x veth at this bytes per CPU-s: $CORES_HALF (the machine has $(nproc))"
echo "  one thread hand-off: $WAKE us to another CPU (wake-up), round trip on one CPU $SAME us"
if [[ -n ${R[tcp,knit-relay]:-} ]]; then
	echo "  tcp knit-relay / knit    $TCP_RK"
	echo "  knit-relay path at the end: $(rpath)"
	kill -USR1 "$RELAY_PID" 2>/dev/null && sleep 0.2
	grep 'relay stats' "$TMP/rly.log" | tail -n 1 | grep -o 'packets_forwarded=[0-9]* bytes_forwarded=[0-9]* packets_dropped=[0-9]*' || true
fi

# json_list METRIC CONTENDER: the runs as a JSON array.
json_list() { local v; v=$(tr -s ' ' <<<"${R[$1,$2]:-}" | sed 's/^ //; s/ $//; s/nan/null/g; s/ /, /g'); echo "[$v]"; }
if [[ -n $JSON ]]; then
	{
		printf '{"command": "%s", "date": "%s", "kernel": "%s", "cpus": %s,\n' \
			"$COMMAND" "$(date -u +%FT%TZ)" "$(uname -r)" "$(nproc)"
		printf ' "rounds": %s, "seconds": %s, "pings": %s, "contenders": "%s",\n' "$ROUNDS" "$SECS" "$PINGS" "$CONTENDERS"
		printf ' "loadavg_before": "%s", "loadavg_after": "%s",\n' "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
		printf ' "units": {"tcp": "Gbit/s", "cpu": "CPU-seconds of both daemons per TCP run", "bpc": "bytes per CPU-second of both daemons", "udp": "%% lost", "rtt": "us", "overhead": "us over the round'"'"'s veth median"},\n'
		printf ' "runs": {'
		first=1
		for m in $METRICS; do
			[[ $first == 1 ]] || printf ','
			first=0
			printf '\n  "%s": {' "$m"
			f2=1
			for c in $CONTENDERS; do
				[[ $f2 == 1 ]] || printf ', '
				f2=0
				printf '"%s": %s' "$c" "$(json_list "$m" "$c")"
			done
			printf '}'
		done
		printf '},\n "median": {'
		first=1
		for m in $METRICS; do
			[[ $first == 1 ]] || printf ','
			first=0
			printf '\n  "%s": {' "$m"
			f2=1
			for c in $CONTENDERS; do
				[[ $f2 == 1 ]] || printf ', '
				f2=0
				printf '"%s": %s' "$c" "$(med "$m" "$c")"
			done
			printf '}'
		done
		printf '},\n "machine": {"cross_cpu_wake_us": %s, "same_cpu_rtt_us": %s, "cores_for_half_veth": %s},\n' \
			"$(json_list wake_cross machine)" "$(json_list rtt_same machine)" "$CORES_HALF"
		printf ' "ratio": {"tcp knit/veth": %s, "tcp knit/wireguard-go": %s, "bytes per CPU-s knit/wireguard-go": %s, "tcp knit-relay/knit": %s}}\n' \
			"$TCP_KV" "$TCP_KW" "$BPC_KW" "$TCP_RK"
	} >"$JSON"
	jq . "$JSON" >/dev/null # fails loudly on a malformed file
fi
if [[ -n $MD ]]; then
	{
		echo "| metric | $(tr ' ' '\n' <<<"$CONTENDERS" | paste -sd'|' | sed 's/|/ | /g') |"
		echo "|---|$(for _ in $CONTENDERS; do printf -- '---|'; done)"
		for m in $METRICS; do
			[[ -n ${R[$m,knit]:-}${R[$m,veth]:-} ]] || continue
			unit=${UNIT[$m]:-}
			[[ $m == udp* ]] && unit="% lost at ${m#udp} offered"
			printf '| %s (%s) |' "${m%%[0-9]*}" "$unit"
			for c in $CONTENDERS; do printf ' %s |' "$(med "$m" "$c")"; done
			echo
		done
		echo
		echo "Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
		echo
		echo "Ratios: TCP knit / veth **$TCP_KV**, TCP knit / wireguard-go **$TCP_KW**, bytes per CPU-second knit / wireguard-go **$BPC_KW**, TCP knit-relay / knit **$TCP_RK**."
		echo
		echo "Half of veth at knit's bytes per CPU-second would take **$CORES_HALF** cores (the machine has $(nproc)). One thread hand-off: **$WAKE µs** to wake a thread on another CPU, $SAME µs for a round trip on one (build/bench/wakeup)."
	} >"$MD"
fi
