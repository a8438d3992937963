#!/usr/bin/env bash
# Runs every system test in tests/system/ (each creates and removes its own
# namespaces and processes).
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0
for t in tests/system/*.sh; do
	[[ $(basename "$t") == lib.sh ]] && continue
	echo "=== $t"
	if bash "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t"; fi
done
echo "system: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
