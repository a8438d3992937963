#!/usr/bin/env bash
# make demo: a knit overlay across two different NATs, in the NAT lab.
# knit-control and a knit-relay on the public network; alice behind a
# restricted cone NAT, bob behind a NAT with a new port for every
# destination (but an open filter).  Both log in, alice pings bob: the first
# packets go through the relay, and the path changes to direct when NAT
# traversal finds one (printed as knit status reports it).  Then three
# seconds of TCP, and everything is removed on exit.
#
#                         switch 198.51.100.0/24
#      +-----------------+-----------------+------------------+
#   control            relay            router1             router2
#   .1:8080            .2:8443          .11                 .12
#   knit-control       knit-relay       eim-adf             adpm-eif
#                      STUN :3478       (restricted cone)   (symmetric mapping,
#                                          |                 open filter)
#                                       alice 10.0.1.1      bob 10.0.2.1
#                                       knitd               knitd
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/lab/knit-lab
KNITD=${KNITD:-$ROOT/build/knitd}
KNIT=${KNIT:-$ROOT/build/knit}
CONTROL=${CONTROL:-$ROOT/build/knit-control}
RELAY=${RELAY:-$ROOT/build/knit-relay}
NAT_ALICE=${DEMO_NAT_ALICE:-eim-adf}
NAT_BOB=${DEMO_NAT_BOB:-adpm-eif}
export KNIT_LAB_PREFIX=demo$$ LAB_QUIET=1
STATE=$(mktemp -d /tmp/knit-demo.XXXX)
URL=http://198.51.100.1:8080

cleanup() {
	set +e
	"$LAB" down >/dev/null 2>&1
	if [[ -n ${KEEP_TMP:-} ]]; then echo "logs kept in $STATE"; else rm -rf "$STATE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
x() { local h=$1; shift; "$LAB" exec "$h" "$@"; }
# k NAME ARGS...: knit against alice's or bob's knitd.
k() { local who=$1; shift; "$KNIT" --socket "$STATE/$who.sock" "$@"; }
# daemon HOST NAME CMD...: a daemon inside HOST's namespace (knit-lab down
# ends every process of the lab's namespaces).
daemon() { local h=$1 name=$2; shift 2; x "$h" setsid "$@" </dev/null >>"$STATE/$name.log" 2>&1 & }
wait_until() {
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || return 1
		sleep 0.05
	done
}

say "The NAT lab: alice behind $NAT_ALICE, bob behind $NAT_BOB"
"$LAB" up --nat1 "$NAT_ALICE" --nat2 "$NAT_BOB" --public-peers 0 >/dev/null
"$LAB" status | sed -n '/^HOST/,/^$/p' | grep -v -e '^lan' -e '^switch' -e '^stun' -e '^$'

say "knit-control and a knit-relay on the public side"
CK=$("$CONTROL" key --state-dir "$STATE/control" 2>/dev/null)
RK=$("$RELAY" key --state-dir "$STATE/relay" 2>/dev/null)
"$CONTROL" relay add --id 1 --region lab --host 198.51.100.2 --port 8443 --stun-port 3478 \
	--key "$RK" --state-dir "$STATE/control" >/dev/null
AUTH=$("$CONTROL" authkey create --reusable --state-dir "$STATE/control")
daemon control control "$CONTROL" serve --listen 198.51.100.1:8080 --state-dir "$STATE/control"
wait_until 5 x control bash -c 'exec 3<>/dev/tcp/198.51.100.1/8080'
daemon relay relay "$RELAY" serve --listen 198.51.100.2:8443 --stun 198.51.100.2:3478 \
	--control "$URL" --control-key "$CK" --state-dir "$STATE/relay"
wait_until 5 x relay bash -c 'exec 3<>/dev/tcp/198.51.100.2/8443'
echo "control key $CK; relay 1 at 198.51.100.2:8443"

# path_line: alice's path to bob ("relay (relay 1): why", "direct IP:PORT").
path_line() {
	k alice status --json 2>/dev/null | jq -r 'if (.peers | length) == 0 then "(bob not known yet)"
		else .peers[0] |
		if .path == "direct" then "direct \(.endpoint)"
		elif .path == "relay" then "relay (relay \(.relay))" +
			(if (.path_reason // "") != "" then ": \(.path_reason)" else "" end)
		else "\(.path)" + (if (.path_reason // "") != "" then ": \(.path_reason)" else "" end) end
		end' 2>/dev/null || echo "(knitd not logged in yet)"
}

# watch_path: prints alice's path to bob whenever it changes, from knit
# status every 50 ms, until it has been direct for 2 s after the first ping
# or 10 s have passed since it.
watch_path() {
	local t0 now el line last='' direct_since='' ping_at=''
	t0=${EPOCHREALTIME/[.,]/}
	while :; do
		line=$(path_line)
		now=${EPOCHREALTIME/[.,]/}
		el=$(((now - t0) / 1000))
		if [[ -z $ping_at && -f $STATE/ping.started ]]; then
			ping_at=$el
			printf '  +%d.%03d s  alice sends her first ping to bob\n' $((el / 1000)) $((el % 1000))
		fi
		if [[ $line != "$last" ]]; then
			printf '  +%d.%03d s  %s\n' $((el / 1000)) $((el % 1000)) "$line"
			[[ $line == direct* && $last != direct* ]] && direct_since=$el
			[[ $line != direct* ]] && direct_since=''
			last=$line
		fi
		if [[ -n $ping_at ]]; then
			[[ -n $direct_since ]] && ((el - direct_since >= 2000 && el - ping_at >= 2000)) && break
			((el - ping_at >= 10000)) && break
		fi
		sleep 0.05
	done
	if [[ $last == direct* ]]; then
		echo "  alice reaches bob directly, through both NATs"
	else
		echo "  no direct path 10 s after the first ping: the traffic stays on the relay"
	fi
}

say "knitd on alice and bob, each joins (knit up --control URL --control-key KEY --auth-key KEY), alice pings bob"
echo "alice's path to bob, from knit status every 50 ms:"
daemon peer1-1 alice "$KNITD" --state-dir "$STATE/alice" --socket "$STATE/alice.sock"
daemon peer2-1 bob "$KNITD" --state-dir "$STATE/bob" --socket "$STATE/bob.sock"
wait_until 5 test -S "$STATE/alice.sock"
wait_until 5 test -S "$STATE/bob.sock"
watch_path &
WATCH=$!
k alice up --control "$URL" --control-key "$CK" --auth-key "$AUTH" --hostname alice --timeout 10 | sed 's/^/  /'
k bob up --control "$URL" --control-key "$CK" --auth-key "$AUTH" --hostname bob --timeout 10 | sed 's/^/  /'
BOB=$(k bob ip -4)
peer_known() { k alice status --json | jq -e '.peers | length == 1' >/dev/null; }
wait_until 5 peer_known
x peer1-1 ping -n -i 0.2 -c 30 "$BOB" >"$STATE/ping.out" 2>&1 &
PING=$!
touch "$STATE/ping.started"
wait "$WATCH" || true
wait "$PING" || true
grep -E 'packets transmitted|rtt' "$STATE/ping.out" | sed 's/^/  ping: /'

if "$KNIT" help 2>&1 | grep -q '^  ping'; then
	say "knit ping bob: the path each pong took"
	timeout 10 "$KNIT" --socket "$STATE/alice.sock" ping bob --count 5 || true
fi

say "knit status on alice, then on bob"
k alice status
echo
k bob status

say "3 seconds of TCP from alice to bob over the overlay (iperf3)"
x peer2-1 iperf3 -s -1 -D --logfile "$STATE/iperf.log"
sleep 0.3
x peer1-1 iperf3 -c "$BOB" -t 3 -f m | grep -E 'sender|receiver'

say "Done: the lab, its namespaces and every daemon are removed on exit"
