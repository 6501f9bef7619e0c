#!/usr/bin/env bash
# End-to-end test of accel beside the REAL routing daemons (Debian's frr 8.4
# and bird2 2.0.12), started by hand in network namespaces (no systemd).
#
#   sudo bash tests/daemons.sh     # ACCEL=path/to/accel to test another binary
#
#   src (s-rtr) ---- (r-src) rtr (r-b1) ---- (b-r1) bird
#                            rtr (r-b2) ---- (b-r2) bird
#
#   rtr runs FRR (zebra, bgpd, staticd) and accel on r-src, r-b1, r-b2.
#   bird runs BIRD and announces over eBGP on BOTH links (AS 65002 -> 65001):
#     10,000 IPv4 /24s 100.64.0.0 - 100.103.15.0 and 1,000 IPv6 /48s
#     2001:db8:1000:: - 2001:db8:13e7:: (so FRR installs ECMP routes with
#     nexthop objects), and 100 IPv4 /24s 100.120.0-99.0 on ONE link only
#     (the next-hop change of check c moves them to the other).
#   Check g adds a BGP unnumbered session over link 2's link-local addresses
#   (FRR `neighbor r-b2 interface`): 16 IPv4 /24s 100.122.0-15.0 with IPv6
#   next hops (RFC 5549).
#   bird is also the sink: 100.64.0.0/10 and 2001:db8::/32 are local routes
#   on its lo, a UDP sink logs every datagram with the interface it came in on.
#
# Addressing
#   src-rtr  10.21.1.0/24 fd00:21:1::/64 (src .2 and .3, rtr .1)
#   rtr-b1   10.21.2.0/24 fd00:21:2::/64 (rtr .1, bird .2)
#   rtr-b2   10.21.3.0/24 fd00:21:3::/64 (rtr .1, bird .2)
#
# Prints `ok - NAME` / `not ok - NAME: DETAILS`, `# ...` comments and finally
# `N passed, M failed`; exits non-zero on any failure.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

if [[ $(id -u) -ne 0 ]]; then
    echo "tests/daemons.sh must run as root (namespaces, XDP, routing daemons)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# shellcheck source=../scripts/lab.sh
source "$HERE/../scripts/lab.sh"
lab_private_mountns "$SELF" "$@"

# shellcheck source=tap.sh
source "$HERE/tap.sh"
now() { echo "$EPOCHREALTIME"; }

# ------------------------------------------------------------------ daemons present?
for c in vtysh birdc bird /usr/lib/frr/zebra /usr/lib/frr/bgpd /usr/lib/frr/staticd; do
    if ! command -v "$c" >/dev/null 2>&1; then
        echo "not ok - prerequisites: $c missing (scripts/install-deps.sh installs frr and bird2)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

LAB_PREFIX=${LAB_PREFIX:-frb$$}
lab_init || { echo "0 passed, 1 failed"; exit 1; }
NS_SRC=$LAB_PREFIX-src NS_RTR=$LAB_PREFIX-rtr NS_BIRD=$LAB_PREFIX-bird
LAB_NSS=("$NS_SRC" "$NS_RTR" "$NS_BIRD")
LAB_R_SRC=r-src LAB_R_DST1=r-b1 LAB_R_DST2=r-b2 # the interfaces lab_accel_start names
chmod 755 "$LAB_DIR"                               # FRR runs as user frr
FRR_DIR=$LAB_DIR/frr
BIRD_DIR=$LAB_DIR/bird
SINK_LOG=$LAB_DIR/sink.log
SENDERS=()

# Stop what this script started: senders, daemons by their pidfiles, then
# accel, the sink and the namespaces (lab_down).
stop_pidfile() {
    local f=$1 pid i
    [[ -s $f ]] || return 0
    pid=$(cat "$f" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
}
finish() {
    local rc=$? p
    for p in "${SENDERS[@]}"; do kill "$p" 2>/dev/null; done
    if [[ -n ${ACCEL_PID:-} ]] && [[ $FAILED -gt 0 ]] && [[ -f ${LAB_DIR:-/nonexistent}/accel.log ]]; then
        note "accel log (last 20 lines):"
        tail -n 20 "$LAB_DIR/accel.log" | sed 's/^/#   /'
    fi
    for p in staticd bgpd zebra; do stop_pidfile "$FRR_DIR/$p.pid"; done
    stop_pidfile "$BIRD_DIR/bird.pid"
    lab_down
    return $rc
}
trap finish EXIT
trap "exit 130" INT TERM

T_START=$SECONDS
if [[ ! -x $ACCEL ]]; then
    not_ok "accel binary" "$ACCEL is not executable (cargo build --release, or set ACCEL)"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
note "accel: $ACCEL; namespaces $LAB_PREFIX-*; temp dir $LAB_DIR"
note "$(/usr/lib/frr/zebra --version 2>&1 | head -n1); $(bird --version 2>&1)"

# ------------------------------------------------------------------ topology
topology() {
    local ns pair
    for ns in "${LAB_NSS[@]}"; do
        ip netns add "$ns" || return 1
        lab_in "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
            net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0 || return 1
        ip -n "$ns" link set lo up || return 1
    done
    # keep_addr_on_down: the IPv6 BGP sessions come back after check d's link down.
    # A multipath hash seed, as docs/deployment.md recommends: accel then
    # hashes ECMP flows in XDP exactly as the kernel does.
    lab_in "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv6.conf.all.keep_addr_on_down=1 net.ipv6.conf.default.keep_addr_on_down=1 \
        net.ipv4.fib_multipath_hash_seed=3141592653 || return 1
    lab_in "$NS_BIRD" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 || return 1
    ip -n "$NS_RTR" link add r-src type veth peer name s-rtr netns "$NS_SRC" || return 1
    ip -n "$NS_RTR" link add r-b1 type veth peer name b-r1 netns "$NS_BIRD" || return 1
    ip -n "$NS_RTR" link add r-b2 type veth peer name b-r2 netns "$NS_BIRD" || return 1
    lab_addr "$NS_SRC" s-rtr 10.21.1.2/24 fd00:21:1::2/64 || return 1
    ip -n "$NS_SRC" addr add 10.21.1.3/24 dev s-rtr || return 1
    ip -n "$NS_SRC" addr add fd00:21:1::3/64 dev s-rtr nodad || return 1
    lab_addr "$NS_RTR" r-src 10.21.1.1/24 fd00:21:1::1/64 || return 1
    lab_addr "$NS_RTR" r-b1 10.21.2.1/24 fd00:21:2::1/64 || return 1
    lab_addr "$NS_RTR" r-b2 10.21.3.1/24 fd00:21:3::1/64 || return 1
    lab_addr "$NS_BIRD" b-r1 10.21.2.2/24 fd00:21:2::2/64 || return 1
    lab_addr "$NS_BIRD" b-r2 10.21.3.2/24 fd00:21:3::2/64 || return 1
    ip -n "$NS_SRC" route add default via 10.21.1.1 || return 1
    ip -n "$NS_SRC" -6 route add default via fd00:21:1::1 || return 1
    # The sink: every announced address is local in bird (AnyIP on lo).
    ip -n "$NS_BIRD" route add local 100.64.0.0/10 dev lo || return 1
    ip -n "$NS_BIRD" -6 route add local 2001:db8::/32 dev lo || return 1
    ip -n "$NS_BIRD" route add 10.21.1.0/24 nexthop via 10.21.2.1 nexthop via 10.21.3.1 || return 1
    ip -n "$NS_BIRD" -6 route add fd00:21:1::/64 nexthop via fd00:21:2::1 nexthop via fd00:21:3::1 || return 1
    # GRO on every veth end outside rtr (XDP_REDIRECT into a veth needs NAPI
    # on the peer); TX checksum offload off on the senders (see lab.sh).
    for pair in "$NS_SRC s-rtr" "$NS_BIRD b-r1" "$NS_BIRD b-r2"; do
        set -- $pair
        lab_in "$1" ethtool -K "$2" gro on tx off >/dev/null || return 1
    done
    : >"$SINK_LOG"
    nsenter --net="/run/netns/$NS_BIRD" -- python3 "$LAB_TOOL" sink --port "$LAB_PORT" \
        --log "$SINK_LOG" --ready "$SINK_LOG.ready" &
    LAB_PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        [[ -e $SINK_LOG.ready ]] && return 0
        sleep 0.05
    done
    echo "sink did not start" >&2
    return 1
}

# ------------------------------------------------------------------ BIRD
N4=10000 N6=1000 NNH=100 NU=16
# bird_routes [SKIP_WITHDRAW_BLOCK]: the static routes BIRD announces.
bird_routes() {
    local skip=
    [[ ${1:-0} == 1 ]] && skip=--skip-withdraw
    python3 "$LAB_TOOL" bird-routes $skip "$BIRD_DIR" "$N4" "$N6" "$NNH"
    mv "$BIRD_DIR/routes4.conf.tmp" "$BIRD_DIR/routes4.conf"
    mv "$BIRD_DIR/routes6.conf.tmp" "$BIRD_DIR/routes6.conf"
}
# bird_conf NH_LINK: 100.120.0.0/16 is announced on link NH_LINK (1 or 2) only.
bird_conf() {
    cat >"$BIRD_DIR/bird.conf" <<EOF
log "$BIRD_DIR/bird.log" all;
router id 10.21.2.2;
define NH_LINK = $1;
protocol device { scan time 10; }
protocol static s4 {
    ipv4;
include "$BIRD_DIR/routes4.conf";
}
protocol static s6 {
    ipv6;
include "$BIRD_DIR/routes6.conf";
}
protocol static s4u {
    ipv4;
$(for i in $(seq 0 $((NU - 1))); do echo "    route 100.122.$i.0/24 blackhole;"; done)
}
filter on_link1 { if net ~ [ 100.122.0.0/16+ ] then reject; if net ~ [ 100.120.0.0/16+ ] && NH_LINK != 1 then reject; accept; }
filter on_link2 { if net ~ [ 100.122.0.0/16+ ] then reject; if net ~ [ 100.120.0.0/16+ ] && NH_LINK != 2 then reject; accept; }
template bgp rtr {
    local as 65002;
    connect delay time 1;
    connect retry time 2;
    error wait time 1, 4;
    hold time 9;
    keepalive time 3;
}
protocol bgp l1v4 from rtr { local 10.21.2.2; neighbor 10.21.2.1 as 65001; ipv4 { import none; export filter on_link1; }; }
protocol bgp l2v4 from rtr { local 10.21.3.2; neighbor 10.21.3.1 as 65001; ipv4 { import none; export filter on_link2; }; }
protocol bgp l1v6 from rtr { local fd00:21:2::2; neighbor fd00:21:2::1 as 65001; ipv6 { import none; export all; }; }
protocol bgp l2v6 from rtr { local fd00:21:3::2; neighbor fd00:21:3::1 as 65001; ipv6 { import none; export all; }; }
EOF
    # Check g: BGP unnumbered with FRR over link 2's link-local addresses;
    # IPv4 routes with IPv6 next hops (RFC 5549). The router advertisements
    # let FRR learn BIRD's link-local address.
    if [[ -n ${UNNUM_LL:-} ]]; then
        cat >>"$BIRD_DIR/bird.conf" <<EOF
protocol radv ra2 { interface "b-r2" { min ra interval 3; max ra interval 4; }; }
protocol bgp unnum from rtr {
    neighbor $UNNUM_LL % 'b-r2' as 65001;
    ipv4 { extended next hop on; import none; export where net ~ [ 100.122.0.0/16+ ]; };
}
EOF
    fi
}
birdc_() { lab_in "$NS_BIRD" birdc -s "$BIRD_DIR/bird.ctl" "$@"; }
bird_start() {
    mkdir -p "$BIRD_DIR"
    bird_routes 0
    bird_conf 1
    lab_in "$NS_BIRD" bird -c "$BIRD_DIR/bird.conf" -s "$BIRD_DIR/bird.ctl" -P "$BIRD_DIR/bird.pid" || return 1
}
# bird_reconfigure: prints the time `birdc configure` returned.
bird_reconfigure() {
    local out
    out=$(birdc_ configure 2>&1)
    grep -q 'Reconfigured' <<<"$out" || { echo "birdc configure: $out" >&2; return 1; }
}

# ------------------------------------------------------------------ FRR
frr_start() {
    local d
    mkdir -p "$FRR_DIR"
    cat >"$FRR_DIR/zebra.conf" <<EOF
hostname rtr
log file $FRR_DIR/zebra.log
EOF
    cat >"$FRR_DIR/staticd.conf" <<EOF
hostname rtr
log file $FRR_DIR/staticd.log
EOF
    cat >"$FRR_DIR/bgpd.conf" <<EOF
hostname rtr
log file $FRR_DIR/bgpd.log
router bgp 65001
 bgp router-id 10.21.2.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 timers bgp 3 9
 neighbor 10.21.2.2 remote-as 65002
 neighbor 10.21.2.2 timers connect 2
 neighbor 10.21.3.2 remote-as 65002
 neighbor 10.21.3.2 timers connect 2
 neighbor fd00:21:2::2 remote-as 65002
 neighbor fd00:21:2::2 timers connect 2
 neighbor fd00:21:3::2 remote-as 65002
 neighbor fd00:21:3::2 timers connect 2
 address-family ipv4 unicast
  neighbor 10.21.2.2 activate
  neighbor 10.21.3.2 activate
  maximum-paths 8
 exit-address-family
 address-family ipv6 unicast
  neighbor fd00:21:2::2 activate
  neighbor fd00:21:3::2 activate
  maximum-paths 8
 exit-address-family
EOF
    chown -R frr:frr "$FRR_DIR"
    for d in zebra staticd bgpd; do
        local extra=()
        [[ $d == zebra ]] && extra=(-s 33554432)
        ip netns exec "$NS_RTR" /usr/lib/frr/$d -d -f "$FRR_DIR/$d.conf" -i "$FRR_DIR/$d.pid" \
            -z "$FRR_DIR/zserv.api" --vty_socket "$FRR_DIR" -u frr -g frr "${extra[@]}" \
            >>"$FRR_DIR/start.log" 2>&1 || { echo "$d failed to start: $(tail -n 3 "$FRR_DIR/start.log")" >&2; return 1; }
        if [[ $d == zebra ]]; then
            for ((i = 0; i < 50; i++)); do [[ -S $FRR_DIR/zserv.api ]] && break; sleep 0.1; done
        fi
    done
}
vtysh_() { lab_in "$NS_RTR" vtysh --vty_socket "$FRR_DIR" "$@"; }

# routes_json FAMILY ROOT [ip route filters]: labtool routes summary of rtr's main table.
routes_json() {
    local fam=$1 root=$2
    shift 2
    ip -n "$NS_RTR" -"$fam" -j route show root "$root" "$@" | python3 "$LAB_TOOL" routes
}
# nroutes FAMILY ROOT [filters]: one line per route.
nroutes() {
    local fam=$1 root=$2
    shift 2
    ip -n "$NS_RTR" -"$fam" -o route show root "$root" "$@" | grep -c .
}

# ------------------------------------------------------------------ traffic
mkdsts() { python3 -c "$1" >"$LAB_DIR/$2"; }
mkdsts 'print("\n".join(f"100.{64 + i // 256}.{i % 256}.1" for i in range(0, 10000, 5)))' d4_all
mkdsts 'print("\n".join(f"2001:db8:{0x1000 + i:x}::1" for i in range(0, 1000, 2)))' d6_all
mkdsts 'print("\n".join(f"100.70.{i}.1" for i in range(256)))' d4_wd
mkdsts 'print("\n".join(f"2001:db8:{0x1100 + i:x}::1" for i in range(256)))' d6_wd
mkdsts 'print("\n".join(f"100.120.{i}.1" for i in range(100)))' d4_nh
mkdsts 'print("\n".join(f"100.64.{i}.7" for i in range(256)))' d4_tbl
mkdsts "print('\n'.join(f'100.122.{i}.1' for i in range($NU)))" d4_un
mkdsts 'print("\n".join(f"2001:db8:{0x1000 + i:x}::7" for i in range(256)))' d6_tbl
echo 100.99.99.99 >"$LAB_DIR/d4_one"
echo 2001:db8:1234::99 >"$LAB_DIR/d6_one"
echo 100.110.0.1 >"$LAB_DIR/d4_st"
echo 2001:db8:2110::1 >"$LAB_DIR/d6_st"
echo 100.111.0.1 >"$LAB_DIR/d4_bh"
echo 2001:db8:2111::1 >"$LAB_DIR/d6_bh"

# send DSTS COUNT RATE TAG [--src A]: prints the sender's summary.
send() {
    local dsts=$1 count=$2 rate=$3 tag=$4
    shift 4
    timeout 60 nsenter --net="/run/netns/$NS_SRC" -- python3 "$LAB_TOOL" send --dsts "$LAB_DIR/$dsts" \
        --port "$LAB_PORT" --count "$count" --rate "$rate" --tag "$tag" "$@"
}
# send_bg DSTS DURATION RATE TAG: background sender (summary in $LAB_DIR/TAG.send); sets SEND_PID.
send_bg() {
    local dsts=$1 dur=$2 rate=$3 tag=$4
    timeout 60 nsenter --net="/run/netns/$NS_SRC" -- python3 "$LAB_TOOL" send --dsts "$LAB_DIR/$dsts" \
        --port "$LAB_PORT" --duration "$dur" --rate "$rate" --tag "$tag" >"$LAB_DIR/$tag.send" &
    SEND_PID=$!
    SENDERS+=($SEND_PID)
}
sent_of() { awk '{print $2}' "$LAB_DIR/$1.send" 2>/dev/null || echo 0; }
summary() { python3 "$LAB_TOOL" summary --tag "$@" "$SINK_LOG"; }
received() { jget "$(summary "$@")" received; }
# wait_received TAG N: until the sink logged N datagrams of TAG (10 s max).
wait_received() {
    local i
    for ((i = 0; i < 200; i++)); do
        [[ $(received "$1") -ge $2 ]] && return 0
        sleep 0.05
    done
    return 1
}
IF_B1=$(true) IF_B2=$(true)
ifindex() { ip -n "$1" -j link show dev "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])'; }
xstat() { lab_accel_stat "$@" 2>/dev/null || echo -1; }
kfwd() { lab_fwd_counters; }
# wait_until TIMEOUT CMD...: polls CMD every ~10 ms; sets W_FIRST (first poll
# that differed from the first answer... not used) and W_T (time CMD succeeded).
wait_until() {
    local timeout=$1 deadline
    shift
    deadline=$(python3 -c "import time; print(time.time() + $timeout)")
    while :; do
        if "$@"; then W_T=$EPOCHREALTIME; return 0; fi
        le "$EPOCHREALTIME" "$deadline" || return 1
        sleep 0.01
    done
}

# ================================================================== setup
if ! topology; then
    not_ok "lab setup" "building the namespaces failed"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
IF_B1=$(ifindex "$NS_BIRD" b-r1) IF_B2=$(ifindex "$NS_BIRD" b-r2)
note "bird-side ifindex: b-r1 $IF_B1, b-r2 $IF_B2"

# ================================================================== a. BGP
t0=$SECONDS
if bird_start && frr_start; then
    ok "a. BIRD and FRR (zebra, staticd, bgpd) start in their namespaces"
else
    not_ok "a. BIRD and FRR start" "see $LAB_DIR"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
sessions_up() {
    local v b
    v=$(vtysh_ -c 'show bgp summary json' 2>/dev/null)
    b=$(birdc_ show protocols 2>/dev/null | grep -c 'Established')
    python3 "$LAB_TOOL" bgp-up --want 4 "$v" && [[ $b -eq 4 ]]
}
fib_full() {
    [[ $(nroutes 4 100.64.0.0/10 proto bgp) -eq $((N4 + NNH)) && $(nroutes 6 2001:db8::/32 proto bgp) -eq $N6 ]]
}
if wait_until 60 sessions_up; then
    ok "a. 4 BGP sessions Established (vtysh and birdc agree)" "after $((SECONDS - t0)) s"
else
    not_ok "a. 4 BGP sessions Established" "vtysh: $(vtysh_ -c 'show bgp summary' 2>&1 | grep -E '^[0-9a-f:.]+ ' | tr -s ' \n' ' '); birdc: $(birdc_ show protocols 2>&1 | grep -E 'BGP' | tr -s ' \n' ' ')"
fi
if wait_until 60 fib_full; then
    ok "a. kernel FIB holds all BGP routes" "$((N4 + NNH)) IPv4 + $N6 IPv6 proto bgp, after $((SECONDS - t0)) s from daemon start"
else
    not_ok "a. kernel FIB holds all BGP routes" "IPv4 $(nroutes 4 100.64.0.0/10 proto bgp)/$((N4 + NNH)), IPv6 $(nroutes 6 2001:db8::/32 proto bgp)/$N6 after 60 s"
fi
r4=$(routes_json 4 100.64.0.0/10 proto bgp)
r6=$(routes_json 6 2001:db8::/32 proto bgp)
check "a. IPv4: every BGP route has an nhid, $N4 have 2 paths (the $NNH on one link only: 1)" "$r4" \
    eval '[[ $(jget "$r4" with_nhid) -eq $((N4 + NNH)) && $(jget "$r4" paths.2) -eq $N4 && $(jget "$r4" paths.1) -eq $NNH ]]'
check "a. IPv6: every BGP route has an nhid and 2 paths" "$r6" \
    eval '[[ $(jget "$r6" with_nhid) -eq $N6 && $(jget "$r6" paths.2) -eq $N6 ]]'
note "sample: $(ip -n "$NS_RTR" -d route show 100.64.0.0/24 | tr -s ' \n' ' ')"
note "sample: $(ip -n "$NS_RTR" -6 route show 2001:db8:1000::/48 | tr -s ' \n' ' ')"
note "nexthop objects: $(ip -n "$NS_RTR" nexthop show | tr '\n' ';' | tr -s ' ')"

# The kernel's own choice of ECMP member for every destination, before accel
# runs: check b requires XDP to pick the same member for every one.
# Same source port in both runs: the flow label that Linux derives from the
# 5-tuple (auto flow labels) is part of the IPv6 multipath hash.
send d4_all "$(wc -l <"$LAB_DIR/d4_all")" 2000 kpath4 --sport 40000 >/dev/null
send d6_all "$(wc -l <"$LAB_DIR/d6_all")" 2000 kpath6 --sport 40000 >/dev/null

# ================================================================== b. accel forwarding
lab_accel_start
t0=$SECONDS
if lab_accel_wait 60 && [[ $(lab_accel_hooked) -eq 3 ]]; then
    ok "b. accel run starts on r-src, r-b1, r-b2 beside FRR" "pid $ACCEL_PID, $((SECONDS - t0)) s: $(lab_accel_log | grep -m1 'accel running on' | sed 's/.*accel running/accel running/')"
else
    not_ok "b. accel run starts" "log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
fi
# Warm the neighbours (first packets to an unresolved neighbour go to the kernel).
lab_in "$NS_SRC" ping -q -c 2 -i 0.2 -W 2 100.64.0.1 >/dev/null 2>&1
lab_in "$NS_SRC" ping -q -c 2 -i 0.2 -W 2 100.64.1.1 >/dev/null 2>&1
lab_in "$NS_RTR" ping -q -c 1 -W 1 10.21.2.2 >/dev/null 2>&1
lab_in "$NS_RTR" ping -q -c 1 -W 1 10.21.3.2 >/dev/null 2>&1
for dev in r-b1 r-b2; do
    lab_in "$NS_RTR" ping -6 -q -c 1 -W 1 "ff02::1%$dev" >/dev/null 2>&1
done
send d4_all 200 2000 warm4 >/dev/null
send d6_all 200 2000 warm6 >/dev/null
sleep 0.3

B_S0=$(lab_accel stats 2>&1)
NB4=4000 NB6=2000
for fam in 4 6; do
    if [[ $fam == 4 ]]; then n=$NB4; else n=$NB6; fi
    read -r -a k0 <<<"$(kfwd)"
    x0=$(xstat --iface r-src fwd_mirror)
    rx10=$(lab_rx_packets "$NS_BIRD" b-r1) rx20=$(lab_rx_packets "$NS_BIRD" b-r2)
    out=$(send "d${fam}_all" "$n" 4000 "b$fam" --sport 40000)
    sleep 0.5
    read -r -a k1 <<<"$(kfwd)"
    x1=$(xstat --iface r-src fwd_mirror)
    rx11=$(lab_rx_packets "$NS_BIRD" b-r1) rx21=$(lab_rx_packets "$NS_BIRD" b-r2)
    s=$(summary "b$fam")
    got=$(jget "$s" received)
    kf=$((k1[fam == 4 ? 0 : 1] - k0[fam == 4 ? 0 : 1]))
    xf=$((x1 - x0))
    on1=$(jget "$s" "per_ifindex.$IF_B1") on2=$(jget "$s" "per_ifindex.$IF_B2")
    [[ $on1 == none ]] && on1=0
    [[ $on2 == none ]] && on2=0
    d="$out; sink got $got ($on1 via b-r1, $on2 via b-r2), rx b-r1 +$((rx11 - rx10)) b-r2 +$((rx21 - rx20)), router kernel forwarded $kf, accel forwarded $xf"
    ndst=$(wc -l <"$LAB_DIR/d${fam}_all")
    check "b. IPv$fam: $n datagrams to $ndst announced prefixes all arrive" "$d" test "$got" -eq "$n"
    check "b. IPv$fam: router's kernel forwarding counter stays flat (< 1% of sent)" "kernel forwarded $kf of $n" test "$kf" -lt $((n / 100))
    check "b. IPv$fam: accel forwarded every ECMP datagram from the mirror (fwd_mirror >= sent)" "accel +$xf" test "$xf" -ge "$n"
    nd=$(wc -l <"$LAB_DIR/d${fam}_all")
    pm=$(python3 "$LAB_TOOL" paths --a "kpath$fam" --b "b$fam" --n "$nd" "$SINK_LOG")
    check "b. IPv$fam: every destination leaves by the same ECMP member as when the kernel forwarded it" "$pm" \
        eval "[[ $(jget "$pm" compared) -ge $((nd * 95 / 100)) && $(jget "$pm" mismatched) -eq 0 ]]"
    check "b. IPv$fam: flows spread over both links (each >= 25%, sink and rx counters)" \
        "via b-r1 $on1, via b-r2 $on2; rx +$((rx11 - rx10)) / +$((rx21 - rx20))" \
        eval "[[ $on1 -ge $((n / 4)) && $on2 -ge $((n / 4)) && $((rx11 - rx10)) -ge $((n / 4)) && $((rx21 - rx20)) -ge $((n / 4)) ]]"
    out=$(send "d${fam}_one" 1000 4000 "b${fam}one")
    sleep 0.3
    s=$(summary "b${fam}one")
    check "b. IPv$fam: one flow (same 5-tuple, $(cat "$LAB_DIR/d${fam}_one")) stays on one link" "$out; sink: $s" \
        eval "[[ $(jget "$s" received) -eq 1000 ]] && python3 -c 'import json,sys; sys.exit(0 if len(json.loads(sys.argv[1])[\"per_ifindex\"]) == 1 else 1)' '$s'"
done
B_S1=$(lab_accel stats 2>&1)
note "accel counters on r-src after check b: $(lab_accel stats --json 2>/dev/null | python3 "$LAB_TOOL" counters r-src)"

for a in 100.64.0.1 2001:db8:1000::1; do
    note "accel lookup $a (ECMP):"
    lab_accel lookup "$a" 2>&1 | sed 's/^/#   /'
done

# ================================================================== c. withdraw, next-hop change
# c1: BIRD withdraws 100.70.0.0/16 (256 IPv4 /24s) and 2001:db8:1100::/40
# (256 IPv6 /48s) while traffic runs to them; then announces them again.
wd_gone() { [[ $(nroutes 4 100.70.0.0/16 proto bgp) -eq 0 && $(nroutes 6 2001:db8:1100::/40 proto bgp) -eq 0 ]]; }
wd_back() { [[ $(nroutes 4 100.70.0.0/16 proto bgp) -eq 256 && $(nroutes 6 2001:db8:1100::/40 proto bgp) -eq 256 ]]; }
wd_some_gone() { [[ $(nroutes 4 100.70.0.0/16 proto bgp) -lt 256 || $(nroutes 6 2001:db8:1100::/40 proto bgp) -lt 256 ]]; }
wd_some_back() { [[ $(nroutes 4 100.70.0.0/16 proto bgp) -gt 0 || $(nroutes 6 2001:db8:1100::/40 proto bgp) -gt 0 ]]; }
# A stream's analysis around withdraw at [td0 (configure), td1 (first route
# gone), td2 (all gone)] and announce at [ta0, ta1 (first back), ta2 (all back)].
wd_analyse() {
    python3 "$LAB_TOOL" withdraw --tag "$1" --td0 "$td0" --td2 "$td2" --ta0 "$ta0" --ta1 "$ta1" --ta2 "$ta2" "$SINK_LOG"
}
MON=$LAB_DIR/monitor.txt
nsenter --net="/run/netns/$NS_RTR" -- ip -ts -o monitor route >"$MON" 2>/dev/null &
LAB_PIDS+=($!)
send_bg d4_wd 20 1000 c4wd
P4=$SEND_PID
send_bg d6_wd 20 1000 c6wd
P6=$SEND_PID
if wait_received c4wd 300 && wait_received c6wd 300; then
    bird_routes 1
    td0=$(now)
    bird_reconfigure
    wait_until 10 wd_some_gone && td1=$W_T || td1=$(now)
    wait_until 20 wd_gone && td2=$W_T || td2=$(now)
    sleep 1.5
    bird_routes 0
    ta0=$(now)
    bird_reconfigure
    wait_until 10 wd_some_back && ta1=$W_T || ta1=$(now)
    wait_until 20 wd_back && ta2=$W_T || ta2=$(now)
    sleep 1.5
    kill "$P4" "$P6" 2>/dev/null
    wait "$P4" "$P6" 2>/dev/null
    sleep 0.3
    for fam in 4 6; do
        if [[ $fam == 4 ]]; then plen=24; else plen=48; fi
        res=$(wd_analyse "c${fam}wd")
        pp=$(python3 "$LAB_TOOL" perprefix --mode withdraw --tag "c${fam}wd" --dsts "$LAB_DIR/d${fam}_wd" --monitor "$MON" \
            --plen $plen --t0 "$td0" --first "$(awk '{print $6}' "$LAB_DIR/c${fam}wd.send")" --rate 1000 \
            --sent "$(sent_of "c${fam}wd")" --settle 1.0 "$SINK_LOG")
        lag=$(jget "$pp" lag_ms)
        check "c. IPv$fam withdraw of 256 prefixes: nothing reaches the sink later than 1 s after its route left the kernel" \
            "per prefix (kernel event times): latest delivery ${lag} ms after deletion, $(jget "$pp" leaked) delivered after deletion; $pp; polled: $res" \
            eval "[[ $(jget "$pp" prefixes_deleted) -eq 256 ]] && { [[ $lag == none ]] || le $lag 1000; }"
        check "c. IPv$fam re-announce: every prefix receives again within 1 s of its kernel route install" \
            "$(jget "$pp" lost_after_add) datagrams lost that were sent > 1 s after their route came back" \
            eval "[[ $(jget "$pp" prefixes_readded) -eq 256 && $(jget "$pp" lost_after_add) -eq 0 ]]"
    done
else
    kill "$P4" "$P6" 2>/dev/null
    not_ok "c. withdraw" "traffic to 100.70.0.0/16 / 2001:db8:1100::/40 never arrived: $(summary c4wd) $(summary c6wd)"
fi

# c2: next-hop change: 100.120.0.0/24-100.120.99.0/24 move from link 1 to link 2 and back.
nh_on() { [[ $(ip -n "$NS_RTR" -o route show root 100.120.0.0/16 proto bgp | grep -c "via $1 ") -eq $NNH ]]; }
nh_some() { [[ $(ip -n "$NS_RTR" -o route show root 100.120.0.0/16 proto bgp | grep -c "via $1 ") -gt 0 ]]; }
nh_move() {
    local link=$1 gw=$2 tag=$3 old=$4 new=$5 t0 t1 t2 res lag
    send_bg d4_nh 20 2000 "$tag"
    local p=$SEND_PID
    if ! wait_received "$tag" 300; then
        kill "$p" 2>/dev/null
        NH_RESULT="traffic to 100.120.0.0/16 never arrived: $(summary "$tag")"
        return 1
    fi
    bird_conf "$link"
    t0=$(now)
    bird_reconfigure
    wait_until 10 nh_some "$gw" && t1=$W_T || t1=$(now)
    wait_until 20 nh_on "$gw" && t2=$W_T || t2=$(now)
    sleep 1.5
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    sleep 0.3
    res=$(python3 "$LAB_TOOL" follow --tag "$tag" --t "$t2" --t-first "$t1" --old "$old" --new "$new" "$SINK_LOG")
    pp=$(python3 "$LAB_TOOL" perprefix --mode move --gw "$gw" --old "$old" --new "$new" --tag "$tag" \
        --dsts "$LAB_DIR/d4_nh" --monitor "$MON" --plen 24 --t0 "$t0" --first "$(awk '{print $6}' "$LAB_DIR/$tag.send")" \
        --rate 2000 --sent "$(sent_of "$tag")" --settle 1.0 "$SINK_LOG")
    lag=$(jget "$pp" lag_ms)
    NH_RESULT="kernel moved all $NNH routes $(python3 -c "print(round(($t2 - $t0) * 1000))") ms after birdc configure; per prefix, the last datagram on the old link was sent ${lag} ms after its kernel route changed; $pp; polled: $res"
    [[ $(jget "$pp" prefixes_moved) -eq $NNH && $(jget "$pp" lost_after_move) -eq 0 && $(jget "$pp" on_new_after_change) -ge 500 ]] &&
        { [[ $lag == none ]] || le "$lag" 1000; }
}
if nh_move 2 10.21.3.2 c4nh "$IF_B1" "$IF_B2"; then ok "c. IPv4 next-hop change (BGP path link 1 -> link 2): traffic follows within 1 s" "$NH_RESULT"
else not_ok "c. IPv4 next-hop change (BGP path link 1 -> link 2): traffic follows within 1 s" "$NH_RESULT"; fi
if nh_move 1 10.21.2.2 c4nhb "$IF_B2" "$IF_B1"; then ok "c. IPv4 next-hop change back (link 2 -> link 1): traffic follows within 1 s" "$NH_RESULT"
else not_ok "c. IPv4 next-hop change back (link 2 -> link 1): traffic follows within 1 s" "$NH_RESULT"; fi

# ================================================================== f. FRR statics, blackhole, ip rule
vtysh_ -c 'configure terminal' -c 'ip route 100.110.0.0/24 10.21.3.2' -c 'ip route 100.111.0.0/24 blackhole' \
    -c 'ipv6 route 2001:db8:2110::/48 fd00:21:3::2' -c 'ipv6 route 2001:db8:2111::/48 blackhole' >/dev/null 2>&1
statics_in() {
    [[ $(ip -n "$NS_RTR" -o route show proto 196 | grep -c .) -ge 2 && $(ip -n "$NS_RTR" -6 -o route show proto 196 | grep -c .) -ge 2 ]]
}
wait_until 10 statics_in
st4=$(ip -n "$NS_RTR" -o route show proto 196 | tr -s ' \n' ' ')
st6=$(ip -n "$NS_RTR" -6 -o route show proto 196 | tr -s ' \n' ' ')
check "f. FRR staticd routes in the kernel as proto 196 (gateway routes with nhid, blackholes)" "$st4 | $st6" \
    eval '[[ $st4 == *"100.110.0.0/24 nhid"* && $st4 == *"blackhole 100.111.0.0/24"* && $st6 == *"2001:db8:2110::/48 nhid"* && $st6 == *"blackhole 2001:db8:2111::/48"* ]]'
for fam in 4 6; do
    x0=$(xstat --iface r-src fwd_mirror fwd_fib)
    m0=$(xstat --iface r-src fwd_mirror)
    out=$(send "d${fam}_st" 500 4000 "f${fam}st")
    sleep 0.3
    x1=$(xstat --iface r-src fwd_mirror fwd_fib)
    m1=$(xstat --iface r-src fwd_mirror)
    s=$(summary "f${fam}st")
    check "f. IPv$fam: UDP to the FRR static route arrives via link 2 only, forwarded by accel" \
        "$out; sink $s; accel forwarded +$((x1 - x0)) (from the mirror: +$((m1 - m0)))" \
        eval "[[ $(jget "$s" received) -eq 500 && $(jget "$s" "per_ifindex.$IF_B2") -eq 500 && $((x1 - x0)) -ge 500 ]]"
    bh0=$(xstat drop_blackhole)
    p0=$(xstat passed)
    rx10=$(lab_rx_packets "$NS_BIRD" b-r1) rx20=$(lab_rx_packets "$NS_BIRD" b-r2)
    out=$(send "d${fam}_bh" 1000 4000 "f${fam}bh")
    sleep 0.3
    bh1=$(xstat drop_blackhole)
    p1=$(xstat passed)
    rx11=$(lab_rx_packets "$NS_BIRD" b-r1) rx21=$(lab_rx_packets "$NS_BIRD" b-r2)
    got=$(received "f${fam}bh")
    d="$out; sink got $got; accel drop_blackhole +$((bh1 - bh0)), passed to kernel +$((p1 - p0)); rx b-r1 +$((rx11 - rx10)) b-r2 +$((rx21 - rx20))"
    check "f. IPv$fam: UDP to the FRR blackhole static is dropped" "$d" \
        eval "[[ $got -eq 0 && $((rx11 - rx10)) -lt 50 && $((rx21 - rx20)) -lt 50 ]]"
    if ((bh1 - bh0 >= 1000)); then
        note "f. IPv$fam blackhole: dropped by accel in XDP (drop_blackhole +$((bh1 - bh0)))"
    else
        note "f. IPv$fam blackhole: NOT dropped in XDP (drop_blackhole +$((bh1 - bh0))); passed to the kernel +$((p1 - p0)), which dropped them"
    fi
done
# Policy routing: from 10.21.1.3 / fd00:21:1::3 use table 100, which sends
# 100.64.0.0/16 and 2001:db8:1000::/40 over link 1 only (main: ECMP).
ip -n "$NS_RTR" route add 100.64.0.0/16 via 10.21.2.2 table 100
ip -n "$NS_RTR" -6 route add 2001:db8:1000::/40 via fd00:21:2::2 table 100
ip -n "$NS_RTR" rule add from 10.21.1.3 table 100 pref 100
ip -n "$NS_RTR" -6 rule add from fd00:21:1::3 table 100 pref 100
sleep 0.3
for fam in 4 6; do
    if [[ $fam == 4 ]]; then src=10.21.1.3 other=10.21.1.2; else src=fd00:21:1::3 other=fd00:21:1::2; fi
    x0=$(xstat --iface r-src fwd_fib)
    m0=$(xstat --iface r-src fwd_mirror)
    read -r -a k0 <<<"$(kfwd)"
    out=$(send "d${fam}_tbl" 1000 4000 "f${fam}tbl" --src "$src")
    out2=$(send "d${fam}_tbl" 1000 4000 "f${fam}main" --src "$other")
    sleep 0.3
    x1=$(xstat --iface r-src fwd_fib)
    m1=$(xstat --iface r-src fwd_mirror)
    read -r -a k1 <<<"$(kfwd)"
    kf=$((k1[fam == 4 ? 0 : 1] - k0[fam == 4 ? 0 : 1]))
    s=$(summary "f${fam}tbl")
    s2=$(summary "f${fam}main")
    check "f. IPv$fam: from $src (ip rule -> table 100) all 1000 arrive via link 1 only" \
        "sink $s; from $other (main, ECMP): $s2; accel fwd_fib +$((x1 - x0)), fwd_mirror +$((m1 - m0)), kernel forwarded $kf" \
        eval "[[ $(jget "$s" received) -eq 1000 && $(jget "$s" "per_ifindex.$IF_B1") -eq 1000 && $(jget "$s2" received) -eq 1000 && $(jget "$s2" "per_ifindex.$IF_B2") != none ]]"
    check "f. IPv$fam: the source rule is mirrored: its sources go to bpf_fib_lookup (fwd_fib +1000), the others stay on the mirror (fwd_mirror +1000), kernel flat" \
        "fwd_fib +$((x1 - x0)), fwd_mirror +$((m1 - m0)), kernel forwarded $kf" \
        eval "[[ $((x1 - x0)) -ge 1000 && $((x1 - x0)) -lt 1100 && $((m1 - m0)) -ge 1000 && $kf -lt 20 ]]"
done
ip -n "$NS_RTR" rule del from 10.21.1.3 table 100 pref 100
ip -n "$NS_RTR" -6 rule del from fd00:21:1::3 table 100 pref 100
sy=$(lab_accel sync 2>&1)
check "f. accel sync after checks a-f reports 0 changes" "$(tr -s '\n' ' ' <<<"$sy")" grep -q '^synced: 0 changes' <<<"$sy"

# ================================================================== e. accel restart under traffic
E_RATE=2000
send_bg d4_all 7 $E_RATE e4
E4=$SEND_PID
send_bg d6_all 7 $E_RATE e6
E6=$SEND_PID
wait_received e4 500
wait_received e6 500
te0=$(now)
lab_accel_stop TERM
erc=$?
te1=$(now)
lab_accel_start
lab_accel_wait 30
ewait=$?
te2=$(now)
wait "$E4" "$E6" 2>/dev/null
sleep 0.5
fwd_after=$(xstat --iface r-src fwd_mirror fwd_fib)
for fam in 4 6; do
    n=$(sent_of "e$fam")
    res=$(python3 "$LAB_TOOL" gaps --tag "e$fam" --sent "$n" --rate "$E_RATE" "$SINK_LOG")
    lost=$(jget "$res" lost)
    check "e. IPv$fam: accel SIGTERM + restart under $E_RATE datagrams/s: lost < 1% of sent" \
        "lost $lost of $n; stop took $(python3 -c "print(round(($te1 - $te0) * 1000))") ms (exit $erc), restart until running $(python3 -c "print(round(($te2 - $te1) * 1000))") ms; $res" \
        eval "[[ $n -gt 1000 && $lost -lt $((n / 100)) ]]"
done
check "e. the restarted accel runs and forwards again" "ready: $([[ $ewait -eq 0 ]] && echo yes || echo no), r-src forwarded $fwd_after since restart" \
    eval "[[ $ewait -eq 0 && $fwd_after -gt 1000 ]]"

# Upgrade in place (SIGUSR2): the old instance forwards in XDP until its
# successor (same binary, same arguments) has adopted every link.
send_bg d4_all 7 $E_RATE u4
U4=$SEND_PID
send_bg d6_all 7 $E_RATE u6
U6=$SEND_PID
wait_received u4 500
wait_received u6 500
read -r -a ku0 <<<"$(kfwd)"
ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
tu0=$(now)
kill -USR2 "$ACCEL_PID"
for ((i = 0; i < 300; i++)); do kill -0 "$ACCEL_PID" 2>/dev/null || break; sleep 0.1; done
wait "$ACCEL_PID"
urc=$?
tu1=$(now)
uok=no
lab_accel_follow_successor && lab_accel_wait 30 && uok=yes
wait "$U4" "$U6" 2>/dev/null
sleep 0.5
read -r -a ku1 <<<"$(kfwd)"
uadopted=$(lab_accel_log | grep -c "adopted the previous instance's link on [^ :]* (ifindex")
for fam in 4 6; do
    n=$(sent_of "u$fam")
    res=$(python3 "$LAB_TOOL" gaps --tag "u$fam" --sent "$n" --rate "$E_RATE" "$SINK_LOG")
    lost=$(jget "$res" lost)
    kf=$((ku1[fam == 4 ? 0 : 1] - ku0[fam == 4 ? 0 : 1]))
    check "e. IPv$fam: upgrade in place (SIGUSR2) under $E_RATE datagrams/s: at most a handful lost, the kernel forwards < 1% meanwhile" \
        "lost $lost of $n, kernel forwarded $kf; old instance exited (status $urc) $(python3 -c "print(round(($tu1 - $tu0) * 1000))") ms after SIGUSR2; $res" \
        eval "[[ $n -gt 1000 && $lost -le 5 && $kf -lt $((n / 100)) ]]"
done
check "e. upgrade: the old instance exits 0, the successor adopted all 3 links and runs" \
    "exit $urc, $uadopted adopted, successor running: $uok" eval "[[ $urc -eq 0 && $uadopted -eq 3 && $uok == yes ]]"

# ================================================================== d. ECMP member link down
D_RATE=2000
send_bg d4_all 6 $D_RATE d4
D4=$SEND_PID
send_bg d6_all 6 $D_RATE d6
D6=$SEND_PID
wait_received d4 500
wait_received d6 500
sleep 0.5
tdc=$(now)
ip -n "$NS_RTR" link set r-b1 down
td=$(now) # after the command returned: a loaded machine can delay it
wait "$D4" "$D6" 2>/dev/null
sleep 0.5
for fam in 4 6; do
    n=$(sent_of "d$fam")
    res=$(python3 "$LAB_TOOL" gaps --tag "d$fam" --sent "$n" --rate "$D_RATE" "$SINK_LOG")
    after=$(summary "d$fam" --after "$(python3 -c "print($td + 0.5)")")
    lost=$(jget "$res" lost)
    check "d. IPv$fam: r-b1 down under traffic: traffic continues on link 2 (loss < 5%)" \
        "lost $lost of $n ($(python3 -c "print(round(100 * $lost / max(1, $n), 2))")%); sent >= 0.5 s after down: $after; $res" \
        eval "[[ $n -gt 1000 && $lost -lt $((n / 20)) && $(jget "$after" "per_ifindex.$IF_B1") == none && $(jget "$after" received) -gt 500 ]]"
done
note "d. r-b1 down at $td (the command took $(python3 -c "print(round(($td - $tdc) * 1000, 1))") ms); datagrams that still arrived via b-r1 (ifindex $IF_B1) after it, send/recv ms after the down: $(python3 "$LAB_TOOL" late --t "$td" --ifindex "$IF_B1" "$SINK_LOG" d4 d6)"
r4d=$(routes_json 4 100.64.0.0/10 proto bgp)
r6d=$(routes_json 6 2001:db8::/32 proto bgp)
note "d. kernel after r-b1 down: IPv4 $r4d; IPv6 $r6d"
sy_down=$(lab_accel sync 2>&1)
check "d. accel sync with r-b1 down reports 0 changes" "$(tr -s '\n' ' ' <<<"$sy_down")" grep -q '^synced: 0 changes' <<<"$sy_down"
ip -n "$NS_RTR" link set r-b1 up
t0=$SECONDS
wait_until 30 sessions_up && ok "d. r-b1 up again: 4 BGP sessions re-established" "after $((SECONDS - t0)) s" ||
    not_ok "d. r-b1 up again: 4 BGP sessions re-established" "$(birdc_ show protocols 2>&1 | grep BGP | tr -s ' \n' ' ')"
sleep 2
r4u=$(routes_json 4 100.64.0.0/10 proto bgp)
r6u=$(routes_json 6 2001:db8::/32 proto bgp)
note "d. kernel after r-b1 up: IPv4 $r4u; IPv6 $r6u (FRR 8.4.4 does not restore ECMP groups, issue #12239)"
out=$(send d4_all 2000 4000 dup4)
sleep 0.3
s=$(summary dup4)
check "d. after r-b1 up: traffic to the announced prefixes arrives" "$out; sink $s" test "$(jget "$s" received)" -eq 2000

# ================================================================== g. BGP unnumbered
# FRR peers with BIRD over link 2's link-local addresses (`neighbor r-b2
# interface`); BIRD announces 100.122.0.0/20 with IPv6 next hops (extended
# next hop, RFC 5549), which FRR installs as IPv4 routes via inet6 gateways.
UNNUM_LL=$(ip -n "$NS_RTR" -6 -o addr show dev r-b2 scope link | awk '{print $4}' | cut -d/ -f1 | head -n1)
bird_conf 1
bird_reconfigure >/dev/null
vtysh_ -c 'configure terminal' -c 'router bgp 65001' -c 'neighbor r-b2 interface remote-as external' \
    -c 'neighbor r-b2 timers connect 2' -c 'address-family ipv4 unicast' -c 'neighbor r-b2 activate' >/dev/null
un_routes() { [[ $(ip -n "$NS_RTR" -o route show root 100.122.0.0/16 proto bgp | grep -c 'via inet6 fe80') -eq $NU ]]; }
t0=$SECONDS
if wait_until 60 un_routes; then
    ok "g. BGP unnumbered: FRR installs $NU IPv4 routes via IPv6 link-local next hops" \
        "after $((SECONDS - t0)) s: $(ip -n "$NS_RTR" -d route show 100.122.0.0/24 | tr -s ' \n' ' ')"
    lab_in "$NS_SRC" ping -q -c 2 -i 0.2 -W 2 100.122.0.1 >/dev/null 2>&1
    m0=$(xstat --iface r-src fwd_mirror)
    read -r -a k0 <<<"$(kfwd)"
    out=$(send d4_un 1600 4000 un4)
    sleep 0.3
    m1=$(xstat --iface r-src fwd_mirror)
    read -r -a k1 <<<"$(kfwd)"
    s=$(summary un4)
    check "g. IPv4 via IPv6 next hops: all arrive over link 2, forwarded from the mirror, kernel flat" \
        "$out; sink $s; accel fwd_mirror +$((m1 - m0)), kernel forwarded $((k1[0] - k0[0]))" \
        eval "[[ $(jget "$s" received) -eq 1600 && $(jget "$s" "per_ifindex.$IF_B2") -eq 1600 && $((m1 - m0)) -ge 1600 && $((k1[0] - k0[0])) -lt 16 ]]"
    note "accel lookup 100.122.0.1 (RFC 5549):"
    lab_accel lookup 100.122.0.1 2>&1 | sed 's/^/#   /'
else
    not_ok "g. BGP unnumbered: FRR installs $NU IPv4 routes via IPv6 link-local next hops" \
        "after 60 s: $(ip -n "$NS_RTR" route show root 100.122.0.0/16 | head -n 3 | tr -s ' \n' ' '); vtysh: $(vtysh_ -c 'show bgp summary' 2>&1 | grep -i 'r-b2' | tr -s ' \n' ' '); birdc: $(birdc_ show protocols 2>&1 | grep unnum | tr -s ' \n' ' ')"
fi

# ================================================================== the end
note ""
note "accel sync (final):"
sy=$(lab_accel sync 2>&1)
sed 's/^/#   /' <<<"$sy"
check "accel sync at the end reports 0 changes (the mirror stayed exact)" "$(head -n1 <<<"$sy")" grep -q '^synced: 0 changes' <<<"$sy"
for a in 100.64.0.1 2001:db8:1000::1 100.110.0.1 100.111.0.1; do
    note "accel lookup $a:"
    lab_accel lookup "$a" 2>&1 | sed 's/^/#   /'
done
note "accel stats (final; counters since the restart in check e):"
lab_accel stats 2>&1 | sed 's/^/#   /'
note "accel stats after check b (first instance):"
sed 's/^/#   /' <<<"$B_S1"
note "whole test: $((SECONDS - T_START)) s"
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
