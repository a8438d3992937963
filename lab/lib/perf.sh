# shellcheck shell=bash
# knit-lab perf: the performance suite (docs/perf.md).
#
#                      switch (198.51.100.0/24)
#     +-----------+-----------+------------------+------------------+
#   control     relay       stun             router1 (NAT)      router2 (NAT)
#   knit-control knit-relay                  .11 | DNAT of the     .12 | DNAT of the
#                                                | underlay ports      | underlay ports
#                                            peer1-1 = A         peer2-1 = B
#                                            iperf3 -c, curl,    iperf3 -s, HTTP server
#                                            ping                (python3 http.server)
#
# Any lab scenario; A and B are two of its peers (default: the first peer,
# and the first peer behind another router or on the public side).  Three
# contenders carry the same measurements between A and B, over the same
# hosts and links, in the same run, one after the other:
#
#   knit          knitd on A and B (logged in to control; direct or relay
#                 path, recorded), B's overlay address
#   wireguard-go  Debian's wireguard-go on A and B (wg setconf, MTU 1420),
#                 UDP port 51820, B reached through B's NAT by a port
#                 forward of that one port
#   underlay      no tunnel: A to B's public face (B's address if public or
#                 on A's LAN, else its router's public address, whose NAT
#                 forwards the test's ports 5201 and 8000 and ICMP echo to B)
#
# Measurements (each a function below): TCP throughput (iperf3, one stream),
# UDP received bitrate, jitter and loss at the offered bitrate (iperf3 -u,
# 1200-byte datagrams), HTTP latency (N requests by one curl, each a new TCP
# connection, median and p90), ping RTT (median).  The independent variable
# is the UDP bitrate offered, or the loss or one-way delay that linkem puts
# on the packets A and B send (knit-lab link on both peers: each direction
# gets it once; linkem is in the path at every value of a loss or delay
# sweep, 0 included).

PF_KNITD=${KNITD:-$LAB_BUILD/knitd}
PF_KNIT=${KNIT:-$LAB_BUILD/knit}
PF_CONTROL=${CONTROL:-$LAB_BUILD/knit-control}
PF_RELAY=${RELAY:-$LAB_BUILD/knit-relay}
PF_WG_NET=192.168.77 # wireguard-go's tunnel: A .1, B .2
PF_WG_PORT=51820
PF_IPERF_PORT=5201
PF_HTTP_PORT=8000
PF_KNIT_PORT=41641 # knitd's default
# metric|group|title|unit|better (higher or lower)
PF_METRICS=(
	"tcp_mbps|tcp|TCP throughput, one stream|Mbit/s|higher"
	"udp_mbps|udp|UDP bitrate received|Mbit/s|higher"
	"udp_jitter_ms|udp|UDP jitter|ms|lower"
	"udp_loss_pct|udp|UDP datagrams lost|%|lower"
	"http_median_ms|http|HTTP latency, median|ms|lower"
	"http_p90_ms|http|HTTP latency, 90th percentile|ms|lower"
	"ping_ms|ping|ping RTT, median|ms|lower"
)
PF_CI_METRICS_DEFAULT=tcp_mbps,udp_mbps,http_median_ms,ping_ms

perf_usage() {
	cat >&2 <<'EOF'
knit-lab perf [SCENARIO] [lab options] --var bitrate|loss|delay --values LIST
              [--repeat N] [--out DIR] [--metrics tcp,udp,http,ping]
              [--contenders knit,wireguard-go,underlay] [--bitrate RATE]
              [--time S] [--http-requests N] [--pings N] [--hosts A,B]
              [--wait-direct S] [--ci] [--baseline FILE] [--tolerance PCT]
              [--ci-metrics LIST] [--write-baseline FILE] [--from FILE]

  SCENARIO, lab options   the lab, as knit-lab up takes them (default: the
               seed's two NATs); A and B are two of its peers (--hosts)
  --var        the independent variable: bitrate (UDP offered, e.g. 100M,1G),
               loss (% on each peer's outgoing packets) or delay (one-way ms)
  --values     its values, comma-separated
  --repeat     measurements per value (median, min and max; default 1)
  --out        results: perf.json, summary.md and PNG plots (default
               build/results/perf)
  --metrics    what to measure (default tcp,udp,http,ping; udp for bitrate)
  --bitrate    UDP offered bitrate when the variable is not bitrate (100M)
  --time       iperf3 seconds per test (3)
  --http-requests  curl requests per HTTP measurement (100)
  --pings      pings per RTT measurement (20, 50 ms apart)
  --wait-direct  seconds to wait for knit's direct path before measuring (10)
  --ci         compare the ratios knit / underlay with --baseline (default
               docs/results/perf-baseline.json); exit 1 on a regression beyond
               --tolerance % (default 25) in --ci-metrics
               (default tcp_mbps,udp_mbps,http_median_ms,ping_ms)
  --write-baseline  store this run's ratios in FILE (under its variable)
  --from       no measuring: plots, summary and CI from an existing perf.json
EOF
	exit 2
}

# --- small helpers ----------------------------------------------------------

pf_log() { say "perf: $*"; }

# pf_num_list LIST: the comma-separated list is numbers (with K, M, G for
# bitrates) and nothing else.
pf_check_values() {
	local v
	for v in ${1//,/ }; do
		case $PF_VAR in
		bitrate) [[ $v =~ ^[0-9]+(\.[0-9]+)?[KMG]?$ ]] || die "perf: bad bitrate '$v' (e.g. 100M, 1G)" ;;
		loss)
			if ! [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v x="$v" 'BEGIN { exit !(x <= 100) }'; then
				die "perf: bad loss '$v' (0..100)"
			fi
			;;
		delay) [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "perf: bad delay '$v' (ms)" ;;
		esac
	done
}

# pf_xval VALUE: the number plotted (bitrates in Mbit/s).
pf_xval() {
	local v=$1
	case $v in
	*K) awk -v x="${v%K}" 'BEGIN { print x / 1000 }' ;;
	*M) echo "${v%M}" ;;
	*G) awk -v x="${v%G}" 'BEGIN { print x * 1000 }' ;;
	*) if [[ $PF_VAR == bitrate ]]; then awk -v x="$v" 'BEGIN { print x / 1e6 }'; else echo "$v"; fi ;;
	esac
}

# pf_stats: numbers on stdin -> "median p90" (nearest rank), or "null null".
pf_stats() {
	sort -g | awk '{ a[n++] = $1 }
		END {
			if (n == 0) { print "null null"; exit }
			m = (n % 2) ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2
			r = int(0.9 * n + 0.999999); if (r < 1) r = 1
			printf "%.3f %.3f\n", m, a[r - 1]
		}'
}

pf_has() { [[ ,$1, == *,$2,* ]]; }

# --- the lab and the contenders ----------------------------------------------

pf_listening() { [[ -n $(nsx "$1" ss -Hl"$2" "sport = :$3") ]]; }

# pf_pick_hosts: PF_A and PF_B, from --hosts or the lab's hosts file.
pf_pick_hosts() {
	local h role addrs gw ga='' peers=() gws=()
	while read -r h role addrs gw; do
		[[ $role == peer || $role == public ]] || continue
		peers+=("$h")
		gws+=("$gw")
		PF_ADDR[$h]=${addrs%%,*}
		PF_GW[$h]=$gw
	done <"$RUNDIR/hosts"
	if [[ -n $PF_HOSTS ]]; then
		PF_A=${PF_HOSTS%%,*} PF_B=${PF_HOSTS#*,}
		[[ -n ${PF_ADDR[$PF_A]:-} && -n ${PF_ADDR[$PF_B]:-} && $PF_A != "$PF_B" ]] ||
			die "perf: --hosts $PF_HOSTS: two different peers of the lab (${peers[*]})"
		return 0
	fi
	((${#peers[@]} >= 2)) || die "perf: the scenario has fewer than two peers (${peers[*]}); add --public-peers 1"
	PF_A=${peers[0]} ga=${gws[0]} PF_B=''
	for h in "${!peers[@]}"; do
		((h > 0)) || continue
		if [[ ${gws[h]} != "$ga" || ${gws[h]} == - ]]; then PF_B=${peers[h]}; break; fi
	done
	[[ -n $PF_B ]] || PF_B=${peers[1]}
}

# pf_forward NAT_HOST TO: the NAT host forwards the underlay's ports, ICMP
# echo and wireguard-go's port arriving on its wan to TO.  Its own table,
# ahead of the lab's NAT (the first DNAT of a flow wins); knit's port is
# not forwarded, so knit still has to traverse the NAT.
pf_forward() {
	nsx "$1" nft -f - <<EOF
table ip knitperf {
	chain prerouting {
		type nat hook prerouting priority dstnat - 5; policy accept;
		iifname "wan" tcp dport { $PF_IPERF_PORT, $PF_HTTP_PORT } dnat ip to $2
		iifname "wan" udp dport { $PF_IPERF_PORT, $PF_WG_PORT } dnat ip to $2
		iifname "wan" icmp type echo-request dnat ip to $2
	}
}
EOF
}

# pf_underlay_target: PF_UNDER, B's address as A reaches it without a
# tunnel, with the forwards that make it reach B.
pf_underlay_target() {
	local gw=${PF_GW[$PF_B]} n wan
	PF_UNDER_HOW=''
	if [[ $gw == - ]]; then
		PF_UNDER=${PF_ADDR[$PF_B]}
		PF_UNDER_HOW="B is on the public network: its own address"
	elif [[ $gw == "${PF_GW[$PF_A]}" ]]; then
		PF_UNDER=${PF_ADDR[$PF_B]}
		PF_UNDER_HOW="A and B share $gw's LAN: B's private address"
	else
		n=${gw#router}
		wan=$(awk -v h="$gw" '$1 == h { split($3, a, ","); print a[1] }' "$RUNDIR/hosts")
		pf_forward "$gw" "${PF_ADDR[$PF_B]}"
		if [[ -e /run/netns/$P-cgnat$n ]]; then
			pf_forward "cgnat$n" "$wan"
			wan=$(awk -v h="cgnat$n" '$1 == h { split($3, a, ","); print a[1] }' "$RUNDIR/hosts")
		fi
		PF_UNDER=$wan
		PF_UNDER_HOW="$gw's public address $wan, whose NAT forwards TCP $PF_IPERF_PORT and $PF_HTTP_PORT, UDP $PF_IPERF_PORT and ICMP echo to B"
	fi
}

pf_status() { "$PF_KNIT" --socket "$RUNDIR/perf/$1.sock" status --json 2>/dev/null; }

# pf_knit_ready HOST: logged in, the other peer online with a path.
pf_knit_ready() {
	pf_status "$1" | jq -e '.backend_state == "Running" and ([.peers[] | select(.online and
		(.path == "relay" or .path == "direct"))] | length) >= 1' >/dev/null
}

pf_knit_path() { pf_status "$PF_A" | jq -r --arg b "$PF_B" '[.peers[] | select(.name == $b)][0].path // "none"'; }
pf_knit_endpoint() { pf_status "$PF_A" | jq -r --arg b "$PF_B" '[.peers[] | select(.name == $b)][0].endpoint // ""'; }
pf_knit_direct() { [[ $(pf_knit_path) == direct ]]; }

# pf_knit_up: knit-control and knit-relay on the public side, knitd on A
# and B, both logged in; waits for the direct path for --wait-direct s.
pf_knit_up() {
	local d=$RUNDIR/perf ck auth h
	knit_servers_up "$d" || die "perf: $KS_ERR (logs: $RUNDIR/log)"
	ck=$KS_CK auth=$KS_AUTH
	for h in "$PF_A" "$PF_B"; do
		spawn "$h" "knitd-$h" "$PF_KNITD" --state-dir "$d/$h" --socket "$d/$h.sock"
		wait_for 5 test -S "$d/$h.sock" || die "perf: knitd on $h did not start (log: $RUNDIR/log/knitd-$h.log)"
		"$PF_KNIT" --socket "$d/$h.sock" up --control "$KS_URL" --control-key "$ck" \
			--auth-key "$auth" --hostname "$h" --timeout 10 >/dev/null ||
			die "perf: knit up on $h failed"
	done
	for h in "$PF_A" "$PF_B"; do
		wait_for 10 pf_knit_ready "$h" || die "perf: knit on $h has no path to its peer in 10 s"
	done
	PF_KNIT_TARGET=$("$PF_KNIT" --socket "$d/$PF_B.sock" ip -4) || die "perf: no overlay address for $PF_B"
	if ((PF_WAIT_DIRECT > 0)); then
		# Traffic makes knit look for the direct path.
		nsx "$PF_A" ping -q -c $((PF_WAIT_DIRECT * 5)) -i 0.2 -w "$PF_WAIT_DIRECT" "$PF_KNIT_TARGET" >/dev/null 2>&1 &
		local pinger=$!
		wait_for "$PF_WAIT_DIRECT" pf_knit_direct || true
		kill "$pinger" 2>/dev/null || true
		wait "$pinger" 2>/dev/null || true
	fi
	PF_KNIT_PATH0=$(pf_knit_path)
	pf_log "knit: $PF_A -> $PF_B ($PF_KNIT_TARGET) over the $PF_KNIT_PATH0 path $(pf_knit_endpoint)"
}

# pf_wggo_up: wireguard-go on A and B, A initiating towards B's public face
# (PF_UNDER, port 51820, forwarded to B by B's NAT).  Interface names carry
# the run's prefix: wireguard-go's UAPI sockets live in the shared
# /var/run/wireguard.
pf_wggo_up() {
	local d=$RUNDIR/perf h ka kb pa pb
	PF_WG_IF[a]=${P}wa PF_WG_IF[b]=${P}wb
	ka=$(wg genkey) kb=$(wg genkey)
	pa=$(wg pubkey <<<"$ka") pb=$(wg pubkey <<<"$kb")
	umask 077
	printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s.2/32\nEndpoint = %s:%s\nPersistentKeepalive = 5\n' \
		"$ka" "$PF_WG_PORT" "$pb" "$PF_WG_NET" "$PF_UNDER" "$PF_WG_PORT" >"$d/wg-a.conf"
	printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s.1/32\n' \
		"$kb" "$PF_WG_PORT" "$pa" "$PF_WG_NET" >"$d/wg-b.conf"
	umask 022
	for h in a b; do
		local host=$PF_A
		[[ $h == b ]] && host=$PF_B
		spawn "$host" "wireguard-go-$h" env WG_PROCESS_FOREGROUND=1 wireguard-go "${PF_WG_IF[$h]}"
		wait_for 5 nsx "$host" wg show "${PF_WG_IF[$h]}" ||
			{ pf_log "wireguard-go did not start on $host"; return 1; }
		# knitd offers every local address as a LAN candidate: without
		# this, it finds its peer at the other end of wireguard-go's
		# tunnel, prefers that "LAN" path, and its full-size packets no
		# longer fit (TCP then stalls near 0.1 Mbit/s).
		nsx "$host" nft -f - <<-EOF || return 1
			table inet knitperf {
				chain out {
					type filter hook output priority filter; policy accept;
					oifname "${PF_WG_IF[$h]}" udp dport $PF_KNIT_PORT drop
					oifname "${PF_WG_IF[$h]}" udp sport $PF_KNIT_PORT drop
				}
			}
		EOF
		nsx "$host" wg setconf "${PF_WG_IF[$h]}" "$d/wg-$h.conf" || return 1
		nsx "$host" ip addr add "$PF_WG_NET.$([[ $h == a ]] && echo 1 || echo 2)/24" dev "${PF_WG_IF[$h]}"
		nsx "$host" ip link set "${PF_WG_IF[$h]}" mtu 1420 up
	done
	wait_for 8 nsx "$PF_A" ping -c 1 -W 1 "$PF_WG_NET.2" ||
		{ pf_log "wireguard-go: no handshake between $PF_A and $PF_B"; return 1; }
	pf_log "wireguard-go: $PF_A -> $PF_B ($PF_WG_NET.2) through $PF_UNDER:$PF_WG_PORT"
}

pf_iperf_server() {
	stop_daemon "iperf3-$PF_B"
	spawn "$PF_B" "iperf3-$PF_B" iperf3 -s -p "$PF_IPERF_PORT" --idle-timeout 30
	wait_for 5 pf_listening "$PF_B" tn "$PF_IPERF_PORT" || die "perf: iperf3 server did not listen"
}

pf_servers_up() {
	local d=$RUNDIR/perf/www py
	mkdir -p "$d"
	head -c 1024 /dev/urandom >"$d/1k"
	py=/usr/bin/python3
	[[ -x $py ]] || py=$(command -v python3)
	pf_iperf_server
	spawn "$PF_B" "http-$PF_B" "$py" -m http.server "$PF_HTTP_PORT" --bind 0.0.0.0 --directory "$d"
	wait_for 5 pf_listening "$PF_B" tn "$PF_HTTP_PORT" || die "perf: the HTTP server did not listen"
}

# --- measurements: each prints JSON members (no braces) --------------------

# pf_iperf ARGS...: iperf3's JSON, or nothing (the server is restarted).
# A test that failed to run, or a UDP test whose server received nothing
# (its setup datagram lost), is run once more.
pf_iperf() {
	local out _
	for _ in 1 2; do
		out=$(nsx "$PF_A" timeout $((PF_TIME + 15)) iperf3 -c "$@" -p "$PF_IPERF_PORT" -t "$PF_TIME" \
			--connect-timeout 3000 -J 2>/dev/null) || true
		if [[ -n $out ]] && jq -e '.end.sum_received.bytes > 0' <<<"$out" >/dev/null 2>&1; then
			printf '%s' "$out"
			return 0
		fi
		pf_iperf_server
	done
	PF_ERR+="iperf3 $*: $(jq -r '.error // "nothing received"' <<<"$out" 2>/dev/null | head -c 120); "
	return 1
}

pf_tcp() {
	local j
	if j=$(pf_iperf "$1"); then
		jq -r '"\"tcp_mbps\": \(.end.sum_received.bits_per_second / 1e6 * 1000 | round / 1000), \"tcp_retransmits\": \(.end.sum_sent.retransmits // null)"' <<<"$j"
	else
		echo '"tcp_mbps": null, "tcp_retransmits": null'
	fi
}

# pf_udp TARGET RATE: what the server received, 1200-byte datagrams, 2 MB
# socket buffers at both ends (the path is measured, not iperf3's socket).
pf_udp() {
	local j
	if j=$(pf_iperf "$1" -u -b "$2" -l 1200 -w 2M); then
		jq -r '.end.sum_sent as $s | .end.sum_received as $r |
			"\"udp_offered\": \"'"$2"'\", \"udp_sent_mbps\": \($s.bits_per_second / 1e6 * 1000 | round / 1000), " +
			"\"udp_mbps\": \($r.bits_per_second / 1e6 * 1000 | round / 1000), " +
			"\"udp_jitter_ms\": \($r.jitter_ms * 1000 | round / 1000), \"udp_loss_pct\": \($r.lost_percent * 1000 | round / 1000)"' <<<"$j"
	else
		echo '"udp_offered": "'"$2"'", "udp_sent_mbps": null, "udp_mbps": null, "udp_jitter_ms": null, "udp_loss_pct": null'
	fi
}

# pf_http TARGET: N requests by one curl, one after the other; the server
# speaks HTTP/1.0, so each is a new TCP connection (2 round trips).
pf_http() {
	local url=http://$1:$PF_HTTP_PORT/1k args=() i out ok failed med p90
	for ((i = 0; i < PF_HTTP_N; i++)); do args+=(-o /dev/null "$url"); done
	out=$(nsx "$PF_A" curl -s --max-time 10 -w '%{http_code} %{time_total}\n' "${args[@]}" 2>/dev/null) || true
	ok=$(awk '$1 == 200' <<<"$out" | wc -l)
	failed=$((PF_HTTP_N - ok))
	read -r med p90 <<<"$(awk '$1 == 200 { print $2 * 1000 }' <<<"$out" | pf_stats)"
	((ok > 0)) || PF_ERR+="http: no request succeeded; "
	echo "\"http_median_ms\": $med, \"http_p90_ms\": $p90, \"http_failed\": $failed"
}

pf_ping() {
	local out rx med
	out=$(nsx "$PF_A" ping -n -c "$PF_PINGS" -i 0.05 -W 2 "$1" 2>/dev/null) || true
	rx=$(grep -c 'time=' <<<"$out" || true)
	read -r med _ <<<"$(grep -o 'time=[0-9.]*' <<<"$out" | cut -d= -f2 | pf_stats)"
	((rx > 0)) || PF_ERR+="ping: no answer; "
	echo "\"ping_ms\": $med, \"ping_loss_pct\": $(awk -v r="$rx" -v n="$PF_PINGS" 'BEGIN { printf "%.1f", 100 * (n - r) / n }')"
}

# pf_sample CONTENDER VALUE REP: one JSON line of every metric asked for.
pf_sample() {
	local c=$1 v=$2 rep=$3 t body='' rate=$PF_BITRATE path=null
	PF_ERR=''
	case $c in
	knit) t=$PF_KNIT_TARGET; path="\"$(pf_knit_path) $(pf_knit_endpoint)\"" ;;
	wireguard-go) t=$PF_WG_NET.2 ;;
	underlay) t=$PF_UNDER ;;
	esac
	[[ $PF_VAR == bitrate ]] && rate=$v
	if [[ $c == wireguard-go && $PF_WG_OK != 1 ]]; then
		PF_ERR="wireguard-go could not be set up between $PF_A and $PF_B; "
	else
		pf_has "$PF_MET" tcp && body+="$(pf_tcp "$t"), "
		pf_has "$PF_MET" udp && body+="$(pf_udp "$t" "$rate"), "
		pf_has "$PF_MET" http && body+="$(pf_http "$t"), "
		pf_has "$PF_MET" ping && body+="$(pf_ping "$t"), "
	fi
	jq -c --arg c "$c" --arg v "$v" --argjson x "$(pf_xval "$v")" --argjson rep "$rep" \
		--arg t "$t" --argjson path "$path" --arg err "${PF_ERR%; }" \
		'{contender: $c, value: $v, x: $x, rep: $rep, target: $t} + del(.x) +
		 (if $path != null then ($path | split(" ")) as $p | {knit_path: $p[0], knit_endpoint: ($p[1] // "")} else {} end) +
		 {error: $err}' <<<"{$body \"x\": 0}"
}

# pf_link_hosts: where a loss or delay sweep puts its link conditions, one
# host per direction: each peer's router (its wan: forwarded packets), or
# the peer itself when it has no router of its own (public, or sharing
# the other's LAN).  On a router, not on the sender: packets that wait in
# the sender's own stack count against its socket (TCP small queues, send
# buffers), which throttles the sender as no real link does.
pf_link_hosts() {
	local h gw
	PF_LINK_HOSTS=()
	for h in "$PF_A" "$PF_B"; do
		gw=${PF_GW[$h]}
		if [[ $gw != - && ${PF_GW[$PF_A]} != "${PF_GW[$PF_B]}" ]]; then
			PF_LINK_HOSTS+=("$gw")
		else
			PF_LINK_HOSTS+=("$h")
		fi
	done
}

# pf_set_var VALUE: the link conditions of a loss or delay sweep, on the
# packets leaving A's side and B's side.
pf_set_var() {
	local h
	case $PF_VAR in
	loss) for h in "${PF_LINK_HOSTS[@]}"; do link_set "$h" --loss "$1" --delay-ms 0 >/dev/null; done ;;
	delay) for h in "${PF_LINK_HOSTS[@]}"; do link_set "$h" --delay-ms "$1" --loss 0 >/dev/null; done ;;
	esac
}

pf_measure_all() {
	local v rep c line
	: >"$PF_WORK/samples.jsonl"
	for v in ${PF_VALUES//,/ }; do
		pf_set_var "$v"
		for ((rep = 1; rep <= PF_REPEAT; rep++)); do
			for c in ${PF_CONT//,/ }; do
				line=$(pf_sample "$c" "$v" "$rep")
				echo "$line" >>"$PF_WORK/samples.jsonl"
				jq -r '"perf: \(.contender) \('"\"$PF_VAR\""')=\(.value) #\(.rep): " +
					([to_entries[] | select(.key | test("^(tcp_mbps|udp_mbps|udp_loss_pct|http_median_ms|ping_ms|knit_path)$")) |
					  "\(.key)=\(.value)"] | join(" ")) + (if .error != "" then " ERROR \(.error)" else "" end)' <<<"$line" >&2
			done
		done
	done
}

# --- results -----------------------------------------------------------------

pf_metric_json() {
	printf '%s\n' "${PF_METRICS[@]}" | jq -R -s -c 'split("\n") | map(select(. != "") | split("|") |
		{key: .[0], value: {group: .[1], title: .[2], unit: .[3], better: .[4]}}) | from_entries'
}

# pf_report: samples + the run's description -> perf.json (medians, min,
# max per contender, metric and value; ratios to the underlay).
pf_report() {
	local commit
	commit=$(git -C "$LAB_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	git -C "$LAB_ROOT" diff --quiet HEAD -- src 2>/dev/null || commit+="+changes"
	jq -s --arg var "$PF_VAR" --arg values "$PF_VALUES" --argjson repeat "$PF_REPEAT" \
		--arg scenario "$PF_SCENARIO" --arg a "$PF_A" --arg b "$PF_B" \
		--arg under "$PF_UNDER" --arg under_how "$PF_UNDER_HOW" --arg knit_target "$PF_KNIT_TARGET" \
		--arg knit_path "$PF_KNIT_PATH0" --arg wg_target "$PF_WG_NET.2" --arg bitrate "$PF_BITRATE" \
		--arg metrics "$PF_MET" --arg contenders "$PF_CONT" --argjson time "$PF_TIME" \
		--argjson http_n "$PF_HTTP_N" --argjson pings "$PF_PINGS" \
		--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg commit "$commit" \
		--argjson cores "$(nproc)" --argjson seconds "$PF_SECONDS" --arg prefix "$P" \
		--arg links "${PF_LINK_HOSTS[*]}" --arg load0 "$PF_LOAD0" \
		--arg knitd "$PF_KNITD" --arg knitd_sha "$(sha256sum "$PF_KNITD" | cut -c1-16)" \
		--arg knitd_mtime "$(date -u -r "$PF_KNITD" +%Y-%m-%dT%H:%M:%SZ)" --arg load1 "$(cut -d' ' -f1 /proc/loadavg)" \
		--argjson meta "$(pf_metric_json)" '
		def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
			else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		. as $s
		| ($contenders | split(",")) as $cs
		| ($values | split(",")) as $vs
		| ($metrics | split(",")) as $groups
		| ($meta | to_entries | map(select(.value.group as $g | $groups | index($g))) | map(.key)) as $ms
		| {suite: "knit-lab perf", version: 1, date: $date, commit: $commit, cores: $cores,
		   seconds: $seconds, prefix: $prefix, scenario: $scenario,
		   loadavg: {start: ($load0 | tonumber), end: ($load1 | tonumber)},
		   knitd: {path: $knitd, sha256: $knitd_sha, built: $knitd_mtime},
		   var: $var, unit: ({bitrate: "Mbit/s offered", loss: "% loss each way", delay: "ms one-way delay"}[$var]),
		   values: $vs, x: [$vs[] as $v | ($s[] | select(.value == $v) | .x)] | unique,
		   repeat: $repeat, metrics: $ms, groups: $groups, contenders: $cs,
		   settings: {iperf3_seconds: $time, udp_bitrate: (if $var == "bitrate" then null else $bitrate end),
		     udp_datagram_bytes: 1200, http_requests: $http_n, pings: $pings, ping_interval_s: 0.05},
		   hosts: {a: $a, b: $b},
		   targets: {knit: $knit_target, "wireguard-go": $wg_target, underlay: $under},
		   underlay: $under_how, knit_path: $knit_path,
		   link_hosts: (if $var == "bitrate" then null else ($links | split(" ")) end),
		   meta: $meta, samples: $s}
		| .summary = ([$cs[] as $c | {key: $c, value: ([$ms[] as $m | {key: $m, value: [$vs[] as $v |
			[$s[] | select(.contender == $c and .value == $v) | .[$m] | select(. != null)] as $xs |
			{value: $v, x: ([$s[] | select(.value == $v) | .x][0]), n: ($xs | length),
			 median: ($xs | median), min: ($xs | min), max: ($xs | max)}]}] | from_entries)}] | from_entries)
		| .ratios = ([($cs - ["underlay"])[] as $c | select($cs | index("underlay")) | {key: $c, value: ([$ms[] as $m | {key: $m,
			value: ([$vs[] as $v | {key: $v, value: (
				([.summary[$c][$m][] | select(.value == $v)][0].median) as $n |
				([.summary.underlay[$m][] | select(.value == $v)][0].median) as $d |
				if $n == null or $d == null or $d == 0 then null else ($n / $d * 10000 | round / 10000) end)}] | from_entries)}] | from_entries)}] | from_entries)
		' "$PF_WORK/samples.jsonl" >"$PF_OUT/perf.json"
}

pf_xlabel() {
	case $(jq -r .var "$1") in
	bitrate) echo "UDP bitrate offered (Mbit/s)" ;;
	loss) echo "packet loss on each peer's outgoing packets (%)" ;;
	delay) echo "one-way delay added on each peer's outgoing packets (ms)" ;;
	esac
}

# pf_dat JSON METRIC: "x med min max" per contender, one row per value ("?"
# where a contender has no figure).
pf_dat() {
	jq -r --arg m "$2" '. as $r | .values[] as $v |
		([$r.summary[] | .[$m][]? | select(.value == $v) | .x][0]) as $x |
		[$x] + [$r.contenders[] as $c | ($r.summary[$c][$m] // [] | map(select(.value == $v))[0]) as $e |
			($e.median // "?"), ($e.min // "?"), ($e.max // "?")] | map(tostring) | join(" ")' "$1"
}

PF_STYLES=("lc rgb '#d62728' pt 7" "lc rgb '#1f77b4' pt 5" "lc rgb '#2ca02c' pt 9")

# pf_plots JSON DIR: one PNG per metric (medians of every contender), and
# variance.png (median with min-max bars) when repeated.
pf_plots() {
	local json=$1 dir=$2 m title unit i n plot logy yr xl sub cs=() ms=()
	command -v gnuplot >/dev/null || die "perf: gnuplot is needed (scripts/install-deps.sh)"
	mapfile -t cs < <(jq -r '.contenders[]' "$json")
	mapfile -t ms < <(jq -r '.metrics[]' "$json")
	xl=$(pf_xlabel "$json")
	sub=$(jq -r '"\(.scenario), \(.hosts.a) to \(.hosts.b), knit \(.knit_path); " +
		(if .repeat > 1 then "median of \(.repeat)" else "1 run" end) + ", \(.date[0:10])"' "$json")
	mkdir -p "$dir/data"
	rm -f "$dir"/*.png
	for m in "${ms[@]}"; do
		pf_dat "$json" "$m" >"$dir/data/$m.dat"
	done
	for m in "${ms[@]}"; do
		title=$(jq -r --arg m "$m" '.meta[$m].title' "$json")
		unit=$(jq -r --arg m "$m" '.meta[$m].unit' "$json")
		# A log scale when the contenders are an order of magnitude apart.
		logy=$(awk '{ for (i = 2; i <= NF; i += 3) if ($i != "?" && $i > 0) { if (!mn || $i < mn) mn = $i; if ($i > mx) mx = $i } }
			END { print (mn > 0 && mx / mn > 20) ? "set logscale y" : "unset logscale y" }' "$dir/data/$m.dat")
		yr="set yrange [0:*]"
		[[ $logy == set* ]] && yr="set yrange [*:*]"
		yr+=$'\n'$(jq -r '.x | if min == max then "set xrange [\(min - 1):\(max + 1)]" else "" end' "$json")
		plot=''
		for i in "${!cs[@]}"; do
			plot+="'$dir/data/$m.dat' using 1:$((2 + 3 * i)) with linespoints lw 2 ps 1.4 ${PF_STYLES[i]} title '${cs[i]}', "
		done
		gnuplot <<EOF || die "perf: gnuplot failed on $m"
set terminal pngcairo size 900,560 enhanced font 'DejaVu Sans,11'
set output '$dir/$m.png'
set title "$title ($unit)\n{/*0.75 $sub}"
set xlabel "$xl"
set ylabel "$unit"
set grid
set key top right box opaque
set datafile missing "?"
set offsets graph 0.03, graph 0.03, graph 0.08, graph 0.03
$logy
$yr
plot ${plot%, }
EOF
	done
	n=$(jq -r .repeat "$json")
	((n > 1)) || return 0
	local rows=$(((${#ms[@]} + 1) / 2)) dx
	dx=$(jq -r '(.x | max) - (.x | min) | if . == 0 then 0.02 else . * 0.012 end' "$json")
	{
		echo "set terminal pngcairo size 1200,$((360 * rows)) enhanced font 'DejaVu Sans,10'"
		echo "set output '$dir/variance.png'"
		echo "set datafile missing '?'"
		echo "set grid"
		echo "set offsets graph 0.05, graph 0.05, graph 0.08, graph 0.03"
		jq -r '.x | if min == max then "set xrange [\(min - 1):\(max + 1)]" else "" end' "$json"
		printf '%s\n' "set multiplot layout $rows,2 title \"Variance over $n runs: median and min-max of each contender\\n{/*0.8 $sub}\""
		for m in "${ms[@]}"; do
			title=$(jq -r --arg m "$m" '.meta[$m].title' "$json")
			unit=$(jq -r --arg m "$m" '.meta[$m].unit' "$json")
			echo "set title \"$title ($unit)\""
			echo "set xlabel \"$xl\""
			echo "unset logscale y"
			awk '{ for (i = 2; i <= NF; i += 3) if ($i != "?" && $i > 0) { if (!mn || $i < mn) mn = $i; if ($i > mx) mx = $i } }
				END { if (mn > 0 && mx / mn > 20) print "set logscale y" }' "$dir/data/$m.dat"
			plot=''
			for i in "${!cs[@]}"; do
				plot+="'$dir/data/$m.dat' using (\$1+($i-1)*$dx):$((2 + 3 * i)):$((3 + 3 * i)):$((4 + 3 * i)) with yerrorlines lw 1.5 ${PF_STYLES[i]} title '${cs[i]}', "
			done
			echo "plot ${plot%, }"
		done
		echo "unset multiplot"
	} | gnuplot || die "perf: gnuplot failed on the variance plot"
}

# pf_markdown JSON: a table of medians per metric (and knit / underlay).
pf_markdown() {
	jq -r '. as $r
		| "Run \(.date), commit \(.commit), \(.cores) cores: scenario `\(.scenario)`, \(.hosts.a) to \(.hosts.b), knit on the **\(.knit_path)** path; " +
		  "\(.repeat) run(s) per value (median" + (if .repeat > 1 then ", min–max" else "" end) + "); underlay: \(.underlay).",
		"",
		(.metrics[] as $m |
		 "**\($r.meta[$m].title)** (\($r.meta[$m].unit), \($r.meta[$m].better) is better)",
		 "",
		 "| \($r.var) | " + ($r.contenders | join(" | ")) + (if $r.ratios.knit then " | knit / underlay |" else " |" end),
		 "|---|" + ([$r.contenders[] | "---:"] | join("|")) + (if $r.ratios.knit then "|---:|" else "|" end),
		 ($r.values[] as $v | "| \($v) | " +
		   ([$r.contenders[] as $c | ($r.summary[$c][$m] | map(select(.value == $v))[0]) as $e |
		     if $e.median == null then "–" elif $r.repeat > 1 then "\($e.median) (\($e.min)–\($e.max))" else "\($e.median)" end]
		    | join(" | ")) +
		   (if $r.ratios.knit then " | \($r.ratios.knit[$m][$v] // "–") |" else " |" end)),
		 "")' "$1"
}

# pf_ci JSON BASELINE: compares knit / underlay with the baseline of the
# same variable, value by value; adds .ci to the JSON; 1 on a regression.
pf_ci() {
	local json=$1 base=$2 tmp
	[[ -f $base ]] || die "perf: no baseline file $base (make one with --write-baseline)"
	jq -e --arg v "$(jq -r .var "$json")" '.sweeps[$v]' "$base" >/dev/null ||
		die "perf: $base has no baseline for --var $(jq -r .var "$json")"
	tmp=$(mktemp)
	jq --slurpfile b "$base" --arg file "$base" --argjson tol "$PF_TOL" --arg cims "$PF_CI_METRICS" '
		. as $r | ($b[0].sweeps[$r.var]) as $base
		| [($cims | split(","))[] as $m | select($r.metrics | index($m)) | $r.values[] as $v |
		   ($r.ratios.knit[$m][$v]) as $now | ($base.ratios[$m][$v]) as $was |
		   {metric: $m, value: $v, better: $r.meta[$m].better, baseline: $was, ratio: $now} |
		   if $was == null or $now == null then . + {status: "skipped"}
		   else (($now / $was - 1) * 100 * 10 | round / 10) as $chg |
		     . + {change_pct: $chg,
		          status: (if (.better == "higher" and $chg < -$tol) or (.better == "lower" and $chg > $tol)
		                   then "regression" else "ok" end)} end] as $rows
		| .ci = {baseline: $file, tolerance_pct: $tol, metrics: ($cims | split(",")),
		         compared: ([$rows[] | select(.status != "skipped")] | length),
		         regressions: ([$rows[] | select(.status == "regression")] | length),
		         rows: $rows}' "$json" >"$tmp"
	mv "$tmp" "$json"
	chmod 644 "$json"
	jq -r '.ci.rows[] | select(.status != "skipped") |
		"perf ci: \(if .status == "regression" then "REGRESSION" else "ok" end) \(.metric) at \(.value): knit/underlay \(.ratio), baseline \(.baseline) (\(if .change_pct >= 0 then "+" else "" end)\(.change_pct) %)"' "$json" >&2
	jq -r '"perf ci: \(.ci.compared) ratios compared with \(.ci.baseline), \(.ci.regressions) regression(s) beyond \(.ci.tolerance_pct) %"' "$json"
	jq -e '.ci.compared > 0 and .ci.regressions == 0' "$json" >/dev/null
}

# pf_write_baseline JSON FILE: the run's knit / underlay ratios under its
# variable in FILE (other variables are kept).
pf_write_baseline() {
	local tmp
	tmp=$(mktemp)
	jq -n --slurpfile r "$1" --slurpfile old <(if [[ -s $2 ]]; then cat "$2"; else echo '{}'; fi) '
		($r[0]) as $r | ($old[0] // {}) as $o
		| {about: "knit-lab perf baselines: knit / underlay ratios of medians, per variable, metric and value (docs/perf.md)",
		   sweeps: (($o.sweeps // {}) + {($r.var): {date: $r.date, commit: $r.commit, scenario: $r.scenario,
		     knit_path: $r.knit_path, repeat: $r.repeat, values: $r.values, ratios: $r.ratios.knit}})}' >"$tmp"
	mkdir -p "$(dirname "$2")"
	mv "$tmp" "$2"
	chmod 644 "$2"
	pf_log "baseline for --var $(jq -r .var "$1") written to $2"
}

pf_outputs() {
	local json=$1 rc=0
	pf_plots "$json" "$(dirname "$json")"
	pf_markdown "$json" >"$(dirname "$json")/summary.md"
	[[ -n $PF_WRITE_BASE ]] && pf_write_baseline "$json" "$PF_WRITE_BASE"
	if ((PF_CI)); then pf_ci "$json" "$PF_BASE" || rc=1; fi
	pf_log "results: $json, $(dirname "$json")/summary.md and the plots $(cd "$(dirname "$json")" && echo ./*.png)"
	return $rc
}

pf_cleanup() {
	set +e
	[[ -n ${P:-} ]] && { [[ -n $(run_namespaces "$P") || -d $LAB_RUNROOT/$P ]] && LAB_QUIET=1 lab_teardown "$P"; }
	[[ -n ${PF_WORK:-} ]] && rm -rf "$PF_WORK"
}

cmd_perf() {
	local scen=() t
	PF_VAR='' PF_VALUES='' PF_REPEAT=1 PF_OUT=$LAB_ROOT/build/results/perf PF_MET='' PF_CONT=knit,wireguard-go,underlay
	PF_BITRATE=100M PF_TIME=3 PF_HTTP_N=100 PF_PINGS=20 PF_HOSTS='' PF_WAIT_DIRECT=10 PF_CI=0
	PF_BASE=$LAB_ROOT/docs/results/perf-baseline.json PF_TOL=25 PF_CI_METRICS=$PF_CI_METRICS_DEFAULT
	PF_WRITE_BASE='' PF_FROM='' PF_KNIT_PATH0=none PF_UNDER_HOW='' PF_WG_OK=0 PF_WORK=''
	declare -gA PF_ADDR=() PF_GW=() PF_WG_IF=()
	while [[ $# -gt 0 ]]; do
		case $1 in
		--var) PF_VAR=${2:?}; shift 2 ;;
		--values) PF_VALUES=${2:?}; shift 2 ;;
		--repeat) PF_REPEAT=${2:?}; shift 2 ;;
		--out) PF_OUT=${2:?}; shift 2 ;;
		--metrics) PF_MET=${2:?}; shift 2 ;;
		--contenders) PF_CONT=${2:?}; shift 2 ;;
		--bitrate) PF_BITRATE=${2:?}; shift 2 ;;
		--time) PF_TIME=${2:?}; shift 2 ;;
		--http-requests) PF_HTTP_N=${2:?}; shift 2 ;;
		--pings) PF_PINGS=${2:?}; shift 2 ;;
		--hosts) PF_HOSTS=${2:?}; shift 2 ;;
		--wait-direct) PF_WAIT_DIRECT=${2:?}; shift 2 ;;
		--ci) PF_CI=1; shift ;;
		--baseline) PF_BASE=${2:?}; shift 2 ;;
		--tolerance) PF_TOL=${2:?}; shift 2 ;;
		--ci-metrics) PF_CI_METRICS=${2:?}; shift 2 ;;
		--write-baseline) PF_WRITE_BASE=${2:?}; shift 2 ;;
		--from) PF_FROM=${2:?}; shift 2 ;;
		-h | --help) perf_usage ;;
		*) scen+=("$1"); shift ;;
		esac
	done
	[[ $PF_TOL =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "perf: --tolerance takes a percentage"
	if [[ -n $PF_FROM ]]; then
		if [[ ! -f $PF_FROM ]] || ! jq -e '.suite == "knit-lab perf"' "$PF_FROM" >/dev/null 2>&1; then
			die "perf: $PF_FROM is not a knit-lab perf result"
		fi
		[[ -n ${scen[*]} ]] && die "perf: --from takes no scenario"
		t=$(dirname "$PF_FROM")
		if [[ $PF_OUT != "$LAB_ROOT/build/results/perf" && $(readlink -f "$PF_OUT") != $(readlink -f "$t") ]]; then
			mkdir -p "$PF_OUT"
			cp "$PF_FROM" "$PF_OUT/perf.json"
			PF_FROM=$PF_OUT/perf.json
		fi
		pf_outputs "$PF_FROM"
		return
	fi
	[[ $PF_VAR =~ ^(bitrate|loss|delay)$ ]] || die "perf: --var is bitrate, loss or delay"
	[[ $PF_VALUES =~ ^[^,]+(,[^,]+)*$ ]] || die "perf: --values takes a comma-separated list"
	pf_check_values "$PF_VALUES"
	[[ $PF_REPEAT =~ ^[1-9][0-9]?$ ]] || die "perf: --repeat takes 1..99"
	[[ $PF_TIME =~ ^[1-9][0-9]?$ ]] || die "perf: --time takes 1..99 s"
	[[ $PF_HTTP_N =~ ^[1-9][0-9]{0,3}$ && $PF_PINGS =~ ^[1-9][0-9]{0,3}$ ]] ||
		die "perf: --http-requests and --pings take 1..9999"
	[[ $PF_WAIT_DIRECT =~ ^[0-9]{1,3}$ ]] || die "perf: --wait-direct takes seconds"
	[[ $PF_BITRATE =~ ^[0-9]+(\.[0-9]+)?[KMG]?$ ]] || die "perf: bad --bitrate '$PF_BITRATE'"
	[[ -n $PF_MET ]] || { if [[ $PF_VAR == bitrate ]]; then PF_MET=udp; else PF_MET=tcp,udp,http,ping; fi; }
	for t in ${PF_MET//,/ }; do pf_has tcp,udp,http,ping "$t" || die "perf: unknown metric '$t' (tcp, udp, http, ping)"; done
	for t in ${PF_CONT//,/ }; do pf_has knit,wireguard-go,underlay "$t" || die "perf: unknown contender '$t'"; done
	for t in "$PF_KNITD" "$PF_KNIT" "$PF_CONTROL" "$PF_RELAY"; do
		[[ -x $t ]] || die "perf: no $t (make builds it)"
	done
	for t in jq iperf3 curl gnuplot wg wireguard-go nft; do
		command -v "$t" >/dev/null || die "perf: $t is needed (scripts/install-deps.sh)"
	done
	[[ $PF_VAR == bitrate ]] || [[ -x $LINKEM ]] || die "perf: no $LINKEM (make builds it)"
	PF_SCENARIO=${scen[*]:-default}

	P=${KNIT_LAB_PREFIX:-pf$(printf '%04x' $((RANDOM ^ ($$ & 0xffff))))}
	prefix_valid "$P" || die "perf: invalid prefix '$P'"
	RUNDIR=$LAB_RUNROOT/$P
	PF_WORK=$(mktemp -d "/tmp/knit-perf.$P.XXXX")
	mkdir -p "$PF_OUT"
	trap pf_cleanup EXIT
	trap 'exit 130' INT TERM
	local started=$SECONDS
	PF_LOAD0=$(cut -d' ' -f1 /proc/loadavg)
	KNIT_LAB_PREFIX=$P LAB_QUIET=1 "$LAB_ROOT/lab/knit-lab" up "${scen[@]}" >/dev/null ||
		die "perf: knit-lab up ${scen[*]} failed"
	mkdir -p "$RUNDIR/perf"
	pf_pick_hosts
	pf_underlay_target
	pf_link_hosts
	pf_log "lab $P ($PF_SCENARIO): A=$PF_A B=$PF_B; underlay: $PF_UNDER_HOW"
	[[ $PF_VAR == bitrate ]] || pf_log "$PF_VAR on the packets ${PF_LINK_HOSTS[0]} and ${PF_LINK_HOSTS[1]} send"
	if pf_has "$PF_CONT" knit; then pf_knit_up; else PF_KNIT_TARGET=''; fi
	if pf_has "$PF_CONT" wireguard-go; then pf_wggo_up && PF_WG_OK=1; fi
	pf_servers_up
	pf_measure_all
	PF_SECONDS=$((SECONDS - started))
	pf_report
	pf_log "$(jq -r '"\(.samples | length) samples in \(.seconds) s"' "$PF_OUT/perf.json")"
	pf_outputs "$PF_OUT/perf.json"
}
