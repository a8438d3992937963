#!/usr/bin/env bash
# linkem, the NFQUEUE link emulator of the NAT lab, measured: delay, loss,
# jitter with and without reordering, a live change, the queue bound, and its
# errors.  Pings cross one queued direction, so their round trip is the set
# delay plus the veth's few microseconds.
#
#   $RUN-a                                         $RUN-b
#   +-------------------------------+              +------------------+
#   | ping                          |              |                  |
#   | iptables mangle POSTROUTING   |              |                  |
#   |   -o eth0 -p icmp -j NFQUEUE  |              |                  |
#   |   --queue-num 7 -> linkem     |              |                  |
#   | eth0 10.242.0.1/24            |-----veth-----| eth0 10.242.0.2   |
#   +-------------------------------+              +------------------+
#
# The kernel here has nft's `queue` expression compiled out (no
# CONFIG_NFT_QUEUE) but xtables' NFQUEUE target in, so the rule is iptables'.
set -eu
source "$(dirname "$0")/lib.sh"

LINKEM=${LINKEM:-$ROOT/build/lab/linkem}
QUEUE=7
CTL=$TMP/linkem.sock
PEER=10.242.0.2
# The loss draws are seeded so that a run is reproducible; LINKEM_SEED=random
# measures a fresh draw each run.
SEED=(--seed "${LINKEM_SEED:-1}")
[[ ${LINKEM_SEED:-} == random ]] && SEED=()

netns_add a
netns_add b
veth a b
n a ip addr add 10.242.0.1/24 dev eth0
n b ip addr add $PEER/24 dev eth0
n a iptables -t mangle -A POSTROUTING -o eth0 -p icmp -j NFQUEUE --queue-num $QUEUE

# start_linkem ARGS...: linkem on queue $QUEUE, ready once its socket exists.
start_linkem() {
	rm -f "$TMP/linkem.log"
	bg a "$LINKEM" --queue $QUEUE --control "$CTL" "$@" 2>>"$TMP/linkem.log"
	LINKEM_PID=$LAST_PID
	wait_until 5 test -S "$CTL"
}
lk() { n a "$LINKEM" "$@"; }
stat_of() { lk stats --control "$CTL" --json | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

# ping_stats FILE: TX RX LOSS MIN AVG MAX of a ping's output.
ping_stats() {
	TX=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$1")
	RX=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$1")
	LOSS=$(awk -v t="$TX" -v r="$RX" 'BEGIN { printf "%.3f", (t - r) * 100 / t }')
	read -r MIN AVG MAX < <(sed -n 's|^rtt min/avg/max/mdev = \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\)/.*|\1 \2 \3|p' "$1")
}
# within X LO HI: LO <= X <= HI, as decimals.
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
# rtts FILE: one line per reply, "seq rtt", in the order they arrived.
rtts() { sed -n 's/.*icmp_seq=\([0-9]*\) .*time=\([0-9.]*\) ms.*/\1 \2/p' "$1"; }
# inversions FILE: replies that arrived after a later-sent one.
inversions() { rtts "$1" | awk '$1 < last { n++ } { last = $1 } END { print n + 0 }'; }
# avg_rtt FILE FIRST LAST: mean rtt of replies FIRST..LAST (arrival order).
avg_rtt() { rtts "$1" | awk -v a="$2" -v b="$3" 'NR >= a && NR <= b { s += $2; k++ } END { printf "%.3f", s / k }'; }

echo "--- delay"
start_linkem --delay-ms 20 "${SEED[@]}"
check "control socket is mode 0600" test "$(stat -c %a "$CTL")" = 600
n a ping -c 50 -i 0.01 $PEER >"$TMP/ping-delay" || true
ping_stats "$TMP/ping-delay"
echo "delay 20 ms: ping -c 50 -i 0.01: rtt min/avg/max $MIN/$AVG/$MAX ms, $RX/$TX replies"
check "delay 20 ms: every reply arrives" test "$RX" = 50
check "delay 20 ms: ping average $AVG ms within 20 +- 1 ms" within "$AVG" 19 21
check "delay 20 ms: no reply before 20 ms (min $MIN ms)" within "$MIN" 20 21

echo "--- live set"
n a ping -c 100 -i 0.01 $PEER >"$TMP/ping-live" &
PING_PID=$!
sleep 0.45
lk set --control "$CTL" --delay-ms 50 >/dev/null
wait $PING_PID || true
first=$(avg_rtt "$TMP/ping-live" 1 10) last=$(avg_rtt "$TMP/ping-live" 91 100)
echo "set 20 -> 50 ms during one ping run: first 10 replies $first ms, last 10 $last ms"
check "live set: before the change, 20 ms ($first)" within "$first" 19 21
check "live set: after the change, 50 ms ($last)" within "$last" 49 51
check "live set: no reply overtook another" test "$(inversions "$TMP/ping-live")" = 0
check "live set: stats report the new delay" test "$(stat_of delay_ms)" = 50.0
n a ping -c 30 -i 0.01 $PEER >"$TMP/ping-50" || true
ping_stats "$TMP/ping-50"
echo "delay 50 ms: ping -c 30 -i 0.01: rtt min/avg/max $MIN/$AVG/$MAX ms"
check "delay 50 ms: ping average $AVG ms within 50 +- 1 ms" within "$AVG" 49 51

echo "--- loss"
lk set --control "$CTL" --delay-ms 0 --loss 2.5 >/dev/null
before=$(stat_of dropped_loss)
n a ping -q -f -c 10000 $PEER >"$TMP/ping-loss" || true
ping_stats "$TMP/ping-loss"
dropped=$(($(stat_of dropped_loss) - before))
echo "loss 2.5%: ping -f -c 10000: $RX/$TX replies, loss $LOSS%, linkem dropped $dropped"
check "loss 2.5%: measured $LOSS% within 2.5 +- 0.5%" within "$LOSS" 2.0 3.0
check "loss 2.5%: every lost ping is one linkem dropped" test "$dropped" = $((TX - RX))
lk set --control "$CTL" --loss 100 >/dev/null
check "loss 100%: nothing gets through" bash -c "! ip netns exec $RUN-a ping -c 3 -i 0.01 -W 0.2 $PEER >/dev/null"
lk set --control "$CTL" --loss 0 >/dev/null

echo "--- jitter"
lk set --control "$CTL" --delay-ms 20 --jitter-ms 15 >/dev/null
n a ping -c 300 -i 0.002 $PEER >"$TMP/ping-jitter" || true
ping_stats "$TMP/ping-jitter"
inv=$(inversions "$TMP/ping-jitter")
echo "delay 20 +- 15 ms in order: rtt min/avg/max $MIN/$AVG/$MAX ms, $inv out of order"
check "jitter without --reorder: order kept" test "$inv" = 0
check "jitter: every reply in 5..36 ms ($MIN..$MAX)" \
	bash -c "awk -v a=$MIN -v b=$MAX 'BEGIN { exit !(a >= 5 && b <= 36) }'"
check "jitter: the delay varies (max - min $MIN..$MAX > 10 ms)" \
	bash -c "awk -v a=$MIN -v b=$MAX 'BEGIN { exit !(b - a > 10) }'"
stop_pid "$LINKEM_PID"
check "SIGTERM: linkem exits 0" test "$STOP_STATUS" = 0
check "SIGTERM: the control socket is removed" test ! -e "$CTL"

start_linkem --delay-ms 20 --jitter-ms 15 --reorder "${SEED[@]}"
n a ping -c 300 -i 0.002 $PEER >"$TMP/ping-reorder" || true
ping_stats "$TMP/ping-reorder"
inv=$(inversions "$TMP/ping-reorder")
echo "delay 20 +- 15 ms with --reorder: rtt min/avg/max $MIN/$AVG/$MAX ms, $inv out of order"
check "jitter with --reorder: packets overtake each other" test "$inv" -gt 0
check "jitter with --reorder: average $AVG ms within 20 +- 2 ms" within "$AVG" 18 22
stop_pid "$LINKEM_PID"

echo "--- bounded queue"
# A ping socket cannot have more than a dozen packets in flight, so the
# burst is UDP from bash, a socket per datagram.
n a iptables -t mangle -A POSTROUTING -o eth0 -p udp --dport 9 -j NFQUEUE --queue-num $QUEUE
start_linkem --delay-ms 100 --queue-len 16
n a bash -c "for i in {1..300}; do echo \$i >/dev/udp/$PEER/9; done"
queue_empty() { [[ $(stat_of queued) == 0 ]]; }
wait_until 5 queue_empty || true
seen=$(stat_of seen) over=$(stat_of dropped_overflow) accepted=$(stat_of accepted)
echo "queue of 16, delay 100 ms, 300 datagrams at once: $accepted let through, $over dropped on overflow"
check "bounded queue: the burst was seen whole" test "$seen" = 300
check "bounded queue: excess packets dropped and counted" test "$over" -gt 0
check "bounded queue: passed + overflow drops = seen" test $((accepted + over)) = "$seen"

echo "--- errors"
expect_fail() {
	local what=$1 want=$2; shift 2
	local rc=0
	"$@" >"$TMP/err.out" 2>&1 || rc=$?
	if [[ $rc -ne 0 ]] && grep -q -- "$want" "$TMP/err.out"; then
		pass "$what"
	else
		fail "$what (exit $rc: $(head -c 200 "$TMP/err.out"))"
	fi
}
expect_fail "a second instance on the same control socket is refused" "instance is running" \
	n a "$LINKEM" --queue 8 --control "$CTL"
expect_fail "a second instance on the same queue is refused" "another process holds" \
	n a "$LINKEM" --queue $QUEUE --control "$TMP/other.sock"
expect_fail "loss above 100% is refused" "invalid --loss '101'" \
	lk set --control "$CTL" --loss 101
expect_fail "a malformed delay is refused" "invalid --delay-ms '2x'" \
	lk set --control "$CTL" --delay-ms 2x
expect_fail "set without a value is refused" "needs --delay-ms" lk set --control "$CTL"
expect_fail "stats without an instance fail clearly" "cannot reach the instance" \
	lk stats --control "$TMP/none.sock"
expect_fail "run without --queue is refused" "--queue N is required" \
	"$LINKEM" --control "$TMP/x.sock"
expect_fail "stats does not take --loss" "does not take" \
	lk stats --control "$CTL" --loss 1
check "--help documents set and stats" bash -c "'$LINKEM' --help | grep -q 'linkem stats --control PATH'"
check "the running instance survived the bad requests" kill -0 "$LINKEM_PID"
stop_pid "$LINKEM_PID"

summary linkem
