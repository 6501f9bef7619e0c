#!/usr/bin/env bash
# The cost of keeping the lease: CPU time an idle `accel run` spends per
# second (renewals every 100 ms, housekeeping every second), from
# /proc/PID/schedstat over a window. Give a second binary to compare two
# builds in one run (e.g. one before the lease change):
#
#   sudo scripts/bench/idle.sh [SECONDS] [OTHER_ACCEL_BINARY]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [[ "${IDLE_IN_MNTNS:-}" != 1 ]]; then
    [[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
    (cd "$ROOT" && cargo build --release --locked -q --bin accel)
    IDLE_IN_MNTNS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
mount -t bpf bpf /sys/fs/bpf
SECS=${1:-60}
BINS=("$ROOT/target/release/accel")
[[ -n "${2:-}" ]] && BINS+=("$2")
NS=idle$$r PEER=idle$$p RUN=$(mktemp -d)
cleanup() {
    [[ -n "${APID:-}" ]] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true; ip netns del "$PEER" 2>/dev/null || true
    rm -rf "$RUN"
}
trap cleanup EXIT
ip netns add "$NS"; ip netns add "$PEER"
ip -n "$NS" link set lo up
ip link add id0 netns "$NS" type veth peer id1 netns "$PEER"
ip -n "$NS" addr add 10.9.0.1/24 dev id0
ip -n "$NS" link set id0 up; ip -n "$PEER" link set id1 up
ip netns exec "$PEER" ethtool -K id1 gro on >/dev/null
cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }
echo "idle accel run, ${SECS} s window, $(nproc) CPUs, $(uname -r)"
for bin in "${BINS[@]}"; do
    ip netns exec "$NS" env ACCEL_PIN_DIR=/sys/fs/bpf/idle$$ ACCEL_RUN_DIR="$RUN/run" \
        "$bin" run -i id0 >"$RUN/log" 2>&1 &
    APID=$!
    for _ in $(seq 100); do grep -q 'accel running on' "$RUN/log" && break; sleep 0.1; done
    sleep 2
    c0=$(cpu_ns "$APID")
    sleep "$SECS"
    c1=$(cpu_ns "$APID")
    kill "$APID"; wait "$APID" || true; APID=
    python3 -c "import sys; d=(int(sys.argv[2])-int(sys.argv[1]))/1e9; s=float(sys.argv[3]); print(f'  {sys.argv[4]}: {d:.3f} CPU-s in {s:.0f} s = {100*d/s:.4f}% of a CPU, {d/s*1e6:.0f} us per second')" \
        "$c0" "$c1" "$SECS" "$bin"
done
