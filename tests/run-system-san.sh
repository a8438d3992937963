#!/usr/bin/env bash
# make system-san: the system tests whose daemons are ours, again with every
# program built with ASan + UBSan (LeakSanitizer at exit).  Their summary
# lines are renamed system-san so that make check counts them apart.
set -u
cd "$(dirname "$0")/.."
S=$PWD/build/san
export KNITD=$S/knitd KNIT=$S/knit CONTROL=$S/knit-control RELAY=$S/knit-relay
rc=0
for t in "PAIRS=knitd:knitd bash tests/system/wg-interop.sh" "bash tests/system/overlay.sh"; do
	# shellcheck disable=SC2086  # "VAR=value script" on purpose
	env $t 2>&1 | sed -u -E 's/^(wg-interop|overlay): ([0-9]+ passed)/system-san: \2/'
	[[ ${PIPESTATUS[0]} -eq 0 ]] || rc=1
done
exit $rc
