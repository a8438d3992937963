# shellcheck shell=bash
# knit-lab perf: the performance suite (docs/perf.md).  Being written.

perf_usage() {
	echo "knit-lab perf [SCENARIO options] --var bitrate|loss|delay --values LIST [--repeat N] [--out DIR] [--ci --baseline FILE --tolerance PCT]" >&2
	exit 2
}

cmd_perf() { die "perf: not built yet"; }
