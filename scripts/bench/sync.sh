#!/usr/bin/env bash
# Sync at full-table scale (BENCHMARKS.md, "Sync at full-table scale"):
# how long `accel run` takes to mirror the full Internet table, its memory
# (VmRSS / VmHWM) once it has, how long `accel sync` takes on that table,
# and how fast the mirror converges after 100,000 `route replace` applied
# while it runs (polled with `accel sync --check`).
#
# The lab: namespace $NS holds the router interface r0 (accel attaches to
# it), the full table via four gateways with permanent neighbours; r0's veth
# peer sits in a second namespace with GRO on (XDP delivery into veth needs
# it, see PLATFORM.md). accel runs in a private mount namespace so that its
# pins do not meet other instances'.
#
# Usage (root): scripts/bench/sync.sh [--replace N]
#   ACCEL=path  use this accel binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."

REPLACE=100000
while [ $# -gt 0 ]; do
    case "$1" in
    --replace) REPLACE="$2"; shift 2 ;;
    *) echo "usage: $0 [--replace N]" >&2; exit 2 ;;
    esac
done
. scripts/bench/link_lab.sh
bench_accel
link_lab_init sync

. scripts/bench/table.sh
bench_table "$TMP/all"
grep -v : "$TMP/all" >"$TMP/all4" || true
grep : "$TMP/all" >"$TMP/all6" || true
echo "table: $TABLE: $(wc -l <"$TMP/all4") IPv4, $(wc -l <"$TMP/all6") IPv6 prefixes"

link_lab_up
for i in 2 3 4 5; do
    nsx ip neigh add "10.9.0.$i" lladdr "02:00:00:00:09:0$i" dev r0 nud permanent
    nsx ip -6 neigh add "fd00:9::$i" lladdr "02:00:00:00:09:0$i" dev r0 nud permanent
done

# Next hops spread over the four gateways; the replace pass shifts them by one.
awk '{ printf "route add %s via 10.9.0.%d\n", $1, 2 + NR % 4 }' "$TMP/all4" >"$TMP/batch4"
awk '{ printf "route add %s via fd00:9::%d\n", $1, 2 + NR % 4 }' "$TMP/all6" >"$TMP/batch6"
t0=$(date +%s.%N)
nsx ip -batch "$TMP/batch4"
nsx ip -6 -batch "$TMP/batch6"
t1=$(date +%s.%N)
echo "kernel: $(nsx ip -4 route show | wc -l) IPv4, $(nsx ip -6 route show | wc -l) IPv6 routes installed in $(echo "$t1 - $t0" | bc) s"

RUN="$TMP/run"
mkdir -p "$RUN"
LOG="$TMP/accel.log"
t0=$(date +%s.%N)
RUST_LOG=info,accel::daemon=debug unshare -m --propagation private sh -c \
    "mount -t bpf bpf /sys/fs/bpf && exec nsenter --net=/run/netns/$NS $ACCEL --run-dir $RUN --pin-dir /sys/fs/bpf/accel-sync run -i r0" \
    >"$LOG" 2>&1 &
PID=$!
# accel attaches first ("accel running on": forwarding through
# bpf_fib_lookup) and builds the mirror beside ("mirror live").
for what in "accel running on" "mirror live"; do
    for _ in $(seq 1200); do
        grep -q "$what" "$LOG" && break
        kill -0 "$PID" 2>/dev/null || { cat "$LOG"; exit 1; }
        sleep 0.1
    done
    t1=$(date +%s.%N)
    grep -q "$what" "$LOG" || { cat "$LOG"; echo "accel: no \"$what\" after 120 s" >&2; exit 1; }
    echo "$what after $(echo "$t1 - $t0" | bc) s"
done
grep -E "resync \(start\)|dumped in|dump:" "$LOG" | sed 's/^/  log: /' || true

mem() { grep -E "VmRSS|VmHWM|RssAnon|RssFile" "/proc/$PID/status" | tr -s ' \t' ' ' | tr '\n' ';'; echo; }
echo "memory after start: $(mem)"

t0=$(date +%s.%N)
"$ACCEL" --run-dir "$RUN" sync
t1=$(date +%s.%N)
echo "accel sync (no change) took $(echo "$t1 - $t0" | bc) s"
grep -E "resync \(requested\)|resync \(|dumped in" "$LOG" | tail -2 | sed 's/^/  log: /' || true
echo "memory after sync: $(mem)"

if ! grep -q -- --check <<<"$("$ACCEL" sync --help)"; then
    echo "this accel has no sync --check: skipping the replace convergence test"
    exit 0
fi
"$ACCEL" --run-dir "$RUN" sync --check || { echo "check not clean before the replace pass" >&2; exit 1; }

head -n "$REPLACE" "$TMP/all4" |
    awk '{ printf "route replace %s via 10.9.0.%d\n", $1, 2 + (NR + 1) % 4 }' >"$TMP/replace"
t0=$(date +%s.%N)
nsx ip -batch "$TMP/replace"
t1=$(date +%s.%N)
echo "$REPLACE route replace: ip -batch took $(echo "$t1 - $t0" | bc) s"
n=0
while :; do
    n=$((n + 1))
    if out=$("$ACCEL" --run-dir "$RUN" sync --check 2>&1); then
        t2=$(date +%s.%N)
        break
    fi
    echo "  check $n: $(echo "$out" | head -1)"
    [ "$n" -ge 120 ] && { echo "no convergence after $n checks" >&2; exit 1; }
    sleep 0.5
done
echo "sync --check clean after $n check(s): $(echo "$t2 - $t1" | bc) s after ip -batch ended, $(echo "$t2 - $t0" | bc) s after it started"
echo "overruns / resyncs in the daemon log:"
grep -E "lost|Overrun|resync \(" "$LOG" | sed 's/^/  log: /' || true
echo "memory at the end: $(mem)"
