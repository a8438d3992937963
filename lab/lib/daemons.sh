# shellcheck shell=bash
# The lab's helpers, each a process inside one of the run's namespaces:
# linkem (link conditions), ctfilter (filters opened from conntrack
# events), miniupnpd (NAT-PMP, PCP, UPnP-IGD).

# link_set HOST [--delay-ms D] [--jitter-ms J] [--loss PCT] [--off]: the
# conditions of the packets HOST sends on its link (eth0, or a router's
# wan), as netem would on that interface: every packet leaving it goes
# through NFQUEUE 0 of HOST's namespace to linkem (a ping's round trip
# grows by the delay once).  Settable at any time.
link_set() {
	local h=$1 dev opts=() off=0 ctl
	shift
	[[ -e /run/netns/$P-$h ]] || die "no host '$h' in lab $P"
	while [[ $# -gt 0 ]]; do
		case $1 in
		--delay-ms | --jitter-ms | --loss)
			[[ ${2:-} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 needs a number"
			opts+=("$1" "$2")
			shift 2
			;;
		--off) off=1; shift ;;
		*) die "link: unknown option '$1'" ;;
		esac
	done
	dev=eth0
	ip -n "$P-$h" link show wan >/dev/null 2>&1 && dev=wan
	ctl=$RUNDIR/link/$h.ctl
	if ((off)); then
		nsx "$h" iptables -t mangle -D POSTROUTING -o "$dev" -j NFQUEUE --queue-num 0 2>/dev/null || true
		stop_daemon "linkem-$h"
		rm -f "$ctl" "$RUNDIR/link/$h"
		return 0
	fi
	[[ -x $LINKEM ]] || die "no $LINKEM (make builds it)"
	if [[ -f $RUNDIR/pid/linkem-$h ]] && pid_ours "$(<"$RUNDIR/pid/linkem-$h")"; then
		"$LINKEM" set --control "$ctl" "${opts[@]}" || die "linkem set failed for $h"
	else
		spawn "$h" "linkem-$h" "$LINKEM" --queue 0 --control "$ctl" "${opts[@]}"
		wait_for 3 test -S "$ctl" || die "linkem did not start for $h (log: $RUNDIR/log/linkem-$h.log)"
		# Queue without bypass: if linkem dies the link is down, never
		# silently perfect.  The kernel here has xtables' NFQUEUE but not
		# nft's queue expression (CONFIG_NFT_QUEUE), so iptables-nft
		# writes the rule (table ip mangle of HOST's namespace).
		nsx "$h" iptables -t mangle -A POSTROUTING -o "$dev" -j NFQUEUE --queue-num 0
	fi
	echo "${opts[*]}" >"$RUNDIR/link/$h"
}

# ctfilter_start ROUTER LAN_NET: ctfilter fills the ADF set from conntrack
# events (after filter-delay-ms), in place of the packet-path rule: the
# seed's restricted cone NAT and its late rule.  An element is (remote
# address, external port); ctfilter deletes it when the flow is destroyed.
ctfilter_start() {
	local h=$1 lan=$2
	[[ -x $CTFILTER ]] || die "no $CTFILTER (make builds it): needed by $h's filter=ctfilter"
	[[ $NAT_FILT == adf ]] || die "filter=ctfilter is for ADF kinds (router $h is ${NAT_FILT^^})"
	spawn "$h" "ctfilter-$h" "$CTFILTER" --set ip:knitlab:sent --key daddr.mapped-port \
		--src "$lan" --snat-only --proto udp --delay-ms "$NAT_FDELAY"
	wait_for 3 grep -q "ctfilter ready" "$RUNDIR/log/ctfilter-$h.log" ||
		die "ctfilter did not start on $h (log: $RUNDIR/log/ctfilter-$h.log)"
}

# upnp_start ROUTER WAN_ADDR LAN_NET: miniupnpd on the router's lan, with
# its own nftables table, PID file and lease file in the run's directory.
upnp_start() {
	local h=$1 lan=$3 conf=$RUNDIR/$1-miniupnpd.conf
	command -v miniupnpd >/dev/null || die "miniupnpd is not installed (scripts/install-deps.sh)"
	# miniupnpd's STUN check must see answers from the other address and
	# port of the lab's STUN server, or it disables port mapping.
	nsx "$h" nft add rule ip knitlab input iifname wan ip saddr "{ ${STUN_ADDRS[0]}, ${STUN_ADDRS[1]} }" udp sport "{ ${STUN_PORTS[0]}, ${STUN_PORTS[1]} }" accept
	nsx "$h" nft -f - <<EOF
table inet miniupnpd {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		jump miniupnpd
	}
	chain miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority dstnat - 10; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority srcnat - 10; policy accept;
		jump postrouting_miniupnpd
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
EOF
	cat >"$conf" <<EOF
ext_ifname=wan
# The lab's addresses are TEST-NET ones, which miniupnpd refuses as ext_ip;
# it accepts the address its STUN check finds when nothing filters it.
ext_perform_stun=yes
ext_stun_host=${STUN_ADDRS[0]}
ext_stun_port=${STUN_PORTS[0]}
listening_ip=lan
http_port=5000
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=no
lease_file=$RUNDIR/$h-miniupnpd.leases
uuid=$(cat /proc/sys/kernel/random/uuid)
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 $lan 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
	spawn "$h" "miniupnpd-$h" miniupnpd -d -f "$conf" -P "$RUNDIR/$h-miniupnpd.pid"
}

# knit_servers_up DIR: knit-control (PUB_NET.1:8080) and knit-relay
# (PUB_NET.2:8443, STUN 3478) with their state in DIR; the relay's STUN
# also answers from a second address (PUB_NET.5:3479, RFC 5780), without
# which knitd's netcheck cannot tell how its NAT maps and filters, and so
# never plans a search.  Sets KS_URL, KS_CK (the control key) and KS_AUTH
# (a reusable auth key); on failure returns 1 with KS_ERR set.
# shellcheck disable=SC2034 # KS_* are read by matrix.sh and perf.sh
KS_URL=http://$PUB_NET.1:8080
KS_STUN_ALT=$PUB_NET.5
# shellcheck disable=SC2034 # KS_* are read by matrix.sh and perf.sh
knit_servers_up() {
	local d=$1 control=${CONTROL:-$LAB_BUILD/knit-control} relay=${RELAY:-$LAB_BUILD/knit-relay} rk
	KS_ERR=''
	mkdir -p "$d"
	if ! KS_CK=$("$control" key --state-dir "$d/ctl" 2>/dev/null) ||
		! rk=$("$relay" key --state-dir "$d/rly" 2>/dev/null) ||
		! "$control" relay add --id 1 --region lab --host "$PUB_NET.2" --port 8443 \
			--stun-port 3478 --stun-alt "$KS_STUN_ALT:3479" --key "$rk" --state-dir "$d/ctl" >/dev/null ||
		! KS_AUTH=$("$control" authkey create --reusable --state-dir "$d/ctl"); then
		KS_ERR="knit-control/knit-relay setup failed"
		return 1
	fi
	spawn control knit-control "$control" serve --listen "$PUB_NET.1:8080" --state-dir "$d/ctl"
	wait_for 5 ks_listening control 8080 || { KS_ERR="knit-control did not listen"; return 1; }
	ip -n "$P-relay" addr replace "$KS_STUN_ALT/24" dev eth0
	spawn relay knit-relay "$relay" serve --listen "$PUB_NET.2:8443" --stun "$PUB_NET.2:3478" \
		--stun-alt "$KS_STUN_ALT:3479" --control "$KS_URL" --control-key "$KS_CK" --state-dir "$d/rly"
	wait_for 5 ks_listening relay 8443 || { KS_ERR="knit-relay did not listen"; return 1; }
}

ks_listening() { [[ -n $(nsx "$1" ss -Hltn "sport = :$2") ]]; }
