#!/usr/bin/env bash
# knitd speaks WireGuard: it is paired with Debian's wireguard-go and with
# itself, and each pairing must show pings over IPv4 and IPv6, TCP both ways,
# handshakes initiated from either side, roaming, cryptokey routing, and
# wg(8)'s view of handshakes and counters.  knitd with knitd must also rotate
# keys without losing a ping.
#
#   $RUN-a                                    $RUN-b
#   +---------------------+                   +---------------------+
#   | ${RUN}a  (A)        |                   | ${RUN}b  (B)        |
#   |  10.9.0.1/24        |    tunnel (UDP)   |  10.9.0.2/24        |
#   |  fd09::1/64         |<=================>|  fd09::2/64         |
#   |                     |                   |                     |
#   | eth0 192.168.241.1  |-------veth--------| eth0 192.168.241.2  |
#   |      fd00:241::1    |                   |      fd00:241::2    |
#   +---------------------+                   +---------------------+
#
# PAIRS="knitd:wggo knitd:knitd wggo:knitd" (default) chooses A:B.
set -eu
source "$(dirname "$0")/lib.sh"

PAIRS=${PAIRS:-"knitd:wggo wggo:knitd knitd:knitd"}
PORT_A=51820
PORT_B=51821

KEY_A=$(genkey); KEY_B=$(genkey)
PUB_A=$(pubkey "$KEY_A"); PUB_B=$(pubkey "$KEY_B")
PSK=$("$KNIT" genpsk)

# conf SIDE ENDPOINT(yes|no) FORMAT(quick|wg): a configuration for A or B.
conf() {
	local side=$1 with_endpoint=$2 format=$3
	local key port me peer_pub peer_ip peer_port peer_addr
	if [[ $side == a ]]; then
		key=$KEY_A port=$PORT_A me=1 peer_pub=$PUB_B peer_ip=2 peer_port=$PORT_B
	else
		key=$KEY_B port=$PORT_B me=2 peer_pub=$PUB_A peer_ip=1 peer_port=$PORT_A
	fi
	peer_addr=192.168.241.$peer_ip
	echo "[Interface]"
	echo "PrivateKey = $key"
	echo "ListenPort = $port"
	[[ $format == quick ]] && echo "Address = 10.9.0.$me/24, fd09::$me/64"
	echo "[Peer]"
	echo "PublicKey = $peer_pub"
	echo "PresharedKey = $PSK"
	echo "AllowedIPs = 10.9.0.$peer_ip/32, fd09::$peer_ip/128"
	[[ $with_endpoint == yes ]] && echo "Endpoint = $peer_addr:$peer_port"
	true
}

# up SIDE IMPL ENDPOINT: start side a or b with knitd or wggo.
up() {
	local side=$1 impl=$2 endpoint=$3 me=1
	[[ $side == b ]] && me=2
	if [[ $impl == knitd ]]; then
		conf "$side" "$endpoint" quick >"$TMP/$side.conf"
		chmod 600 "$TMP/$side.conf"
		start_knitd "$side" "$RUN$side" "$TMP/$side.conf" ${KNITD_ARGS:-}
	else
		conf "$side" "$endpoint" wg >"$TMP/$side.conf"
		start_wggo "$side" "$RUN$side" "$TMP/$side.conf" "10.9.0.$me/24" "fd09::$me/64"
	fi
	SIDE_PID[$side]=$LAST_PID
	IMPL[$side]=$impl
}

declare -A SIDE_PID IMPL
topology() {
	two_hosts
	n a ip addr add fd00:241::1/64 dev eth0 nodad
	n b ip addr add fd00:241::2/64 dev eth0 nodad
}

teardown() {
	local side
	for side in a b; do
		stop_pid "${SIDE_PID[$side]}"
		if [[ ${IMPL[$side]} == knitd ]]; then
			check "$pair: knitd ($side) exits 0 on SIGTERM" [ "$STOP_STATUS" -eq 0 ]
		fi
	done
	netns_del a
	netns_del b
}

ping1() { local ns=$1; shift; n "$ns" ping -c 1 -W 2 "$@" >/dev/null; }
pings() { local ns=$1; shift; n "$ns" ping -c 3 -i 0.2 -W 2 "$@" >/dev/null; }

latest_handshake() { n "$1" wg show "$RUN$1" latest-handshakes | awk '{print $2}'; }
endpoint_of_peer() { n "$1" wg show "$RUN$1" endpoints | awk '{print $2}'; }
transfer() { n "$1" wg show "$RUN$1" transfer | awk '{print $2, $3}'; }
rx_packets() { n "$1" cat "/sys/class/net/$RUN$1/statistics/rx_packets"; }

# iperf FROM TO_ADDR: 3 s of TCP; prints Mbit/s, fails on nothing moved.
iperf() {
	local from=$1 to=$2 server=b rate
	[[ $from == b ]] && server=a
	n "$server" iperf3 -s -1 -D -p 5201 --logfile "$TMP/iperf-s.log"
	wait_until 3 n "$server" sh -c 'ss -ltn | grep -q :5201'
	rate=$(n "$from" iperf3 -c "$to" -p 5201 -t 3 -f m 2>&1 | awk '/receiver/ {print $(NF-2)}')
	echo "    iperf3 $from -> $to: ${rate:-0} Mbit/s"
	[[ -n $rate ]] && awk -v r="$rate" 'BEGIN { exit !(r > 1) }'
}

# counters_match: ten pings move exactly what both sides' counters say:
# each echo is a 128-byte message (84 bytes padded to 96, plus header and tag).
# A keepalive crossing the moment the two sides are read skews one attempt,
# so the whole measurement is tried up to three times.
counters_match() {
	local attempt try a0 b0 a1 b1 da_rx da_tx db_rx db_tx
	for attempt in 1 2 3; do
		read -r a0 <<<"$(transfer a | tr ' ' :)"
		read -r b0 <<<"$(transfer b | tr ' ' :)"
		n a ping -c 10 -i 0.05 -W 1 10.9.0.2 >/dev/null || return 1
		for try in 1 2 3 4 5; do
			sleep 0.3
			read -r a1 <<<"$(transfer a | tr ' ' :)"
			read -r b1 <<<"$(transfer b | tr ' ' :)"
			da_rx=$((${a1%:*} - ${a0%:*})) da_tx=$((${a1#*:} - ${a0#*:}))
			db_rx=$((${b1%:*} - ${b0%:*})) db_tx=$((${b1#*:} - ${b0#*:}))
			if ((da_tx == db_rx && da_rx == db_tx && da_tx >= 1280 && da_rx >= 1280)); then
				echo "    10 pings: A sent $da_tx bytes, B received $db_rx;" \
					"B sent $db_tx, A received $da_rx"
				return 0
			fi
		done
	done
	echo "    A sent $da_tx, B received $db_rx; B sent $db_tx, A received $da_rx"
	return 1
}

roams() { # SIDE NEWPORT: SIDE moves; the other side follows one packet later
	local side=$1 port=$2 other=b addr=10.9.0.2
	[[ $side == b ]] && other=a addr=10.9.0.1
	n "$side" wg set "$RUN$side" listen-port "$port"
	ping1 "$side" "$addr" && [[ $(endpoint_of_peer "$other") == *":$port" ]]
}

disallowed_source_dropped() { # FROM: a source address the receiver does not allow
	local from=$1 to=b dst=10.9.0.2 before after
	[[ $from == b ]] && to=a dst=10.9.0.1
	n "$from" ip addr add 10.9.0.99/32 dev "$RUN$from"
	before=$(rx_packets "$to")
	! n "$from" ping -c 2 -i 0.2 -W 1 -I 10.9.0.99 "$dst" >/dev/null
	after=$(rx_packets "$to")
	n "$from" ip addr del 10.9.0.99/32 dev "$RUN$from"
	# Nothing reached the receiver's interface, yet the allowed source works.
	[[ $before == "$after" ]] && ping1 "$from" "$dst"
}

# invalid_count SIDE: knitd's rx_invalid counter (SIGUSR1 makes it log them).
invalid_count() {
	local log=$TMP/$RUN$1.log lines
	lines=$(grep -c 'stats rx_invalid' "$log" || true)
	kill -USR1 "${SIDE_PID[$1]}"
	wait_until 3 eval '(( $(grep -c "stats rx_invalid" "$log") > lines ))' || return 1
	grep -o 'stats rx_invalid=[0-9]*' "$log" | tail -n 1 | cut -d= -f2
}

# hostile SIDE: garbage and forged datagrams at SIDE's knitd; it counts them
# as invalid, drops them and keeps working.
hostile() {
	local side=$1 from=a addr=192.168.241.2 port=$PORT_B dst=10.9.0.2 before count
	[[ $side == a ]] && from=b addr=192.168.241.1 port=$PORT_A dst=10.9.0.1
	before=$(invalid_count "$side") || return 1
	n "$from" bash -c "
		for i in \$(seq 1 300); do    # random bytes of random length
			head -c \$((RANDOM % 300 + 1)) /dev/urandom >/dev/udp/$addr/$port
		done
		# One write per datagram: dd sends the whole block at once.
		for i in \$(seq 1 100); do    # data messages for unknown sessions
			{ printf '\\x04\\x00\\x00\\x00'; head -c 60 /dev/urandom; } |
				dd bs=64 count=1 iflag=fullblock status=none >/dev/udp/$addr/$port
		done
		for i in \$(seq 1 100); do    # initiations with a bad mac1
			{ printf '\\x01\\x00\\x00\\x00'; head -c 144 /dev/urandom; } |
				dd bs=148 count=1 iflag=fullblock status=none >/dev/udp/$addr/$port
		done"
	pings "$from" "$dst" || return 1
	count=$(($(invalid_count "$side") - before)) || return 1
	echo "    $side counted $count of 500 hostile datagrams as invalid"
	# Random bytes could, very rarely, form a plausible header; and with
	# timers divided by 20 a crossing pair of real handshakes can add one
	# or two stale responses in the same second.
	((count >= 495 && count <= 505))
}

# persistent_keepalive: an idle A told to keep the path open sends keepalives
# (32 bytes each) that B receives.
persistent_keepalive() {
	local a0 b0 a1 b1
	n a wg set "${RUN}a" peer "$PUB_B" persistent-keepalive 1
	sleep 0.3
	a0=$(transfer a | awk '{print $2}'); b0=$(transfer b | awk '{print $1}')
	sleep 2.5
	a1=$(transfer a | awk '{print $2}'); b1=$(transfer b | awk '{print $1}')
	n a wg set "${RUN}a" peer "$PUB_B" persistent-keepalive 0
	echo "    idle A sent $((a1 - a0)) bytes in 2.5 s, B received $((b1 - b0))"
	((a1 - a0 >= 64 && b1 - b0 >= 64))
}

rotation_without_loss() {
	local out changes=0 last now i
	last=$(latest_handshake a)
	n a ping -i 0.1 -c 250 -W 1 10.9.0.2 >"$TMP/rotation.log" &
	local ping_pid=$!
	for i in $(seq 1 26); do
		sleep 1
		now=$(latest_handshake a)
		[[ $now != "$last" ]] && changes=$((changes + 1))
		last=$now
	done
	wait "$ping_pid" || true
	out=$(grep -o '[0-9]* received' "$TMP/rotation.log" | awk '{print $1}')
	echo "    handshakes seen: $changes; pings: $out/250 received"
	[[ $changes -ge 2 && $out == 250 ]]
}

for pair in $PAIRS; do
	A=${pair%:*} B=${pair#*:}
	echo "--- A=$A B=$B"
	KNITD_ARGS=""
	[[ $pair == knitd:knitd ]] && KNITD_ARGS="--test-timer-divisor 20"

	# Only A knows where B is: the first handshake must be A's.
	topology
	up a "$A" yes
	up b "$B" no
	check "$pair: A initiates; ping A->B over IPv4" pings a 10.9.0.2
	check "$pair: ping A->B over IPv6" pings a fd09::2
	check "$pair: ping B->A over IPv4 and IPv6" eval 'pings b 10.9.0.1 && pings b fd09::1'
	check "$pair: wg show reports a recent handshake on both sides" \
		eval '(( $(date +%s) - $(latest_handshake a) < 10 && $(date +%s) - $(latest_handshake b) < 10 ))'
	check "$pair: wg show transfer counters match what was sent" counters_match
	check "$pair: TCP A->B" iperf a 10.9.0.2
	check "$pair: TCP B->A" iperf b 10.9.0.1
	check "$pair: cryptokey routing drops a disallowed source A->B" disallowed_source_dropped a
	check "$pair: cryptokey routing drops a disallowed source B->A" disallowed_source_dropped b
	if [[ $B == knitd ]]; then
		check "$pair: B counts and drops garbage and forged packets" hostile b
	else
		check "$pair: A counts and drops garbage and forged packets" hostile a
	fi
	if [[ $A == knitd ]]; then
		check "$pair: persistent keepalive from an idle A" persistent_keepalive
	fi
	check "$pair: A roams to a new port, B follows" roams a 52001
	check "$pair: B roams to a new port, A follows" roams b 52002
	if [[ $pair == knitd:knitd ]]; then
		check "$pair: endpoint over IPv6 underlay" \
			eval 'n a wg set ${RUN}a peer $PUB_B endpoint [fd00:241::2]:52002 &&
			      ping1 a 10.9.0.2 && [[ $(endpoint_of_peer b) == "[fd00:241::1]:52001" ]]'
		check "$pair: keys rotate without losing a ping (timers / 20)" rotation_without_loss
	fi
	teardown

	# Only B knows where A is: now B must initiate.
	topology
	up a "$A" no
	up b "$B" yes
	check "$pair: B initiates; ping B->A" pings b 10.9.0.1
	check "$pair: A answers over IPv6" pings a fd09::2
	teardown
done

summary wg-interop
