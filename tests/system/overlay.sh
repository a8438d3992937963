#!/usr/bin/env bash
# An overlay on one flat network: knit-control, one knit-relay and nodes
# that join with auth keys.  A firewall on each node drops UDP between
# nodes, so every packet between them goes through the relay; at the end two
# nodes lose their firewall and find the direct path.  It proves joining, reaching
# every peer over IPv4 and IPv6, removal and quarantine taking effect within
# 2 s, refused auth keys, a relay refusing keys control does not know,
# control's death and restart costing at most one ping, and a control
# channel with no JSON in clear.
#
#                        $RUN-sw: bridge br0 (10.77.0.0/24)
#        +-----------+-----------+-----+-----+-----------+-----------+
#        |           |           |           |           |           |
#   $RUN-ctl    $RUN-rly     $RUN-n1     $RUN-n2     $RUN-n3     $RUN-n4 ...
#   10.77.0.2   10.77.0.3    .11         .12         .13         .14
#   control     relay :8443  knitd       knitd       knitd       knitd
#   :8080       STUN :3478   knit0: 100.64.0.0/10 + ULA /48 from control
set -eu
source "$(dirname "$0")/lib.sh"

CONTROL=${CONTROL:-$ROOT/build/knit-control}
RELAY=${RELAY:-$ROOT/build/knit-relay}
URL=http://10.77.0.2:8080

host() { # host NAME ADDRESS: a namespace on the switch
	netns_add "$1"
	ip -n "$RUN-$1" link add eth0 type veth peer name "e$1" netns "$RUN-sw"
	n sw ip link set "e$1" master br0 up
	n "$1" ip link set eth0 up
	n "$1" ip addr add "$2/24" dev eth0
}

firewall() { # firewall NODE on|off: no UDP to other nodes' knitd
	if [[ $2 == on ]]; then
		n "$1" nft -f - <<-EOF
			table inet knitfw {
				chain out {
					type filter hook output priority 0;
					udp dport 41641 drop
				}
			}
		EOF
	else
		n "$1" nft delete table inet knitfw
	fi
}

ctl() { "$CONTROL" "$@" --state-dir "$TMP/ctl"; }
k() { local node=$1; shift; n "$node" "$KNIT" --socket "$TMP/$node.sock" "$@"; }

start_control() {
	bg ctl "$CONTROL" serve --listen 10.77.0.2:8080 --state-dir "$TMP/ctl" 2>>"$TMP/ctl.log"
	CTL_PID=$LAST_PID
	wait_until 5 n ctl bash -c 'exec 3<>/dev/tcp/10.77.0.2/8080'
}

start_node() { # start_node NAME: knitd with its own state dir and socket
	bg "$1" "$KNITD" --state-dir "$TMP/$1" --socket "$TMP/$1.sock" ${KNITD_DEBUG:+--log-level debug} 2>>"$TMP/$1.log"
	NODE_PID[$1]=$LAST_PID
	wait_until 5 test -S "$TMP/$1.sock"
}

up() { # up NAME [AUTHKEY]: knit up, as a user types it
	k "$1" up --control "$URL" --control-key "$CK" ${2:+--auth-key "$2"} --hostname "$1" \
		--timeout 10
}

ip4() { k "$1" ip -4; }
ip6() { k "$1" ip -6; }
reaches() { n "$1" ping -c 1 -W 1 "$2" >/dev/null; }
reaches6() { n "$1" ping -6 -c 1 -W 1 "$2" >/dev/null; }
unreachable() { ! n "$1" ping -c 1 -W 1 "$2" >/dev/null; }
state_is() { k "$1" status --json | jq -e --arg s "$2" '.backend_state == $s' >/dev/null; }

declare -A NODE_PID
netns_add sw
n sw ip link add br0 type bridge
n sw ip link set br0 up
host ctl 10.77.0.2
host rly 10.77.0.3
for i in 1 2 3 4 5; do host "n$i" "10.77.0.1$i"; firewall "n$i" on; done

CK=$(ctl key)
RK=$("$RELAY" key --state-dir "$TMP/rly")
ctl relay add --id 1 --region lab --host 10.77.0.3 --port 8443 --stun-port 3478 --key "$RK" \
	>/dev/null
AUTH=$(ctl authkey create --reusable)
start_control
bg rly "$RELAY" serve --listen 10.77.0.3:8443 --stun 10.77.0.3:3478 --control "$URL" \
	--control-key "$CK" --state-dir "$TMP/rly" 2>>"$TMP/rly.log"
RELAY_PID=$LAST_PID

# --- three nodes join and reach each other ---------------------------------
# The capture starts before anyone logs in: after the HTTP Upgrade, nothing
# on the control port may be readable JSON.
bg ctl tcpdump -Z root --immediate-mode -i eth0 -U -s 0 -w "$TMP/control.pcap" tcp port 8080 2>"$TMP/tcpdump.log"
DUMP_PID=$LAST_PID
wait_until 5 test -s "$TMP/control.pcap" # the file header: tcpdump listens
sleep 0.2
for node in n1 n2 n3; do start_node "$node"; done
for node in n1 n2 n3; do check "$node joins with a reusable auth key" up "$node" "$AUTH"; done

for a in n1 n2 n3; do
	for b in n1 n2 n3; do
		[[ $a == "$b" ]] && continue
		check "$a reaches $b over IPv4" wait_until 5 reaches "$a" "$(ip4 "$b")"
		check "$a reaches $b over IPv6" wait_until 5 reaches6 "$a" "$(ip6 "$b")"
	done
done
check "status shows the path as relay 1" \
	bash -c "$(declare -f k n); RUN=$RUN TMP=$TMP KNIT=$KNIT; k n1 status --json |
	jq -e '[.peers[] | select(.path == \"relay\" and .relay == 1)] | length == 2' >/dev/null"
check "status names self, addresses and home relay" \
	bash -c "$(declare -f k n); RUN=$RUN TMP=$TMP KNIT=$KNIT; k n1 status --json |
	jq -e '.self.name == \"n1\" and (.self.ipv4 | startswith(\"100.\")) and .self.home_relay == 1' >/dev/null"

stop_pid "$DUMP_PID"
check "no JSON in clear on the control port after the upgrade" \
	bash -c "! tcpdump -r '$TMP/control.pcap' -A 2>/dev/null | grep -q -e '\"type\"' -e 'node_key'"
check "but the capture did see the sessions' bytes" \
	bash -c "tcpdump -r '$TMP/control.pcap' 2>/dev/null | grep -q 'length [1-9]'"

# --- a fourth node joins, then is removed ----------------------------------
start_node n4
check "n4 joins" up n4 "$AUTH"
N4=$(ip4 n4)
for node in n1 n2 n3; do
	check "$node reaches the new node within 2 s" wait_until 2 reaches "$node" "$N4"
done
ctl node remove n4 >/dev/null
T0=$SECONDS
check "n1 cannot reach a removed node within 2 s" wait_until 2 unreachable n1 "$N4"
check "control told the removed node (NeedsLogin) within 2 s" wait_until 2 state_is n4 NeedsLogin
relay_dropped_one() { kill -USR1 "$RELAY_PID"; sleep 0.1; grep -q 'removed_by_control=1' "$TMP/rly.log"; }
check "the relay dropped the removed node's connection" wait_until 2 relay_dropped_one
echo "removal took at most $((SECONDS - T0)) s"

# --- refused auth keys -------------------------------------------------------
start_node n5
refused() { # refused KEY MESSAGE: knit up fails, non-zero, saying why
	local out rc=0
	out=$(up n5 "$1" 2>&1) || rc=$?
	[[ $rc -ne 0 ]] && grep -q -- "$2" <<<"$out"
}
check "a wrong auth key is refused with a clear message" \
	refused "knit-auth-999-$(printf '%048d' 0)" "auth key is unknown"
check "a malformed auth key is refused with a clear message" refused "hello" "auth key is malformed"
REVOKED=$(ctl authkey create)
ctl authkey revoke "$REVOKED" >/dev/null
check "a revoked auth key is refused" refused "$REVOKED" "auth key is revoked"
EXPIRED=$(ctl authkey create --expiry 1s)
sleep 2
check "an expired auth key is refused" refused "$EXPIRED" "auth key is expired"
ONCE=$(ctl authkey create)
check "a good single-use key works after refusals" up n5 "$ONCE"
cp "$TMP/n5/node.key" "$TMP/n5-old.key"
k n5 logout >/dev/null
check "a single-use key cannot be used twice" refused "$ONCE" "auth key was already used"
relay_refuses_stranger() {
	local out
	! out=$(n n5 "$RELAY" check --server 10.77.0.3:8443 --relay-key "$RK") &&
		grep -q 'refused .*node key not known to control' <<<"$out"
}
check "a key control does not know is refused by the relay" relay_refuses_stranger
check "a key control knows is admitted by the relay (the check can pass)" \
	wait_until 3 n n5 "$RELAY" check --server 10.77.0.3:8443 --relay-key "$RK" --node-key-file "$TMP/n5-old.key"

# --- interactive approval, expiry, a node's restart ---------------------------
# n5 has a fresh key since its logout: without an auth key it must wait.
up n5 >"$TMP/approve.out" 2>&1 &
UP5=$!
check "knit up without an auth key says what the admin must run" \
	wait_until 5 grep -q 'knit-control node approve' "$TMP/approve.out"
check "and the node waits (NeedsApproval)" state_is n5 NeedsApproval
ID5=$(grep -o 'node approve [0-9]*' "$TMP/approve.out" | awk '{print $3}')
ctl node approve "$ID5" >/dev/null
check "after node approve, the waiting knit up succeeds" wait "$UP5"
check "and the approved node reaches n1" wait_until 5 reaches n5 "$(ip4 n1)"
ctl node expire "$ID5" >/dev/null
check "an expired node is told so (NeedsLogin) within 2 s" wait_until 2 state_is n5 NeedsLogin
check "and is cut off" wait_until 2 unreachable n1 "$(ip6 n5)"
check "knit up without a key after expiry fails, saying so" \
	bash -c "! $(declare -f up k n); RUN=$RUN TMP=$TMP KNIT=$KNIT URL=$URL CK=$CK; up n5 2>&1 | grep -q expired"
check "knit up with a good auth key after expiry works" up n5 "$AUTH"
OLD1=$(ip4 n1)/$(ip6 n1)
stop_pid "${NODE_PID[n1]}"
start_node n1
check "a restarted knitd logs in by itself with the same addresses" \
	wait_until 5 bash -c "$(declare -f k n ip4 ip6); RUN=$RUN TMP=$TMP KNIT=$KNIT;
		test \"\$(ip4 n1)/\$(ip6 n1)\" = '$OLD1'"
check "and is reachable again" wait_until 5 reaches n2 "$(ip4 n1)"

# --- control dies and comes back -------------------------------------------
BEFORE=$(ip4 n1)/$(ip6 n1)/$(ip4 n2)
n n1 ping -i 0.1 -c 60 "$(ip4 n2)" >"$TMP/ping.log" 2>&1 &
PING=$!
sleep 1
kill -KILL "$CTL_PID"
wait "$CTL_PID" 2>/dev/null || true
sleep 1.5
start_control
wait "$PING" || true
LOST=$(awk '/packets transmitted/ { print $1 - $4 }' "$TMP/ping.log")
check "a ping across control's SIGKILL and restart lost at most 1 packet (lost $LOST)" \
	test "${LOST:-99}" -le 1
logins() { test "$(grep -c "node logged in node=$1 " "$TMP/ctl.log")" -ge "$2"; }
check "the nodes logged in again" wait_until 15 logins n2 2
check "addresses are unchanged after the restart" \
	test "$(ip4 n1)/$(ip6 n1)/$(ip4 n2)" = "$BEFORE"
check "and the overlay works after it" wait_until 5 reaches n3 "$(ip4 n1)"

# --- garbage on every port ----------------------------------------------------
# Each gets a logged error and a closed connection; everyone else is served.
garbage_tcp() { # garbage_tcp NS HOST PORT PREFIX: PREFIX then random bytes
	n "$1" bash -c "exec 3<>/dev/tcp/$2/$3; printf '$4' >&3; head -c 3000 /dev/urandom >&3;
		timeout 2 cat <&3 >/dev/null; true" 2>/dev/null || true
}
UPGRADE='GET /knit/%s HTTP/1.1\r\nHost: x\r\nUpgrade: knit-%s\r\nConnection: Upgrade\r\n\r\n'
# shellcheck disable=SC2059  # the format is the point
garbage_tcp n5 10.77.0.2 8080 "$(printf "$UPGRADE" control control)"
garbage_tcp n5 10.77.0.2 8080 ''
# shellcheck disable=SC2059
garbage_tcp n5 10.77.0.3 8443 "$(printf "$UPGRADE" relay relay)"
garbage_tcp n5 10.77.0.3 8443 ''
n n5 bash -c 'head -c 500 /dev/urandom >/dev/udp/10.77.0.3/3478; printf "\x00\x01\x00\x00\x21\x12\xa4\x42" >/dev/udp/10.77.0.3/3478'
n rly bash -c "head -c 1000 /dev/urandom >/dev/udp/10.77.0.12/41641" || true
api_garbage() { printf 'not json\n' | n n2 socat - "UNIX-CONNECT:$TMP/n2.sock" 2>/dev/null; }
check "knitd's API answers garbage with an error" bash -c "$(declare -f api_garbage n); RUN=$RUN TMP=$TMP; api_garbage | grep -q 'not a JSON object'"
check "control logged the bad handshakes" grep -q -e 'handshake failed' -e 'refused' "$TMP/ctl.log"
check "the relay logged the bad clients" grep -q -i -e 'malformed' -e 'handshake' -e 'refused' "$TMP/rly.log"
check "and everyone is still served" wait_until 5 reaches n1 "$(ip4 n2)"
check "including knitd's API" k n2 status

# --- quarantine --------------------------------------------------------------
ctl node quarantine n3 on >/dev/null
check "a quarantined node cannot reach anyone within 2 s" wait_until 2 unreachable n3 "$(ip4 n1)"
check "and no one reaches it" wait_until 2 unreachable n2 "$(ip4 n3)"
ctl node quarantine n3 off >/dev/null
check "after quarantine off it reaches n1 again" wait_until 3 reaches n3 "$(ip4 n1)"
check "and n2 reaches it again" wait_until 3 reaches n2 "$(ip4 n3)"

# --- without the firewall, the path goes direct --------------------------------
firewall n1 off
firewall n2 off
k n1 ping n2 --count 10 >"$TMP/kping.out" 2>&1 || true
check "knit ping finds the direct path and stops there" \
	bash -c "tail -n 1 '$TMP/kping.out' | grep -q 'pong from n2 via 10.77.0.12:41641'"
k n3 ping n1 --count 2 >"$TMP/kping3.out" 2>&1 || true
check "knit ping from a firewalled node shows pongs through the relay" \
	bash -c "test \$(grep -c 'pong from n1 via relay:1' '$TMP/kping3.out') -eq 2 &&
		grep -q 'no direct path yet' '$TMP/kping3.out'"
direct_to_n2() { k n1 status --json | jq -e '.peers[] | select(.name == "n2") | .path == "direct"' >/dev/null; }
check "n1's status shows n2 on the direct path" wait_until 5 direct_to_n2
check "and n1 still reaches n2" reaches n1 "$(ip4 n2)"
# The direct path dies (a firewall appears): back to the relay within 3 s
# (plus a poll), the ping going on; and direct again once it is lifted.
relay_to_n2() { k n1 status --json | jq -e '.peers[] | select(.name == "n2") | .path == "relay"' >/dev/null; }
n n1 ping -i 0.2 -c 40 "$(ip4 n2)" >"$TMP/fallback.log" 2>&1 &
PING=$!
sleep 1
firewall n1 on
T0=$(date +%s%N)
check "when the direct path dies, n1 is back on the relay within 4 s" wait_until 4 relay_to_n2
echo "fell back after $((($(date +%s%N) - T0) / 1000000)) ms"
sleep 2
firewall n1 off
check "and direct again once the path is back" wait_until 12 direct_to_n2
wait "$PING" || true
LOST=$(awk '/packets transmitted/ { print $1 - $4 }' "$TMP/fallback.log")
check "a ping across both switches lost at most 20 of 40 (lost $LOST)" test "${LOST:-99}" -le 20
check "n3 (firewalled) still goes through the relay" \
	bash -c "$(declare -f k n); RUN=$RUN TMP=$TMP KNIT=$KNIT; k n3 status --json |
	jq -e '.peers[] | select(.name == \"n1\") | .path == \"relay\" and (.path_reason | length > 0)' >/dev/null"

# Nodes that stay on the relay (n3 is firewalled) must leave it nearly
# quiet: a discovery round now and then, with backoff (a few call-me-maybe
# each), not a stream of them bounced between two nodes (the bug this
# guards against forwarded 534,137 packets in these 5 s).
forwarded() {
	kill -USR1 "$RELAY_PID"
	sleep 0.2
	grep -o 'packets_forwarded=[0-9]*' "$TMP/rly.log" | tail -n 1 | cut -d= -f2
}
sleep 10 # past n3's discovery rounds with everyone
F0=$(forwarded)
sleep 5
F1=$(forwarded)
check "an idle overlay with a relayed node: the relay forwards at most 200 packets in 5 s, not a storm ($((F1 - F0)))" \
	test "$((F1 - F0))" -le 200

for node in n1 n2 n3 n4 n5; do
	stop_pid "${NODE_PID[$node]}"
	check "knitd $node exits cleanly on SIGTERM" test "$STOP_STATUS" -eq 0
done
stop_pid "$RELAY_PID"
check "knit-relay exits cleanly" test "$STOP_STATUS" -eq 0
stop_pid "$CTL_PID"
check "knit-control exits cleanly" test "$STOP_STATUS" -eq 0
summary overlay
