#!/usr/bin/env bash
# The NAT traversal matrix: every ordered pair of the nine RFC 4787 NAT
# kinds (non-EIM ports at random over the full range), a knitd behind each
# NAT, control and a relay on the public side; plus two peers behind one
# NAT (direct over the LAN), the same through a hairpin with LAN candidates
# hidden, two public peers, and ADPM-ADPF routers that offer port mapping.
# Each cell asserts the outcome the feasibility analysis expects (77 of 81
# direct, all 81 connected) and records the time to direct; the times are
# asserted too (cells that need no search: median <= 200 ms, worst <= 1 s;
# search cells: worst <= 15 s), and that no ping is lost across the switch
# from the relay to the direct path.  lab/lib/matrix.sh has the diagram and the
# method; results go to build/results/matrix.{json,md}.
#
#   MATRIX_EXPECT=relay-only   assert only that every cell connected (the
#                              path is still recorded as it is)
#   MATRIX_JOBS=N              labs at once (default 3)
#   MATRIX_FULL=1              also the seed's 100-port ADM, RFC 3489's 4x4
#                              and 2.5 % loss with 20 ms delay (make
#                              matrix-full); results into docs/results/
#   MATRIX_RESULTS=DIR         where matrix.json and matrix.md go
#   MATRIX_DECLARE_CLASS=1     start each knitd with --nat-class (its NAT's
#                              kind) instead of letting it measure its NAT
set -eu
source "$(dirname "$0")/lib.sh"

EXPECT=${MATRIX_EXPECT:-full}
JOBS=${MATRIX_JOBS:-3}
FULL=${MATRIX_FULL:-0}
if [[ $FULL == 1 ]]; then OUT=${MATRIX_RESULTS:-$ROOT/docs/results}; else OUT=${MATRIX_RESULTS:-$ROOT/build/results}; fi
LAB=$ROOT/lab/knit-lab
PREFIX=mt$$
DECLARE=()
SUFFIX=''
CLASSES="measured by knitd"
if [[ ${MATRIX_DECLARE_CLASS:-0} == 1 ]]; then
	DECLARE=(--declare-class) SUFFIX=-declared CLASSES="declared to knitd"
fi
export KNITD KNIT CONTROL=${CONTROL:-$ROOT/build/knit-control} RELAY=${RELAY:-$ROOT/build/knit-relay}
LOGS=$ROOT/build/results/matrix-logs
mkdir -p "$OUT"
rm -rf "$LOGS"
echo "matrix: expectations '$EXPECT', NAT classes $CLASSES, $JOBS jobs, results in $OUT (failed cells' logs in $LOGS)"

# run NAME ARGS...: one knit-lab matrix run; one check per cell, and the
# time-to-direct budget when the links add no delay.
run() {
	local name=$1$SUFFIX ok text
	shift
	KNIT_LAB_PREFIX=$PREFIX "$LAB" matrix --name "$name" --expect "$EXPECT" --jobs "$JOBS" \
		--json "$OUT/matrix.json" --markdown "$OUT/matrix.md" --logs "$LOGS" "${DECLARE[@]}" "$@" \
		>"$TMP/$name.out" || true
	# shellcheck disable=SC2016  # jq variables
	check "$name: the run produced its results" jq -e --arg n "$name" '.runs[$n].cells | length > 0' "$OUT/matrix.json"
	while IFS='|' read -r ok text; do
		check "$name: $text" test "$ok" = true
	done < <(jq -r --arg n "$name" '.runs[$n].cells[] |
		"\(.ok)|\(.a) -> \(.b) (\(.case)): expect \(.expect), got \(.path)" +
		(if .ttd_ms != null then " \(.ttd_ms) ms" else "" end) +
		(if .connected then "" else ", not connected" end) +
		(if .note != "" then " (\(.note))" else "" end)' "$OUT/matrix.json")
	check "no namespace of the matrix's labs is left" bash -c "! ip netns list | grep -q '^${PREFIX}w'"
	[[ $EXPECT == full ]] || return 0
	jq -e --arg n "$name" '.runs[$n].delay_ms == 0' "$OUT/matrix.json" >/dev/null || return 0
	check "$name: time to direct, cells without search: median <= 200 ms ($(ttd "$name" plain_median_ms) ms)" \
		budget "$name" plain_median_ms 200
	check "$name: time to direct, cells without search: worst <= 1 s ($(ttd "$name" plain_worst_ms) ms)" \
		budget "$name" plain_worst_ms 1000
	# The switch from the relay to the direct path is one atomic store:
	# with no loss on the links, no ping is lost (pings_lost: those missing
	# before the last reply; the ones in flight when the ping is stopped
	# are not lost).
	if jq -e --arg n "$name" '.runs[$n].loss_pct == 0' "$OUT/matrix.json" >/dev/null; then
		check "$name: no ping lost in any direct cell across the switch ($(lost_worst "$name") at most)" \
			eval '(($(lost_worst "$name") <= 1))'
	fi
	if [[ $(ttd "$name" search_cells) != 0 ]]; then
		check "$name: time to direct, search cells: worst <= 15 s ($(ttd "$name" search_worst_ms) ms)" \
			budget "$name" search_worst_ms 15000
	fi
}
ttd() { jq -r --arg n "$1" ".runs[\$n].ttd.$2 // \"none\"" "$OUT/matrix.json"; }
lost_worst() {
	jq -r --arg n "$1" '[.runs[$n].cells[] | select(.path == "direct") |
		.pings_lost // (.pings_sent - .pings_received)] | max // 0' "$OUT/matrix.json"
}
budget() { jq -e --arg n "$1" --argjson max "$3" ".runs[\$n].ttd.$2 as \$v | \$v != null and \$v <= \$max" "$OUT/matrix.json" >/dev/null; }

run rfc4787-random --special
if [[ $FULL == 1 ]]; then
	run rfc4787-seed-adm --alloc seed-adm
	run rfc3489 --kinds rfc3489
	run rfc4787-random-loss2.5-delay20ms --loss 2.5 --delay-ms 20
fi
summary matrix
