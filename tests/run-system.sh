#!/usr/bin/env bash
# Runs every system test in tests/system/ (each creates and removes its own
# namespaces and processes); one summary line counts their checks.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0
for t in tests/system/*.sh; do
	[[ $(basename "$t") == lib.sh ]] && continue
	echo "=== $t"
	bash "$t" 2>&1 | tee build/system-last.log
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed$' build/system-last.log | tail -n 1)
	p=$(awk '{print $2}' <<<"$line") f=$(awk '{print $4}' <<<"$line")
	passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0}))
	if [[ $rc -ne 0 && ${f:-0} -eq 0 ]]; then failed=$((failed + 1)); echo "BROKEN: $t (exit $rc)"; fi
done
rm -f build/system-last.log
echo "system: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
