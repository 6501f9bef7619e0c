#!/usr/bin/env bash
# What a link's state change costs a live accel at full table (BENCHMARKS.md,
# "Link flaps at full table"): the full table through r0, a second link r1
# (10.8.0.1/24, a static route through it) whose peer goes down and up
# FLAPS times, so r1 loses and regains carrier, then a link created and
# brought up, then r1 itself set down and up, then r2 deleted. Per change: accel's CPU (all threads) over the 3 s after it,
# how many of the lease samples (every 250 ms) found it live, and the full
# resyncs accel logged. About two minutes.
#
# Usage (root): scripts/bench/flap.sh [--flaps N] [--routes N]
#   --routes N  only the table's first N prefixes (a quick run).
#   ACCEL=path  use this accel binary instead of building one.
#   RUST_LOG=   accel's log filter (default info; the log is printed at
#               the end when it is not).
set -euo pipefail
cd "$(dirname "$0")/../.."

FLAPS=3
ROUTES=
while [ $# -gt 0 ]; do
    case "$1" in
    --flaps) FLAPS="$2"; shift 2 ;;
    --routes) ROUTES="$2"; shift 2 ;;
    *) echo "usage: $0 [--flaps N] [--routes N]" >&2; exit 2 ;;
    esac
done
. scripts/bench/link_lab.sh
bench_accel
link_lab_init flap

. scripts/bench/table.sh
bench_table "$TMP/all"
if [ -n "$ROUTES" ]; then
    head -n "$ROUTES" "$TMP/all" >"$TMP/some"
    mv "$TMP/some" "$TMP/all"
fi
awk '!/:/ { print "route add " $1 " via 10.9.0.2" }
      /:/ { print "route add " $1 " via fd00:9::2" }' "$TMP/all" >"$TMP/add"
echo "table: $TABLE: $(wc -l <"$TMP/add") routes; machine: $(nproc) CPUs, $(uname -r); accel $ACCEL"

link_lab_up
nsx ip neigh add 10.9.0.2 lladdr 02:00:00:00:09:02 dev r0 nud permanent
nsx ip -6 neigh add fd00:9::2 lladdr 02:00:00:00:09:02 dev r0 nud permanent
nsx ip link add r1 type veth peer name p1
nsx ip link set p1 netns "$PEER"
ip netns exec "$PEER" ip link set p1 up
nsx ip addr add 10.8.0.1/24 dev r1
nsx ip link set r1 up
nsx ip route add 192.0.2.0/24 via 10.8.0.2
nsx ip -batch "$TMP/add"

link_lab_accel "${RUST_LOG:-info}" 30
sleep 2

cpu_ns() { cat /proc/"$PID"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }'; }
resyncs() { grep -c "full resync" "$TMP/log" || true; }
# change NAME COMMAND...: runs it, then for 3 s samples the lease.
change() {
    local name=$1 c0 c1 r0 r1 live=0 n=0
    shift
    c0=$(cpu_ns)
    r0=$(resyncs)
    "$@"
    for _ in $(seq 12); do
        sleep 0.25
        n=$((n + 1))
        nsenter -t "$PID" -m -n "$ACCEL" stats --openmetrics 2>/dev/null |
            grep -qE '^accel_lease_live 1' && live=$((live + 1))
    done
    c1=$(cpu_ns)
    r1=$(resyncs)
    printf '%-22s accel CPU %6.3f s, lease live in %2d of %d samples, full resyncs %d\n' \
        "$name" "$(echo "($c1 - $c0) / 1000000000" | bc -l)" "$live" "$n" "$((r1 - r0))"
}
change "idle (nothing)" true
for i in $(seq "$FLAPS"); do
    change "r1 carrier lost $i" ip netns exec "$PEER" ip link set p1 down
    change "r1 carrier back $i" ip netns exec "$PEER" ip link set p1 up
done
change "r2 created and up" sh -c "ip netns exec $NS ip link add r2 type veth peer name p2 &&
    ip netns exec $NS ip link set p2 up && ip netns exec $NS ip link set r2 up"
change "r1 down (admin)" nsx ip link set r1 down
change "r1 up (admin)" nsx ip link set r1 up
change "r2 deleted" nsx ip link del r2
sleep 1
if nsenter -t "$PID" -m -n "$ACCEL" sync --check >"$TMP/check" 2>&1; then
    echo "sync --check: $(head -n 1 "$TMP/check")"
else
    echo "sync --check found differences:"; head -n 10 "$TMP/check"
fi
if [ "${RUST_LOG:-info}" != info ]; then
    echo "accel's log:"; cat "$TMP/log"
elif grep -q "full resync" "$TMP/log"; then
    echo "resyncs, as logged:"
    grep -E "full resync|resync done|resync \(" "$TMP/log" | sed 's/^/    /'
fi
