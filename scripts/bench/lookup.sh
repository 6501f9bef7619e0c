#!/usr/bin/env bash
# Lookup micro-benchmark (BENCHMARKS.md, "Lookup micro-benchmark"):
# ns per XDP route lookup of accel's IPv4 trie, bpf_fib_lookup and a
# BPF_MAP_TYPE_LPM_TRIE, through BPF_PROG_TEST_RUN, at 10 / 100k / full
# table; IPv6: accel's trie (fib.h) vs bpf_fib_lookup vs LPM trie.
#
# For each size the same prefixes go into a network namespace's kernel FIB
# (ip -batch, next hops spread over 4 gateways with permanent neighbours)
# and into accel-bench's BPF maps; accel-bench then runs in that namespace,
# since bpf_fib_lookup searches the caller's namespace.
#
# Usage (root): scripts/bench/lookup.sh [--sizes "10 100000 full"] [--repeat N]
#   ACCEL_BENCH=path  use this accel-bench instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZES="10 100000 full"
REPEAT=1000000
SEED=42
while [ $# -gt 0 ]; do
    case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    *) echo "usage: $0 [--sizes LIST] [--repeat N] [--seed N]" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root (network namespaces, BPF)" >&2
    exit 1
fi

BENCH="${ACCEL_BENCH:-}"
if [ -z "$BENCH" ]; then
    cargo build --release --bin accel-bench >&2
    BENCH="$PWD/target/release/accel-bench"
fi

NS="accel-lkb-$$"
TMP="$(mktemp -d)"
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

. scripts/bench/table.sh
bench_table "$TMP/all" "$BENCH" "$SEED"
grep -v : "$TMP/all" >"$TMP/all4" || true
grep : "$TMP/all" >"$TMP/all6" || true

# The lab: v0 is the router's interface (the one bpf_fib_lookup is asked
# about), its veth peer v1 the far side; the gateways are neighbours of v0.
ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
nsx ip link add v0 type veth peer name v1
nsx ip link set v1 up
nsx ip link set v0 up
nsx ip addr add 198.18.255.1/24 dev v0
nsx ip -6 addr add fd00:ff::1/64 dev v0 nodad
GW4=() GW6=()
for i in 2 3 4 5; do
    nsx ip neigh add "198.18.255.$i" lladdr "02:00:00:00:00:0$i" dev v0 nud permanent
    nsx ip -6 neigh add "fd00:ff::$i" lladdr "02:00:00:00:00:0$i" dev v0 nud permanent
    GW4+=("198.18.255.$i") GW6+=("fd00:ff::$i")
done

# sample FAMILY SIZE > file: a seeded random sample (the whole table for "full").
sample() {
    local src="$TMP/all$1"
    if [ "$2" = full ]; then
        cat "$src"
    else
        shuf -n "$2" --random-source=<(yes "$SEED") "$src"
    fi
}

# install FAMILY FILE: the prefixes into the namespace's main table.
install() {
    local fam=$1 file=$2 gws
    if [ "$fam" = 4 ]; then gws="${GW4[*]}"; else gws="${GW6[*]}"; fi
    awk -v gws="$gws" -v fam="$fam" 'BEGIN { n = split(gws, gw, " ") }
        { print "route add " $1 " via " gw[NR % n + 1] " proto 199" }' \
        "$file" >"$TMP/batch"
    # -force: carry on past a prefix the kernel refuses, and count them.
    local t0=$SECONDS
    nsx ip "-$fam" -force -batch "$TMP/batch" 2>"$TMP/batch.err" || true
    local failed have
    failed=$(grep -c . "$TMP/batch.err" || true)
    have=$(nsx ip "-$fam" route show proto 199 | wc -l)
    echo "  kernel FIB: $have IPv$fam routes installed in $((SECONDS - t0)) s ($failed refused)" >&2
}

flush() { nsx ip "-$1" route flush proto 199; }

RESULTS="$TMP/results"
: >"$RESULTS"
run_family() {
    local fam=$1 size
    for size in $SIZES; do
        sample "$fam" "$size" >"$TMP/prefixes"
        echo "== IPv$fam, $size: $(wc -l <"$TMP/prefixes") prefixes" >&2
        install "$fam" "$TMP/prefixes"
        nsx "$BENCH" lookup --family "$fam" --prefixes "$TMP/prefixes" --ifname v0 \
            --repeat "$REPEAT" --seed "$SEED" | tee "$TMP/out" >&2
        grep '^RESULT' "$TMP/out" | sed "s/^RESULT/RESULT size=$size/" >>"$RESULTS"
        flush "$fam"
    done
}

START=$SECONDS
run_family 4
run_family 6

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "Table: $TABLE"
echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
echo "ns/packet from BPF_PROG_TEST_RUN (repeat $REPEAT; median of 5 runs interleaved across the programs, min in brackets), random destinations inside the installed prefixes"
echo
echo "| family | size | prefixes | base ns | trie4 ns | trie6 ns | fib ns | lpm ns | accel/fib | accel/lpm | lpm/fib |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
while read -r line; do
    fam=$(field family "$line") size=$(field size "$line") n=$(field prefixes "$line")
    base=$(field base "$line") dir=$(field trie4 "$line") trie=$(field trie6 "$line") fib=$(field fib "$line") lpm=$(field lpm "$line")
    mbase=$(field min_base "$line") mdir=$(field min_trie4 "$line") mtrie=$(field min_trie6 "$line") mfib=$(field min_fib "$line") mlpm=$(field min_lpm "$line")
    # accel: the family's own structure (trie4 for IPv4, trie6 for IPv6).
    if [ "$fam" = 4 ]; then acc=$dir; else acc=$trie; fi
    echo "| IPv$fam | $size | $n | $base ($mbase) | $dir ($mdir) | $trie ($mtrie) | $fib ($mfib) | $lpm ($mlpm) | $(ratio "$acc" "$fib") | $(ratio "$acc" "$lpm") | $(ratio "$lpm" "$fib") |"
done <"$RESULTS"
echo
echo "(base: the same program without the lookup; subtract it for the lookup alone)"
echo "total time: $((SECONDS - START)) s"
