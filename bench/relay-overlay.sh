#!/usr/bin/env bash
# Sourced by bench/throughput.sh and bench/profile.sh after
# tests/system/lib.sh: an overlay whose two nodes reach each other only
# through a knit-relay.  On its own switch ${RUN}-rsw: knit-control and
# knit-relay in ${RUN}-rs (10.78.0.2), knitds in ${RUN}-ra and ${RUN}-rb
# (10.78.0.11, .12) whose firewalls drop UDP to the knitd port, so every
# packet between them crosses the relay as TCP frames.
#
# relay_overlay_up sets RELAY_ADDR (rb's overlay IPv4), RELAY_PID (the
# relay) and RELAY_KNITD_PIDS (ra's and rb's knitd).
# shellcheck disable=SC2034  # the variables are for the sourcing script

# rk NODE ARGS...: knit on a relay-overlay node.
rk() { local node=$1; shift; n "$node" "$KNIT" --socket "$TMP/$node.sock" "$@"; }
# rpath: the paths ra's status shows to its peers ("relay" is what we want).
rpath() { rk ra status --json | jq -r '[.peers[] | .path] | join(",")'; }

relay_overlay_up() {
	local CONTROL=${CONTROL:-$ROOT/build/knit-control} RELAY=${RELAY:-$ROOT/build/knit-relay} h CK RK AUTH
	RELAY_KNITD_PIDS=""
	netns_add rsw
	n rsw ip link add br0 type bridge
	n rsw ip link set br0 up
	for h in rs:10.78.0.2 ra:10.78.0.11 rb:10.78.0.12; do
		netns_add "${h%%:*}"
		ip -n "$RUN-${h%%:*}" link add eth0 type veth peer name "e${h%%:*}" netns "$RUN-rsw"
		n rsw ip link set "e${h%%:*}" master br0 up
		n "${h%%:*}" ip link set eth0 up
		n "${h%%:*}" ip addr add "${h#*:}/24" dev eth0
	done
	for h in ra rb; do # no UDP between the knitds: the relay carries it all
		n "$h" nft -f - <<-EOF
			table inet knitfw {
				chain out {
					type filter hook output priority 0;
					udp dport 41641 drop
				}
			}
		EOF
	done
	CK=$("$CONTROL" key --state-dir "$TMP/ctl")
	RK=$("$RELAY" key --state-dir "$TMP/rly")
	"$CONTROL" relay add --id 1 --region lab --host 10.78.0.2 --port 8443 --stun-port 3478 \
		--key "$RK" --state-dir "$TMP/ctl" >/dev/null
	AUTH=$("$CONTROL" authkey create --reusable --state-dir "$TMP/ctl")
	bg rs "$CONTROL" serve --listen 10.78.0.2:8080 --state-dir "$TMP/ctl" 2>>"$TMP/ctl.log"
	wait_until 5 n rs bash -c 'exec 3<>/dev/tcp/10.78.0.2/8080'
	bg rs "$RELAY" serve --listen 10.78.0.2:8443 --stun 10.78.0.2:3478 \
		--control http://10.78.0.2:8080 --control-key "$CK" --state-dir "$TMP/rly" \
		2>>"$TMP/rly.log"
	RELAY_PID=$LAST_PID
	for h in ra rb; do
		bg "$h" "$KNITD" --state-dir "$TMP/$h" --socket "$TMP/$h.sock" 2>>"$TMP/$h.log"
		RELAY_KNITD_PIDS+=" $LAST_PID"
		wait_until 5 test -S "$TMP/$h.sock"
		rk "$h" up --control http://10.78.0.2:8080 --control-key "$CK" --auth-key "$AUTH" \
			--hostname "$h" --timeout 10 >/dev/null
	done
	RELAY_ADDR=$(rk rb ip -4)
	if ! wait_until 10 n ra ping -c 1 -W 1 "$RELAY_ADDR" >/dev/null; then
		echo "knit-relay: ra cannot reach rb ($RELAY_ADDR) through the relay in 10 s" >&2
		tail -n 5 "$TMP/ra.log" "$TMP/rb.log" "$TMP/rly.log" >&2
		return 1
	fi
	echo "knit-relay: ra -> rb $RELAY_ADDR, path $(rpath)"
}
