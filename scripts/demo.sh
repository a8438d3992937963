#!/usr/bin/env bash
# make demo: two knitd nodes in network namespaces, configured from
# wg-quick files, then a handshake, pings over IPv4 and IPv6, wg(8)'s view
# and three seconds of TCP through the tunnel.  Everything is removed at the
# end.  (The coordination and NAT traversal work grows this demo.)
#
#   demo-alice                                   demo-bob
#   knitd ${RUN}a 10.9.0.1 fd09::1   <== UDP ==>   knitd ${RUN}b 10.9.0.2 fd09::2
#   eth0 192.168.241.1  ---------- veth ----------  eth0 192.168.241.2
set -eu
source "$(dirname "$0")/../tests/system/lib.sh"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Two namespaces joined by a veth pair (the underlay)"
netns_add alice
netns_add bob
veth alice bob
n alice ip addr add 192.168.241.1/24 dev eth0
n bob ip addr add 192.168.241.2/24 dev eth0
echo "alice 192.168.241.1  <->  bob 192.168.241.2"

say "Keys, as wg(8) would make them: knit genkey | knit pubkey"
KA=$(genkey); KB=$(genkey); PA=$(pubkey "$KA"); PB=$(pubkey "$KB")
echo "alice's public key: $PA"
echo "bob's public key:   $PB"
cat >"$TMP/alice.conf" <<CONF
[Interface]
PrivateKey = $KA
ListenPort = 51820
Address = 10.9.0.1/24, fd09::1/64

[Peer]
PublicKey = $PB
AllowedIPs = 10.9.0.2/32, fd09::2/128
Endpoint = 192.168.241.2:51820
CONF
cat >"$TMP/bob.conf" <<CONF
[Interface]
PrivateKey = $KB
ListenPort = 51820
Address = 10.9.0.2/24, fd09::2/64

[Peer]
PublicKey = $PA
AllowedIPs = 10.9.0.1/32, fd09::1/128
CONF
chmod 600 "$TMP"/*.conf
sed "s/PrivateKey = .*/PrivateKey = (hidden)/" "$TMP/alice.conf"

say "knitd on each side (static mode: knitd --interface NAME --wg-config FILE)"
start_knitd alice "${RUN}a" "$TMP/alice.conf"
start_knitd bob "${RUN}b" "$TMP/bob.conf"
echo "both up; logs in $TMP/*.log"

say "alice pings bob through the tunnel: the first packet starts the handshake"
n alice ping -c 3 -i 0.3 10.9.0.2
n alice ping -c 2 -i 0.3 fd09::2
say "bob learned alice's endpoint from her handshake and can reach her too"
n bob ping -c 2 -i 0.3 10.9.0.1

say "wg show, run against knitd"
n alice wg show "${RUN}a"
echo
n bob wg show "${RUN}b"

say "3 seconds of TCP from alice to bob (iperf3)"
n bob iperf3 -s -1 -D --logfile "$TMP/iperf.log"
sleep 0.3
n alice iperf3 -c 10.9.0.2 -t 3 -f m | grep -E 'sender|receiver'

say "Done: everything is removed on exit"
