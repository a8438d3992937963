#!/usr/bin/env bash
# Shared helpers for the namespace tests, in the spirit of WireGuard's
# netns.sh.  Every namespace, process and file a test makes is registered
# here and removed on exit, whatever the exit path.  Names carry a per-run
# prefix, so two runs never collide.
#
# shellcheck disable=SC2034  # variables are used by the sourcing scripts

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KNITD=${KNITD:-$ROOT/build/knitd}
KNIT=${KNIT:-$ROOT/build/knit}
RUN=${RUN:-kt$$}          # per-run prefix (keep it short: interface names)
TMP=$(mktemp -d "/tmp/$RUN.XXXX")
NAMESPACES=()
PIDS=()
PASSED=0
FAILED=0

cleanup() {
	local pid ns
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [[ -n ${KEEP_TMP:-} ]]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# n NS CMD...: run CMD inside namespace NS (short name, without the prefix).
n() { local ns=$1; shift; ip netns exec "$RUN-$ns" "$@"; }

netns_add() {
	ip netns add "$RUN-$1"
	NAMESPACES+=("$RUN-$1")
	n "$1" ip link set lo up
}

netns_del() {
	local ns=$RUN-$1 i
	ip netns del "$ns"
	for i in "${!NAMESPACES[@]}"; do
		if [[ ${NAMESPACES[$i]} == "$ns" ]]; then unset 'NAMESPACES[i]'; fi
	done
}

# veth NS1 NS2: an eth0 in each, joined.
veth() {
	ip -n "$RUN-$1" link add eth0 type veth peer name eth0 netns "$RUN-$2"
	n "$1" ip link set eth0 up
	n "$2" ip link set eth0 up
}

# two_hosts: namespaces a and b joined by a veth, 192.168.241.1 and .2 (the
# underlay of the WireGuard tests and the benchmarks).
two_hosts() {
	netns_add a
	netns_add b
	veth a b
	n a ip addr add 192.168.241.1/24 dev eth0
	n b ip addr add 192.168.241.2/24 dev eth0
}

# bg NS CMD...: start CMD in NS in the background; its PID is in $LAST_PID.
bg() {
	local ns=$1; shift
	ip netns exec "$RUN-$ns" "$@" &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# stop_pid PID: SIGTERM, wait; its exit status is left in $STOP_STATUS.
stop_pid() {
	local pid=$1 i
	kill "$pid" 2>/dev/null || true
	STOP_STATUS=0
	wait "$pid" 2>/dev/null || STOP_STATUS=$?
	for i in "${!PIDS[@]}"; do
		if [[ ${PIDS[$i]} == "$pid" ]]; then unset 'PIDS[i]'; fi
	done
}

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
# check DESCRIPTION CMD...: one named assertion.
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

# No daemon may have crashed or tripped a sanitizer, in any test.
daemon_logs_clean() {
	local bad
	bad=$(grep -h -E 'AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault|panic' \
		"$TMP"/*.log 2>/dev/null | head -n 5)
	[[ -z $bad ]] || { echo "$bad"; return 1; }
}

summary() {
	check "no crash or sanitizer report in any daemon's log" daemon_logs_clean
	echo "$1: $PASSED passed, $FAILED failed"
	[[ $FAILED -eq 0 ]]
}

genkey() { "$KNIT" genkey; }
pubkey() { echo "$1" | "$KNIT" pubkey; }

# start_knitd NS IFNAME CONF [ARGS...]: knitd in the foreground of a
# background job; returns once its userspace API answers.
start_knitd() {
	local ns=$1 ifname=$2 conf=$3; shift 3
	bg "$ns" "$KNITD" --interface "$ifname" --wg-config "$conf" "$@" 2>>"$TMP/$ifname.log"
	wait_until 5 n "$ns" wg show "$ifname" >/dev/null
}

# start_wggo NS IFNAME CONF ADDRESS...: Debian's wireguard-go, configured
# with wg setconf and ip, as wg-quick would.
start_wggo() {
	local ns=$1 ifname=$2 conf=$3 addr; shift 3
	bg "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go "$ifname" 2>>"$TMP/$ifname.log" >&2
	wait_until 5 n "$ns" wg show "$ifname" >/dev/null
	n "$ns" wg setconf "$ifname" "$conf"
	for addr in "$@"; do n "$ns" ip addr add "$addr" dev "$ifname"; done
	n "$ns" ip link set "$ifname" mtu 1420 up
}

# --- tests on a lab of lab/knit-lab: P is the lab's prefix --------------------
# lx HOST CMD...: CMD in the lab's HOST.
lx() { local h=$1; shift; ip netns exec "$P-$h" "$@"; }
# lbg HOST LOG CMD...: a daemon in HOST, its output in $TMP/LOG.log, stopped by cleanup.
lbg() {
	local h=$1 log=$2; shift 2
	ip netns exec "$P-$h" "$@" </dev/null >>"$TMP/$log.log" 2>&1 &
	PIDS+=("$!")
}
# k HOST ARGS...: the knit CLI against HOST's knitd (socket $TMP/HOST.sock).
k() { local h=$1; shift; lx "$h" "$KNIT" --socket "$TMP/$h.sock" "$@"; }
jqe() { jq -e "$@" >/dev/null; }
# listening HOST t|u PORT: something listens on TCP or UDP PORT in HOST.
listening() { [[ -n $(lx "$1" ss -Hl"$2" "sport = :$3") ]]; }
