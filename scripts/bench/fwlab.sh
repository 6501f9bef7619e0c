# shellcheck shell=bash
# The lab of the forwarding benchmarks (forwarding.sh, flood.sh), sourced
# after their option parsing: gen --veth-- rtr --veth-- snk in namespaces
# (fwb-*), the table ($WORK/table4.txt, table6.txt: the real full table
# from ../shared/data, or a generated one with its prefix-length mix;
# FWB_GROW grows it),
# set_routes FAMILY 1|N|full|ecmp, table_file FAMILY TABLE, start_accel MODE /
# stop_accel, in_ns.
# The caller sets ROOT and ARGS (to re-exec itself in a mount namespace).

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
CEILING=${CEILING:-$(dirname "$TRAFGEN")/accel-ceiling}

NS_GEN=fwb-gen NS_RTR=fwb-rtr NS_SNK=fwb-snk
WORK=$(mktemp -d /tmp/fwbench.XXXXXX)
ACCEL_PID=
# Background programs are started with nsenter itself, not this function:
# a function in the background is a subshell, whose $! a kill would miss
# (the program would run on into the next measurement).
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
# FWB_GROW="N4 N6": the table grown to N4 IPv4 and N6 IPv6 prefixes by
# translated copies of itself (headroom runs; see accel-bench grow-table).
if [ -n "${FWB_GROW:-}" ]; then
    read -r g4 g6 <<<"$FWB_GROW"
    "${BENCH:-$ROOT/target/release/accel-bench}" grow-table --from "$TABLE" --v4 "$g4" --v6 "$g6" \
        > "$WORK/grown.txt"
    mv "$WORK/grown.txt" "$TABLE"
    TABLE_DESC="$TABLE_DESC, grown by translated copies of itself (accel-bench grow-table, seed 1)"
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
# table_file FAMILY TABLE: the prefixes of TABLE (full or ecmp: all of the
# family's; a number N: a seeded random sample of N of them, as lookup.sh
# takes).
table_file() {
    local fam=$1 tab=$2 f
    case $tab in
        full | ecmp | 1) echo "$WORK/table$fam.txt" ;;
        *)
            f=$WORK/table$fam.$tab.txt
            [ -s "$f" ] || shuf -n "$tab" --random-source=<(yes 42) "$WORK/table$fam.txt" > "$f"
            echo "$f"
            ;;
    esac
}

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
            "$(table_file "$fam" "$tab")" > "$WORK/batch$fam"
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
start_accel() { # mode: mirror, fib, baseline (--baseline's mirror), ceiling, ceiling-read:MIB[xREADS][sSTRIDE], tc, generic
    local log=$WORK/accel-$1.$((++ACCEL_STARTS)).log t0=$SECONDS
    : > "$log"
    # A simple command, so $! is the program itself (nsenter execs it).
    local bin=$ACCEL mode=$1 ready='accel running on' hook=()
    if [ "$1" = baseline ]; then bin=$BASELINE mode=mirror; fi
    if [ "$1" = tc ]; then mode=mirror hook=(--hook tc); fi
    if [ "$1" = generic ]; then mode=mirror hook=(--xdp-mode generic); fi
    if [ "$1" = ceiling ] || [[ $1 == ceiling-read:* ]]; then
        local read=()
        if [ "$1" != ceiling ]; then
            local spec=${1#ceiling-read:} stride=1
            if [[ $spec == *s* ]]; then stride=${spec#*s} spec=${spec%s*}; fi
            read=(--read-mib "${spec%x*}" --stride "$stride")
            [[ $spec == *x* ]] && read+=(--reads "${spec#*x}")
        fi
        nsenter --net=/run/netns/$NS_RTR -- "$CEILING" --in r-in --out r-out --gw-mac "$S0_MAC" \
            "${read[@]}" > "$log" 2>&1 &
        ready='accel-ceiling: forwarding'
    else
        nsenter --net=/run/netns/$NS_RTR -- "$bin" run -i r-in -i r-out --mode "$mode" "${hook[@]}" \
            > "$log" 2>&1 &
    fi
    ACCEL_PID=$!
    # A fresh start forwards through bpf_fib_lookup until the mirror is
    # built: measure the mirror only once it is live.
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
