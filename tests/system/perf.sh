#!/usr/bin/env bash
# The performance suite end to end, tiny: two NATs whose pair only the
# birthday search opens (adpm-adf, eim-adpf), knitd behind each, one value
# (no added delay), one repetition, TCP and ping only, for knit,
# wireguard-go and the underlay.  It proves that the run measures every
# contender (knit on the path the search found), writes a valid perf.json
# (samples, medians, ratios), plots PNGs and removes its lab; then that CI
# mode passes against the run's own ratios and within the tolerance, and
# flags a regression, in either direction of "better", beyond it.  The
# full sweeps are `make perf` (docs/perf.md).
# shellcheck disable=SC2016  # jq programs in single quotes
set -eu
source "$(dirname "$0")/lib.sh"

LAB=$ROOT/lab/knit-lab
PREFIX=pf$$
OUT=$TMP/out
export KNITD KNIT CONTROL=${CONTROL:-$ROOT/build/knit-control} RELAY=${RELAY:-$ROOT/build/knit-relay}

jqe() { jq -e "$@" >/dev/null; }

T0=$SECONDS
rc=0
KNIT_LAB_PREFIX=$PREFIX "$LAB" perf --nat1 adpm-adf --nat2 eim-adpf --var delay --values 0 \
	--repeat 1 --metrics tcp,ping --time 2 --pings 10 --wait-direct 15 --out "$OUT" --write-baseline "$TMP/base.json" \
	>"$TMP/perf.out" 2>&1 || rc=$?
echo "the run took $((SECONDS - T0)) s"
check "knit-lab perf exits 0 (exit $rc)" test "$rc" -eq 0 || tail -n 20 "$TMP/perf.out"
check "no namespace of the run is left" bash -c "! ip netns list | grep -q '^$PREFIX-'"
check "no state directory of the run is left" test ! -e "/run/knit-lab/$PREFIX"
if ip netns list | grep -q "^$PREFIX-"; then KNIT_LAB_PREFIX=$PREFIX "$LAB" down >/dev/null 2>&1 || true; fi

J=$OUT/perf.json
check "perf.json is a knit-lab perf result" jqe '.suite == "knit-lab perf" and .var == "delay" and .values == ["0"]' "$J"
check "it holds one sample per contender, no errors" \
	jqe '[.samples[] | select(.error == "")] | map(.contender) | sort == ["knit", "underlay", "wireguard-go"]' "$J"
for c in knit wireguard-go underlay; do
	check "$c: TCP throughput is a positive number" \
		jqe --arg c "$c" '.summary[$c].tcp_mbps[0] | .n == 1 and .median > 0 and .min == .median' "$J"
	check "$c: ping RTT is a positive number under 50 ms" \
		jqe --arg c "$c" '.summary[$c].ping_ms[0].median | . > 0 and . < 50' "$J"
done
check "only the metrics asked for were measured" \
	jqe '.metrics == ["tcp_mbps", "ping_ms"] and ([.samples[] | has("udp_mbps") or has("http_median_ms")] | any | not)' "$J"
# The suite's relay answers STUN from a second address: without it knitd
# cannot classify its NAT, plans no search and measures the relay.
check "knit measured its direct path (the search's)" jqe '.knit_path == "direct"' "$J"
check "knit reached B at its overlay address, the underlay at B's router" \
	jqe '(.targets.knit | startswith("100.")) and .targets.underlay == "198.51.100.12"' "$J"
check "ratios knit / underlay are the medians' quotient" \
	jqe '(.summary.knit.tcp_mbps[0].median / .summary.underlay.tcp_mbps[0].median) as $q |
		(.ratios.knit.tcp_mbps["0"] - $q | fabs) < 0.001' "$J"
is_png() { [[ $(head -c 8 "$1" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a && $(stat -c %s "$1") -gt 5000 ]]; }
check "tcp_mbps.png is a PNG" is_png "$OUT/tcp_mbps.png"
check "ping_ms.png is a PNG" is_png "$OUT/ping_ms.png"
check "no variance plot for a single repetition" test ! -e "$OUT/variance.png"
check "summary.md has the table of medians" grep -q '^| delay | knit | wireguard-go | underlay | knit / underlay |' "$OUT/summary.md"
check "the baseline holds this run's ratios" \
	jqe --slurpfile r "$J" '.sweeps.delay.ratios == $r[0].ratios.knit' "$TMP/base.json"

# --- CI mode, on this run's results (--from: no new measurement) -------------
ci() { # ci BASELINE [ARGS]: the exit status of a CI comparison
	"$LAB" perf --from "$J" --ci --baseline "$@" --ci-metrics tcp_mbps,ping_ms >"$TMP/ci.out" 2>&1
}
fails() { ! "$@"; }
# doctor METRIC FACTOR: a baseline whose ratio for METRIC is FACTOR times this run's.
doctor() {
	jq --arg m "$1" --argjson f "$2" '.sweeps.delay.ratios[$m]["0"] *= $f' "$TMP/base.json" >"$TMP/doc.json"
}
check "CI passes against its own ratios" ci "$TMP/base.json"
check "and says it compared 2 ratios, 0 regressions" grep -q '2 ratios compared .* 0 regression' "$TMP/ci.out"
check "and records the comparison in perf.json" jqe '.ci.compared == 2 and .ci.regressions == 0' "$J"
doctor tcp_mbps 1.1
check "CI passes when throughput's ratio fell 9 % (tolerance 25 %)" ci "$TMP/doc.json"
doctor tcp_mbps 1.5
check "CI fails when throughput's ratio fell 33 %" fails ci "$TMP/doc.json"
check "and names the regression" grep -q 'REGRESSION tcp_mbps at 0' "$TMP/ci.out"
check "but passes it with --tolerance 40" ci "$TMP/doc.json" --tolerance 40
doctor ping_ms 0.5
check "CI fails when the RTT's ratio doubled (lower is better)" fails ci "$TMP/doc.json"
check "and names it" grep -q 'REGRESSION ping_ms at 0' "$TMP/ci.out"
doctor ping_ms 2
check "an RTT ratio that halved is no regression" ci "$TMP/doc.json"
jq '.sweeps = {loss: .sweeps.delay}' "$TMP/base.json" >"$TMP/other.json"
check "a baseline without this variable is refused" fails ci "$TMP/other.json"
check "saying so" grep -q 'has no baseline for --var delay' "$TMP/ci.out"

# --- bad arguments ---------------------------------------------------------------
bad() { local out; ! out=$("$LAB" perf "${@:2}" 2>&1) && grep -q -- "$1" <<<"$out"; }
check "an unknown variable is refused" bad "is bitrate, loss or delay" --var speed --values 1
check "a value that is not a number is refused" bad "bad loss 'x'" --var loss --values 1,x
check "a loss over 100 % is refused" bad "bad loss '101'" --var loss --values 101
check "an unknown metric is refused" bad "unknown metric 'mos'" --var delay --values 0 --metrics tcp,mos
summary perf
