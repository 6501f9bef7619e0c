#!/usr/bin/env bash
# Memory of accel with the full table (issue 12's memory table): BPF map
# memory (bpftool's bytes_memlock of every map accel's programs use) and the
# daemon's RSS, steady and peak (VmHWM), after the start, a resync
# (`accel sync`) and a check (`accel sync --check`), with how long each
# took; and `accel stats --capacity`: what every bounded structure holds,
# and what went to bpf_fib_lookup for want of room.
#
#   scripts/bench/memory.sh        # about 2 minutes
#   FWB_GROW="2000000 500000" scripts/bench/memory.sh
#                                  # issue 12's headroom run: the table
#                                  # grown to 2M IPv4 + 500k IPv6 prefixes
#
# The lab of forwarding.sh (fwlab.sh), the full IPv4 and IPv6 tables
# installed together, accel on r-in and r-out. Override the binary with
# ACCEL=...
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ARGS=("$@")
if [ "$(id -u)" != 0 ]; then
    echo "memory.sh: creates namespaces and loads XDP programs: run as root" >&2
    exit 1
fi
# shellcheck source=fwlab.sh
source "$ROOT/scripts/bench/fwlab.sh"

set_routes 4 full
set_routes 6 full
start_accel mirror
PID=$ACCEL_PID

status() { grep -E "^$1:" "/proc/$PID/status" | awk '{print $2}'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rss_line() { echo "   $1: RSS $(mib "$(status VmRSS)") MiB, peak (VmHWM) $(mib "$(status VmHWM)") MiB"; }

# The maps of the program attached to r-in.
prog_id=$(in_ns $NS_RTR bpftool net show dev r-in -j | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    for x in e.get("xdp", []):
        print(x["id"]); sys.exit()')
map_ids=$(bpftool prog show id "$prog_id" -j | python3 -c 'import json, sys; print(" ".join(map(str, json.load(sys.stdin)["map_ids"])))')
echo "== BPF maps of accel_xdp (prog $prog_id)"
total=0
for id in $map_ids; do
    read -r name bytes <<<"$(bpftool map show id "$id" -j | python3 -c 'import json, sys; m = json.load(sys.stdin); print(m.get("name", "?"), m.get("bytes_memlock", 0))')"
    printf '   %-22s %10.1f MiB\n' "$name" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')"
    total=$((total + bytes))
done
printf '   %-22s %10.1f MiB\n' total "$(awk -v b="$total" 'BEGIN { print b / 1048576 }')"

echo "== daemon memory"
rss_line "after start (mirror live)"
sleep 5
rss_line "steady (5 s later)"
timed() { # what, command...: runs it, says how long it took and how it ended
    local what=$1 t0
    shift
    t0=$(date +%s.%N)
    TIMED_RC=0
    "$@" > "$WORK/timed.out" 2>&1 || TIMED_RC=$?
    echo "   $what: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s, exit $TIMED_RC"
}
timed "accel sync (a full resync)" in_ns $NS_RTR "$ACCEL" sync
rss_line "after accel sync"
timed "accel sync --check" in_ns $NS_RTR "$ACCEL" sync --check
rss_line "after accel sync --check"
[ "$TIMED_RC" = 0 ] || sed 's/^/      /' "$WORK/timed.out" | head -n 20

echo "== capacity (accel stats --capacity)"
in_ns $NS_RTR "$ACCEL" stats --capacity | sed 's/^/   /'
stop_accel
