# shellcheck shell=bash
# knit-lab status: hosts, addresses, NAT kinds, link conditions, helper
# processes, and the live UDP mappings of each router (its conntrack table).

cmd_status() {
	[[ -d $RUNDIR ]] || die "no state for lab $P (KNIT_LAB_PREFIX=$P knit-lab down removes what is left)"
	local h role addrs gw spec f name pid state
	echo "lab $P ($RUNDIR)"
	printf '%-10s %-7s %-30s %s\n' HOST ROLE ADDRESSES "NAT / GATEWAY / LINK"
	while read -r h role addrs gw; do
		spec=''
		[[ -f $RUNDIR/nat/$h ]] && spec=$(<"$RUNDIR/nat/$h")
		[[ $gw != - ]] && spec="via $gw"
		[[ -f $RUNDIR/link/$h ]] && spec+=" link: $(<"$RUNDIR/link/$h")"
		printf '%-10s %-7s %-30s %s\n' "$h" "$role" "${addrs//,/ }" "$spec"
	done <"$RUNDIR/hosts"
	echo
	echo "processes:"
	for f in "$RUNDIR"/pid/*; do
		[[ -f $f ]] || continue
		name=${f##*/} pid=$(<"$f") state=running
		pid_ours "$pid" || state=gone
		printf '  %-24s pid %-8s %s\n' "$name" "$pid" "$state"
	done
	for f in "$RUNDIR"/nat/*; do
		[[ -f $f ]] || continue
		h=${f##*/}
		echo
		echo "$h ($(<"$f")): UDP mappings (internal -> external -> remote, seconds left)"
		nsx "$h" conntrack -L -p udp 2>/dev/null | mapping_lines || true
	done
}

# conntrack -L lines -> "internal -> external -> remote  timeout".  The
# original tuple is src=internal dst=remote; the reply one's dst is the
# external (mapped) endpoint.
mapping_lines() {
	awk '{
		delete v; n = 0
		for (i = 1; i <= NF; i++) {
			if (split($i, kv, "=") != 2) continue
			k = kv[1]; c[k]++
			v[k c[k]] = kv[2]
		}
		to = $3
		if (v["src1"] ~ /^10\.|^100\.64\./)
			printf "  %s:%s -> %s:%s -> %s:%s  %ss\n", v["src1"], v["sport1"], v["dst2"], v["dport2"], v["dst1"], v["dport1"], to
		else
			printf "  %s:%s -> %s:%s <- %s:%s  %ss (opened from outside)\n", v["src2"], v["sport2"], v["dst1"], v["dport1"], v["src1"], v["sport1"], to
		delete c
	}'
}
