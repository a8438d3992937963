#!/usr/bin/env bash
# knit-control under N nodes (N in $SIZES), on loopback: time for all to log
# in and hold the full map, and for one change to reach all others.  Prints a
# table and writes docs/results/control_scale.{md,json}.  Not a test: it
# prints figures; the ratio between sizes shows how the cost grows.
set -eu
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100 250 500 1000 2000"}
B=build
TMP=$(mktemp -d /tmp/kcs.XXXX)
PORT=$((20000 + RANDOM % 20000))
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$TMP"' EXIT
json="["
printf '%-8s %-22s %-22s\n' nodes "login+full map (ms)" "one change (ms)"
for n in $SIZES; do
	rm -rf "$TMP/ctl"
	CK=$($B/knit-control key --state-dir "$TMP/ctl" 2>/dev/null)
	AK=$($B/knit-control authkey create --reusable --state-dir "$TMP/ctl")
	$B/knit-control serve --listen 127.0.0.1:$PORT --state-dir "$TMP/ctl" --log-level error >/dev/null &
	PID=$!
	sleep 0.3
	out=$($B/bench/control_scale http://127.0.0.1:$PORT "$CK" "$AK" "$n")
	kill $PID; wait $PID 2>/dev/null || true
	login=$(jq -r .all_logged_in_with_full_map_ms <<<"$out")
	change=$(jq -r .one_change_reaches_all_ms <<<"$out")
	printf '%-8s %-22s %-22s\n' "$n" "$login" "$change"
	json+="$out,"
	PORT=$((PORT + 1))
done
json="${json%,}]"
mkdir -p docs/results
jq . <<<"$json" >docs/results/control_scale.json
{
	echo "# knit-control at scale"
	echo
	echo "Made by \`bench/control_scale.sh\` (SIZES=\"$SIZES\"), on loopback, one run."
	echo "N nodes in one process log in to \`knit-control serve\` with a reusable auth"
	echo "key; then one node changes its endpoints."
	echo
	echo "| nodes | all logged in with the full map (ms) | one change reaches all others (ms) |"
	echo "|---|---|---|"
	jq -r '.[] | "| \(.nodes) | \(.all_logged_in_with_full_map_ms) | \(.one_change_reaches_all_ms) |"' \
		docs/results/control_scale.json
} >docs/results/control_scale.md
