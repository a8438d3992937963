# shellcheck shell=bash
# NAT kinds.  A kind is "MAPPING-FILTERING" (RFC 4787: eim|adm|adpm,
# eif|adf|adpf) or "udp-blocked", followed by comma-separated modifiers:
#
#   alloc=preserving|sequential|random|range   port allocation
#   hairpin=on|off                              hairpinning
#   timeout=SECONDS                             UDP mapping timeout
#   filter=nft|ctfilter                         who opens ADF/EIF filters
#   filter-delay-ms=D                           ctfilter's late rule (the seed's race)
#   upnp=on                                     NAT-PMP, PCP and UPnP-IGD (miniupnpd)
#
# e.g. "eim-adf,hairpin=on,timeout=30".  nat_parse fills the NAT_* variables;
# nat_ruleset prints the nftables ruleset that builds the kind.  Everything
# lives in table "ip knitlab" of the router's own namespace.

# The public network; ADM's per-destination port ranges are laid out over it.
PUB_NET=198.51.100
ADM_RANGE_BASE=40000 # destination PUB_NET.X gets ports BASE+100X .. BASE+100X+99
# Ports handed out by sequential allocation (random ones are the kernel's).
ALLOC_LO=20000
ALLOC_N=4096

# nat_parse SPEC: NAT_MAP NAT_FILT NAT_ALLOC NAT_HAIRPIN NAT_TIMEOUT NAT_UDP
# NAT_FILTER NAT_FDELAY NAT_UPNP; returns 1 with a message on a bad spec.
nat_parse() {
	local spec=$1 kind mods m k v
	kind=${spec%%,*}
	mods=${spec#"$kind"}
	NAT_MAP='' NAT_FILT='' NAT_ALLOC='' NAT_HAIRPIN=off NAT_TIMEOUT=''
	NAT_UDP=on NAT_FILTER=nft NAT_FDELAY=0 NAT_UPNP=off
	case $kind in
	udp-blocked) NAT_MAP=eim NAT_FILT=adpf NAT_UDP=off ;;
	eim-* | adm-* | adpm-*)
		NAT_MAP=${kind%%-*} NAT_FILT=${kind#*-}
		[[ $NAT_FILT =~ ^(eif|adf|adpf)$ ]] || { echo "unknown filtering '$NAT_FILT' in '$spec' (eif, adf, adpf)" >&2; return 1; }
		;;
	*) echo "unknown NAT kind '$kind' (MAPPING-FILTERING with eim|adm|adpm and eif|adf|adpf, or udp-blocked)" >&2; return 1 ;;
	esac
	IFS=, read -ra mods <<<"${mods#,}"
	for m in "${mods[@]}"; do
		k=${m%%=*} v=${m#*=}
		case $k in
		alloc) NAT_ALLOC=$v ;;
		hairpin) NAT_HAIRPIN=$v ;;
		timeout) NAT_TIMEOUT=$v ;;
		filter) NAT_FILTER=$v ;;
		filter-delay-ms) NAT_FDELAY=$v NAT_FILTER=ctfilter ;;
		upnp) NAT_UPNP=$v ;;
		*) echo "unknown modifier '$m' in '$spec'" >&2; return 1 ;;
		esac
	done
	# Each mapping's own allocation when none is asked for: Linux's port
	# preservation for EIM, the seed's per-destination range for ADM.
	case $NAT_MAP:${NAT_ALLOC:-default} in
	eim:default) NAT_ALLOC=preserving ;;
	adm:default) NAT_ALLOC=range ;;
	adpm:default) NAT_ALLOC=random ;;
	eim:preserving | eim:sequential | eim:random) ;;
	adm:range | adm:random | adm:sequential) ;;
	adpm:random | adpm:sequential) ;;
	*) echo "allocation '$NAT_ALLOC' is not offered with ${NAT_MAP^^} (eim: preserving|sequential|random; adm: range|random|sequential; adpm: random|sequential)" >&2; return 1 ;;
	esac
	[[ $NAT_HAIRPIN =~ ^(on|off)$ ]] || { echo "hairpin must be on or off in '$spec'" >&2; return 1; }
	[[ $NAT_UPNP =~ ^(on|off)$ ]] || { echo "upnp must be on or off in '$spec'" >&2; return 1; }
	[[ -z $NAT_TIMEOUT || $NAT_TIMEOUT =~ ^[1-9][0-9]{0,5}$ ]] || { echo "timeout must be seconds in '$spec'" >&2; return 1; }
	[[ $NAT_FILTER =~ ^(nft|ctfilter)$ ]] || { echo "filter must be nft or ctfilter in '$spec'" >&2; return 1; }
	[[ $NAT_FDELAY =~ ^[0-9]{1,6}$ ]] || { echo "filter-delay-ms must be milliseconds in '$spec'" >&2; return 1; }
	return 0
}

# nat_class SPEC: the class natprobe must observe for this NAT alone, as
# "udp mapping filtering allocation hairpin".  ADM's range allocation picks
# at random inside the destination's range, so a probe sees "random".
nat_class() {
	nat_parse "$1" || return 1
	local alloc=$NAT_ALLOC hp=false udp=true
	[[ $alloc == range ]] && alloc=random
	[[ $NAT_HAIRPIN == on ]] && hp=true
	# With UDP blocked a probe learns nothing else.
	[[ $NAT_UDP == off ]] && { echo "false null null null false"; return 0; }
	echo "$udp $NAT_MAP $NAT_FILT $alloc $hp"
}

# nat_class_double INNER OUTER: what a peer behind INNER behind OUTER (a
# CGNAT) observes: the stricter mapping and filtering of the two; the
# outer's allocation unless it preserves the inner's ports; hairpinning
# only when the CGNAT hairpins and the home NAT lets the hairpinned packet
# (coming from the CGNAT's external address) in, i.e. filters EIF.
nat_class_double() {
	local iu im if ia ih ou om of oa oh
	read -r iu im if ia ih <<<"$(nat_class "$1")" || return 1
	read -r ou om of oa oh <<<"$(nat_class "$2")" || return 1
	local rank="eim adm adpm eif adf adpf" u=true m f a h=false
	[[ $iu == false || $ou == false ]] && { echo "false null null null false"; return 0; }
	m=$(rank_max "$im" "$om" "eim adm adpm")
	f=$(rank_max "$if" "$of" "eif adf adpf")
	a=$oa
	[[ $oa == preserving ]] && a=$ia
	[[ $oh == true && $if == eif ]] && h=true
	: "$rank" "$ih"
	echo "$u $m $f $a $h"
}

rank_max() {
	local a=$1 b=$2 order=$3 w ia=0 ib=0 i=0
	for w in $order; do
		[[ $w == "$a" ]] && ia=$i
		[[ $w == "$b" ]] && ib=$i
		i=$((i + 1))
	done
	if ((ia >= ib)); then echo "$a"; else echo "$b"; fi
}

# nat_ruleset SPEC WAN_ADDR LAN_NET: the router's nftables ruleset.  The
# router's interfaces are "wan" (public side) and "lan" (private side).
nat_ruleset() {
	local spec=$1 ext=$2 lan=$3 t i
	nat_parse "$spec" || return 1
	t=${NAT_TIMEOUT:-120}
	cat <<EOF
table ip knitlab {
	# external port -> the internal endpoint it maps (learnt after SNAT)
	map mapped {
		type inet_service : ipv4_addr . inet_service
		flags dynamic,timeout
		timeout ${t}s
	}
	# (remote address, external port) pairs the inside has sent to: ADF
	set sent {
		type ipv4_addr . inet_service
		flags dynamic,timeout
		timeout ${t}s
	}
EOF
	case $NAT_MAP:$NAT_ALLOC in
	eim:sequential | eim:random)
		printf '\t# internal endpoint -> external port: EIM with %s ports\n' "$NAT_ALLOC"
		printf '\tmap eim {\n\t\ttype ipv4_addr . inet_service : inet_service\n\t\tflags dynamic,timeout\n\t\ttimeout %ss\n\t}\n' "$t"
		;;
	adm:sequential | adm:random)
		printf '\t# (internal endpoint, destination address) -> external port: ADM with %s ports\n' "$NAT_ALLOC"
		printf '\tmap adm {\n\t\ttype ipv4_addr . inet_service . ipv4_addr : inet_service\n\t\tflags dynamic,timeout\n\t\ttimeout %ss\n\t}\n' "$t"
		;;
	esac

	# Sequential allocation: a counter through a map, since numgen's
	# value is in host byte order and a port is not.
	if [[ $NAT_ALLOC == sequential ]]; then
		printf '\t# counter -> port: sequential allocation from %d\n' "$ALLOC_LO"
		printf '\tmap seq {\n\t\ttypeof numgen inc mod %d : udp sport\n\t\telements = {' "$ALLOC_N"
		for ((i = 0; i < ALLOC_N; i++)); do
			((i % 8)) || printf '\n\t\t\t'
			printf '%d : %d, ' "$i" $((ALLOC_LO + i))
		done
		printf '\n\t\t}\n\t}\n'
	fi

	# The mapping: UDP leaving through the NAT, and hairpinned UDP.  A
	# known endpoint keeps the port learnt for it (chain learn); a new one
	# gets a port from the kernel (random) or from the counter.
	printf '\n\tchain mapping {\n'
	local fresh="snat ip to $ext random"
	[[ $NAT_ALLOC == sequential ]] && fresh="snat ip to $ext : numgen inc mod $ALLOC_N map @seq"
	case $NAT_MAP:$NAT_ALLOC in
	eim:preserving)
		# Linux keeps the source port when it is free and reuses an
		# endpoint's existing mapping for every destination.
		printf '\t\tsnat ip to %s\n' "$ext" ;;
	eim:*)
		printf '\t\tmeta l4proto udp snat ip to %s : ip saddr . udp sport map @eim\n' "$ext"
		printf '\t\tmeta l4proto udp %s\n' "$fresh" ;;
	adm:range)
		# The seed's ADM: each destination address its own 100 ports;
		# inside that range Linux reuses the endpoint's mapping.
		printf '\t\tmeta l4proto udp snat ip to ct original ip daddr map {'
		for ((i = 1; i <= 254; i++)); do
			((i > 1)) && printf ','
			printf ' %s.%d : %s . %d-%d' "$PUB_NET" "$i" "$ext" $((ADM_RANGE_BASE + 100 * i)) $((ADM_RANGE_BASE + 100 * i + 99))
		done
		printf ' }\n'
		printf '\t\tsnat ip to %s\n' "$ext" ;;
	adm:*)
		printf '\t\tmeta l4proto udp snat ip to %s : ip saddr . udp sport . ct original ip daddr map @adm\n' "$ext"
		printf '\t\tmeta l4proto udp %s\n' "$fresh" ;;
	adpm:*)
		printf '\t\tmeta l4proto udp %s\n' "$fresh" ;;
	esac
	printf '\t}\n'

	cat <<EOF

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		# Only what the LAN sends is mapped: the router's own UDP (miniupnpd's
		# STUN check) keeps its port, or miniupnpd thinks itself behind
		# another NAT and refuses every mapping.
		oifname "wan" ip saddr $lan meta l4proto udp jump mapping
		oifname "wan" snat ip to $ext
EOF
	if [[ $NAT_HAIRPIN == on ]]; then
		printf '\t\t# hairpin: the external source address and port, as RFC 4787 asks\n'
		printf '\t\toifname "lan" ip saddr %s ct status dnat meta l4proto udp jump mapping\n' "$lan"
	fi
	printf '\t}\n'

	cat <<EOF

	# After SNAT the headers carry the external port: learn the mapping.
	chain learn {
		type filter hook postrouting priority srcnat + 10; policy accept;
		oifname "wan" ct direction original update @mapped { udp sport : ct original ip saddr . ct original proto-src }
EOF
	[[ $NAT_MAP:$NAT_ALLOC == eim:sequential || $NAT_MAP:$NAT_ALLOC == eim:random ]] &&
		printf '\t\toifname "wan" ct direction original meta l4proto udp update @eim { ct original ip saddr . ct original proto-src : udp sport }\n'
	[[ $NAT_MAP:$NAT_ALLOC == adm:sequential || $NAT_MAP:$NAT_ALLOC == adm:random ]] &&
		printf '\t\toifname "wan" ct direction original meta l4proto udp update @adm { ct original ip saddr . ct original proto-src . ct original ip daddr : udp sport }\n'
	if [[ $NAT_FILT == adf && $NAT_FILTER == nft ]]; then
		printf '\t\toifname "wan" update @sent { ip daddr . udp sport }\n'
	fi
	printf '\t}\n'

	# Filtering: conntrack lets in what answers a flow exactly (ADPF);
	# EIF and ADF open the mapping to more sources by DNAT.
	printf '\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n'
	case $NAT_FILT in
	eif) printf '\t\tiifname "wan" meta l4proto udp dnat ip to udp dport map @mapped\n' ;;
	adf) printf '\t\tiifname "wan" ip saddr . udp dport @sent dnat ip to udp dport map @mapped\n' ;;
	esac
	[[ $NAT_HAIRPIN == on ]] &&
		printf '\t\tiifname "lan" ip daddr %s meta l4proto udp dnat ip to udp dport map @mapped\n' "$ext"
	printf '\t}\n'

	cat <<EOF

	chain forward {
		type filter hook forward priority filter; policy drop;
EOF
	[[ $NAT_UDP == off ]] && printf '\t\tmeta l4proto udp drop\n'
	cat <<EOF
		ct state established,related accept
		iifname "lan" oifname "wan" accept
		ct status dnat accept
	}

	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		iifname "lan" accept
		meta l4proto icmp accept
	}
}
EOF
}
