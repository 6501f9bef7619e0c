#!/usr/bin/env bash
# Forwarding rate in a namespace lab: gen --veth-- rtr --veth-- snk.
#
#   scripts/bench/forwarding.sh [--families "4 6"] [--tables "1 full ecmp"]
#                               [--seconds N] [--warmup N] [--rounds N]
#                               [--baseline OTHER-ACCEL-BINARY]
# (defaults: both families, both tables, 4 s after 2 s warm-up, 3 rounds
# with kernel, mirror and fib interleaved; about 10 minutes)
#
# For each family and table size, measures the router forwarding with the
# kernel alone, then with `accel run --mode mirror`, then `--mode fib`, and
# prints Mpps and the ratio to the kernel, all from one run. Traffic:
# 64-byte frames (66 for IPv6, the smallest Ethernet+IPv6+UDP frame) from
# accel-trafgen (BPF_PROG_RUN live frames), destinations drawn at random from
# inside the prefixes of the table; the sink counts and drops them in XDP.
# "1 route" is a default route; "full" installs the whole table (next hops
# spread over 8 gateways on the sink side); "ecmp" installs the whole table
# as multipath routes over 4 of those gateways each (the router has
# net.ipv4.fib_multipath_hash_seed set, so accel hashes flows in XDP). Rates are medians of per-second
# counter differences at the sink over --seconds, after --warmup.
#
# Table: ../shared/data/bgp-full-table.txt.gz when present, else a generated
# --baseline BIN also measures BIN's `--mode mirror` in the same rounds
# ("baseline"): a change's cost to forwarding, before/after in one run.
#
# table with the same prefix-length mix (accel-bench gen-table); the
# output says which (FWB_TABLE_GZ=FILE overrides the path). Run as root.
# Override binaries with ACCEL=... TRAFGEN=...
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ARGS=("$@")

FAMILIES="4 6"
TABLES="1 full"
SECONDS_MEASURED=4
WARMUP=2
ROUNDS=3
BASELINE=
while [ $# -gt 0 ]; do
    case "$1" in
        --families) FAMILIES=$2; shift 2 ;;
        --tables) TABLES=$2; shift 2 ;;
        --seconds) SECONDS_MEASURED=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --baseline) BASELINE=$2; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "forwarding.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "forwarding.sh: creates namespaces and loads XDP programs: run as root" >&2
    exit 1
fi

# One private mount namespace for the whole run: the bpffs accel pins into
# and the namespaces' bind mounts stay ours, and every later command sees
# them (`ip netns exec` would remount /sys for each invocation).
if [ -z "${FWB_INNER:-}" ]; then
    FWB_INNER=1 exec unshare -m --propagation private bash "$0" "${ARGS[@]}"
fi
mount -t bpf bpf /sys/fs/bpf

if [ -z "${ACCEL:-}" ] || [ -z "${TRAFGEN:-}" ]; then
    echo "== building (cargo build --release)"
    cargo build --release --locked --bins 2>&1 | tail -n 1
    ACCEL=${ACCEL:-$ROOT/target/release/accel}
    TRAFGEN=${TRAFGEN:-$ROOT/target/release/accel-trafgen}
fi

NS_GEN=fwb-gen NS_RTR=fwb-rtr NS_SNK=fwb-snk
WORK=$(mktemp -d /tmp/fwbench.XXXXXX)
ACCEL_PID=
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }

cleanup() {
    stop_accel
    for ns in $NS_GEN $NS_RTR $NS_SNK; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------------ table
TABLE=$WORK/table.txt
SHARED=${FWB_TABLE_GZ:-$ROOT/../shared/data/bgp-full-table.txt.gz}
if [ -r "$SHARED" ]; then
    zcat "$SHARED" | tr -d '\r' > "$TABLE"
    TABLE_DESC="real full table ($(realpath "$SHARED"))"
else
    echo "== ../shared/data/bgp-full-table.txt.gz absent: generating a table with its prefix-length mix"
    "${BENCH:-$ROOT/target/release/accel-bench}" gen-table --seed 1 > "$TABLE"
    TABLE_DESC="GENERATED table with the real table's prefix-length mix (accel-bench gen-table, seed 1)"
fi
grep -v : "$TABLE" > "$WORK/table4.txt" || true
grep : "$TABLE" > "$WORK/table6.txt" || true
N4=$(wc -l < "$WORK/table4.txt")
N6=$(wc -l < "$WORK/table6.txt")
echo "== table: $TABLE_DESC: $N4 IPv4, $N6 IPv6 prefixes"

# -------------------------------------------------------------------- lab
NGW=8
for ns in $NS_GEN $NS_RTR $NS_SNK; do
    ip netns del "$ns" 2>/dev/null || true
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
done
ip link add g0 netns $NS_GEN type veth peer name r-in netns $NS_RTR
ip link add r-out netns $NS_RTR type veth peer name s0 netns $NS_SNK
for s in "$NS_GEN g0" "$NS_RTR r-in" "$NS_RTR r-out" "$NS_SNK s0"; do
    set -- $s
    in_ns "$1" sysctl -qw "net.ipv6.conf.$2.accept_dad=0" "net.ipv6.conf.$2.accept_ra=0"
    in_ns "$1" ip link set "$2" up
done
in_ns $NS_RTR sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.r-in.rp_filter=0 net.ipv4.conf.r-out.rp_filter=0 \
    net.ipv4.fib_multipath_hash_seed=2718281828
in_ns $NS_GEN ip addr add 10.98.0.2/24 dev g0
in_ns $NS_GEN ip addr add fd00:98::2/64 dev g0 nodad
in_ns $NS_RTR ip addr add 10.98.0.1/24 dev r-in
in_ns $NS_RTR ip addr add fd00:98::1/64 dev r-in nodad
in_ns $NS_RTR ip addr add 10.99.0.1/24 dev r-out
in_ns $NS_RTR ip addr add fd00:99::1/64 dev r-out nodad
# Frames from the generator's XDP_TX, and frames the kernel forwards to the
# sink, reach a veth only if it runs NAPI: GRO on both receiving ends (the
# sink's XDP program does it too, and accel's on r-in).
in_ns $NS_RTR ethtool -K r-in gro on >/dev/null
in_ns $NS_SNK ethtool -K s0 gro on >/dev/null
# /sys here is the host's: read MACs through ip.
mac() { in_ns "$1" ip -o link show "$2" 2>/dev/null | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
RIN_MAC=$(mac $NS_RTR r-in)
S0_MAC=$(mac $NS_SNK s0)
GW4=() GW6=()
for i in $(seq 2 $((NGW + 1))); do
    in_ns $NS_SNK ip addr add "10.99.0.$i/24" dev s0
    in_ns $NS_SNK ip addr add "fd00:99::$i/64" dev s0 nodad
    # Permanent neighbours: XDP-forwarded traffic never confirms them, and
    # a neighbour going FAILED mid-run would turn the rest into loss.
    in_ns $NS_RTR ip neigh replace "10.99.0.$i" lladdr "$S0_MAC" dev r-out nud permanent
    in_ns $NS_RTR ip -6 neigh replace "fd00:99::$i" lladdr "$S0_MAC" dev r-out nud permanent
    GW4+=("10.99.0.$i") GW6+=("fd00:99::$i")
done

# ----------------------------------------------------------------- routes
set_routes() { # family table
    local fam=$1 tab=$2 gws
    in_ns $NS_RTR ip -"$fam" route flush proto 99 2>/dev/null || true
    if [ "$tab" = 1 ]; then
        if [ "$fam" = 4 ]; then
            in_ns $NS_RTR ip route replace default via "${GW4[0]}" proto 99
        else
            in_ns $NS_RTR ip -6 route replace default via "${GW6[0]}" proto 99
        fi
    else
        if [ "$fam" = 4 ]; then gws="${GW4[*]}"; else gws="${GW6[*]}"; fi
        awk -v gws="$gws" -v paths="$([ "$tab" = ecmp ] && echo 4 || echo 1)" '
            BEGIN { n = split(gws, g, " ") }
            paths == 1 { printf "route add %s via %s proto 99\n", $1, g[(NR - 1) % n + 1] }
            paths > 1 {
                printf "route add %s proto 99", $1
                for (i = 0; i < paths; i++) printf " nexthop via %s", g[(NR - 1 + i) % n + 1]
                printf "\n"
            }' \
            "$WORK/table$fam.txt" > "$WORK/batch$fam"
        local t0=$SECONDS
        in_ns $NS_RTR ip -"$fam" -batch "$WORK/batch$fam"
        echo "   installed $(wc -l < "$WORK/batch$fam") IPv$fam routes in $((SECONDS - t0)) s"
    fi
}

# ------------------------------------------------------------------ accel
stop_accel() {
    if [ -n "$ACCEL_PID" ]; then
        kill -TERM "$ACCEL_PID" 2>/dev/null || true
        wait "$ACCEL_PID" 2>/dev/null || true
        ACCEL_PID=
    fi
}
export ACCEL_PIN_DIR=/sys/fs/bpf/fwb-accel ACCEL_RUN_DIR=$WORK/run
mkdir -p "$ACCEL_RUN_DIR"
ACCEL_STARTS=0
start_accel() { # mode
    local log=$WORK/accel-$1.$((++ACCEL_STARTS)).log t0=$SECONDS
    : > "$log"
    # A simple command, so $! is accel itself (nsenter execs it).
    local bin=$ACCEL mode=$1
    if [ "$1" = baseline ]; then bin=$BASELINE mode=mirror; fi
    nsenter --net=/run/netns/$NS_RTR -- "$bin" run -i r-in -i r-out --mode "$mode" > "$log" 2>&1 &
    ACCEL_PID=$!
    # A fresh start forwards through bpf_fib_lookup until the mirror is
    # built: measure the mirror only once it is live.
    local ready='accel running on'
    [ "$mode" = mirror ] && ready='mirror live'
    until grep -q "$ready" "$log"; do
        if ! kill -0 "$ACCEL_PID" 2>/dev/null; then
            echo "accel run --mode $1 failed:" >&2; cat "$log" >&2; ACCEL_PID=; exit 1
        fi
        if [ $((SECONDS - t0)) -gt 600 ]; then
            echo "accel run --mode $1 not ready after 600 s" >&2; cat "$log" >&2; exit 1
        fi
        sleep 0.2
    done
    echo "   accel --mode $1 ready in $((SECONDS - t0)) s: $(grep -o 'mirror holds.*' "$log" | head -n 1)"
}

# ---------------------------------------------------------------- measure
declare -A RESULT
MEASURES=0
measure() { # family table mode
    local fam=$1 tab=$2 mode=$3 src sink_log=$WORK/sink.$((++MEASURES)).log
    local gen_log=$WORK/gen.$MEASURES.log
    : > "$sink_log"
    if [ "$fam" = 4 ]; then src=10.98.0.2; else src=fd00:98::2; fi
    in_ns $NS_SNK "$TRAFGEN" sink --iface s0 --seconds "$SECONDS_MEASURED" \
        --warmup "$WARMUP" --wait 60 > "$sink_log" 2>&1 &
    local sink_pid=$!
    until grep -q counting "$sink_log"; do
        kill -0 $sink_pid 2>/dev/null || { cat "$sink_log" >&2; exit 1; }
        sleep 0.1
    done
    in_ns $NS_GEN "$TRAFGEN" send --iface g0 --dst-mac "$RIN_MAC" --src "$src" \
        --prefixes-file "$WORK/table$fam.txt" --count $((1 << 20)) --seed 1 \
        --seconds $((SECONDS_MEASURED + WARMUP + 4)) > "$gen_log" 2>&1 &
    local gen_pid=$!
    local rc=0
    wait $sink_pid || rc=$?
    kill -TERM $gen_pid 2>/dev/null || true
    wait $gen_pid 2>/dev/null || true
    if [ $rc != 0 ]; then
        echo "sink failed (IPv$fam, $tab, $mode):" >&2; cat "$sink_log" "$gen_log" >&2
        RESULT[$fam/$tab/$mode]+="0 "
        return
    fi
    local mpps
    mpps=$(sed -n 's/^RESULT median_mpps=\([0-9.]*\).*/\1/p' "$sink_log")
    RESULT[$fam/$tab/$mode]+="$mpps "
    printf '   %-24s %s Mpps  (per second: %s)\n' "IPv$fam $tab $mode" "$mpps" \
        "$(grep -o '[0-9.]* Mpps' "$sink_log" | grep -v RESULT | awk '{printf "%s ", $1}')"
    if [ "$mode" != kernel ]; then
        # Where did the packets go: forwarded in XDP, or passed to the kernel?
        nsenter --net=/run/netns/$NS_RTR -- "$ACCEL" stats --json > "$WORK/stats.json" 2>/dev/null &&
            python3 - "$WORK/stats.json" <<'EOF' || true
import json, sys
tot = {}
for i in json.load(open(sys.argv[1])):
    for k, v in i["counters"].items():
        tot[k] = tot.get(k, 0) + v
print("   accel stats (all ifaces): " + ", ".join(f"{k}={v}" for k, v in sorted(tot.items()) if v))
EOF
    fi
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.4f\n", (a[NR/2]+a[NR/2+1])/2}'; }

T_START=$SECONDS
for fam in $FAMILIES; do
    for tab in $TABLES; do
        echo "== IPv$fam, $(case $tab in 1) echo "1 route" ;; full) echo "full table" ;; *) echo "full table, ECMP over 4 paths" ;; esac)"
        set_routes "$fam" "$tab"
        for r in $(seq 1 "$ROUNDS"); do
            measure "$fam" "$tab" kernel
            for mode in mirror fib ${BASELINE:+baseline}; do
                start_accel $mode
                measure "$fam" "$tab" $mode
                stop_accel
            done
        done
    done
    in_ns $NS_RTR ip -"$fam" route flush proto 99 2>/dev/null || true
done

echo
echo "== Forwarding rate ($(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
echo "   table: $TABLE_DESC"
echo "   frames: 64 bytes on the wire for IPv4, 66 for IPv6; destinations: 1,048,576 drawn from the table's prefixes"
echo "   Mpps: median over $ROUNDS round(s) of the median per-second sink rate over $SECONDS_MEASURED s after $WARMUP s warm-up"
printf '%-44s %8s %10s\n' case Mpps "vs kernel"
for fam in $FAMILIES; do
    for tab in $TABLES; do
        if [ "$tab" = 1 ]; then label="1 route"; elif [ "$fam" = 4 ]; then label="$N4 routes"; else label="$N6 routes"; fi
        [ "$tab" = ecmp ] && label="$label ECMP x4"
        k=$(median <<<"${RESULT[$fam/$tab/kernel]}")
        for mode in kernel mirror fib ${BASELINE:+baseline}; do
            m=$(median <<<"${RESULT[$fam/$tab/$mode]}")
            case $mode in kernel) name=kernel ;; mirror) name="accel mirror" ;; fib) name="accel fib" ;; baseline) name="baseline mirror" ;; esac
            ratio=$(awk -v m="$m" -v k="$k" 'BEGIN { if (k > 0) printf "%.2fx", m / k; else print "-" }')
            printf '%-44s %8.3f %10s\n' "IPv$fam $label, $name" "$m" "$ratio"
        done
    done
done
echo "(total $((SECONDS - T_START)) s)"
