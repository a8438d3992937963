#!/usr/bin/env bash
# Runs each cmocka test binary; one summary line counts the test cases.
set -u
passed=0 failed=0 broken=0
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	echo "$out"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' <<<"$out")
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' <<<"$out")
	passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0}))
	# A crash or a sanitizer abort fails the binary even with no count.
	if [[ $rc -ne 0 && -z $f ]]; then broken=$((broken + 1)); echo "BROKEN: $t (exit $rc)"; fi
done
failed=$((failed + broken))
echo "unit: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
