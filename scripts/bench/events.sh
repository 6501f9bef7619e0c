#!/usr/bin/env bash
# What a route event costs a live accel, without a routing daemon
# (BENCHMARKS.md, "Keeping up with BGP"): the full table added, then
# deleted, with `ip -batch` through two nexthop objects (as FRR installs
# it), while `accel run` follows. Per phase: accel's CPU (all threads, from
# /proc/PID/task/*/schedstat) per route event, and the event loop's slowest
# turns (it logs every turn over 10 ms at debug level), and how often the
# mirror's lease was live while the events poured in. About a minute.
#
# Usage (root): scripts/bench/events.sh [--perf] [--random]
#   --perf      also record each phase with `perf record` (perf.add.data,
#               perf.del.data in the current directory).
#   --random    each phase in a random order (seeded, the same every run),
#               as a BGP withdrawal comes, instead of the table's order.
#   ACCEL=path  use this accel binary instead of building one.
#   PERF_ARGS=  more options for perf record (e.g. "--call-graph dwarf").
set -euo pipefail
OUT="$PWD"
cd "$(dirname "$0")/../.."

PERF=0
RANDOM_ORDER=0
for arg in "$@"; do
    case "$arg" in
    --perf) PERF=1 ;;
    --random) RANDOM_ORDER=1 ;;
    *) echo "usage: $0 [--perf] [--random]" >&2; exit 2 ;;
    esac
done
. scripts/bench/link_lab.sh
bench_accel
link_lab_init ev

. scripts/bench/table.sh
bench_table "$TMP/all"
awk '!/:/ { print "route add " $1 " nhid 4 proto bgp metric 20" }
      /:/ { print "route add " $1 " nhid 6 proto bgp metric 20" }' "$TMP/all" >"$TMP/add"
sed 's/^route add/route del/' "$TMP/add" >"$TMP/del"
ORDER="the table's order"
if [ "$RANDOM_ORDER" = 1 ]; then
    # Seeded: the same orders in every run, so that builds compare.
    seed=1
    for phase in add del; do
        awk -v seed=$seed 'BEGIN { srand(seed) } { printf "%.9f\t%s\n", rand(), $0 }' \
            "$TMP/$phase" | sort -k1,1 | cut -f2- >"$TMP/$phase.r"
        mv "$TMP/$phase.r" "$TMP/$phase"
        seed=$((seed + 1))
    done
    ORDER="random order"
fi
EVENTS=$(wc -l <"$TMP/add")
echo "table: $TABLE: $EVENTS routes in $ORDER; machine: $(nproc) CPUs, $(uname -r); accel $ACCEL"

link_lab_up
nsx ip neigh add 10.9.0.2 lladdr 02:00:00:00:09:02 dev r0 nud permanent
nsx ip -6 neigh add fd00:9::2 lladdr 02:00:00:00:09:02 dev r0 nud permanent
nsx ip nexthop add id 4 via 10.9.0.2 dev r0
nsx ip nexthop add id 6 via fd00:9::2 dev r0

link_lab_accel info,accel::daemon::event_loop=debug 10

cpu_ns() { cat /proc/"$PID"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }'; }
# CPU nanoseconds and context switches (voluntary: it waited; involuntary:
# it was preempted) per thread name (the event loop "accel", the reader
# "accel-netlink", tokio's blocking threads), one "name ns vol invol" line
# each.
thread_ns() {
    for t in /proc/"$PID"/task/*; do
        printf '%s %s %s\n' "$(cat "$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")" \
            "$(awk '/^(non)?voluntary_ctxt_switches/ { printf "%s ", $2 }' "$t/status")"
    done | awk '{ s[$1] += $2; v[$1] += $3; i[$1] += $4 } END { for (k in s) print k, s[k], v[k], i[k] }' | sort
}
phase() { # NAME
    local c0 c1 t0 t1 from perf_pid=
    sleep 1
    from=$(stat -c %s "$TMP/log")
    c0=$(cpu_ns)
    thread_ns >"$TMP/threads0"
    t0=$(date +%s.%N)
    if [ "$PERF" = 1 ]; then
        perf record -q -F 1999 ${PERF_ARGS:-} -p "$PID" -o "$OUT/perf.$1.data" 2>/dev/null &
        perf_pid=$!
    fi
    # The mirror's lease meanwhile (`accel_lease_live`), every 250 ms: more
    # often, the samplers' own CPU shows in accel's figures.
    (while :; do
        nsenter -t "$PID" -m -n "$ACCEL" stats --openmetrics 2>/dev/null | grep -E '^accel_lease_live '
        sleep 0.25
    done) >"$TMP/lease.$1" &
    local sampler=$!
    nsx ip -batch "$TMP/$1"
    kill "$sampler"
    wait "$sampler" 2>/dev/null || true
    sleep 2
    c1=$(cpu_ns)
    thread_ns >"$TMP/threads1"
    t1=$(date +%s.%N)
    [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
    # Turns over 10 ms: what woke the loop, and the slowest of each kind.
    local turns
    turns=$(tail -c +$((from + 1)) "$TMP/log" |
        sed -En 's/.*slow turn: (.*) took ([0-9.]+)(ms|s)$/\2 \3 \1/p;
                 s/.*event loop took ([0-9.]+)(ms|s) \((.*)\).*/\1 \2 \3/p' |
        awk '{ ms = $2 == "s" ? $1 * 1000 : $1; $1 = $2 = ""; k = substr($0, 3)
               n[k]++; if (ms > m[k]) m[k] = ms }
             END { for (k in n) printf "%s%d %s (max %.0f ms)", sep, n[k], k, m[k]; sep = "; " }')
    python3 -c 'import sys
c, n, w = (int(sys.argv[1]) - int(sys.argv[2])) / 1e9, int(sys.argv[3]), float(sys.argv[4])
print("%-4s %.2f s of accel CPU, %.2f us per route event, %.1f s wall" % (sys.argv[5], c, c * 1e6 / n, w))' \
        "$c1" "$c0" "$EVENTS" "$(echo "$t1 - $t0" | bc)" "$1"
    join -a 2 -e 0 -o 0,1.2,2.2,1.3,2.3,1.4,2.4 "$TMP/threads0" "$TMP/threads1" |
        awk -v n="$EVENTS" '$3 - $2 > n * 10 {
                 printf "%s%s %.2f us (switches %.1f + %.1f)", sep, $1, ($3 - $2) / n / 1000,
                        ($5 - $4) * 1000 / n, ($7 - $6) * 1000 / n; sep = ", " }
             END { print " per route event" }' |
        sed 's/^/     by thread: /'
    echo "     (switches: voluntary + involuntary context switches per 1000 route events)"
    echo "     lease: live in $(grep -c ' 1$' "$TMP/lease.$1") of $(wc -l <"$TMP/lease.$1") samples while ip -batch ran"
    echo "     turns over 10 ms: ${turns:-none}"
}
phase add
phase del
if grep -qE "overrun|full resync" "$TMP/log"; then
    echo "accel's log reports lost events or a resync:"
    grep -E "overrun|full resync" "$TMP/log"
fi
