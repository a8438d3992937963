# shellcheck shell=bash
# knit-lab matrix: every ordered pair of NAT kinds, a knitd behind each.
#
#            switch (198.51.100.0/24)
#    +-----------+-----------+-------------+-------------+
#  control     relay       stun        router1       router2
#  knit-control knit-relay natprobe   NAT kind A    NAT kind B
#  :8080       :8443, STUN :3478         |             |
#                                     peer1-1       peer2-1
#                                     knitd (A) --> knitd (B): ping
#
# A worker (--jobs N of them, each with its own lab and prefix) takes cells
# from a shared queue.  Pair cells reuse the worker's topology: between
# cells both knitds stop, both routers get their new NAT kind in place (a
# fresh nftables table and an empty conntrack table) and the knitds start
# again with the same node keys, so each cell starts from nothing but a
# logged-in node.  As soon as A's knitd sees B online, A pings B every 50 ms
# (knitd may look for a path before any packet asks for one: the first
# ping leaves at the first moment a user could send), and the cell records:
#
#   connected   B answered at least one ping
#   path        A's view of B ("direct", "relay", "none") from knit status
#   ttd_ms      time to direct: from the first ping on A's TUN to the first
#               WireGuard data packet on a direct UDP path (type 4 on A's
#               underlay; relayed packets travel over TCP), from one packet
#               capture on A, so independent of what knitd says about itself
#   status_ms   from the first ping to A's status saying "direct" (polled
#               every 30 ms)
#   knitd_ms    knitd's own "direct_after_ms", when it reports one
#
# and asserts its expected outcome (matrix_expect: the feasibility analysis
# of shared/REFERENCE.md).  --expect relay-only asserts "connected" only.
#
# Results: one JSON object per cell in the work directory; --json merges
# the run into a file holding every run by name; --markdown renders that
# file as tables (docs/results/matrix.md).

MX_RFC4787=(eim-eif eim-adf eim-adpf adm-eif adm-adf adm-adpf adpm-eif adpm-adf adpm-adpf)
MX_RFC3489=(full-cone restricted-cone port-restricted-cone symmetric)
MX_KNITD=${KNITD:-$LAB_BUILD/knitd}
MX_KNIT=${KNIT:-$LAB_BUILD/knit}
MX_CONTROL=${CONTROL:-$LAB_BUILD/knit-control}
MX_RELAY=${RELAY:-$LAB_BUILD/knit-relay}
MX_POLL=0.03 # status poll interval, s
MX_PING_INTERVAL=0.05

matrix_usage() {
	cat >&2 <<'EOF'
knit-lab matrix [--kinds rfc4787|rfc3489|KIND,KIND...] [--alloc random|seed-adm]
                [--loss PCT] [--delay-ms D] [--special] [--cells A:B,...]
                [--expect full|relay-only] [--declare-class] [--wait S] [--settle S] [--jobs N]
                [--name NAME] [--json FILE] [--markdown FILE] [--logs DIR]

  --kinds      the NAT kinds of the table (default rfc4787: the 9 of RFC 4787;
               rfc3489: full-cone, restricted-cone, port-restricted-cone, symmetric)
  --alloc      ADM's port allocation: random over the full range (default), or
               seed-adm, the seed's 100 ports per destination address
  --loss, --delay-ms   link conditions on both routers' public links
  --special    also: two peers behind one NAT (LAN), the same through a hairpin
               with LAN candidates hidden, two public peers, port-mapping routers
  --cells      only these ordered pairs (A:B, comma-separated)
  --expect     full (default): each cell's expected path; relay-only: connected
  --declare-class  start each knitd with --nat-class (its router's kind) instead
               of letting it measure its NAT
  --wait       seconds a cell waits for a direct path (default 20)
  --settle     seconds a cell expected to stay on the relay is watched (default 5)
  --jobs       labs running cells at once (default 2)
  --name       the run's name in the JSON (default from kinds, alloc, loss, delay)
  --json       merge this run into FILE (other runs in it are kept)
  --markdown   render every run of the JSON file (or of this run) into FILE
  --logs       keep each failed cell's logs and capture under DIR (every
               cell's with MATRIX_KEEP_LOGS=1 in the environment)
Exit status 0 when every cell met its expectation.
EOF
	exit 2
}

# mx_spec LABEL: the lab's NAT spec of a kind label of the table.
mx_spec() {
	local k=$1
	case $k in
	full-cone) echo eim-eif ;;
	restricted-cone) echo eim-adf ;;
	port-restricted-cone) echo eim-adpf ;;
	symmetric) echo adpm-adpf ;;
	adm-*)
		if [[ $k == *alloc=* ]]; then
			echo "$k"
		elif [[ $MX_ALLOC == seed-adm ]]; then
			echo "$k,alloc=range"
		else
			echo "$k,alloc=random"
		fi
		;;
	*) echo "$k" ;;
	esac
}

# mx_class SPEC: "MAP FILT ALLOC UDP" of a spec.
mx_class() {
	nat_parse "$1" || return 1
	echo "$NAT_MAP $NAT_FILT $NAT_ALLOC $NAT_UDP"
}

# matrix_expect SPEC_A SPEC_B: "direct" or "relay", then "plain", "search"
# or "none", from the feasibility analysis (shared/REFERENCE.md, "Which
# pairs of NATs can be direct").  A side whose external port can be neither
# known nor guessed is one with a non-EIM mapping allocating at random over
# the whole range (the seed's ADM range leaves 100 guesses; sequential
# ports can be predicted).  Two such sides that both filter ADPF cannot
# meet.  No search is needed when a side filters EIF (its STUN-observed
# mapping takes a packet from anyone, and the answer leaves through it),
# when both map EIM, or when one side maps EIM and filters ADF (its port is
# known, and one packet from it to the other's address opens it).
matrix_expect() {
	local am af aa au bm bf ba bu hard_a=0 hard_b=0 outcome=direct how=search
	read -r am af aa au <<<"$(mx_class "$1")" || return 1
	read -r bm bf ba bu <<<"$(mx_class "$2")" || return 1
	[[ $am != eim && $aa == random ]] && hard_a=1
	[[ $bm != eim && $ba == random ]] && hard_b=1
	if [[ $au == off || $bu == off ]]; then
		outcome=relay
	elif ((hard_a && hard_b)) && [[ $af == adpf && $bf == adpf ]]; then
		outcome=relay
	fi
	if [[ $af == eif || $bf == eif ]] || [[ $am == eim && $bm == eim ]] ||
		[[ $am == eim && $af == adf ]] || [[ $bm == eim && $bf == adf ]]; then
		how=plain
	fi
	[[ $outcome == relay ]] && how=none
	echo "$outcome $how"
}

now_ms() { local t=${EPOCHREALTIME//[.,]/}; MX_NOW=$((t / 1000)); }

# --- the queue ------------------------------------------------------------
# A cell is one line: id|case|shape|A host|B host|A label|B label|router1
# spec|router2 spec|expect|how|endpoint pattern|knitd options

mx_pop() {
	local line=''
	{
		flock 9
		line=$(head -n 1 "$MX_DIR/queue")
		[[ -n $line ]] && sed -i 1d "$MX_DIR/queue"
	} 9>"$MX_DIR/queue.lock"
	[[ -n $line ]] && printf '%s\n' "$line"
}

mx_queue_cells() {
	local a b sa sb e n=0 lines=() l
	local -A want=()
	if [[ -n $MX_CELLS ]]; then
		for l in ${MX_CELLS//,/ }; do want[$l]=1; done
	fi
	for a in "${MX_KINDS[@]}"; do
		for b in "${MX_KINDS[@]}"; do
			[[ -n $MX_CELLS && -z ${want[$a:$b]:-} ]] && continue
			sa=$(mx_spec "$a") sb=$(mx_spec "$b")
			e=$(matrix_expect "$sa" "$sb") || die "matrix: bad kind in $a:$b"
			n=$((n + 1))
			# Longest first: search cells, then relay cells, then the rest.
			case ${e#* } in search) l=0 ;; none) l=1 ;; *) l=2 ;; esac
			lines+=("$l|pair$n|pair|pair|peer1-1|peer2-1|$a|$b|$sa|$sb|${e%% *}|${e#* }||")
		done
	done
	if ((MX_SPECIAL)); then
		# Port-mapping routers first: miniupnpd takes a moment.
		lines+=("0|upnp1|upnp|pair|peer1-1|peer2-1|adpm-adpf+upnp|adpm-adpf|adpm-adpf,upnp=on|adpm-adpf|direct|portmap||")
		lines+=("0|upnp2|upnp|pair|peer2-1|peer1-1|adpm-adpf|adpm-adpf+upnp|adpm-adpf,upnp=on|adpm-adpf|direct|portmap||")
		lines+=("1|lan|lan|lan2|peer1-1|peer1-2|adpm-adpf (same NAT)|adpm-adpf (same NAT)|adpm-adpf||direct|lan|^10\\.0\\.1\\.2:|")
		lines+=("1|hairpin|hairpin|lan2|peer1-1|peer1-2|eim-adpf hairpin (same NAT)|eim-adpf hairpin (same NAT)|eim-adpf,alloc=random,hairpin=on||direct|hairpin|^$PUB_NET\\.11:|--no-lan-candidates")
		lines+=("1|public|public|public|pub1|pub2|public|public|||direct|public|^$PUB_NET\\.102:|")
	fi
	: >"$MX_DIR/queue"
	printf '%s\n' "${lines[@]}" | sort -t'|' -s -k1,1 | cut -d'|' -f2- >"$MX_DIR/queue"
	MX_NCELLS=${#lines[@]}
}

# --- a worker's lab --------------------------------------------------------

# mx_shape_args SHAPE: the lab of a shape (routers get their kind per cell).
mx_shape_args() {
	case $1 in
	pair) echo "--nat1 eim-eif --nat2 eim-eif --public-peers 0" ;;
	lan2) echo "--nat1 eim-eif --peers 2 --public-peers 0" ;;
	public) echo "--nat1 eim-eif --public-peers 2" ;;
	esac
}

mx_lab_down() {
	[[ -n ${MX_SHAPE:-} ]] || return 0
	LAB_QUIET=1 lab_teardown "$P" || say "matrix: namespaces of $P are left"
	MX_SHAPE=''
}

# mx_lab_up SHAPE: this worker's lab of that shape, with control and relay
# running; nothing to do if it is up already.
mx_lab_up() {
	local shape=$1 d
	[[ ${MX_SHAPE:-} == "$shape" ]] && return 0
	mx_lab_down
	# shellcheck disable=SC2046  # the shape's options, one a word
	KNIT_LAB_PREFIX=$P LAB_QUIET=1 "$LAB_ROOT/lab/knit-lab" up $(mx_shape_args "$shape") >/dev/null ||
		{ MX_ERR="knit-lab up failed"; return 1; }
	MX_SHAPE=$shape
	knit_servers_up "$RUNDIR/mx" || { MX_ERR=$KS_ERR; return 1; }
	MX_CK=$KS_CK MX_AUTH=$KS_AUTH
	if [[ $shape == pair && -n $MX_LINK ]]; then
		# shellcheck disable=SC2086  # the link's options, one a word
		(link_set router1 $MX_LINK && link_set router2 $MX_LINK) >/dev/null ||
			{ MX_ERR="link conditions failed"; return 1; }
	fi
}


# mx_knitd_start HOST [OPTIONS]: knitd with the host's state (the node key
# survives cells), logged in.
mx_knitd_start() {
	local h=$1 d=$RUNDIR/mx
	shift
	rm -f "$d/$h.sock"
	: >"$RUNDIR/log/knitd-$h.log"
	spawn "$h" "knitd-$h" "$MX_KNITD" --state-dir "$d/$h" --socket "$d/$h.sock" "$@"
	wait_for 5 test -S "$d/$h.sock" || { MX_ERR="knitd on $h did not start: $(tail -n 2 "$RUNDIR/log/knitd-$h.log" | tr '\n' ' ')"; return 1; }
	if [[ ! -f $d/$h.joined ]]; then
		"$MX_KNIT" --socket "$d/$h.sock" up --control "$KS_URL" --control-key "$MX_CK" \
			--auth-key "$MX_AUTH" --hostname "$h" --timeout 10 >/dev/null 2>"$d/$h.up.err" ||
			{ MX_ERR="knit up on $h failed: $(head -c 200 "$d/$h.up.err")"; return 1; }
		"$MX_KNIT" --socket "$d/$h.sock" ip -4 >"$d/$h.ip" 2>/dev/null
		[[ -s $d/$h.ip ]] || { MX_ERR="no overlay address for $h"; return 1; }
		touch "$d/$h.joined"
	fi
}

mx_status() { "$MX_KNIT" --socket "$RUNDIR/mx/$1.sock" status --json 2>/dev/null; }

# mx_renat ROUTER SPEC: a router's NAT kind changed in place.
mx_renat() {
	(router_renat "$1" "$2") >>"$RUNDIR/log/renat.log" 2>&1 ||
		{ MX_ERR="could not set $1 to $2: $(tail -n 1 "$RUNDIR/log/renat.log")"; return 1; }
}

# --- one cell --------------------------------------------------------------

# mx_cell LINE: runs it and writes its JSON to $MX_DIR/cells/ID.json.
mx_cell() {
	local id case shape ah bh al bl r1 r2 expect how eppat opts
	IFS='|' read -r id case shape ah bh al bl r1 r2 expect how eppat opts <<<"$1"
	local t_start t0 deadline path='' endpoint='' reason='' path_b='' status_ms=null
	local knitd_ms=null ttd_ms=null pcap_ep='' sent=0 recv=0 lost=0 after=0
	local connected=false ok=false note='' d=$RUNDIR/mx h st ipb waited
	local -a kopts=()
	read -ra kopts <<<"$opts"
	MX_ERR=''
	now_ms
	t_start=$MX_NOW
	mx_cell_prepare "$shape" "$ah" "$bh" "$r1" "$r2" "$opts" || note=$MX_ERR
	if [[ -z $note ]]; then
		rm -f "$d/cell.pcap"
		: >"$RUNDIR/log/tcpdump-$ah.log"
		: >"$RUNDIR/log/ping-$ah.log"
		# The capture, from before knitd starts: pings entering A's TUN,
		# WireGuard data (type 4) on any UDP path.
		spawn "$ah" "tcpdump-$ah" tcpdump -i any -n -U --immediate-mode -w "$d/cell.pcap" \
			'(icmp and icmp[0] = 8) or (udp and udp[8:4] = 0x04000000)'
		wait_for 3 grep -q "listening on" "$RUNDIR/log/tcpdump-$ah.log" ||
			note="tcpdump did not start"
	fi
	if [[ -z $note ]]; then
		for h in "$ah" "$bh"; do
			# shellcheck disable=SC2046  # none, or the option and its value
			mx_knitd_start "$h" "${kopts[@]}" $(mx_declared_class "$h" "$r1" "$r2") ||
				{ note=$MX_ERR; break; }
		done
	fi
	if [[ -z $note ]]; then
		# The first ping leaves as soon as A knows B is online: the time
		# to direct counts from the first moment a user could send.
		mx_wait_online "$ah" || note="$ah did not see $bh online in 10 s: $(mx_why "$ah")"
	fi
	if [[ -z $note ]]; then
		ipb=$(<"$d/$bh.ip")
		waited=$MX_WAIT
		[[ $expect == relay || $MX_EXPECT == relay-only ]] && waited=$MX_SETTLE
		now_ms
		t0=$MX_NOW
		deadline=$((t0 + waited * 1000))
		spawn "$ah" "ping-$ah" ping -n -D -i "$MX_PING_INTERVAL" "$ipb"
		while :; do
			st=$(mx_status "$ah")
			path=$(jq -r '.peers[0].path // "none"' <<<"$st" 2>/dev/null)
			now_ms
			if [[ $path == direct ]]; then
				status_ms=$((MX_NOW - t0))
				break
			fi
			((MX_NOW < deadline)) || break
			# Every 30 ms while a quick path is due, then every 100 ms.
			if ((MX_NOW - t0 < 3000)); then sleep "$MX_POLL"; else sleep 0.1; fi
		done
		# Let traffic run over the path found (0.4 s), and wait for an
		# answer over it if none came yet: up to 7 s, for a handshake
		# lost to the link (WireGuard retries after 5 s).
		mx_replies_after "$ah" $((t0 + ${status_ms/null/0}))
		now_ms
		local confirm_end=$((MX_NOW + 7000)) switch=$MX_NOW
		while :; do
			sleep 0.1
			now_ms
			((MX_NOW - switch >= 400)) || continue
			mx_replies_after "$ah" $((t0 + ${status_ms/null/0}))
			((MX_REPLIES > 0 || MX_NOW >= confirm_end)) && break
		done
		st=$(mx_status "$ah")
		path=$(jq -r '.peers[0].path // "none"' <<<"$st" 2>/dev/null)
		endpoint=$(jq -r '.peers[0].endpoint // ""' <<<"$st" 2>/dev/null)
		reason=$(jq -r '.peers[0].path_reason // ""' <<<"$st" 2>/dev/null)
		knitd_ms=$(jq -r '.peers[0].direct_after_ms // "null"' <<<"$st" 2>/dev/null)
		path_b=$(mx_status "$bh" | jq -r '.peers[0].path // "none"' 2>/dev/null)
		# Both views, for the logs a failed cell keeps.
		mx_status "$ah" >"$RUNDIR/log/status-$ah.log" 2>&1
		mx_status "$bh" >"$RUNDIR/log/status-$bh.log" 2>&1
		mx_interrupt "ping-$ah"
		mx_interrupt "tcpdump-$ah"
		sent=$(awk '/packets transmitted/ { print $1 }' "$RUNDIR/log/ping-$ah.log")
		recv=$(grep -c 'bytes from' "$RUNDIR/log/ping-$ah.log")
		# Lost: the pings missing before the last one answered (those
		# after it were still in flight when the ping was stopped).
		lost=$(awk -F'icmp_seq=' '/bytes from/ { split($2, a, " "); q = a[1] + 0
			if (!(q in seen)) { seen[q] = 1; n++ } if (q > max) max = q }
			END { print max - n }' "$RUNDIR/log/ping-$ah.log")
		# Replies after the switch: the direct path carries the traffic.
		if [[ $status_ms != null ]]; then
			mx_replies_after "$ah" $((t0 + status_ms))
			after=$MX_REPLIES
		fi
		read -r ttd_ms pcap_ep <<<"$(mx_pcap_ttd "$d/cell.pcap")"
		[[ $ttd_ms -ge 0 ]] || ttd_ms=null
		((recv > 0)) && connected=true
		for h in "$ah" "$bh"; do
			if ! pid_ours "$(cat "$RUNDIR/pid/knitd-$h" 2>/dev/null)"; then
				note+="knitd on $h died; "
			fi
			if grep -q -E 'AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault' \
				"$RUNDIR/log/knitd-$h.log"; then
				note+="sanitizer report from knitd on $h; "
			fi
		done
	fi
	ok=$(mx_judge)
	now_ms
	jq -n --arg id "$id" --arg case "$case" --arg a "$al" --arg b "$bl" \
		--arg a_spec "$r1" --arg b_spec "$r2" --arg expect "$expect" --arg how "$how" \
		--arg path "${path:-none}" --arg path_b "${path_b:-none}" --arg endpoint "$endpoint" \
		--arg direct_endpoint "$pcap_ep" --arg reason "$reason" --arg note "${note%; }" \
		--argjson connected "$connected" --argjson ok "$ok" --argjson ttd_ms "$ttd_ms" \
		--argjson status_ms "$status_ms" --argjson knitd_ms "${knitd_ms:-null}" \
		--argjson sent "${sent:-0}" --argjson received "${recv:-0}" --argjson lost "${lost:-0}" \
		--argjson after_direct "${after:-0}" --argjson waited_s "${waited:-0}" \
		--argjson seconds "$(((MX_NOW - t_start) / 1000))" --arg worker "$P" \
		'{id: $id, case: $case, a: $a, b: $b, a_spec: $a_spec, b_spec: $b_spec,
		  expect: $expect, how: $how, ok: $ok, connected: $connected, path: $path,
		  path_b: $path_b, endpoint: $endpoint, direct_endpoint: $direct_endpoint,
		  path_reason: $reason, ttd_ms: $ttd_ms, status_ms: $status_ms,
		  knitd_ms: $knitd_ms, pings_sent: $sent, pings_received: $received,
		  pings_lost: $lost,
		  received_after_direct: $after_direct, waited_s: $waited_s,
		  seconds: $seconds, worker: $worker, note: $note}' >"$MX_DIR/cells/$id.json"
	mx_cell_print "$MX_DIR/cells/$id.json"
	# Logs of failed cells, of cells slower to direct than the budget, and
	# of cells that lost pings on lossless links.
	if [[ -n $MX_LOGS ]] && [[ $ok != true || -n ${MATRIX_KEEP_LOGS:-} ||
		($how != search && $ttd_ms != null && $ttd_ms -gt 1000) ||
		(-z $MX_LINK && ${lost:-0} -gt 0) ]]; then
		mkdir -p "$MX_LOGS/$MX_RUN_NAME/$id"
		cp "$RUNDIR"/log/*.log "$d/cell.pcap" "$MX_LOGS/$MX_RUN_NAME/$id/" 2>/dev/null
		for h in router1 router2; do
			nsx "$h" nft list ruleset >"$MX_LOGS/$MX_RUN_NAME/$id/$h.nft" 2>/dev/null
			nsx "$h" conntrack -L -p udp >"$MX_LOGS/$MX_RUN_NAME/$id/$h.conntrack" 2>/dev/null
		done
	fi
	return 0
}

# mx_declared_class HOST R1 R2: with --declare-class, knitd's --nat-class
# option for HOST (behind router1 or router2, or public); nothing otherwise,
# and knitd measures its NAT itself.
mx_declared_class() {
	((MX_DECLARE)) || return 0
	case $1 in
	pub*) echo "--nat-class public" ;;
	peer1-*) echo "--nat-class ${2%%,*}" ;;
	peer2-*) echo "--nat-class ${3%%,*}" ;;
	esac
}

# mx_replies_after HOST MS: MX_REPLIES, the ping replies HOST's ping logged
# at or after MS (epoch milliseconds; ping -D stamps each line).
mx_replies_after() {
	MX_REPLIES=$(awk -v t="$(($2 / 1000)).$(printf '%03d' $(($2 % 1000)))" \
		'/bytes from/ { gsub(/[][]/, "", $1); if ($1 + 0 >= t + 0) n++ } END { print n + 0 }' \
		"$RUNDIR/log/ping-$1.log")
}

# mx_cell_prepare SHAPE A B R1 R2 OPTS: the lab up, knitds stopped, routers
# set to the cell's kinds.
mx_cell_prepare() {
	local shape=$1 r1=$4 r2=$5 opts=$6 f
	mx_lab_up "$shape" || return 1
	for f in "$RUNDIR"/pid/knitd-*; do
		[[ -f $f ]] && stop_daemon "${f##*/}"
	done
	if [[ $opts == *--no-lan-candidates* ]] &&
		! "$MX_KNITD" --help 2>&1 | grep -q -- --no-lan-candidates; then
		MX_ERR="knitd has no --no-lan-candidates option"
		return 1
	fi
	[[ -z $r1 ]] || mx_renat router1 "$r1" || return 1
	[[ -z $r2 ]] || mx_renat router2 "$r2" || return 1
	# miniupnpd learns its external address by STUN before it maps.
	if [[ $r1 == *upnp=on* ]] && ! wait_for 10 mx_natpmp_ready; then
		MX_ERR="miniupnpd on router1 did not answer NAT-PMP in 10 s"
		return 1
	fi
	return 0
}

mx_natpmp_ready() { nsx peer1-1 natpmpc -g "10.0.1.254" 2>/dev/null | grep -q "Public IP address"; }

mx_why() { mx_status "$1" | jq -c '{backend_state, error, peers: [.peers[] | {path, online, path_reason}]}' 2>/dev/null; }

# mx_wait_online HOST: HOST logged in and seeing its one peer online.
mx_wait_online() {
	local end
	now_ms
	end=$((MX_NOW + 10000))
	until mx_status "$1" | jq -e '.backend_state == "Running" and (.peers | length) == 1 and .peers[0].online' >/dev/null 2>&1; do
		now_ms
		((MX_NOW < end)) || return 1
		sleep 0.02
	done
}

# mx_interrupt NAME: SIGINT (ping prints its totals, tcpdump closes its
# file), then what stop_daemon does.
mx_interrupt() {
	local f=$RUNDIR/pid/$1 pid i
	[[ -f $f ]] || return 0
	pid=$(<"$f")
	if pid_ours "$pid"; then
		kill -INT "$pid" 2>/dev/null
		for ((i = 0; i < 40; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.025
		done
	fi
	stop_daemon "$1"
}

# mx_pcap_ttd FILE: "TTD_MS ENDPOINT": from the first ping to the first
# direct data packet, either way (-1 when either is missing; 0 when the
# path was direct before the first ping); ENDPOINT is the far end of that
# packet.  (Times are relative: mawk's %d stops at 2^31.)
mx_pcap_ttd() {
	[[ -s $1 ]] || { echo "-1"; return 0; }
	tcpdump -r "$1" -n -tt 2>/dev/null | awk '
		function ms(t) { split(t, p, "."); return (p[1] - base) * 1000 + substr(p[2] "000", 1, 3) }
		NR == 1 { split($1, b, "."); base = b[1] }
		/ICMP echo request/ && first == "" { first = ms($1) }
		/UDP/ && direct == "" {
			direct = ms($1)
			for (i = 2; i <= NF; i++) if ($i == ">") { src = $(i - 1); dst = $(i + 1) }
			sub(/:$/, "", dst)
			ep = ($0 ~ / In /) ? src : dst
		}
		END {
			n = split(ep, q, ".")
			ttd = (first == "" || direct == "") ? -1 : (direct > first ? direct - first : 0)
			printf "%d %s\n", ttd, (n == 5 ? q[1] "." q[2] "." q[3] "." q[4] ":" q[5] : "")
		}'
}

# mx_judge: true or false, from the cell's variables (dynamic scope).
mx_judge() {
	[[ -z $note ]] || { echo false; return; }
	[[ $connected == true ]] || { echo false; return; }
	if [[ $MX_EXPECT == relay-only ]]; then
		[[ $path == relay || $path == direct ]] && echo true || echo false
		return
	fi
	[[ $path == "$expect" ]] || { echo false; return; }
	if [[ $expect == direct ]]; then
		# The capture must agree, and traffic must flow over it.
		[[ $ttd_ms != null && $after -gt 0 ]] || { echo false; return; }
		[[ -z $eppat || $endpoint =~ $eppat ]] || { echo false; return; }
	fi
	echo true
}

mx_cell_text() { # JSON -> "direct 120 ms" | "relay" | "FAIL ..."
	jq -r --arg mode "$MX_EXPECT" '
		(if .path == "direct" then "direct" + (if .ttd_ms != null then " \(.ttd_ms) ms" else "" end)
		 else .path end) as $p
		| if .ok then $p
		  elif .note != "" then "FAIL (\(.note))"
		  elif .connected | not then "FAIL (no connection, \($p))"
		  else "FAIL (\($p), want \(.expect))" end' "$1"
}

mx_cell_print() {
	local r
	r=$(jq -r '"\(.a) -> \(.b) [\(.case), expect \(.expect)]"' "$1")
	if jq -e .ok "$1" >/dev/null; then
		echo "PASS $r: $(mx_cell_text "$1")"
	else
		echo "FAIL $r: $(mx_cell_text "$1")"
	fi
}

mx_worker() {
	local line
	P=$1
	RUNDIR=$LAB_RUNROOT/$P
	MX_SHAPE=''
	set +e
	while line=$(mx_pop); do
		mx_cell "$line"
	done
	mx_lab_down
}

# --- the run ----------------------------------------------------------------

cmd_matrix() {
	local kinds=rfc4787 loss='' delay='' json='' md='' name='' i pids=() base started
	MX_ALLOC=random MX_SPECIAL=0 MX_CELLS='' MX_EXPECT=full MX_WAIT=20 MX_SETTLE=5
	MX_JOBS=2 MX_LOGS='' MX_LINK='' MX_DECLARE=0
	while [[ $# -gt 0 ]]; do
		case $1 in
		--kinds) kinds=${2:?}; shift 2 ;;
		--alloc) MX_ALLOC=${2:?}; shift 2 ;;
		--loss) loss=${2:?}; shift 2 ;;
		--delay-ms) delay=${2:?}; shift 2 ;;
		--special) MX_SPECIAL=1; shift ;;
		--declare-class) MX_DECLARE=1; shift ;;
		--cells) MX_CELLS=${2:?}; shift 2 ;;
		--expect) MX_EXPECT=${2:?}; shift 2 ;;
		--wait) MX_WAIT=${2:?}; shift 2 ;;
		--settle) MX_SETTLE=${2:?}; shift 2 ;;
		--jobs) MX_JOBS=${2:?}; shift 2 ;;
		--name) name=${2:?}; shift 2 ;;
		--json) json=${2:?}; shift 2 ;;
		--markdown) md=${2:?}; shift 2 ;;
		--logs) MX_LOGS=${2:?}; shift 2 ;;
		*) matrix_usage ;;
		esac
	done
	[[ $MX_ALLOC =~ ^(random|seed-adm)$ ]] || die "matrix: --alloc is random or seed-adm"
	[[ $MX_EXPECT =~ ^(full|relay-only)$ ]] || die "matrix: --expect is full or relay-only"
	[[ $MX_JOBS =~ ^[1-9][0-9]?$ ]] || die "matrix: --jobs takes 1..99"
	[[ $MX_WAIT =~ ^[1-9][0-9]{0,2}$ && $MX_SETTLE =~ ^[1-9][0-9]{0,2}$ ]] ||
		die "matrix: --wait and --settle take whole seconds"
	[[ -z $loss || $loss =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "matrix: --loss takes a percentage"
	[[ -z $delay || $delay =~ ^[0-9]+$ ]] || die "matrix: --delay-ms takes milliseconds"
	[[ -n $loss ]] && MX_LINK+="--loss $loss "
	[[ -n $delay ]] && MX_LINK+="--delay-ms $delay "
	case $kinds in
	rfc4787) MX_KINDS=("${MX_RFC4787[@]}") ;;
	rfc3489) MX_KINDS=("${MX_RFC3489[@]}") ;;
	*) IFS=, read -ra MX_KINDS <<<"$kinds" ;;
	esac
	if [[ -z $name ]]; then
		name=$kinds
		[[ $kinds == rfc4787 || $kinds == *adm* ]] && name+="-$MX_ALLOC"
		[[ -n $loss ]] && name+="-loss$loss"
		[[ -n $delay ]] && name+="-delay${delay}ms"
		((MX_DECLARE)) && name+="-declared"
	fi
	MX_RUN_NAME=$name
	for i in "$MX_KNITD" "$MX_KNIT" "$MX_CONTROL" "$MX_RELAY" "$NATPROBE"; do
		[[ -x $i ]] || die "matrix: no $i (make builds it)"
	done
	for i in jq tcpdump flock; do
		command -v "$i" >/dev/null || die "matrix: $i is needed (scripts/install-deps.sh)"
	done

	base=${KNIT_LAB_PREFIX:-mx$(printf '%04x' $((RANDOM ^ ($$ & 0xffff))))}
	prefix_valid "${base}w$MX_JOBS" || die "matrix: prefix '$base' too long (at most 9 characters)"
	MX_DIR=$(mktemp -d "/tmp/knit-matrix.$base.XXXX")
	mkdir "$MX_DIR/cells"
	MX_BASE=$base
	trap 'mx_cleanup' EXIT
	trap 'exit 130' INT TERM
	mx_queue_cells
	((MX_NCELLS > 0)) || die "matrix: no cell to run"
	say "matrix $name: $MX_NCELLS cells, $MX_JOBS jobs, expect $MX_EXPECT, prefixes ${base}w1..${base}w$MX_JOBS"
	now_ms
	started=$MX_NOW
	for ((i = 1; i <= MX_JOBS; i++)); do
		mx_worker "${base}w$i" &
		pids+=($!)
	done
	MX_WORKERS=("${pids[@]}")
	for i in "${pids[@]}"; do wait "$i" || true; done
	MX_WORKERS=()
	now_ms
	mx_report "$name" "$kinds" "$loss" "$delay" "$(((MX_NOW - started) / 1000))" >"$MX_DIR/run.json"
	local merged=0
	if [[ -n $json ]] && mx_merge "$json" "$name" "$MX_DIR/run.json"; then
		merged=1
	fi
	if [[ -n $md ]]; then
		if ((merged)); then
			mx_markdown <"$json" >"$md"
		else
			jq --arg n "$name" '{runs: {($n): .}}' "$MX_DIR/run.json" | mx_markdown >"$md"
		fi
	fi
	mx_summary "$MX_DIR/run.json"
}

mx_cleanup() {
	local pid i
	set +e
	for pid in "${MX_WORKERS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${MX_WORKERS[@]}"; do wait "$pid" 2>/dev/null; done
	for ((i = 1; i <= MX_JOBS; i++)); do
		[[ -n $(run_namespaces "${MX_BASE}w$i") || -d $LAB_RUNROOT/${MX_BASE}w$i ]] &&
			lab_teardown "${MX_BASE}w$i"
	done
	rm -rf "$MX_DIR"
}

# mx_report NAME KINDS LOSS DELAY SECONDS: the run as one JSON object.
mx_report() {
	local commit
	commit=$(git -C "$LAB_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	git -C "$LAB_ROOT" diff --quiet HEAD -- src 2>/dev/null || commit+="+changes"
	jq -s --arg name "$1" --arg kinds "$2" --arg alloc "$MX_ALLOC" --arg loss "$3" \
		--arg delay "$4" --argjson seconds "$5" --argjson jobs "$MX_JOBS" \
		--arg expect_mode "$MX_EXPECT" --argjson declared "$MX_DECLARE" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		--arg commit "$commit" --argjson cores "$(nproc)" \
		--argjson wait "$MX_WAIT" --argjson settle "$MX_SETTLE" \
		--argjson order "$(printf '%s\n' "${MX_KINDS[@]}" | jq -R . | jq -s .)" '
		def median: sort | if length == 0 then null
			elif length % 2 == 1 then .[length / 2 | floor]
			else ((.[length / 2 - 1] + .[length / 2]) / 2 | floor) end;
		sort_by(.id | ltrimstr("pair") | tonumber? // 1000) as $cells
		| [$cells[] | select(.case == "pair")] as $pairs
		| [$pairs[] | select(.path == "direct" and .ok and .how == "plain") | .ttd_ms] as $plain
		| [$pairs[] | select(.path == "direct" and .ok and .how == "search") | .ttd_ms] as $search
		| {name: $name, kinds: $kinds, order: $order, alloc: $alloc,
		   loss_pct: (if $loss == "" then 0 else ($loss | tonumber) end),
		   delay_ms: (if $delay == "" then 0 else ($delay | tonumber) end),
		   expect_mode: $expect_mode, nat_class_declared: ($declared == 1), wait_s: $wait, settle_s: $settle,
		   date: $date, commit: $commit, cores: $cores, jobs: $jobs, seconds: $seconds,
		   totals: {cells: ($cells | length), passed: ([$cells[] | select(.ok)] | length),
		     failed: ([$cells[] | select(.ok | not)] | length),
		     pairs: ($pairs | length),
		     pairs_direct: ([$pairs[] | select(.path == "direct")] | length),
		     pairs_relay: ([$pairs[] | select(.path == "relay")] | length),
		     pairs_connected: ([$pairs[] | select(.connected)] | length),
		     pairs_expected_direct: ([$pairs[] | select(.expect == "direct")] | length)},
		   ttd: {plain_cells: ($plain | length), plain_median_ms: ($plain | median),
		     plain_worst_ms: ($plain | max), search_cells: ($search | length),
		     search_median_ms: ($search | median), search_worst_ms: ($search | max)},
		   cells: $cells}' "$MX_DIR"/cells/*.json
}

# mx_merge FILE NAME RUN_JSON: the run into FILE, a matrix file (format
# "knit-lab matrix") holding runs by name; any other file is left alone.
mx_merge() {
	local f=$1 tmp
	if [[ -s $f ]] && ! jq -e '.format == "knit-lab matrix"' "$f" >/dev/null 2>&1; then
		say "matrix: $f is not a knit-lab matrix file: left alone (results in $3)"
		cp "$3" "${TMPDIR:-/tmp}/knit-matrix-$2.json"
		return 1
	fi
	tmp=$(mktemp)
	if [[ -s $f ]]; then
		jq --arg n "$2" --slurpfile r "$3" '.runs[$n] = $r[0] | .generated = $r[0].date' "$f" >"$tmp"
	else
		jq --arg n "$2" '{format: "knit-lab matrix", generated: .date, runs: {($n): .}}' "$3" >"$tmp"
	fi
	mkdir -p "$(dirname "$f")"
	mv "$tmp" "$f"
	chmod 644 "$f"
}

mx_summary() {
	jq -r '"matrix \(.name): \(.totals.cells) cells in \(.seconds) s (\(.jobs) jobs): " +
		"pairs direct \(.totals.pairs_direct)/\(.totals.pairs) (expected \(.totals.pairs_expected_direct)), " +
		"relay \(.totals.pairs_relay), connected \(.totals.pairs_connected)/\(.totals.pairs); " +
		"time to direct: plain median \(.ttd.plain_median_ms // "-") ms, worst \(.ttd.plain_worst_ms // "-") ms; " +
		"search worst \(.ttd.search_worst_ms // "-") ms"' "$1" >&2
	jq -r '"matrix: \(.totals.passed) passed, \(.totals.failed) failed"' "$1"
	jq -e '.totals.failed == 0' "$1" >/dev/null
}

# mx_markdown: every run of the JSON on stdin as Markdown tables.
mx_markdown() {
	jq -r '
	def cell: (if .path == "direct" then "direct" + (if .ttd_ms != null then " \(.ttd_ms) ms" else "" end)
		   else .path end) as $p
		| if .ok then $p
		  elif .note != "" then "**FAIL** (\(.note | .[0:60]))"
		  elif (.connected | not) then "**FAIL** (no connection)"
		  else "**FAIL** \($p) (want \(.expect))" end;
	def title: if .kinds == "rfc4787" then "RFC 4787, 9×9"
		elif .kinds == "rfc3489" then "RFC 3489, 4×4" else "kinds \(.kinds)" end
		+ (if .alloc == "seed-adm" then ", the seed'"'"'s ADM (100 ports per destination)"
		   else ", non-EIM ports at random over the full range" end)
		+ (if .loss_pct > 0 or .delay_ms > 0 then ", \(.loss_pct) % loss and \(.delay_ms) ms delay on the public links" else "" end);
	def order: ["rfc4787-random", "rfc4787-random-declared", "rfc4787-seed-adm", "rfc4787-seed-adm-declared",
		"rfc3489", "rfc3489-declared", "rfc4787-random-loss2.5-delay20ms", "rfc4787-random-loss2.5-delay20ms-declared"];
	"# NAT traversal matrix",
	"",
	"Generated by `lab/knit-lab matrix` (`make matrix-full` writes this file; `make check` runs the",
	"9×9 table and the special cases into `build/results/`). Each cell is a lab: control and a relay",
	"on the public side, peer A behind a NAT of the row'"'"'s kind, peer B behind one of the column'"'"'s,",
	"each running knitd; A pings B every 50 ms. A cell reads *direct N ms* (N: time to direct, from",
	"the first ping entering A'"'"'s TUN to the first WireGuard data packet on a direct UDP path, from a",
	"packet capture on A), *relay*, or **FAIL** with what went wrong. Each cell asserts the outcome",
	"the feasibility analysis expects (direct unless both sides are non-EIM with unpredictable",
	"ports and both filter ADPF; `matrix_expect` in `lab/lib/matrix.sh`). In *relay-only* mode (NAT",
	"traversal not built yet) a cell asserts only that A reached B.",
	"",
	(.runs | to_entries | map(select(.value.cells | type == "array")) | sort_by((.key as $k | order | index($k)) // 99, .key)[] | .value |
	 (.order | length) as $n |
	 . as $r |
	 "## \(title)",
	 "",
	 "Run `\(.name)`: \(.date), commit \(.commit), \(.cores) cores, \(.jobs) jobs, \(.seconds) s; NAT classes " +
	   (if .nat_class_declared then "declared to knitd (`--nat-class`)" else "measured by knitd" end) +
	   "; expectations: **\(.expect_mode)**" +
	   (if .expect_mode == "relay-only" then " (cells wait \(.settle_s) s for a direct path)" else "" end) + ".",
	 "",
	 (if .totals.pairs > 0 then
	   "| A \\ B | " + (.order | join(" | ")) + " |",
	   "|---|" + ([range($n)] | map("---") | join("|")) + "|",
	   (.order[] as $a | "| **\($a)** | " +
	     ([$r.order[] as $b | ([$r.cells[] | select(.case == "pair" and .a == $a and .b == $b)] | first // null)
	       | if . == null then "" else cell end] | join(" | ")) + " |"),
	   "",
	   "Direct in **\(.totals.pairs_direct) of \(.totals.pairs)** (expected \(.totals.pairs_expected_direct)), relay in \(.totals.pairs_relay), connected in \(.totals.pairs_connected) of \(.totals.pairs).",
	   "Time to direct: cells that need no search \(.ttd.plain_cells) direct, median \(.ttd.plain_median_ms // "–") ms, worst \(.ttd.plain_worst_ms // "–") ms; search cells \(.ttd.search_cells) direct, worst \(.ttd.search_worst_ms // "–") ms.",
	   ""
	  else empty end),
	 (if ([.cells[] | select(.case != "pair")] | length) > 0 then
	   "| case | A | B | expected | result | endpoint |",
	   "|---|---|---|---|---|---|",
	   (.cells[] | select(.case != "pair") |
	     "| \(.case) | \(.a) | \(.b) | \(.expect) | \(cell) | \(if .endpoint != "" then "`\(.endpoint)`" else "" end) |"),
	   ""
	  else empty end),
	 "Checks: \(.totals.passed) passed, \(.totals.failed) failed.",
	 "")'
}
