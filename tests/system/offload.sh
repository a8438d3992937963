#!/usr/bin/env bash
# The data plane's offloads keep every byte: TSO/USO super-packets split in
# userspace, TCP and UDP coalesced into one TUN write, UDP GSO sends and GRO
# receives.  A coalescing mistake would not be caught by TCP (a coalesced
# packet's checksum is only made partial, never verified), so files cross
# the tunnel and their hashes are compared, both ways, over IPv4 and IPv6,
# between:
#   knitd <-> knitd                        every offload on both sides
#   knitd <-> knitd (KNIT_NO_OFFLOAD=all)  one side on the fallbacks
#   knitd <-> wireguard-go                 a peer with no offloads at all
# and numbered UDP datagrams cross both ways, each checked byte for byte.
#
#   $RUN-a  ${RUN}a 10.9.0.1 fd09::1  <== UDP ==>  ${RUN}b 10.9.0.2 fd09::2  $RUN-b
#           eth0 192.168.241.1       ---- veth ----  eth0 192.168.241.2
set -eu
source "$(dirname "$0")/lib.sh"

SIZE_MB=${SIZE_MB:-48}
KEY_A=$(genkey); KEY_B=$(genkey)
PUB_A=$(pubkey "$KEY_A"); PUB_B=$(pubkey "$KEY_B")

conf() { # SIDE FORMAT
	local me=1 peer=2 key=$KEY_A pub=$PUB_B
	[[ $1 == b ]] && me=2 peer=1 key=$KEY_B pub=$PUB_A
	printf '[Interface]\nPrivateKey = %s\nListenPort = 5182%s\n' "$key" "$me"
	[[ $2 == quick ]] && printf 'Address = 10.9.0.%s/24, fd09::%s/64\n' "$me" "$me"
	printf '[Peer]\nPublicKey = %s\nAllowedIPs = 10.9.0.%s/32, fd09::%s/128\n' "$pub" "$peer" "$peer"
	printf 'Endpoint = 192.168.241.%s:5182%s\n' "$peer" "$peer"
}

declare -A SIDE_PID
up() { # SIDE IMPL(knitd|plain|wggo)
	local side=$1 me=1
	[[ $side == b ]] && me=2
	case $2 in
	knitd | plain)
		conf "$side" quick >"$TMP/$side.conf"
		chmod 600 "$TMP/$side.conf"
		if [[ $2 == plain ]]; then
			KNIT_NO_OFFLOAD=all start_knitd "$side" "$RUN$side" "$TMP/$side.conf"
		else
			start_knitd "$side" "$RUN$side" "$TMP/$side.conf"
		fi
		;;
	wggo)
		conf "$side" wg >"$TMP/$side.conf"
		chmod 600 "$TMP/$side.conf"
		start_wggo "$side" "$RUN$side" "$TMP/$side.conf" "10.9.0.$me/24" "fd09::$me/64"
		;;
	esac
	SIDE_PID[$side]=$LAST_PID
}

# send_file FROM TO_ADDR: SIZE_MB of random bytes over TCP; the hashes match.
send_file() {
	local from=$1 to=$2 server=b port=$((7000 + RANDOM % 1000)) want got
	[[ $from == b ]] && server=a
	rm -f "$TMP/received"
	bg "$server" socat -u "TCP6-LISTEN:$port,reuseaddr,ipv6only=0" "OPEN:$TMP/received,creat,trunc"
	local listener=$LAST_PID
	wait_until 3 n "$server" sh -c "ss -ltn | grep -q :$port"
	[[ $to == *:* ]] && to="[$to]"
	n "$from" socat -u "OPEN:$TMP/data" "TCP:$to:$port" || return 1
	wait "$listener" 2>/dev/null || true
	want=$(sha256sum <"$TMP/data") got=$(sha256sum <"$TMP/received")
	[[ $want == "$got" ]]
}

# The UDP receiver: counts intact and damaged numbered datagrams until 2 s
# of silence.
cat >"$TMP/udp_recv.py" <<'PY'
import hashlib, socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("::", port))
open(out + ".ready", "w").close()
s.settimeout(2.0)
good = bad = 0
try:
    while True:
        d = s.recv(2048)
        n = int.from_bytes(d[:4], "big")
        body = hashlib.sha256(n.to_bytes(4, "big")).digest() * 38
        if len(d) == 1200 and d[4:] == body[:1196]:
            good += 1
        else:
            bad += 1
except socket.timeout:
    pass
open(out, "w").write(f"{good} {bad}\n")
PY
# The sender: 3,000 of them in bursts of 50 (coalescible, not a flood).
cat >"$TMP/udp_send.py" <<'PY'
import hashlib, socket, sys, time
to, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in to else socket.AF_INET, socket.SOCK_DGRAM)
for n in range(3000):
    body = hashlib.sha256(n.to_bytes(4, "big")).digest() * 38
    s.sendto(n.to_bytes(4, "big") + body[:1196], (to, port))
    if n % 50 == 49:
        time.sleep(0.002)
PY

# udp_datagrams FROM TO_ADDR: every datagram that arrives is intact, and at
# least 90 % arrive.
udp_datagrams() {
	local from=$1 to=$2 server=b port=$((8000 + RANDOM % 1000)) good bad
	[[ $from == b ]] && server=a
	rm -f "$TMP/udp-result" "$TMP/udp-result.ready"
	bg "$server" python3 "$TMP/udp_recv.py" "$port" "$TMP/udp-result"
	local receiver=$LAST_PID
	wait_until 3 test -e "$TMP/udp-result.ready" || return 1
	n "$from" python3 "$TMP/udp_send.py" "$to" "$port" || return 1
	wait "$receiver" 2>/dev/null || true
	read -r good bad <"$TMP/udp-result" || return 1
	echo "    UDP $from -> $to: $good intact, $bad damaged of 3000"
	((bad == 0 && good >= 2700))
}

tunnel_up() { wait_until 5 n a ping -c 1 -W 1 10.9.0.2 >/dev/null; }

head -c "$((SIZE_MB << 20))" /dev/urandom >"$TMP/data"
for pair in knitd:knitd knitd:plain knitd:wggo; do
	two_hosts
	up a "${pair%:*}"
	up b "${pair#*:}"
	check "$pair: tunnel up" tunnel_up
	wait_until 5 n a ping -6 -c 1 -W 1 fd09::2 >/dev/null || true
	if [[ $pair == knitd:knitd ]]; then
		check "$pair: TUN offloads on (TSO4/6)" \
			grep -q "TUN offloads interface=${RUN}a offloads=vnet_hdr,csum,tso4,tso6" "$TMP/${RUN}a.log"
	fi
	if [[ $pair == knitd:plain ]]; then
		check "$pair: KNIT_NO_OFFLOAD=all leaves the TUN plain" \
			grep -q "TUN offloads interface=${RUN}b offloads=none" "$TMP/${RUN}b.log"
	fi
	for dir in "a 10.9.0.2" "b 10.9.0.1" "a fd09::2" "b fd09::1"; do
		read -r from to <<<"$dir"
		check "$pair: $SIZE_MB MiB over TCP $from -> $to arrive intact" send_file "$from" "$to"
	done
	check "$pair: UDP a -> b datagrams intact" udp_datagrams a 10.9.0.2
	check "$pair: UDP b -> a datagrams intact (IPv6)" udp_datagrams b fd09::1
	stop_pid "${SIDE_PID[a]}"
	stop_pid "${SIDE_PID[b]}"
	netns_del a
	netns_del b
done
summary offload
