#!/usr/bin/env bash
# Convergence: time from `ip route replace` (kernel FIB changed) to accel's
# datapath maps using the new next hop, p50/p90/p99 over many changes, IPv4
# and IPv6. With FULL=1 the full Internet table is installed first (about a
# minute), so that the measurement runs beside a million mirrored routes.
#
#   sudo scripts/bench/convergence.sh            # small table
#   sudo FULL=1 scripts/bench/convergence.sh     # beside the full table
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [[ "${CONV_IN_MNTNS:-}" != 1 ]]; then
    [[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
    (cd "$ROOT" && cargo build --release --locked -q --bin accel --bin accel-convergence)
    CONV_IN_MNTNS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
mount -t bpf bpf /sys/fs/bpf
BIN="$ROOT/target/release"
NS=cv$$r; PEER=cv$$p
RUN=$(mktemp -d); PIN=/sys/fs/bpf/cv$$
cleanup() {
    [[ -n "${APID:-}" ]] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true; ip netns del "$PEER" 2>/dev/null || true
    rm -rf "$RUN"
}
trap cleanup EXIT
ip netns add "$NS"; ip netns add "$PEER"
ip -n "$NS" link set lo up
ip link add cv0 netns "$NS" type veth peer cv1 netns "$PEER"
ip -n "$NS" addr add 10.9.0.1/24 dev cv0
ip -n "$NS" addr add fd00:9::1/64 dev cv0 nodad
ip -n "$NS" link set cv0 up; ip -n "$PEER" link set cv1 up
ip netns exec "$PEER" ethtool -K cv1 gro on >/dev/null
for i in 2 3 4 5; do
    ip -n "$NS" neigh add 10.9.0.$i lladdr 02:00:00:00:00:0$i dev cv0 nud permanent
    ip -n "$NS" neigh add fd00:9::$i lladdr 02:00:00:00:00:0$i dev cv0 nud permanent
done
ip netns exec "$NS" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
table="small (2 routes)"
if [[ "${FULL:-0}" == 1 ]]; then
    src=$ROOT/../shared/data/bgp-full-table.txt.gz
    if [[ -f $src ]]; then
        zcat "$src" | tr -d '\r' > "$RUN/table"; table="full table from ../shared/data"
    else
        "$BIN/accel-bench" gen-table > "$RUN/table"; table="generated table (../shared/data absent)"
    fi
    awk '!/:/{printf "route add %s via 10.9.0.%d\n", $1, 2+(NR%4)}' "$RUN/table" > "$RUN/v4"
    awk '/:/{printf "route add %s via fd00:9::%d\n", $1, 2+(NR%4)}' "$RUN/table" > "$RUN/v6"
    echo "installing $table..."
    ip -n "$NS" -force -batch "$RUN/v4" 2>/dev/null || true
    ip -n "$NS" -6 -force -batch "$RUN/v6" 2>/dev/null || true
fi
ip -n "$NS" route replace 198.51.100.0/24 via 10.9.0.2 dev cv0
ip -n "$NS" -6 route replace 2001:db8:100::/48 via fd00:9::2 dev cv0
: > "$RUN/log"
nsenter --net=/run/netns/"$NS" "$BIN/accel" --run-dir "$RUN" --pin-dir "$PIN" run -i cv0 \
    > "$RUN/log" 2>&1 &
APID=$!
for _ in $(seq 1 600); do grep -q "accel running on" "$RUN/log" && break; sleep 0.2; done
grep -q "accel running on" "$RUN/log" || { cat "$RUN/log"; echo "accel did not start" >&2; exit 1; }
echo "table: $table; $(nproc) CPUs, $(uname -r)"
echo -n "IPv4: "
nsenter --net=/run/netns/"$NS" "$BIN/accel-convergence" --pin-dir "$PIN" --prefix 198.51.100.0/24 \
    --probe 198.51.100.7 --gw 10.9.0.3 10.9.0.2 --dev cv0 --count "${COUNT:-300}"
echo -n "IPv6: "
nsenter --net=/run/netns/"$NS" "$BIN/accel-convergence" --pin-dir "$PIN" --prefix 2001:db8:100::/48 \
    --probe 2001:db8:100::7 --gw fd00:9::3 fd00:9::2 --dev cv0 --count "${COUNT:-300}"
