#!/usr/bin/env bash
# Forwarding rate in a namespace lab: gen --veth-- rtr --veth-- snk.
#
#   scripts/bench/forwarding.sh [--families "4 6"] [--tables "1 10000 full ecmp"]
#                               [--seconds N] [--warmup N] [--rounds N]
#                               [--baseline OTHER-ACCEL-BINARY]
#                               [--modes "mirror fib ceiling tc generic"]
# (defaults: both families, both tables, 4 s after 2 s warm-up, 3 rounds
# with kernel, mirror and fib interleaved; about 10 minutes)
#
# For each family and table size, measures the router forwarding with the
# kernel alone, then with `accel run --mode mirror`, then `--mode fib`, then
# the ceiling forwarder (accel-ceiling: parse, TTL - 1, MAC rewrite, devmap
# redirect, with the egress handed to it in a tag the generator writes:
# what any correct XDP router must spend per frame), and prints Mpps, the
# ratio to the kernel and to the ceiling, all from one run. Traffic:
# 64-byte frames (66 for IPv6, the smallest Ethernet+IPv6+UDP frame) from
# accel-trafgen (BPF_PROG_RUN live frames, or where the kernel refuses them
# a closed loop through the sink), destinations drawn at random from
# inside the prefixes of the table; the sink counts and drops them in XDP.
# "1 route" is a default route; "full" installs the whole table (next hops
# spread over 8 gateways on the sink side); "ecmp" installs the whole table
# as multipath routes over 4 of those gateways each (the router has
# net.ipv4.fib_multipath_hash_seed set, so accel hashes flows in XDP); a
# number N installs a seeded random sample of N of the table's prefixes
# (as lookup.sh does), and the destinations are drawn from the sample.
# Rates are medians of per-second counter differences at the sink over
# --seconds, after --warmup.
#
# --modes picks what is measured beside the kernel (default "mirror fib
# ceiling"): mirror and fib are `accel run --mode mirror|fib` in native XDP;
# tc is the mirror through the TC program (`--hook tc`), generic the
# mirror in generic XDP (`--xdp-mode generic`). ceiling-read:MIB[xN][sS] is
# the ceiling forwarder plus N (default 1) dependent reads per frame of
# 64-byte lines, chosen by a hash of the destination, in an array of MIB
# MiB (as a FIB node array is laid out): the fastest any lookup that reads
# that much memory N times could forward, e.g. --modes "mirror ceiling
# ceiling-read:1 ceiling-read:8 ceiling-read:4x3". A suffix sS reads one
# line in S only: ceiling-read:9.4s65 puts each read in a page of its own,
# at an offset that moves from page to page: nearly as many pages as 9.4
# MiB, a 65th of its lines (what the TLB costs, apart from the caches).
#
# --baseline BIN also measures BIN's `--mode mirror` in the same rounds
# ("baseline"): a change's cost to forwarding, before/after in one run.
#
# Table: ../shared/data/bgp-full-table.txt.gz when present, else a generated
# table with the same prefix-length mix (accel-bench gen-table); the
# output says which (FWB_TABLE_GZ=FILE overrides the path). Run as root.
# Override binaries with ACCEL=... TRAFGEN=... CEILING=...
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
MODES="mirror fib ceiling"
while [ $# -gt 0 ]; do
    case "$1" in
        --families) FAMILIES=$2; shift 2 ;;
        --tables) TABLES=$2; shift 2 ;;
        --seconds) SECONDS_MEASURED=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --baseline) BASELINE=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
        *) echo "forwarding.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "forwarding.sh: creates namespaces and loads XDP programs: run as root" >&2
    exit 1
fi

# shellcheck source=fwlab.sh
source "$ROOT/scripts/bench/fwlab.sh"

# ---------------------------------------------------------------- traffic
# Live frames from BPF_PROG_RUN where the kernel sends them; elsewhere (a
# kernel that refuses them) a closed loop: the sink sends every frame,
# rewritten, back into the router (accel-trafgen loop). FWB_TRAFFIC=live|loop
# overrides.
TRAFFIC=${FWB_TRAFFIC:-}
case $TRAFFIC in
    "" | live | loop) ;;
    *) echo "forwarding.sh: FWB_TRAFFIC must be live or loop, not $TRAFFIC" >&2; exit 2 ;;
esac
if [ -z "$TRAFFIC" ]; then
    if nsenter --net=/run/netns/$NS_GEN -- "$TRAFGEN" probe-live --iface g0 >/dev/null 2>&1; then
        TRAFFIC=live
    else
        TRAFFIC=loop
    fi
fi

# ---------------------------------------------------------------- measure
declare -A RESULT
MEASURES=0
measure() { # family table mode
    local fam=$1 tab=$2 mode=$3 src sink_log=$WORK/sink.$((++MEASURES)).log
    local gen_log=$WORK/gen.$MEASURES.log
    : > "$sink_log"
    if [ "$fam" = 4 ]; then src=10.98.0.2; else src=fd00:98::2; fi
    local frames=(--iface g0 --dst-mac "$RIN_MAC" --src "$src" --prefixes-file "$(table_file "$fam" "$tab")"
        --count $((1 << 20)) --seed 1 --tag-gateways $NGW)
    local rc=0
    if [ "$TRAFFIC" = loop ]; then
        nsenter --net=/run/netns/$NS_GEN -- "$TRAFGEN" loop "${frames[@]}" --sink-iface s0 \
            --sink-netns /run/netns/$NS_SNK --seconds "$SECONDS_MEASURED" --warmup "$WARMUP" --wait 60 \
            > "$sink_log" 2>&1 || rc=$?
        : > "$gen_log"
    else
        nsenter --net=/run/netns/$NS_SNK -- "$TRAFGEN" sink --iface s0 --seconds "$SECONDS_MEASURED" \
            --warmup "$WARMUP" --wait 60 > "$sink_log" 2>&1 &
        local sink_pid=$!
        until grep -q counting "$sink_log"; do
            kill -0 $sink_pid 2>/dev/null || { cat "$sink_log" >&2; exit 1; }
            sleep 0.1
        done
        nsenter --net=/run/netns/$NS_GEN -- "$TRAFGEN" send "${frames[@]}" \
            --seconds $((SECONDS_MEASURED + WARMUP + 4)) > "$gen_log" 2>&1 &
        local gen_pid=$!
        wait $sink_pid || rc=$?
        kill -TERM $gen_pid 2>/dev/null || true
        wait $gen_pid 2>/dev/null || true
    fi
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

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.4f\n", (a[NR/2]+a[NR/2+1])/2}'; }

T_START=$SECONDS
for fam in $FAMILIES; do
    for tab in $TABLES; do
        echo "== IPv$fam, $(case $tab in 1) echo "1 route" ;; full) echo "full table" ;; ecmp) echo "full table, ECMP over 4 paths" ;; *) echo "$tab routes" ;; esac)"
        set_routes "$fam" "$tab"
        for r in $(seq 1 "$ROUNDS"); do
            measure "$fam" "$tab" kernel
            for mode in $MODES ${BASELINE:+baseline}; do
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
case $TRAFFIC in
    live) echo "   traffic: accel-trafgen send (BPF_PROG_RUN live frames) into a counting sink" ;;
    loop) echo "   traffic: accel-trafgen loop (the sink sends each frame, rewritten, back into the router; this kernel refuses live frames)" ;;
esac
echo "   Mpps: median over $ROUNDS round(s) of the median per-second sink rate over $SECONDS_MEASURED s after $WARMUP s warm-up"
printf '%-64s %8s %10s %11s\n' case Mpps "vs kernel" "vs ceiling"
for fam in $FAMILIES; do
    for tab in $TABLES; do
        case $tab in
            1) label="1 route" ;;
            full | ecmp) if [ "$fam" = 4 ]; then label="$N4 routes"; else label="$N6 routes"; fi ;;
            *) label="$tab routes" ;;
        esac
        [ "$tab" = ecmp ] && label="$label ECMP x4"
        k=$(median <<<"${RESULT[$fam/$tab/kernel]}")
        c=$(median <<<"${RESULT[$fam/$tab/ceiling]:-}")
        for mode in kernel $MODES ${BASELINE:+baseline}; do
            m=$(median <<<"${RESULT[$fam/$tab/$mode]}")
            case $mode in kernel) name=kernel ;; mirror) name="accel mirror" ;; fib) name="accel fib" ;;
                ceiling) name="ceiling (egress handed over)" ;; baseline) name="baseline mirror" ;;
                tc) name="accel mirror, TC hook" ;; generic) name="accel mirror, generic XDP" ;;
                ceiling-read:*) spec=${mode#ceiling-read:} stride=
                    if [[ $spec == *s* ]]; then stride=", 1 line in ${spec#*s}" spec=${spec%s*}; fi
                    if [[ $spec == *x* ]]; then name="ceiling + ${spec#*x} reads in ${spec%x*} MiB$stride"
                    else name="ceiling + one read in $spec MiB$stride"; fi ;; esac
            ratio=$(awk -v m="$m" -v k="$k" 'BEGIN { if (k > 0) printf "%.2fx", m / k; else print "-" }')
            vs_c=$(awk -v m="$m" -v k="$c" 'BEGIN { if (k > 0) printf "%.2fx", m / k; else print "-" }')
            printf '%-64s %8.3f %10s %11s\n' "IPv$fam $label, $name" "$m" "$ratio" "$vs_c"
        done
    done
done
echo "(total $((SECONDS - T_START)) s)"
