#!/usr/bin/env bash
# Headroom (issue 12): the real table grown to twice its size or more, both
# families installed together, accel started with its default structure
# sizes. What did not fit, how accel grew online (an upgrade in place to
# bigger maps after --grow-after seconds short of room), how long that
# took, what fits afterwards, memory, and a `sync --check`.
#
#   scripts/bench/headroom.sh [--v4 N] [--v6 N] [--grow-after SECS]
#   (defaults: 2,000,000 IPv4 and 500,000 IPv6 prefixes, 10 s; about 4
#   minutes)
#
# The table: accel-bench grow-table (translated copies of the real table in
# ../shared/data, which keep its prefix-length mix and its clustering).
# The lab of forwarding.sh (fwlab.sh); forwarding rates on such a table:
# FWB_GROW="N4 N6" scripts/bench/forwarding.sh --tables full, with
# ACCEL_CAPACITY set to the sizes this script reports. Run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ARGS=("$@")

V4=2000000
V6=500000
GROW_AFTER=10
while [ $# -gt 0 ]; do
    case "$1" in
        --v4) V4=$2; shift 2 ;;
        --v6) V6=$2; shift 2 ;;
        --grow-after) GROW_AFTER=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "headroom.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "headroom.sh: creates namespaces and loads XDP programs: run as root" >&2
    exit 1
fi
export FWB_GROW="$V4 $V6"
# shellcheck source=fwlab.sh
source "$ROOT/scripts/bench/fwlab.sh"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
kib() { grep -E "^$2:" "/proc/$1/status" | awk '{print $2}'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
capacity() { in_ns $NS_RTR "$ACCEL" stats --capacity | sed 's/^/   /'; }

set_routes 4 full
set_routes 6 full
avail0=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
t0=$(now)
LAB_LOG=$WORK/accel-headroom.log
# The daemon's debug lines say how long counting the routes' needs took
# and whether any turn of its event loop was slow.
RUST_LOG=${RUST_LOG:-info,accel::daemon=debug} nsenter --net=/run/netns/$NS_RTR -- \
    "$ACCEL" run -i r-in -i r-out --grow-after "$GROW_AFTER" > "$LAB_LOG" 2>&1 &
ACCEL_PID=$!
first=$ACCEL_PID
wait_log() { # pattern seconds
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        grep -q "$1" "$LAB_LOG" && return 0
        sleep 0.2
    done
    echo "headroom.sh: no \"$1\" in accel's log after $2 s:" >&2
    tail -n 5 "$LAB_LOG" >&2
    exit 1
}
wait_log 'mirror live' 300
echo "== mirror live $(since "$t0") s after start (default sizes), $(grep -o 'mirror holds.*' "$LAB_LOG" | head -n 1)"
capacity
grep -m1 -o 'capacity: .* exhausted.*' "$LAB_LOG" | sed 's/^/   log: /' || true

wait_log 'upgrading in place to maps sized' $((GROW_AFTER + 120))
t1=$(now)
echo "== growth started $(since "$t0") s after start: $(grep -m1 -o 'maps sized.*' "$LAB_LOG")"
grep -m1 -o 'the routes need .*' "$LAB_LOG" | sed 's/^/   /' || true
peak_avail=$avail0
while kill -0 "$first" 2>/dev/null; do
    a=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
    [ "$a" -lt "$peak_avail" ] && peak_avail=$a
    sleep 0.2
    if awk -v a="$t1" -v b="$(now)" 'BEGIN { exit !(b - a > 600) }'; then
        echo "headroom.sh: the first instance still runs 600 s after the growth began" >&2
        exit 1
    fi
done
wait "$first" || true
ACCEL_PID=$(cat "$ACCEL_RUN_DIR/accel.pid")
echo "== the successor (pid $ACCEL_PID) took over $(since "$t1") s after the growth began"
echo "   memory: MemAvailable fell by at most $(mib $((avail0 - peak_avail))) MiB over start and growth"
echo "   successor: RSS $(mib "$(kib "$ACCEL_PID" VmRSS)") MiB, peak (VmHWM) $(mib "$(kib "$ACCEL_PID" VmHWM)") MiB"
capacity
t2=$(now)
rc=0
in_ns $NS_RTR "$ACCEL" sync --check > "$WORK/check.out" 2>&1 || rc=$?
echo "== accel sync --check: exit $rc in $(since "$t2") s: $(head -n 1 "$WORK/check.out")"
echo "   successor after the check: peak (VmHWM) $(mib "$(kib "$ACCEL_PID" VmHWM)") MiB"
echo "   turns of the event loops over 10 ms: $(grep -c 'slow turn\|one turn of the event loop took' "$LAB_LOG" || true), over 250 ms: $(grep -c 'one turn of the event loop took' "$LAB_LOG" || true)"
grep -o 'one turn of the event loop took.*' "$LAB_LOG" | sed 's/^/      /' || true
stop_accel
