#!/usr/bin/env bash
# Forwarding-rate traffic from the kernel's pktgen, for real hardware: run it
# on a traffic-generator host wired to the router under test, and measure at
# the sink (or with `ip -s link` / `ethtool -S` on the router). Written after
# the pattern of the kernel's samples/pktgen scripts: one pktgen thread per
# CPU, each with its own device clone "DEV@N".
#
#   scripts/bench/pktgen.sh -i DEV -m ROUTER_MAC -d 1.0.0.0-223.255.255.255 \
#       [-s 64] [-t THREADS] [-n COUNT] [-b BURST] [-6]
#
# -d is the destination range; pktgen draws destinations uniformly from it
# (IPDST_RND). pktgen cannot draw from a prefix list: to exercise a full
# table, use a range the table covers densely (the default, 1.0.0.0 to
# 223.255.255.255, is 82% covered by the real full IPv4 table; packets
# to uncovered space go to the kernel as "no route" on the router, so check
# `accel stats` there). Source ports are randomised so that flows spread.
# On machines without pktgen (CONFIG_NET_PKTGEN, as on the development VM)
# use scripts/bench/forwarding.sh, whose generator needs no pktgen.
set -euo pipefail

DEV= DST_MAC= RANGE="1.0.0.0-223.255.255.255" SIZE=64 THREADS=1 COUNT=0 BURST=32 V6=0
while getopts "i:m:d:s:t:n:b:6h" opt; do
    case $opt in
    i) DEV=$OPTARG ;;
    m) DST_MAC=$OPTARG ;;
    d) RANGE=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    n) COUNT=$OPTARG ;;
    b) BURST=$OPTARG ;;
    6) V6=1 ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
    esac
done
[[ -n $DEV && -n $DST_MAC ]] || { sed -n '2,20p' "$0"; exit 2; }
[[ $(id -u) == 0 ]] || { echo "pktgen.sh: run as root" >&2; exit 1; }
if [[ ! -d /proc/net/pktgen ]]; then
    modprobe pktgen 2>/dev/null || true
fi
if [[ ! -e /proc/net/pktgen/pgctrl ]]; then
    echo "pktgen.sh: this kernel has no pktgen (CONFIG_NET_PKTGEN);" \
        "use scripts/bench/forwarding.sh, whose generator needs none" >&2
    exit 1
fi
DST_MIN=${RANGE%-*}
DST_MAX=${RANGE#*-}

# Writes one pktgen command and fails loudly when pktgen rejects it.
pg() {
    local file=$1
    shift
    echo "$*" > "$file"
    if grep -q "Result: ERROR" "$file" 2>/dev/null; then
        echo "pktgen rejected '$*' on $file: $(grep Result "$file")" >&2
        exit 1
    fi
}

pg /proc/net/pktgen/pgctrl reset
for ((t = 0; t < THREADS; t++)); do
    thread=/proc/net/pktgen/kpktgend_$t
    dev="$DEV@$t"
    pg "$thread" rem_device_all
    pg "$thread" add_device "$dev"
    d=/proc/net/pktgen/$dev
    pg "$d" flag QUEUE_MAP_CPU
    pg "$d" count "$COUNT"
    pg "$d" clone_skb 0
    pg "$d" pkt_size "$SIZE"
    pg "$d" burst "$BURST"
    pg "$d" delay 0
    pg "$d" dst_mac "$DST_MAC"
    if [[ $V6 == 1 ]]; then
        pg "$d" dst6_min "$DST_MIN"
        pg "$d" dst6_max "$DST_MAX"
    else
        pg "$d" dst_min "$DST_MIN"
        pg "$d" dst_max "$DST_MAX"
    fi
    pg "$d" flag IPDST_RND
    pg "$d" udp_src_min 1024
    pg "$d" udp_src_max 65535
    pg "$d" flag UDPSRC_RND
    pg "$d" udp_dst_min 9
    pg "$d" udp_dst_max 9
done

echo "pktgen: $THREADS thread(s) on $DEV, $SIZE-byte packets to $RANGE via $DST_MAC; Ctrl-C stops"
trap 'echo stop > /proc/net/pktgen/pgctrl' INT TERM
pg /proc/net/pktgen/pgctrl start
for ((t = 0; t < THREADS; t++)); do
    echo "== $DEV@$t"
    grep -A2 "Result:" "/proc/net/pktgen/$DEV@$t"
done
