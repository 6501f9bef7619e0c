#!/usr/bin/env bash
# A flood of spoofed sources beside legitimate traffic, kernel alone vs
# accel (route-driven protection, issue 11).
#
#   scripts/bench/flood.sh [--seconds N] [--warmup N] [--rounds N]
# (defaults: 4 s after 2 s warm-up, 3 rounds; about 4 minutes)
#
# The lab of forwarding.sh (gen --veth-- rtr --veth-- snk, the full IPv4
# table, next hops over 8 gateways) with strict rp_filter on the router's
# ingress. Legitimate traffic: accel-trafgen from 10.98.0.2 (routed back
# through the ingress) to 1,048,576 random destinations of the table, flat
# out. Flood: a second accel-trafgen, flat out, from 198.18.0.1, which has
# no route on the router: the kernel drops it in fib_validate_source()
# (IPReversePathFilter), accel in XDP (drop_rpfilter). For each of kernel /
# accel, without and with the flood: the legitimate Mpps the sink counts,
# the flood packets the kernel's stack handled (its IPReversePathFilter
# counter, per second), and the share of all CPU time spent in softirq.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ARGS=("$@")
SECONDS_MEASURED=4
WARMUP=2
ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_MEASURED=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "flood.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "flood.sh: creates namespaces and loads XDP programs: run as root" >&2
    exit 1
fi
# shellcheck source=fwlab.sh
source "$ROOT/scripts/bench/fwlab.sh"

# The flood is frames the router drops: only live frames can send them (a
# closed loop, forwarding.sh's fallback, carries only what comes through).
if ! nsenter --net=/run/netns/$NS_GEN -- "$TRAFGEN" probe-live --iface g0 >/dev/null 2>&1; then
    echo "flood.sh: this kernel refuses BPF_PROG_RUN live frames (accel-trafgen probe-live), which the flood needs" >&2
    exit 1
fi

SPOOF=198.18.0.1
in_ns $NS_RTR sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.r-in.rp_filter=1
set_routes 4 full
if in_ns $NS_RTR ip route get "$SPOOF" >/dev/null 2>&1; then
    echo "flood.sh: the table routes $SPOOF; pick another spoofed source" >&2
    exit 1
fi

softirq_ticks() { awk '/^cpu / { s = 0; for (i = 2; i <= NF; i++) s += $i; print $8, s }' /proc/stat; }
rpf_drops() { in_ns $NS_RTR python3 "$ROOT/scripts/labtool.py" srcdrops | cut -d' ' -f1; }

declare -A MPPS RPF SOFT
MEASURES=0
measure() { # mode flood(0|1)
    local mode=$1 flood=$2 key="$1/$2" sink_log=$WORK/sink.$((++MEASURES)).log pids=()
    : > "$sink_log"
    nsenter --net=/run/netns/$NS_SNK -- "$TRAFGEN" sink --iface s0 --seconds "$SECONDS_MEASURED" \
        --warmup "$WARMUP" --wait 60 > "$sink_log" 2>&1 &
    local sink_pid=$!
    until grep -q counting "$sink_log"; do
        kill -0 $sink_pid 2>/dev/null || { cat "$sink_log" >&2; exit 1; }
        sleep 0.1
    done
    local secs=$((SECONDS_MEASURED + WARMUP + 4))
    nsenter --net=/run/netns/$NS_GEN -- "$TRAFGEN" send --iface g0 --dst-mac "$RIN_MAC" --src 10.98.0.2 \
        --prefixes-file "$WORK/table4.txt" --seed 1 --seconds $secs > "$WORK/gen.$MEASURES" 2>&1 &
    pids+=($!)
    if [ "$flood" = 1 ]; then
        nsenter --net=/run/netns/$NS_GEN -- "$TRAFGEN" send --iface g0 --dst-mac "$RIN_MAC" --src "$SPOOF" \
            --prefixes-file "$WORK/table4.txt" --seed 2 --seconds $secs > "$WORK/flood.$MEASURES" 2>&1 &
        pids+=($!)
    fi
    sleep "$WARMUP"
    local r0 s0 t0 r1 s1 t1
    r0=$(rpf_drops); read -r s0 t0 <<<"$(softirq_ticks)"
    sleep "$SECONDS_MEASURED"
    r1=$(rpf_drops); read -r s1 t1 <<<"$(softirq_ticks)"
    wait $sink_pid || true
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    local mpps
    mpps=$(sed -n 's/^RESULT median_mpps=\([0-9.]*\).*/\1/p' "$sink_log")
    MPPS[$key]+="${mpps:-0} "
    RPF[$key]+="$(( (r1 - r0) / SECONDS_MEASURED )) "
    SOFT[$key]+="$(awk -v a=$((s1 - s0)) -v b=$((t1 - t0)) 'BEGIN { printf "%.1f", b ? 100 * a / b : 0 }') "
    printf '   %-6s %-8s legit %s Mpps\n' "$mode" "$([ "$flood" = 1 ] && echo flood || echo quiet)" "${mpps:-0}"
}

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.4f\n", (a[NR/2]+a[NR/2+1])/2}'; }

T_START=$SECONDS
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r"
    measure kernel 0
    measure kernel 1
    start_accel mirror
    measure accel 0
    measure accel 1
    stop_accel
done

echo
echo "== Spoofed-source flood ($(nproc) CPUs, $(uname -r)); table: $TABLE_DESC"
echo "   legit: 10.98.0.2 -> random table destinations; flood: $SPOOF (no route back; strict rp_filter)"
echo "   medians over $ROUNDS round(s) of $SECONDS_MEASURED s after $WARMUP s warm-up"
printf '%-22s %12s %24s %14s\n' case "legit Mpps" "kernel rp_filter drops/s" "softirq CPU %"
for mode in kernel accel; do
    for flood in 0 1; do
        k="$mode/$flood"
        printf '%-22s %12s %24s %14s\n' "$mode, $([ $flood = 1 ] && echo "with flood" || echo "no flood")" \
            "$(median <<<"${MPPS[$k]}")" "$(median <<<"${RPF[$k]}")" "$(median <<<"${SOFT[$k]}")"
    done
done
echo "(total $((SECONDS - T_START)) s)"
