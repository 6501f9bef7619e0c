#!/usr/bin/env bash
# accel's memory over a routing daemon's nexthop-object churn (BENCHMARKS.md,
# "Months of nexthop-object churn"): zebra gives a nexthop group a new id
# each time it makes one again, and the mirror interns every id it sees.
# Each pass moves one route through N new objects in turn (add the object,
# `route replace ... nhid`, delete the one before: ids only grow, as
# zebra's do), then reports the running instance's heap (RssAnon), its pid, how many
# times accel started afresh so far, and `accel sync --check`.
#
# Usage (root): scripts/bench/objects.sh [--objects N] [--passes P]
#   ACCEL=path           use this accel binary instead of building one.
#   ACCEL_REFRESH_STEP=  passed on to accel (its default: 1,048,576).
set -euo pipefail
cd "$(dirname "$0")/../.."

OBJECTS=100000
PASSES=4
while [ $# -gt 0 ]; do
    case "$1" in
    --objects) OBJECTS="$2"; shift 2 ;;
    --passes) PASSES="$2"; shift 2 ;;
    *) echo "usage: $0 [--objects N] [--passes P]" >&2; exit 2 ;;
    esac
done
. scripts/bench/link_lab.sh
bench_accel
link_lab_init objects
# A run directory of the lab's own: its pid file names the instance running
# after a refresh (the successor), and no other instance's is ever read.
export ACCEL_RUN_DIR="$TMP/run"
running() { cat "$ACCEL_RUN_DIR/accel.pid"; }
# After a refresh the instance running is the successor: stop that one.
objects_cleanup() {
    local p
    p=$(running 2>/dev/null) || p=
    if [ -n "$p" ] && [ "$p" != "$PID" ]; then kill "$p" 2>/dev/null || true; fi
    link_lab_cleanup
}
trap objects_cleanup EXIT

link_lab_up
nsx ip neigh replace 10.9.0.2 lladdr 02:00:00:00:09:02 dev r0 nud permanent
nsx ip nexthop add id 1 via 10.9.0.2 dev r0
nsx ip route add 100.64.0.0/24 nhid 1 proto bgp
link_lab_accel info 20
# Anonymous memory: the heap (VmRSS adds the binary's mapped pages).
anon_kib() { awk '/^RssAnon/ { print $2 }' "/proc/$(running)/status"; }
echo "accel $ACCEL; ACCEL_REFRESH_STEP=${ACCEL_REFRESH_STEP:-default}; $(nproc) CPUs, $(uname -r)"
echo "start: pid $(running), RssAnon $(anon_kib) KiB"
first=2
for pass in $(seq "$PASSES"); do
    last=$((first + OBJECTS - 1))
    awk -v a="$first" -v b="$last" 'BEGIN {
        for (i = a; i <= b; i++) {
            print "nexthop add id " i " via 10.9.0.2 dev r0"
            print "route replace 100.64.0.0/24 nhid " i " proto bgp"
            print "nexthop del id " i - 1
        }
    }' >"$TMP/batch"
    t0=$(date +%s.%N)
    nsx ip -batch "$TMP/batch"
    t1=$(date +%s.%N)
    sleep 2
    check=$("$ACCEL" sync --check 2>&1 | tail -n 1)
    printf 'pass %d: objects %d-%d in %.1f s; pid %s, RssAnon %s KiB, started afresh %d times; %s\n' \
        "$pass" "$first" "$last" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        "$(running)" "$(anon_kib)" \
        "$(grep -c 'upgrading in place to a fresh instance' "$TMP/log")" "$check"
    first=$((last + 1))
done
