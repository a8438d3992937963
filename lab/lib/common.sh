# shellcheck shell=bash
# The lab's run: its prefix, its state directory, its namespaces and its
# processes.  Everything a run creates lives in namespaces named
# "<prefix>-<host>", and every process it starts runs inside one of them, so
# a run can always be removed by its prefix alone, even after the knit-lab
# that built it was killed with SIGKILL.

LAB_RUNROOT=${KNIT_LAB_RUNROOT:-/run/knit-lab}
LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_BUILD=${KNIT_LAB_BUILD:-$LAB_ROOT/build}
NATPROBE=${NATPROBE:-$LAB_BUILD/lab/natprobe}
LINKEM=${LINKEM:-$LAB_BUILD/lab/linkem}
CTFILTER=${CTFILTER:-$LAB_BUILD/lab/ctfilter}

die() { echo "knit-lab: $*" >&2; exit 1; }
say() { [[ -n ${LAB_QUIET:-} ]] || echo "knit-lab: $*" >&2; }

# A prefix is short (interface and namespace names carry it) and has no
# dash, so "<a>-" never matches another run's "<a><b>-" names.
prefix_valid() { [[ $1 =~ ^[a-z][a-z0-9]{0,11}$ ]]; }

# lab_select: set P and RUNDIR for commands that act on an existing run:
# KNIT_LAB_PREFIX, or the only run there is.
lab_select() {
	local runs=()
	if [[ -n ${KNIT_LAB_PREFIX:-} ]]; then
		P=$KNIT_LAB_PREFIX
	else
		[[ -d $LAB_RUNROOT ]] && mapfile -t runs < <(ls -1 "$LAB_RUNROOT")
		case ${#runs[@]} in
		1) P=${runs[0]} ;;
		0) die "no lab is running (set KNIT_LAB_PREFIX to clean up a run without state)" ;;
		*) die "several labs are running (${runs[*]}): set KNIT_LAB_PREFIX" ;;
		esac
	fi
	prefix_valid "$P" || die "invalid prefix '$P' (lowercase letters and digits, at most 12)"
	RUNDIR=$LAB_RUNROOT/$P
}

lab_new_prefix() {
	local p
	if [[ -n ${KNIT_LAB_PREFIX:-} ]]; then
		p=$KNIT_LAB_PREFIX
		prefix_valid "$p" || die "invalid KNIT_LAB_PREFIX '$p' (lowercase letters and digits, at most 12)"
	else
		p=kl$(printf '%04x' $((RANDOM ^ ($$ & 0xffff))))
	fi
	if [[ -e $LAB_RUNROOT/$p ]] || [[ -n $(run_namespaces "$p") ]]; then
		die "a lab with prefix '$p' exists: 'KNIT_LAB_PREFIX=$p knit-lab down' first"
	fi
	P=$p
	RUNDIR=$LAB_RUNROOT/$P
}

# run_namespaces PREFIX: the namespaces of that run, one a line.
run_namespaces() {
	ip netns list 2>/dev/null | awk -v p="$1-" 'index($1, p) == 1 { print $1 }'
}

ns() { echo "$P-$1"; }
# nsx HOST CMD...: CMD inside HOST's namespace.
nsx() { local h=$1; shift; ip netns exec "$P-$h" "$@"; }

ns_add() {
	ip netns add "$P-$1"
	ip -n "$P-$1" link set lo up
	echo "$1" >>"$RUNDIR/namespaces"
}

# spawn HOST NAME CMD...: a daemon in HOST's namespace, in its own session
# (a Ctrl-C at the terminal is handled by knit-lab, not by the daemons); its
# PID is recorded before anything else happens.
spawn() {
	local h=$1 name=$2; shift 2
	ip netns exec "$P-$h" setsid "$@" </dev/null >>"$RUNDIR/log/$name.log" 2>&1 &
	echo "$!" >"$RUNDIR/pid/$name"
}

# pid_ours PID: the process runs in one of this run's namespaces (a PID
# file may outlive its process, and the PID may have been reused since).
pid_ours() {
	local n
	n=$(ip netns identify "$1" 2>/dev/null) || return 1
	[[ $n == "$P"-* ]]
}

# stop_daemon NAME: SIGTERM, then SIGKILL after a second.
stop_daemon() {
	local f=$RUNDIR/pid/$1 pid i
	[[ -f $f ]] || return 0
	pid=$(<"$f")
	rm -f "$f"
	pid_ours "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
}

# wait_for SECONDS CMD...: poll CMD every 20 ms.
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS <= end)) || return 1
		sleep 0.02
	done
}

# lab_teardown PREFIX: every process inside the run's namespaces (found by
# namespace, so also those a killed knit-lab never recorded, and never a
# process of anyone else), then the namespaces (their veths and nftables
# tables go with them), then the state.
lab_teardown() {
	local p=$1 n pids i
	local dir=$LAB_RUNROOT/$p
	# Whatever fails here, go on: this is the path of every failure.
	for ((i = 0; i < 60; i++)); do
		pids=()
		for n in $(run_namespaces "$p"); do
			mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$n" 2>/dev/null)
		done
		((${#pids[@]})) || break
		# SIGTERM first, SIGKILL for what is still there after a second.
		if ((i < 40)); then
			((i % 10)) || kill -TERM "${pids[@]}" 2>/dev/null || true
		else
			kill -KILL "${pids[@]}" 2>/dev/null || true
		fi
		sleep 0.025
	done
	for n in $(run_namespaces "$p"); do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$dir"
	[[ -z $(run_namespaces "$p") ]]
}
