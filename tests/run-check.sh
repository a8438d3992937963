#!/usr/bin/env bash
# make check: every stage runs even if an earlier one failed; the last line
# totals them.
set -u
cd "$(dirname "$0")/.."
mkdir -p build
log=build/check.log
: >"$log"
rc=0
# Unit tests run under ASan + UBSan; the system tests once as built for
# users, and knitd against itself once more under the sanitizers.
for stage in "SAN=1 unit" fuzz-smoke system system-san; do
	# shellcheck disable=SC2086  # the stage is words on purpose
	make --no-print-directory $stage 2>&1 | tee -a "$log"
	[[ ${PIPESTATUS[0]} -eq 0 ]] || rc=1
done
awk '/^(unit|fuzz-smoke|system|system-san): [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     END { printf "check: %d passed, %d failed\n", p, f }' "$log"
exit $rc
