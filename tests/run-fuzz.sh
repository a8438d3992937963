#!/usr/bin/env bash
# Runs each libFuzzer harness for a few seconds from its seed corpus.
# Usage: run-fuzz.sh SECONDS HARNESS...
set -u
seconds=$1; shift
passed=0 failed=0
for f in "$@"; do
	name=$(basename "$f")
	seeds=tests/fuzz/corpus/${name#fuzz_}
	work=$(mktemp -d)
	[[ -d $seeds ]] && cp -r "$seeds"/. "$work"/ 2>/dev/null
	if "$f" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/" \
		"$work" >"$work/log" 2>&1; then
		passed=$((passed + 1))
		echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" |
			grep -o '[0-9]*$' || echo '?') runs)"
	else
		failed=$((failed + 1))
		echo "fuzz $name: FAILED"; tail -n 40 "$work/log"
	fi
	rm -rf "$work"
done
echo "fuzz-smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
