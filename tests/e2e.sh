#!/usr/bin/env bash
# End-to-end test of accel in a four-namespace lab (see scripts/lab.sh).
#
#   sudo bash tests/e2e.sh        # ACCEL=path/to/accel to test another binary
#
# Prints `ok - NAME` / `not ok - NAME: DETAILS` per check, `# ...` comments,
# and finally `N passed, M failed`; exits non-zero on any failure.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

if [[ $(id -u) -ne 0 ]]; then
    echo "tests/e2e.sh must run as root (it creates network namespaces and attaches XDP programs)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# shellcheck source=../scripts/lab.sh
source "$HERE/../scripts/lab.sh"
lab_private_mountns "$SELF" "$@"

# shellcheck source=tap.sh
source "$HERE/tap.sh"

finish() {
    local rc=$?
    if [[ -n ${ACCEL_PID:-} ]] && [[ $FAILED -gt 0 ]] && [[ -f ${LAB_DIR:-/nonexistent}/accel.log ]]; then
        note "accel log (last 20 lines):"
        tail -n 20 "$LAB_DIR/accel.log" | sed 's/^/#   /'
    fi
    lab_down
    return $rc
}

lab_init || { echo "0 passed, 1 failed"; exit 1; }
trap finish EXIT
trap "exit 130" INT TERM
if [[ ! -x $ACCEL ]]; then
    not_ok "accel binary" "$ACCEL is not executable (cargo build --release, or set ACCEL)"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
note "accel: $ACCEL; namespaces $LAB_PREFIX-*; temp dir $LAB_DIR"
if ! lab_up; then
    not_ok "lab setup" "building the namespaces failed"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

N=1000      # datagrams per burst
RATE=10000  # datagrams per second in bursts
SMALL=100   # "far less than sent": kernel-forwarded allowance during a burst

# E2E_HOOK=tc runs the whole suite with every interface forced to the TC
# program (--hook tc); "XDP" in the check names then means accel's
# datapath in that hook.
E2E_HOOK=${E2E_HOOK:-xdp}
case $E2E_HOOK in
    xdp) HOOK_SHOWN="native XDP" ;;
    tc) HOOK_SHOWN="TC ingress (tcx)"
        export LAB_ACCEL_ARGS="--hook tc" ;;
    *) echo "E2E_HOOK must be xdp or tc" >&2; exit 2 ;;
esac
note "hook: $E2E_HOOK"
# Interfaces of rtr running accel's datapath in the hook under test.
xdp_ifaces() {
    if [[ $E2E_HOOK == tc ]]; then
        local i n=0
        for i in "$LAB_R_SRC" "$LAB_R_DST1" "$LAB_R_DST2"; do
            [[ $(lab_in "$NS_RTR" python3 "$LAB_TOOL" tcx "$i" 2>/dev/null) -gt 0 ]] && n=$((n + 1))
        done
        echo $n
    else
        ip -n "$NS_RTR" -o link show 2>/dev/null | grep -c ' xdp'
    fi
}
ping4() { lab_in "$NS_SRC" ping -q -c "${2:-3}" -i 0.2 -W 2 "$1" >/dev/null 2>&1; }
ping6() { lab_in "$NS_SRC" ping -6 -q -c "${2:-3}" -i 0.2 -W 2 "$1" >/dev/null 2>&1; }
in_sync() { # NAME: `accel sync --check` finds the mirror as the kernel has it
    local sy
    sy=$(lab_accel sync --check 2>&1)
    check "$1" "$(tr -s '\n' ' ' <<<"$sy")" grep -q '^in sync' <<<"$sy"
}

# burst FAMILY ADDR TAG SINK: sends $N datagrams, sets B_RECV (datagrams the
# sink got), B_KFWD (router's kernel forwarding counter delta for the family)
# and B_XFWD (accel forwarded on r-src: fwd_mirror + fwd_fib delta).
burst() {
    local fam=$1 addr=$2 tag=$3 sink=$4 k0 k1 x0 x1
    read -r -a k0 <<<"$(lab_fwd_counters)"
    x0=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_mirror fwd_fib 2>/dev/null) || x0=0
    lab_send "$NS_SRC" "$addr" "$N" "$RATE" "$tag" >/dev/null
    sleep 0.3
    read -r -a k1 <<<"$(lab_fwd_counters)"
    x1=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_mirror fwd_fib 2>/dev/null) || x1=0
    B_RECV=$(lab_received "$tag" "$sink")
    if [[ $fam == 4 ]]; then B_KFWD=$((k1[0] - k0[0])); else B_KFWD=$((k1[1] - k0[1])); fi
    B_XFWD=$((x1 - x0))
}

# ---------------------------------------------------------------- a. start
lab_accel_start
if lab_accel_wait 30 && [[ $(xdp_ifaces) -eq 3 ]]; then
    ok "a. accel run starts in rtr on r-src, r-dst1, r-dst2" "pid $ACCEL_PID, XDP on 3 interfaces"
else
    not_ok "a. accel run starts in rtr on r-src, r-dst1, r-dst2" \
        "not running within 30 s or XDP missing ($(xdp_ifaces) interfaces with xdp); log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
    lab_accel_diag | sed 's/^/#   /'
fi
# libbpf's own messages go through accel's log (levels, RUST_LOG); the
# start-up query for another instance's TC filter on an interface without a
# clsact qdisc is an expected refusal, not a warning for the operator.
raw=$(lab_accel_log | grep -m1 -e '^libbpf:' -e "Parent Qdisc doesn't exist")
check "a. no raw libbpf output and no expected-refusal warning at start" "${raw:-none}" test -z "$raw"

# ---------------------------------------------------------------- b. forwarding in XDP
# Warm up: resolve the neighbours of both gateways (first packets to a new
# neighbour go to the kernel).
check "b. ping src -> $LAB_SVC4" "" ping4 "$LAB_SVC4"
check "b. ping -6 src -> $LAB_SVC6" "" ping6 "$LAB_SVC6"
ping4 "$LAB_SVC4B" 2 || note "warm-up ping to $LAB_SVC4B failed"
ping6 "$LAB_SVC6B" 2 || note "warm-up ping to $LAB_SVC6B failed"

read -r -a B_K0 <<<"$(lab_fwd_counters)"
B_S0=$(lab_accel stats 2>&1)
for fam in 4 6; do
    if [[ $fam == 4 ]]; then addr=$LAB_SVC4; else addr=$LAB_SVC6; fi
    burst "$fam" "$addr" "b$fam" dst1
    d="sent $N, dst1 got $B_RECV, kernel forwarded $B_KFWD, accel forwarded $B_XFWD"
    check "b. IPv$fam: $N UDP datagrams src -> dst1 all arrive" "$d" test "$B_RECV" -eq "$N"
    check "b. IPv$fam: router kernel forwarded far fewer than sent (< $SMALL)" "$d" test "$B_KFWD" -lt "$SMALL"
    check "b. IPv$fam: accel fwd_mirror+fwd_fib grew by >= $N" "$d" test "$B_XFWD" -ge "$N"
done
read -r -a B_K1 <<<"$(lab_fwd_counters)"
B_STATS=$(lab_accel stats 2>&1)

# ---------------------------------------------------------------- c. route changes
# Traffic at 1 datagram/ms; every datagram carries its send time, the sinks
# log arrival times (one clock: CLOCK_REALTIME is not per namespace).
SW_RATE=1000
# start_stream TAG ADDR SINK: starts sending (sets SW_PID) and waits until
# 200 datagrams reached SINK (python start-up is slow on a loaded machine).
start_stream() {
    local tag=$1 addr=$2 sink=$3 i
    lab_send_bg "$LAB_DIR/$tag.send" "$NS_SRC" "$addr" 0 "$SW_RATE" "$tag" --duration 20
    SW_PID=$LAB_SEND_PID
    for ((i = 0; i < 100; i++)); do
        [[ $(lab_received "$tag" "$sink") -ge 200 ]] && return 0
        sleep 0.05
    done
    SW_RESULT="traffic to $addr never reached $sink"
    return 1
}
stop_stream() {
    kill "$SW_PID" 2>/dev/null
    wait "$SW_PID" 2>/dev/null
    sleep 0.2
}

# check_sw NAME FUNCTION ARGS...: like check, details from SW_RESULT.
check_sw() {
    local name=$1
    shift
    SW_RESULT=
    if "$@"; then ok "$name" "$SW_RESULT"; else not_ok "$name" "${SW_RESULT:-no result}"; fi
}

# switch TAG ADDR OLD NEW ROUTE-ARGS...: measure a `ip route replace`.
switch() {
    local tag=$1 addr=$2 old=$3 new=$4 t0 t1 res lat after gapms
    shift 4
    start_stream "$tag" "$addr" "$old" || { stop_stream; return 1; }
    t0=$EPOCHREALTIME
    ip -n "$NS_RTR" "$@"
    t1=$EPOCHREALTIME
    sleep 0.8
    stop_stream
    res=$(python3 "$LAB_TOOL" switch --old "$LAB_DIR/$old.sink" --new "$LAB_DIR/$new.sink" \
        --tag "$tag" --t0 "$t0" --t1 "$t1")
    lat=$(jget "$res" latency_ms)
    after=$(jget "$res" new_sent_100ms_after)
    gapms=$(jget "$res" max_loss_gap_ms)
    SW_RESULT="latency ${lat} ms, longest loss ${gapms} ms; $res"
    [[ $lat != none ]] && le "$lat" 100 && le "$gapms" 100 && [[ $after -ge 300 ]]
}

check_sw "c. IPv4 route replace $LAB_SVC4_NET dst1 -> dst2: traffic moves within 100 ms" \
    switch c4 "$LAB_SVC4" dst1 dst2 route replace "$LAB_SVC4_NET" via "$LAB_DST2_GW4"

# gap TAG ADDR CUR NEW DEL-ARGS -- ADD-ARGS: delete a route (its traffic
# arrives at CUR), add it back (towards NEW).
gap() {
    local tag=$1 addr=$2 cur=$3 new=$4 d0 d1 a0 a1 res leak resume after
    shift 4
    local del=() add=()
    while [[ $1 != -- ]]; do del+=("$1"); shift; done
    shift
    add=("$@")
    start_stream "$tag" "$addr" "$cur" || { stop_stream; return 1; }
    d0=$EPOCHREALTIME
    ip -n "$NS_RTR" "${del[@]}"
    d1=$EPOCHREALTIME
    sleep 0.7
    a0=$EPOCHREALTIME
    ip -n "$NS_RTR" "${add[@]}"
    a1=$EPOCHREALTIME
    sleep 0.8
    stop_stream
    res=$(python3 "$LAB_TOOL" gap --new "$LAB_DIR/$new.sink" --tag "$tag" \
        --d0 "$d0" --d1 "$d1" --a0 "$a0" --a1 "$a1" "$LAB_DIR/dst1.sink" "$LAB_DIR/dst2.sink")
    leak=$(jget "$res" leaked_while_deleted)
    resume=$(jget "$res" resume_ms)
    after=$(jget "$res" delivered_after_add)
    SW_RESULT="resumed after ${resume} ms; $res"
    [[ $leak -eq 0 ]] && [[ $resume != none ]] && le "$resume" 100 && [[ $after -ge 300 ]]
}

check_sw "c. IPv4 route delete then add back (via dst1): nothing delivered while deleted, traffic resumes within 100 ms" \
    gap c4gap "$LAB_SVC4" dst2 dst1 route del "$LAB_SVC4_NET" -- route add "$LAB_SVC4_NET" via "$LAB_DST1_GW4"

check_sw "c. IPv6 route replace $LAB_SVC6_NET dst1 -> dst2: traffic moves within 100 ms" \
    switch c6 "$LAB_SVC6" dst1 dst2 -6 route replace "$LAB_SVC6_NET" via "$LAB_DST2_GW6"
check_sw "c. IPv6 route replace $LAB_SVC6_NET dst2 -> dst1: traffic moves back within 100 ms" \
    switch c6back "$LAB_SVC6" dst2 dst1 -6 route replace "$LAB_SVC6_NET" via "$LAB_DST1_GW6"

# Nexthop objects (what FRR installs): `ip nexthop replace` must move every
# route using the object, in both settings of nexthop_compat_mode (in mode 0
# the kernel sends no route message at all: only the nexthop event).
nh_switch() { # compat family tag addr net gw1 gw2
    local compat=$1 fam=$2 tag=$3 addr=$4 net=$5 gw1=$6 gw2=$7 r
    lab_in "$NS_RTR" sysctl -qw "net.ipv4.nexthop_compat_mode=$compat"
    ip -n "$NS_RTR" nexthop replace id 9$fam$compat via "$gw1" dev "$LAB_R_DST1"
    ip -n "$NS_RTR" -"$fam" route replace "$net" nhid 9$fam$compat
    sleep 0.3
    local m0 f0 m1 f1
    m0=$(lab_accel_stat fwd_mirror) f0=$(lab_accel_stat fwd_fib)
    switch "$tag" "$addr" dst1 dst2 nexthop replace id 9$fam$compat via "$gw2" dev "$LAB_R_DST2"
    r=$?
    m1=$(lab_accel_stat fwd_mirror) f1=$(lab_accel_stat fwd_fib)
    # Forwarded from the mirror's group, not by bpf_fib_lookup (which
    # would follow the kernel by itself).
    SW_RESULT="fwd_mirror +$((m1 - m0)), fwd_fib +$((f1 - f0)); $SW_RESULT"
    [[ $((m1 - m0)) -ge 800 && $((f1 - f0)) -lt 50 ]] || r=1
    ip -n "$NS_RTR" -"$fam" route replace "$net" via "$gw1"
    ip -n "$NS_RTR" nexthop del id 9$fam$compat
    lab_in "$NS_RTR" sysctl -qw net.ipv4.nexthop_compat_mode=1
    return $r
}
for compat in 1 0; do
    check_sw "c. nexthop_compat_mode=$compat: ip nexthop replace moves IPv4 traffic dst1 -> dst2 within 100 ms" \
        nh_switch "$compat" 4 "cnh4$compat" "$LAB_SVC4" "$LAB_SVC4_NET" "$LAB_DST1_GW4" "$LAB_DST2_GW4"
done
check_sw "c. nexthop_compat_mode=0: ip nexthop replace moves IPv6 traffic dst1 -> dst2 within 100 ms" \
    nh_switch 0 6 cnh60 "$LAB_SVC6" "$LAB_SVC6_NET" "$LAB_DST1_GW6" "$LAB_DST2_GW6"

# ---------------------------------------------------------------- d. TTL / hop limit 1
ttl0=$(lab_accel_stat pass_ttl)
out4=$(lab_in "$NS_SRC" ping -c 1 -W 2 -t 1 "$LAB_SVC4" 2>&1)
check "d. ping -t 1 $LAB_SVC4 gets time exceeded from the router ($LAB_RTR4_SRC)" \
    "$(grep -m1 '^From' <<<"$out4")" \
    grep -q "^From $LAB_RTR4_SRC .*Time to live exceeded" <<<"$out4"
out6=$(lab_in "$NS_SRC" ping -6 -c 1 -W 2 -t 1 "$LAB_SVC6" 2>&1)
check "d. ping -6 -t 1 $LAB_SVC6 gets hop limit exceeded from the router ($LAB_RTR6_SRC)" \
    "$(grep -m1 '^From' <<<"$out6")" \
    grep -q "^From $LAB_RTR6_SRC .*Time exceeded: Hop limit" <<<"$out6"
ttl1=$(lab_accel_stat pass_ttl)
check "d. accel passed the TTL-1 probes to the kernel (pass_ttl +2)" "pass_ttl $ttl0 -> $ttl1" \
    test $((ttl1 - ttl0)) -ge 2
check "d. ping -t 2 / -6 -t 2 (TTL just enough) get replies" "" \
    eval 'lab_in "$NS_SRC" ping -q -c 1 -W 2 -t 2 "$LAB_SVC4" >/dev/null && lab_in "$NS_SRC" ping -6 -q -c 1 -W 2 -t 2 "$LAB_SVC6" >/dev/null'

# ---------------------------------------------------------------- e. blackhole
# First route the prefixes to dst1 and see traffic arrive (so the check can
# tell "dropped" from "never routable"), then turn them into blackholes.
ip -n "$NS_DST1" addr add 192.0.2.1/32 dev lo
ip -n "$NS_DST1" addr add 2001:db8:dead::1/128 dev lo nodad
ip -n "$NS_RTR" route add 192.0.2.0/24 via "$LAB_DST1_GW4"
ip -n "$NS_RTR" -6 route add 2001:db8:dead::/48 via "$LAB_DST1_GW6"
for fam in 4 6; do
    if [[ $fam == 4 ]]; then addr=192.0.2.1 net=192.0.2.0/24; else addr=2001:db8:dead::1 net=2001:db8:dead::/48; fi
    lab_send "$NS_SRC" "$addr" 200 "$RATE" "e${fam}pre" >/dev/null
    sleep 0.3
    pre=$(lab_received "e${fam}pre" dst1)
    ip -n "$NS_RTR" -"$fam" route del "$net"
    ip -n "$NS_RTR" -"$fam" route add blackhole "$net"
    bh0=$(lab_accel_stat drop_blackhole)
    read -r -a k0 <<<"$(lab_fwd_counters)"
    rx10=$(lab_rx_packets "$NS_DST1" d1-rtr)
    rx20=$(lab_rx_packets "$NS_DST2" d2-rtr)
    lab_send "$NS_SRC" "$addr" "$N" "$RATE" "e$fam" >/dev/null
    sleep 0.3
    bh1=$(lab_accel_stat drop_blackhole)
    read -r -a k1 <<<"$(lab_fwd_counters)"
    rx11=$(lab_rx_packets "$NS_DST1" d1-rtr)
    rx21=$(lab_rx_packets "$NS_DST2" d2-rtr)
    got=$(lab_received "e$fam" dst1 dst2)
    kf=$((k1[fam == 4 ? 0 : 1] - k0[fam == 4 ? 0 : 1]))
    d="before blackhole $pre/200 arrived; after: sinks got $got, drop_blackhole +$((bh1 - bh0)), dst1 rx +$((rx11 - rx10)), dst2 rx +$((rx21 - rx20)), kernel forwarded $kf"
    check "e. IPv$fam blackhole $net: $N datagrams dropped in XDP, nothing arrives" "$d" \
        eval "[[ $pre -eq 200 && $got -eq 0 && $((bh1 - bh0)) -ge $N && $((rx11 - rx10)) -lt $SMALL && $((rx21 - rx20)) -lt $SMALL && $kf -lt $SMALL ]]"
done

# ---------------------------------------------------------------- f. lookup, sync
rmac=$(lab_mac "$NS_RTR" r-dst1)
nmac=$(lab_mac "$NS_DST1" d1-rtr)
lk4=$(lab_accel lookup "$LAB_SVC4" 2>&1)
check "f. accel lookup $LAB_SVC4 names egress r-dst1 ($rmac) and neighbour $LAB_DST1_GW4 ($nmac)" \
    "$(tr -s ' \n' ' ' <<<"$lk4")" \
    eval 'grep -q "egress r-dst1 ($HOOK_SHOWN): MAC $rmac" <<<"$lk4" && grep -q "neighbour $LAB_DST1_GW4: $nmac -> forwarded by the datapath" <<<"$lk4"'
check "f. accel lookup $LAB_SVC4 gives the kernel's answer too: via $LAB_DST1_GW4 dev r-dst1" \
    "$(grep -A1 '  kernel' <<<"$lk4" | tail -n 1)" \
    eval 'grep -A1 "  kernel" <<<"$lk4" | grep -q "via $LAB_DST1_GW4 dev r-dst1 "'
lk6=$(lab_accel lookup "$LAB_SVC6" 2>&1)
check "f. accel lookup $LAB_SVC6 names egress r-dst1 ($rmac) and neighbour $LAB_DST1_GW6 ($nmac)" \
    "$(tr -s ' \n' ' ' <<<"$lk6")" \
    eval 'grep -q "egress r-dst1 ($HOOK_SHOWN): MAC $rmac" <<<"$lk6" && grep -q "neighbour $LAB_DST1_GW6: $nmac -> forwarded by the datapath" <<<"$lk6"'
om=$(lab_accel stats --format openmetrics 2>&1)
check "f. accel stats --format openmetrics counts r-src's forwarded packets and ends in # EOF" \
    "$(grep 'interface="r-src",outcome="forwarded",reason="mirror"' <<<"$om"), $(tail -n 1 <<<"$om")" \
    eval '[[ $(grep -m1 "^accel_packets_total{interface=\"r-src\",outcome=\"forwarded\",reason=\"mirror\"}" <<<"$om" | cut -d" " -f2) -gt 0 && $(tail -n 1 <<<"$om") == "# EOF" ]]'
if [[ -x /usr/bin/promtool ]]; then
    pt=$(lab_accel stats --format prometheus 2>&1 | promtool check metrics 2>&1)
    check "f. promtool check metrics finds nothing wrong with accel's metrics" "$(head -n 3 <<<"$pt" | tr '\n' ' ')" \
        eval '[[ -z $pt ]]'
else
    note "f. promtool absent: the metrics are not linted"
fi
# What differs, if anything, before the sync repairs it.
ck=$(lab_accel sync --check 2>&1) || note "f. sync --check before the sync: $(head -n 6 <<<"$ck" | tr '\n' ' ')"
sy=$(lab_accel sync 2>&1)
check "f. accel sync reports 0 changes (events kept the mirror exact)" "$(tr -s '\n' ' ' <<<"$sy")" \
    grep -q '^synced: 0 changes' <<<"$sy"

# ---------------------------------------------------------------- j. gateway neighbours
# XDP-forwarded traffic is invisible to the kernel's neighbour state machine;
# accel marks the STALE entries of mirrored gateways as in use (NTF_USE), so
# the kernel probes them as if it forwarded the traffic itself. Short timers
# on r-dst2 make the cycle take seconds: reachable 1-3 s, 1 s in DELAY, then
# unicast probes 300 ms apart.
lab_in "$NS_RTR" sysctl -qw net.ipv4.neigh.$LAB_R_DST2.base_reachable_time_ms=2000 \
    net.ipv4.neigh.$LAB_R_DST2.delay_first_probe_time=1 \
    net.ipv4.neigh.$LAB_R_DST2.gc_stale_time=2 \
    net.ipv4.neigh.$LAB_R_DST2.retrans_time_ms=300
# neigh_state: the NUD state of the router's entry for dst2's gateway address.
neigh_state() { ip -n "$NS_RTR" neigh show "$LAB_DST2_GW4" dev "$LAB_R_DST2" | awk '{print $NF}'; }
neigh_mac() { ip -n "$NS_RTR" neigh show "$LAB_DST2_GW4" dev "$LAB_R_DST2" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }
# The entry's current REACHABLE timer still runs on the old reachable time
# (up to 45 s): start from a fresh entry, which the kernel resolves for the
# first packets XDP passes to it.
ip -n "$NS_RTR" neigh del "$LAB_DST2_GW4" dev "$LAB_R_DST2" 2>/dev/null
J_RATE=200
lab_send_bg "$LAB_DIR/j.send" "$NS_SRC" "$LAB_SVC4B" 0 "$J_RATE" j --duration 40
J_PID=$LAB_SEND_PID
sleep 1
x0=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_mirror fwd_fib 2>/dev/null) || x0=0
read -r -a k0 <<<"$(lab_fwd_counters)"
# Watch the entry for 12 s (several reachable times): count STALE -> REACHABLE
# returns and the longest time spent STALE in one go.
returns=0 longest=0 stale_since= prev= states=
t_end=$((SECONDS + 12))
while ((SECONDS < t_end)); do
    st=$(neigh_state)
    now=$EPOCHREALTIME
    if [[ $st == STALE ]]; then
        [[ -n $stale_since ]] || stale_since=$now
    else
        if [[ -n $stale_since ]]; then
            longest=$(python3 -c "print(max($longest, round($now - $stale_since, 1)))")
            stale_since=
        fi
        [[ $prev == STALE || $prev == DELAY || $prev == PROBE ]] && [[ $st == REACHABLE ]] && returns=$((returns + 1))
    fi
    [[ $st != "$prev" ]] && states+="$st "
    prev=$st
    sleep 0.1
done
[[ -n $stale_since ]] && longest=$(python3 -c "print(max($longest, round($EPOCHREALTIME - $stale_since, 1)))")
x1=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_mirror fwd_fib 2>/dev/null) || x1=0
read -r -a k1 <<<"$(lab_fwd_counters)"
kf=$((k1[0] - k0[0])) xf=$((x1 - x0))
d="returned to REACHABLE $returns times, longest STALE ${longest} s; accel forwarded $xf, kernel $kf; states: $(cut -c1-300 <<<"$states")"
check "l. gateway $LAB_DST2_GW4 used only by XDP traffic keeps returning to REACHABLE (not left STALE)" "$d" \
    eval '[[ $returns -ge 2 ]] && le "$longest" 3 && [[ $xf -ge $((J_RATE * 10)) && $kf -lt $((J_RATE * 3)) ]]'

# The gateway changes its MAC (no gratuitous ARP): the kernel must notice by
# probing, and traffic must follow to the new MAC.
old_mac=$(lab_mac "$NS_DST2" d2-rtr)
new_mac=02:00:5e:10:11:12
ip -n "$NS_DST2" link set dev d2-rtr address "$new_mac"
t0=$EPOCHREALTIME
sleep 0.3
c0=$(lab_received j dst2)
lat=none
for ((i = 0; i < 100; i++)); do
    if (($(lab_received j dst2) >= c0 + J_RATE / 2)); then
        lat=$(python3 -c "print(round($EPOCHREALTIME - $t0, 1))")
        break
    fi
    sleep 0.2
done
sleep 1
c1=$(lab_received j dst2)
sleep 1
c2=$(lab_received j dst2)
kill "$J_PID" 2>/dev/null
wait "$J_PID" 2>/dev/null
kmac=$(neigh_mac)
lk=$(lab_accel lookup "$LAB_SVC4B" 2>&1)
d="MAC $old_mac -> $new_mac; traffic arrived again after ${lat} s, then $((c2 - c1)) datagrams/s; kernel entry $kmac ($(neigh_state)); lookup: $(grep -m1 neighbour <<<"$lk")"
check "l. gateway $LAB_DST2_GW4 changes its MAC: traffic follows to the new MAC within 10 s" "$d" \
    eval '[[ $lat != none ]] && [[ $kmac == "$new_mac" ]] && (((c2 - c1) >= J_RATE / 2)) && grep -q "neighbour $LAB_DST2_GW4: $new_mac -> forwarded by the datapath" <<<"$lk"'

# ---------------------------------------------------------------- n. carrier flap
# dst2's end of the link goes down: r-dst2 (still admin up) loses carrier.
# The kernel flags the routes through it linkdown, silently, and still
# forwards to them (ignore_routes_with_linkdown unset); accel needs no
# dump for that: its lease holds, XDP keeps forwarding everything else
# from the mirror, and a dump agrees with the mirror. What would leave
# through r-dst2 goes to the kernel, which drops it as before.
resyncs() { lab_accel_log | grep -c 'full resync'; }
linkdown4() { ip -n "$NS_RTR" route show "$LAB_SVC4B/24" | grep -c linkdown; }
wait_linkdown() {
    local want=$1 i
    for ((i = 0; i < 50; i++)); do
        [[ $(linkdown4) -eq $want ]] && return 0
        sleep 0.1
    done
    return 1
}
K_R0=$(resyncs)
# dst2 keeps its IPv6 address through the down (its routes it loses).
lab_in "$NS_DST2" sysctl -qw net.ipv6.conf.d2-rtr.keep_addr_on_down=1
ip -n "$NS_DST2" link set d2-rtr down
wait_linkdown 1 || note "n. $LAB_SVC4B/24 not flagged linkdown after 5 s"
sleep 0.5
x0=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_mirror)
burst 4 "$LAB_SVC4" k4 dst1
x1=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_mirror)
check "n. r-dst2 without carrier: traffic to dst1 still forwarded from the mirror (fwd_mirror +$N)" \
    "fwd_mirror $x0 -> $x1, dst1 got $B_RECV of $N" eval '[[ $((x1 - x0)) -ge $N && $B_RECV -eq $N ]]'
burst 4 "$LAB_SVC4B" k4b dst2
check "n. r-dst2 without carrier: accel forwards nothing towards it (the kernel's call)" \
    "dst2 got $B_RECV, accel forwarded $B_XFWD" eval '[[ $B_RECV -eq 0 && $B_XFWD -eq 0 ]]'
ck=$(lab_accel sync --check 2>&1)
check "n. r-dst2 without carrier: sync --check finds the mirror equal to the kernel" \
    "$(head -n 4 <<<"$ck" | tr '\n' ' ')" eval '[[ $(grep -c "^in sync" <<<"$ck") -eq 1 ]]'
ip -n "$NS_DST2" link set d2-rtr up
ip -n "$NS_DST2" route replace default via 10.11.3.1
ip -n "$NS_DST2" -6 route replace default via fd00:11:3::1
wait_linkdown 0 || note "n. $LAB_SVC4B/24 still flagged linkdown 5 s after carrier"
ping4 "$LAB_SVC4B" 2 || note "n. warm-up ping to $LAB_SVC4B failed after carrier"
burst 4 "$LAB_SVC4B" k4c dst2
check "n. carrier back: $N datagrams to dst2 arrive, forwarded by accel" \
    "dst2 got $B_RECV, accel forwarded $B_XFWD" eval '[[ $B_RECV -eq $N && $B_XFWD -ge $N ]]'
ck=$(lab_accel sync --check 2>&1)
check "n. carrier back: sync --check finds the mirror equal to the kernel" \
    "$(head -n 4 <<<"$ck" | tr '\n' ' ')" eval '[[ $(grep -c "^in sync" <<<"$ck") -eq 1 ]]'
K_R1=$(resyncs)
check "n. the carrier flap cost no resync" "full resyncs logged: $K_R0 -> $K_R1" test "$K_R1" -eq "$K_R0"
# A link created and brought up (a VLAN, a tunnel, a PPP session): the
# kernel tells everything that changes; no resync either.
# check_resyncs NAME N [DETAIL]: N full resyncs logged since the last
# call (K_PREV), and sync --check in sync.
check_resyncs() {
    local name=$1 want=$2 detail=${3:-} ck now ok=false
    ck=$(lab_accel sync --check 2>&1)
    now=$(resyncs)
    [[ $((now - K_PREV)) -eq $want && $(grep -c "^in sync" <<<"$ck") -eq 1 ]] && ok=true
    check "$name" "full resyncs logged: $K_PREV -> $now; $detail$(head -n 4 <<<"$ck" | tr '\n' ' ')" \
        test "$ok" = true
    K_PREV=$now
}
K_PREV=$K_R1
ip -n "$NS_RTR" link add r-extra type veth peer name x-extra netns "$NS_DST2"
ip -n "$NS_RTR" addr add 10.11.9.1/24 dev r-extra
ip -n "$NS_DST2" link set x-extra up
ip -n "$NS_RTR" link set r-extra up
sleep 1
check_resyncs "n. a link created and brought up: no resync, sync --check in sync" 0
# Its carrier lost and back faster than linkwatch runs: the link
# messages may never say so (only IFLA_CARRIER_DOWN_COUNT moves), and the
# kernel then changed nothing, not even the nexthop object through it.
ip -n "$NS_RTR" nexthop add id 4242 via 10.11.9.2 dev r-extra
sleep 0.5
ip -n "$NS_DST2" -batch - <<<$'link set x-extra down\nlink set x-extra up'
sleep 1
check_resyncs "n. carrier lost and back at once: no resync, sync --check in sync" 0 \
    "object 4242: $(ip -n "$NS_RTR" nexthop show id 4242 2>&1); "
# The IPv6 routes every interface has (fe80::/64, ff00::/8, the anycast
# fe80::/128) share keys with the other interfaces': removing one would
# leave the mirror unsure what remains. No lookup reaches them, so they
# are not mirrored, and their removal (on every link down, as here, or
# delete) costs nothing.
ip -n "$NS_RTR" -6 route del fe80::/64 dev r-extra
sleep 0.5
check_resyncs "n. a link's fe80::/64 removed: no resync, sync --check in sync" 0
# Set down: the kernel flushes its IPv4 routes silently, a resync, only
# one.
ip -n "$NS_RTR" link set r-extra down
sleep 1
check_resyncs "n. a link set down: one resync, sync --check in sync" 1
ip -n "$NS_RTR" link del r-extra
# ignore_routes_with_linkdown makes the kernel pass over a route whose
# only next hop has no carrier, and report that next hop dead: then a
# carrier change asks for a resync, after which the mirror agrees with a
# dump; accel still forwards nothing towards the link.
lab_in "$NS_RTR" sysctl -qw net.ipv4.conf.r-dst2.ignore_routes_with_linkdown=1
sleep 0.5
K_R3=$(resyncs)
ip -n "$NS_DST2" link set d2-rtr down
wait_linkdown 1 || note "n. $LAB_SVC4B/24 not flagged linkdown after 5 s"
sleep 1
burst 4 "$LAB_SVC4B" k4d dst2
ck=$(lab_accel sync --check 2>&1)
K_R4=$(resyncs)
check "n. ignore_routes_with_linkdown set on r-dst2, r-dst2 without carrier: a resync, accel forwards nothing towards it, sync --check in sync" \
    "accel forwarded $B_XFWD, dst2 got $B_RECV; full resyncs logged: $K_R3 -> $K_R4; $(head -n 4 <<<"$ck" | tr '\n' ' ')" \
    eval '[[ $B_XFWD -eq 0 && $B_RECV -eq 0 && $K_R4 -gt $K_R3 && $(grep -c "^in sync" <<<"$ck") -eq 1 ]]'
ip -n "$NS_DST2" link set d2-rtr up
ip -n "$NS_DST2" route replace default via 10.11.3.1
ip -n "$NS_DST2" -6 route replace default via fd00:11:3::1
lab_in "$NS_RTR" sysctl -qw net.ipv4.conf.r-dst2.ignore_routes_with_linkdown=0
wait_linkdown 0 || note "n. $LAB_SVC4B/24 still flagged linkdown 5 s after carrier"
sleep 1

# ---------------------------------------------------------------- g. errors
out=$(lab_accel run -i "$LAB_R_SRC" -i "$LAB_R_DST1" -i "$LAB_R_DST2" 2>&1)
rc=$?
check "g. a second accel run (same run dir) fails clearly" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "another .accel run. is active" <<<"$out"'
out=$(ACCEL_RUN_DIR=$LAB_DIR/run2 lab_accel run -i "$LAB_R_SRC" -i "$LAB_R_DST1" -i "$LAB_R_DST2" 2>&1)
rc=$?
check "g. a second accel run (other run dir, same pin dir) fails clearly: the pin dir is locked" \
    "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "holds the pin directory" <<<"$out"'
out=$(ACCEL_RUN_DIR=$LAB_DIR/run3 ACCEL_PIN_DIR=$ACCEL_PIN_DIR-3 lab_accel run -i "$LAB_R_SRC" -i "$LAB_R_DST1" -i "$LAB_R_DST2" 2>&1)
rc=$?
check "g. a second accel run (other run and pin dirs) fails clearly" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "already runs accel.s program ($HOOK_SHOWN)" <<<"$out"'
# A bridge port: what arrives there is the bridge's.
ip -n "$NS_RTR" link add g-br type bridge
ip -n "$NS_RTR" link add g-port type veth peer name g-peer
ip -n "$NS_RTR" link set g-port master g-br
out=$(ACCEL_RUN_DIR=$LAB_DIR/run5 ACCEL_PIN_DIR=$ACCEL_PIN_DIR-5 lab_accel run -i g-port 2>&1)
rc=$?
ip -n "$NS_RTR" link del g-port
ip -n "$NS_RTR" link del g-br
check "g. accel run on a bridge port refuses and names the bridge" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "g-port: is a port of g-br (bridge).*run accel on g-br instead" <<<"$out"'
burst 4 "$LAB_SVC4" g4 dst1
check "g. the first instance keeps running and forwarding" \
    "alive, XDP on $(xdp_ifaces) interfaces, burst: dst1 got $B_RECV/$N, accel forwarded $B_XFWD, kernel $B_KFWD" \
    eval '[[ -n $ACCEL_PID ]] && kill -0 $ACCEL_PID 2>/dev/null && [[ $(xdp_ifaces) -eq 3 && $B_RECV -eq $N && $B_XFWD -ge $N ]]'
if [[ -x /usr/sbin/nft ]]; then
    # XDP forwarding would skip this chain: accel must refuse to start.
    ip netns exec "$NS_RTR" /usr/sbin/nft add table inet accel_e2e
    ip netns exec "$NS_RTR" /usr/sbin/nft add chain inet accel_e2e chk \
        '{ type filter hook forward priority filter; policy accept; }'
    out=$(ACCEL_RUN_DIR=$LAB_DIR/run4 ACCEL_PIN_DIR=$ACCEL_PIN_DIR-4 lab_accel run -i "$LAB_R_SRC" 2>&1)
    rc=$?
    ip netns exec "$NS_RTR" /usr/sbin/nft delete table inet accel_e2e
    check "g. with an nftables forward chain, accel run refuses and names it" "exit $rc: $(tail -n1 <<<"$out")" \
        eval '[[ $rc -ne 0 ]] && grep -q "nftables chain inet accel_e2e chk on hook forward" <<<"$out"'
    # A chain added while accel runs cannot be refused: the running
    # instance hands every packet it would forward to the kernel, which
    # runs the chain, until it is gone.
    ip netns exec "$NS_RTR" /usr/sbin/nft -f - <<<'table inet accel_rt {
        chain c_fwd { type filter hook forward priority filter; policy accept; counter; }
    }'
    sleep 0.5
    burst 4 "$LAB_SVC4" g4nf dst1
    counted=$(ip netns exec "$NS_RTR" /usr/sbin/nft list chain inet accel_rt c_fwd |
        awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    check "g. an nftables forward chain added while accel runs: the kernel forwards, through the chain" \
        "dst1 got $B_RECV/$N, kernel forwarded $B_KFWD, accel $B_XFWD, the chain counted ${counted:-none}" \
        eval '[[ $B_RECV -eq $N && $B_KFWD -ge $N && ${counted:-0} -ge $N ]]'
    check "g. the log names the chain the kernel now runs" \
        "$(lab_accel_log | grep -m1 'accel_rt' | sed 's/.*WARN *//')" \
        eval 'lab_accel_log | grep -q "netfilter rules on the forwarding path (nftables chain inet accel_rt c_fwd on hook forward)"'
    check "g. accel lookup says the kernel runs the rules" \
        "$(lab_accel lookup "$LAB_SVC4" 2>&1 | grep -m1 netfilter)" \
        eval 'lab_accel lookup "$LAB_SVC4" 2>&1 | grep -q "netfilter rules on the forwarding path"'
    ip netns exec "$NS_RTR" /usr/sbin/nft delete table inet accel_rt
    sleep 0.5
    burst 4 "$LAB_SVC4" g4nf2 dst1
    check "g. the chain deleted: accel forwards again" \
        "dst1 got $B_RECV/$N, accel forwarded $B_XFWD, kernel $B_KFWD" \
        eval '[[ $B_RECV -eq $N && $B_XFWD -ge $N && $B_KFWD -lt $SMALL ]]'
else
    note "g. nft absent: the netfilter refusal is not checked"
fi
out=$(lab_accel run -i nosuchif 2>&1)
rc=$?
check "g. accel run -i nosuchif fails with unknown interface" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "unknown interface" <<<"$out"'

# after_stop NAME-PREFIX: XDP gone, ping works, the kernel forwards bursts.
after_stop() {
    local p=$1 i fam addr
    for ((i = 0; i < 30; i++)); do
        [[ $(xdp_ifaces) -eq 0 ]] && break
        sleep 0.1
    done
    check "$p: no XDP program left on rtr's interfaces" "$(xdp_ifaces) with xdp" test "$(xdp_ifaces)" -eq 0
    check "$p: ping and ping -6 still work" "" eval 'ping4 "$LAB_SVC4" 2 && ping6 "$LAB_SVC6" 2'
    bursts "$p" "${p%%.*}" kernel
}

# bursts CHECK TAG WHO: a burst per family to dst1, checked as forwarded by
# WHO: "kernel" (accel not running), or "xdp" (accel, the kernel flat).
bursts() {
    local p=$1 tag=$2 who=$3 fam addr
    for fam in 4 6; do
        if [[ $fam == 4 ]]; then addr=$LAB_SVC4; else addr=$LAB_SVC6; fi
        burst "$fam" "$addr" "$tag$fam" dst1
        if [[ $who == kernel ]]; then
            check "$p: IPv$fam UDP flows and the kernel forwards it" \
                "dst1 got $B_RECV/$N, kernel forwarded $B_KFWD" \
                eval "[[ $B_RECV -eq $N && $B_KFWD -ge $N ]]"
        else
            check "$p: IPv$fam forwarded in XDP (kernel flat)" \
                "dst1 got $B_RECV/$N, accel forwarded $B_XFWD, kernel $B_KFWD" \
                eval '[[ $B_RECV -eq $N && $B_XFWD -ge $N && $B_KFWD -lt $SMALL ]]'
        fi
    done
}

# ---------------------------------------------------------------- h. SIGKILL
pid=$ACCEL_PID
lab_accel_stop KILL
note "h: accel (pid $pid) killed with SIGKILL"
after_stop "h. after SIGKILL"

# ---------------------------------------------------------------- i. SIGTERM
lab_accel_start
if lab_accel_wait 30 && [[ $(xdp_ifaces) -eq 3 ]]; then
    burst 4 "$LAB_SVC4" i4start dst1
    check "i. accel restarts after the SIGKILL and forwards in XDP" \
        "dst1 got $B_RECV/$N, accel forwarded $B_XFWD, kernel $B_KFWD" \
        eval "[[ $B_RECV -eq $N && $B_XFWD -ge $N && $B_KFWD -lt $SMALL ]]"
else
    not_ok "i. accel restarts after the SIGKILL and forwards in XDP" \
        "did not start within 30 s; its log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
    lab_accel_diag | sed 's/^/#   /'
fi
lab_accel_stop TERM
rc=$?
check "i. SIGTERM: accel exits with status 0" "exit $rc" test "$rc" -eq 0
after_stop "i. after SIGTERM"

# ---------------------------------------------------------------- j. hitless upgrade
# SIGUSR2: the running instance pins its links and starts its successor
# (same binary path, same arguments), and keeps forwarding from its own,
# maintained mirror until the successor has adopted every link. Under 1000
# datagrams/s per family, XDP must stay on all three interfaces, the kernel
# must forward (next to) nothing at any moment, and nothing may be lost.
xdp_progs() {
    if [[ $E2E_HOOK == tc ]]; then
        lab_in "$NS_RTR" python3 "$LAB_TOOL" tcx --ids "$LAB_R_SRC" "$LAB_R_DST1" "$LAB_R_DST2"
    else
        ip -n "$NS_RTR" -d link show 2>/dev/null | grep -o 'prog/xdp id [0-9]*' | sort | tr -s '\n' ' '
    fi
}
hitless() {
    local i k0 k1 sent4 sent6 recv4 recv6 minx adopted sy p0 p1 w
    lab_accel_start
    if ! lab_accel_wait 30 || [[ $(xdp_ifaces) -ne 3 ]]; then
        SW_RESULT="the first instance did not start; its log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    ping4 "$LAB_SVC4" 2 && ping6 "$LAB_SVC6" 2 || note "j: warm-up pings failed"
    lab_send_bg "$LAB_DIR/jh4.send" "$NS_SRC" "$LAB_SVC4" 0 "$SW_RATE" jh4 --duration 8
    local s4=$LAB_SEND_PID
    lab_send_bg "$LAB_DIR/jh6.send" "$NS_SRC" "$LAB_SVC6" 0 "$SW_RATE" jh6 --duration 8
    local s6=$LAB_SEND_PID
    for ((i = 0; i < 100; i++)); do
        [[ $(lab_received jh4 dst1) -ge 200 && $(lab_received jh6 dst1) -ge 200 ]] && break
        sleep 0.05
    done
    p0=$(xdp_progs)
    read -r -a k0 <<<"$(lab_fwd_counters)"
    rm -f "$LAB_DIR/j.stop"
    (while [[ ! -e $LAB_DIR/j.stop ]]; do xdp_ifaces; sleep 0.02; done >"$LAB_DIR/j.xdp") &
    w=$!
    ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
    kill -USR2 "$ACCEL_PID"
    # The old instance exits once its successor has taken every link.
    for ((i = 0; i < 300; i++)); do kill -0 "$ACCEL_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$ACCEL_PID" 2>/dev/null; then
        touch "$LAB_DIR/j.stop"
        wait "$w" "$s4" "$s6"
        SW_RESULT="the old instance still runs 30 s after SIGUSR2; log: $(lab_accel_log | tail -n 2 | tr '\n' ' ')"
        return 1
    fi
    wait "$ACCEL_PID"
    J_RC=$?
    if ! lab_accel_follow_successor || ! lab_accel_wait 30; then
        touch "$LAB_DIR/j.stop"
        wait "$w" "$s4" "$s6"
        SW_RESULT="no successor running; log: $(lab_accel_log | tail -n 5 | tr '\n' ' ')"
        return 1
    fi
    sleep 0.3
    read -r -a k1 <<<"$(lab_fwd_counters)"
    p1=$(xdp_progs)
    touch "$LAB_DIR/j.stop"
    wait "$w"
    wait "$s4" "$s6"
    sleep 0.3
    sent4=$(awk '{print $2}' "$LAB_DIR/jh4.send")
    sent6=$(awk '{print $2}' "$LAB_DIR/jh6.send")
    recv4=$(lab_received jh4 dst1)
    recv6=$(lab_received jh6 dst1)
    minx=$(sort -n "$LAB_DIR/j.xdp" | head -n1)
    adopted=$(lab_accel_log | grep -c "adopted the previous instance's link on r-[a-z0-9]* .*$HOOK_SHOWN")
    adopted_tc=$(lab_accel_log | grep -c "adopted the previous instance's link on r-[a-z0-9]*:tc .*TC ingress")
    [[ $E2E_HOOK == tc ]] && adopted_tc=3 # nothing beside TC
    sy=$(lab_accel sync 2>&1)
    J_KFWD4=$((k1[0] - k0[0])) J_KFWD6=$((k1[1] - k0[1]))
    J_LOST4=$((sent4 - recv4)) J_LOST6=$((sent6 - recv6))
    J_MINX=$minx J_SAMPLES=$(wc -l <"$LAB_DIR/j.xdp") J_ADOPTED=$adopted J_ADOPTED_TC=$adopted_tc J_SYNC=$sy
    J_P0=$p0 J_P1=$p1
    SW_RESULT="old exit $J_RC; XDP on >= $minx interfaces in $J_SAMPLES samples; $adopted links adopted; progs [$p0] -> [$p1]; kernel forwarded +$J_KFWD4/+$J_KFWD6; v4 $recv4/$sent4, v6 $recv6/$sent6 arrived"
    return 0
}
if check_sw "j. hitless upgrade (SIGUSR2 starts the successor): runs" hitless; then
    note "j: $SW_RESULT"
    check "j. the old instance exits with status 0 once the successor took over" "exit $J_RC" test "$J_RC" -eq 0
    check "j. XDP stayed on all 3 interfaces throughout the handover" \
        "min $J_MINX in $J_SAMPLES samples" test "$J_MINX" -eq 3
    check "j. the successor adopted all 3 XDP links and the 3 TC links beside them (and swapped its programs in)" \
        "$J_ADOPTED XDP, $J_ADOPTED_TC TC adopted; progs [$J_P0] -> [$J_P1]" \
        eval '[[ $J_ADOPTED -eq 3 && $J_ADOPTED_TC -eq 3 && "$J_P0" != "$J_P1" ]]'
    check "j. XDP forwarded throughout: the kernel forwarded next to nothing during the handover" \
        "IpForwDatagrams +$J_KFWD4, Ip6OutForwDatagrams +$J_KFWD6" \
        eval '[[ $J_KFWD4 -lt 20 && $J_KFWD6 -lt 20 ]]'
    burst 4 "$LAB_SVC4" jafter dst1
    check "j. after the takeover XDP forwards (kernel flat)" \
        "dst1 got $B_RECV/$N, accel forwarded $B_XFWD, kernel $B_KFWD" \
        eval '[[ $B_RECV -eq $N && $B_XFWD -ge $N && $B_KFWD -lt $SMALL ]]'
    check "j. no datagram lost beyond a handful (<= 10 per family)" \
        "lost v4 $J_LOST4, v6 $J_LOST6" eval '[[ $J_LOST4 -le 10 && $J_LOST6 -le 10 ]]'
    check "j. accel sync on the successor reports 0 changes" "$(tr -s '\n' ' ' <<<"$J_SYNC")" \
        grep -q '^synced: 0 changes' <<<"$J_SYNC"
    check "j. no link pins left behind" "$(ls "$ACCEL_PIN_DIR/links" 2>/dev/null | tr '\n' ' ')" \
        eval '[[ -z "$(ls -A "$ACCEL_PIN_DIR/links" 2>/dev/null)" ]]'
    # Executed through /proc/self/fd/N, it would be called "N" (ps, pgrep).
    j_comm=$(cat "/proc/$ACCEL_PID/comm" 2>/dev/null)
    check "j. the successor is named after its binary (ps, pgrep)" \
        "comm '$j_comm', binary $(basename "$ACCEL")" test "$j_comm" = "$(basename "$ACCEL" | cut -c1-15)"
fi
lab_accel_stop TERM
rc=$?
check "j. SIGTERM to the successor: clean exit" "exit $rc" test "$rc" -eq 0
after_stop "j. after SIGTERM"

# ---------------------------------------------------------------- k. failed upgrade
# The binary at accel's path is replaced by one that fails: the successor
# exits, and the old instance takes its links, pins and socket back and
# carries on forwarding from its mirror. Asked by `accel upgrade` (the
# client from the real binary), which says so and exits 1.
cp "$ACCEL" "$LAB_DIR/accel-bin"
ACCEL_REAL=$ACCEL ACCEL=$LAB_DIR/accel-bin
lab_accel_start
if lab_accel_wait 30 && [[ $(xdp_ifaces) -eq 3 ]]; then
    # A binary, not a script: executed through /proc/self/fd/N (fexecve
    # of the checked file), a script's interpreter could not open it.
    printf '#include <stdio.h>\nint main(void) { fputs("broken upgrade\\n", stderr); return 3; }\n' |
        cc -x c -o "$LAB_DIR/accel-bin.new" -
    mv "$LAB_DIR/accel-bin.new" "$LAB_DIR/accel-bin"
    k_up=$(ACCEL=$ACCEL_REAL lab_accel upgrade 2>&1); k_rc=$?
    for ((i = 0; i < 50; i++)); do
        lab_accel_log | grep -q 'this instance carries on' && break
        sleep 0.1
    done
    ACCEL=$ACCEL_REAL
    sleep 0.2
    carried=$(lab_accel_log | grep -c 'exited (exit status: 3) before taking over; this instance carries on')
    broken=$(lab_accel_log | grep -c '^broken upgrade$')
    burst 4 "$LAB_SVC4" k4 dst1
    st=$(lab_accel stats >/dev/null 2>&1 && echo answers || echo fails)
    sy=$(lab_accel sync 2>&1 | head -n 1)
    check "k. a successor that fails: the old instance carries on, forwarding in XDP" \
        "alive $(kill -0 "$ACCEL_PID" 2>/dev/null && echo yes || echo no); the successor ran ($broken line), $carried 'carries on'; dst1 got $B_RECV/$N, accel forwarded $B_XFWD, kernel $B_KFWD" \
        eval '[[ $broken -eq 1 && $carried -eq 1 && $B_RECV -eq $N && $B_XFWD -ge $N && $B_KFWD -lt $SMALL ]] && kill -0 "$ACCEL_PID"'
    check "k. accel upgrade says the successor exited and the instance carries on: exit 1" \
        "exit $k_rc: $(tr '\n' ' ' <<<"$k_up")" \
        eval '[[ $k_rc -eq 1 && $k_up == *"handing over to its successor"* && $k_up == *"exited before taking over; accel (pid $ACCEL_PID) carries on"* ]]'
    k_fail=$(lab_accel_series 'accel_handover_failures_total{purpose="upgrade"}' 1)
    check "k. ... and counts it for Prometheus (AccelUpgradeFailed)" "$k_fail" eval '[[ $k_fail == *"} 1" ]]'
    check "k. ... with its maps pinned, control socket and lock back (stats, sync work)" \
        "stats $st; sync: $sy" eval '[[ $st == answers ]] && grep -q "^synced:" <<<"$sy"'
    check "k. ... and no link pins left behind" "$(ls "$ACCEL_PIN_DIR/links" 2>/dev/null | tr '\n' ' ')" \
        eval '[[ -z "$(ls -A "$ACCEL_PIN_DIR/links" 2>/dev/null)" ]]'
else
    ACCEL=$ACCEL_REAL
    not_ok "k. a successor that fails: the old instance carries on, forwarding in XDP" \
        "the first instance did not start"
fi
lab_accel_stop TERM
after_stop "k. after SIGTERM"

# k2. A successor that neither takes over nor exits (stuck): after
# ACCEL_HANDOVER_DEADLINE the old instance stops it and carries on.
cp "$ACCEL" "$LAB_DIR/accel-bin"
ACCEL_REAL=$ACCEL ACCEL=$LAB_DIR/accel-bin
ACCEL_HANDOVER_DEADLINE=2 lab_accel_start
if lab_accel_wait 30 && [[ $(xdp_ifaces) -eq 3 ]]; then
    # A binary, not a script: executed through /proc/self/fd/N (fexecve
    # of the checked file), a script's interpreter could not open it.
    printf '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n' |
        cc -x c -o "$LAB_DIR/accel-bin.new" -
    mv "$LAB_DIR/accel-bin.new" "$LAB_DIR/accel-bin"
    k2_t0=$(date +%s.%N)
    k2_up=$(ACCEL=$ACCEL_REAL lab_accel upgrade --timeout 20 2>&1); k2_rc=$?
    k2_s=$(python3 -c "print(round($(date +%s.%N) - $k2_t0, 1))")
    ACCEL=$ACCEL_REAL
    burst 4 "$LAB_SVC4" k2 dst1
    k2_said=$(lab_accel_log | grep -c 'has neither taken over nor exited in time')
    check "k2. a stuck successor is stopped after the deadline (2 s); accel upgrade says so: exit 1" \
        "exit $k2_rc after ${k2_s}s, $k2_said WARN: $(tr '\n' ' ' <<<"$k2_up")" \
        eval '[[ $k2_rc -eq 1 && $k2_said -eq 1 && $k2_up == *"exited before taking over; accel (pid $ACCEL_PID) carries on"* ]]'
    check "k2. ... and the old instance forwards on in XDP" \
        "dst1 got $B_RECV/$N, accel forwarded $B_XFWD, kernel $B_KFWD" \
        eval '[[ $B_RECV -eq $N && $B_XFWD -ge $N && $B_KFWD -lt $SMALL ]] && kill -0 "$ACCEL_PID"'
else
    ACCEL=$ACCEL_REAL
    not_ok "k2. a stuck successor is stopped after the deadline" "the first instance did not start"
fi
lab_accel_stop TERM
after_stop "k2. after SIGTERM"

# ---------------------------------------------------------------- o. an interface created again
# r-dst1 deleted and created again under its name (a VLAN or bond
# re-created by ifdown/ifup, a VF reset, a driver reloaded): the link accel
# held is left on nothing, and the new device has another ifindex and no
# program. accel says the interface is gone (the health says detached),
# and once a device has the name again it upgrades in place to itself: the
# successor attaches to the new device and adopts the other two links.
o_health() { lab_accel health 2>&1 | head -n 1; }
o_ifindex() { ip -n "$NS_RTR" -o link show r-dst1 | cut -d: -f1; }
recreated() {
    local i
    # Every figure the checks read, set even where this returns early.
    O_IDX0= O_IDX1= O_GONE=0 O_HEALTH_GONE= O_RC=- O_BACK=0 O_ATTACHED=0 O_ADOPTED=0 O_WARN=-
    lab_accel_start
    O_FIRST=$ACCEL_LOG_OFFSET
    if ! lab_accel_wait 30 || [[ $(xdp_ifaces) -ne 3 ]]; then
        SW_RESULT="the first instance did not start; its log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    O_IDX0=$(o_ifindex)
    ip -n "$NS_RTR" link del r-dst1
    for ((i = 0; i < 50; i++)); do
        lab_accel_log | grep -q 'r-dst1 is gone' && break
        sleep 0.1
    done
    # The health is published once a second.
    for ((i = 0; i < 30; i++)); do
        O_HEALTH_GONE=$(o_health)
        grep -q 'no longer attached to r-dst1' <<<"$O_HEALTH_GONE" && break
        sleep 0.1
    done
    sleep 2
    O_GONE=$(lab_accel_log | grep -c 'r-dst1 is gone')
    ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
    if ! lab_link_dst1; then
        SW_RESULT="re-creating r-dst1 failed"
        return 1
    fi
    O_IDX1=$(o_ifindex)
    # The old instance exits once its successor has taken every link.
    for ((i = 0; i < 300; i++)); do kill -0 "$ACCEL_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$ACCEL_PID" 2>/dev/null; then
        SW_RESULT="the old instance still runs 30 s after r-dst1 came back; log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    wait "$ACCEL_PID"
    O_RC=$?
    if ! lab_accel_follow_successor || ! lab_accel_wait 30; then
        SW_RESULT="no successor running; log: $(lab_accel_log | tail -n 5 | tr '\n' ' ')"
        return 1
    fi
    O_BACK=$(lab_accel_log | grep -c "r-dst1 (ifindex $O_IDX1) is back: upgrading in place")
    O_ATTACHED=$(lab_accel_log | grep -c "attached to r-dst1 (ifindex $O_IDX1, ")
    O_ADOPTED=$(lab_accel_log | grep -c "adopted the previous instance's link on r-[a-z0-9]* ")
    # Both instances' lines, from the first one's start.
    O_WARN=$(tail -c +$((O_FIRST + 1)) "$LAB_DIR/accel.log" | grep -E 'WARN|ERROR' |
        grep -v -e 'r-dst1 is gone' -e 'alert detached started' -e 'a link gone down or away.*: full resync' |
        head -n 3 | tr '\n' ' ')
    SW_RESULT="r-dst1 ifindex $O_IDX0 -> $O_IDX1; old exit $O_RC; XDP on $(xdp_ifaces) interfaces"
    return 0
}
if check_sw "o. r-dst1 deleted and created again: the old instance hands over to a successor" recreated; then
    note "o: $SW_RESULT"
    check "o. the log says r-dst1 is gone, once (3 s after)" "$O_GONE line(s)" test "$O_GONE" -eq 1
    check "o. meanwhile the health says accel is no longer attached to r-dst1" "$O_HEALTH_GONE" \
        grep -q 'CRITICAL.*no longer attached to r-dst1' <<<"$O_HEALTH_GONE"
    check "o. the device back under the name: the log says so and the successor attaches to it" \
        "$O_BACK 'is back', $O_ATTACHED 'attached to r-dst1 (ifindex $O_IDX1)', $O_ADOPTED links adopted, old exit $O_RC" \
        eval '[[ $O_BACK -eq 1 && $O_ATTACHED -eq 1 && $O_ADOPTED -ge 2 && $O_RC -eq 0 && $(xdp_ifaces) -eq 3 ]]'
    check "o. ... without a warning beyond that it was gone, its alert and the resync" "${O_WARN:-none}" \
        test -z "$O_WARN"
    ping4 "$LAB_SVC4" 2 && ping6 "$LAB_SVC6" 2 || note "o: warm-up pings failed"
    bursts "o. through the new r-dst1" o xdp
    in_sync "o. the successor's mirror matches the kernel (sync --check)"
    h=$(o_health)
    check "o. the health is OK again" "$h" grep -q '^OK' <<<"$h"
else
    lab_accel_diag | sed 's/^/#   /'
fi
lab_accel_stop TERM
rc=$?
check "o. SIGTERM to the successor: clean exit" "exit $rc" test "$rc" -eq 0

# ---------------------------------------------------------------- p. a bridge port
# r-dst2 made a port of a bridge while accel runs: the bridge's rx_handler
# takes what arrives there, and the kernel routes it as arriving on br0,
# with br0's settings; here br0 does not forward (forwarding 0), so the
# kernel drops what dst2 sends to dst1. accel must leave it all to the
# kernel, not forward it with r-dst2's settings. Out of the bridge again,
# XDP forwards it.
p_burst() { # TAG: 1000 datagrams dst2 -> dst1 (via r-dst2, r-dst1)
    local x0 x1
    x0=$(lab_accel_stat --iface "$LAB_R_DST2" fwd_mirror fwd_fib 2>/dev/null) || x0=0
    lab_send "$NS_DST2" 10.11.2.2 "$N" "$RATE" "$1" >/dev/null
    sleep 0.3
    x1=$(lab_accel_stat --iface "$LAB_R_DST2" fwd_mirror fwd_fib 2>/dev/null) || x1=0
    P_RECV=$(lab_received "$1" dst1) P_XFWD=$((x1 - x0))
}
p_forwarded() { # NAME TAG: dst2 -> dst1 all forwarded in XDP from $LAB_R_DST2
    lab_in "$NS_DST2" ping -q -c 2 -i 0.2 -W 2 10.11.2.2 >/dev/null 2>&1 || note "$2: warm-up ping failed"
    p_burst "$2"
    check "$1" "dst1 got $P_RECV/$N, accel forwarded $P_XFWD" eval '[[ $P_RECV -eq $N && $P_XFWD -ge $N ]]'
}
lab_accel_start
if lab_accel_wait 30 && [[ $(xdp_ifaces) -eq 3 ]]; then
    p_forwarded "p. dst2 -> dst1 forwarded in XDP from r-dst2" p0
    ip -n "$NS_RTR" link add p-br0 type bridge
    lab_in "$NS_RTR" sysctl -qw net.ipv4.conf.p-br0.forwarding=0
    ip -n "$NS_RTR" link set p-br0 up
    ip -n "$NS_RTR" link set "$LAB_R_DST2" master p-br0
    for ((i = 0; i < 30; i++)); do lab_accel_log | grep -q "r-dst2 is now a port of p-br0" && break; sleep 0.1; done
    said=$(lab_accel_log | grep -c "r-dst2 is now a port of p-br0")
    p_burst p1
    check "p. r-dst2 made a port of a bridge that does not forward: accel forwards nothing from it, the kernel drops it, as without accel" \
        "$said log line; dst1 got $P_RECV/$N, accel forwarded $P_XFWD" \
        eval '[[ $said -eq 1 && $P_RECV -eq 0 && $P_XFWD -eq 0 ]]'
    ip -n "$NS_RTR" link set "$LAB_R_DST2" nomaster
    ip -n "$NS_RTR" link del p-br0
    for ((i = 0; i < 30; i++)); do lab_accel_log | grep -q "r-dst2 is no longer a port" && break; sleep 0.1; done
    p_forwarded "p. out of the bridge: forwarded in XDP from r-dst2 again" p2
    in_sync "p. the mirror matches the kernel after (sync --check)"
else
    not_ok "p. dst2 -> dst1 forwarded in XDP from r-dst2" "accel did not start"
fi
lab_accel_stop TERM

# ---------------------------------------------------------------- q. moved to another namespace
# An XDP or tcx link stays on a device moved into another namespace: left
# there, accel's program would judge that namespace's frames by this one's
# mirror. Moved away, r-dst2 must run none of accel's programs; moved back
# (same name, same ifindex), accel takes it back.
q_progs() { # programs on device $2 (r-dst2) in namespace $1: XDP and tcx
    local n dev=${2:-r-dst2}
    n=$(ip -n "$1" -d link show dev "$dev" 2>/dev/null | grep -c 'prog/xdp')
    echo $((n + $(lab_in "$1" python3 "$LAB_TOOL" tcx "$dev" 2>/dev/null || echo 0)))
}
Q_NS=$LAB_PREFIX-q
LAB_NSS+=("$Q_NS") # lab_down removes it, whatever happens
lab_accel_start
if lab_accel_wait 30 && [[ $(xdp_ifaces) -eq 3 ]]; then
    ip netns add "$Q_NS"
    ip -n "$NS_RTR" link set "$LAB_R_DST2" netns "$Q_NS"
    for ((i = 0; i < 30; i++)); do [[ $(q_progs "$Q_NS") -eq 0 ]] && break; sleep 0.1; done
    gone=$(lab_accel_log | grep -c 'r-dst2 is gone')
    left=$(q_progs "$Q_NS")
    check "q. r-dst2 moved to another namespace: accel says it is gone and its programs leave it there" \
        "$gone log line(s); $left program(s) on r-dst2 in $Q_NS" eval '[[ $gone -eq 1 && $left -eq 0 ]]'
    ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
    ip -n "$Q_NS" link set r-dst2 netns "$NS_RTR"
    lab_addr "$NS_RTR" r-dst2 10.11.3.1/24 fd00:11:3::1/64
    ip -n "$NS_RTR" route add 203.0.113.0/24 via 10.11.3.2
    ip -n "$NS_RTR" -6 route add 2001:db8:200::/48 via fd00:11:3::2
    for ((i = 0; i < 300; i++)); do kill -0 "$ACCEL_PID" 2>/dev/null || break; sleep 0.1; done
    rc=running
    if ! kill -0 "$ACCEL_PID" 2>/dev/null; then
        wait "$ACCEL_PID"
        rc=$?
    fi
    if [[ $rc != running ]] && lab_accel_follow_successor && lab_accel_wait 30; then
        lab_in "$NS_DST2" ping -q -c 2 -i 0.2 -W 2 10.11.2.2 >/dev/null 2>&1 || note "q: warm-up ping failed"
        p_burst q1
        back=$(lab_accel_log | grep -c 'r-dst2 (ifindex [0-9]*) is back')
        check "q. moved back: taken back (old exit $rc), XDP on 3 interfaces, dst2 -> dst1 forwarded in XDP" \
            "$back 'is back'; XDP on $(xdp_ifaces); dst1 got $P_RECV/$N, accel forwarded $P_XFWD" \
            eval '[[ $back -eq 1 && $rc -eq 0 && $(xdp_ifaces) -eq 3 && $P_RECV -eq $N && $P_XFWD -ge $N ]]'
    else
        not_ok "q. moved back: taken back, XDP on 3 interfaces, dst2 -> dst1 forwarded in XDP" \
            "old instance $rc 30 s after, no successor; log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
    fi
    ip netns del "$Q_NS" 2>/dev/null
else
    not_ok "q. r-dst2 moved to another namespace: accel says it is gone and its programs leave it there" \
        "accel did not start"
fi
lab_accel_stop TERM
# The same with r-dst2 accel's only interface: the take-back's handover has
# no link to hand over, so nothing but the successor's publishing itself
# (its pid in the run directory, once attached) may end the old instance.
touch "$LAB_DIR/accel.log"
ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" run -i "$LAB_R_DST2" >>"$LAB_DIR/accel.log" 2>&1 &
ACCEL_PID=$!
if lab_accel_wait 30; then
    ip netns add "$Q_NS"
    ip -n "$NS_RTR" link set "$LAB_R_DST2" netns "$Q_NS"
    for ((i = 0; i < 30; i++)); do lab_accel_log | grep -q 'r-dst2 is gone' && break; sleep 0.1; done
    ip -n "$Q_NS" link set r-dst2 netns "$NS_RTR"
    lab_addr "$NS_RTR" r-dst2 10.11.3.1/24 fd00:11:3::1/64
    ip -n "$NS_RTR" route add 203.0.113.0/24 via 10.11.3.2
    ip -n "$NS_RTR" -6 route add 2001:db8:200::/48 via fd00:11:3::2
    old=$ACCEL_PID
    for ((i = 0; i < 300; i++)); do kill -0 "$old" 2>/dev/null || break; sleep 0.02; done
    named=$(cat "$ACCEL_RUN_DIR/accel.pid" 2>/dev/null)
    alive=$(kill -0 "$old" 2>/dev/null && echo running || echo exited)
    if lab_accel_follow_successor && lab_accel_wait 30; then
        xdp=$(ip -n "$NS_RTR" -d link show dev r-dst2 | grep -c 'prog/xdp')
        check "q. r-dst2 the only interface, moved away and back: the old instance exits only once its successor runs, on r-dst2" \
            "old $old $alive; the pid file named ${named:-nothing} when it exited; successor $ACCEL_PID, XDP on r-dst2: $xdp" \
            eval '[[ $alive == exited && $named == "$ACCEL_PID" && $named != "$old" && $xdp -eq 1 ]]'
    else
        not_ok "q. r-dst2 the only interface, moved away and back: the old instance exits only once its successor runs, on r-dst2" \
            "old $old $alive; no successor; log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
    fi
    ip netns del "$Q_NS" 2>/dev/null
else
    not_ok "q. r-dst2 the only interface: accel starts" "log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
fi
lab_accel_stop TERM

# ---------------------------------------------------------------- q2. renamed
# r-dst2 renamed q2-wan while accel runs: accel's links stay on the device
# (they belong to it, not to its name). An upgrade in place must keep
# accel there: the successor, started with `-i r-dst2`, finds the device
# by the ifindex its predecessor hands it, not by the name, under which a
# new device (a decoy here) may stand by then.
q2_rename() { # FROM TO: the device must be down to be renamed
    ip -n "$NS_RTR" link set "$1" down && ip -n "$NS_RTR" link set "$1" name "$2" &&
        ip -n "$NS_RTR" link set "$2" up || return 1
    # Down took the IPv6 address (keep_addr_on_down 0) and the routes.
    ip -n "$NS_RTR" addr replace 10.11.3.1/24 dev "$2" &&
        ip -n "$NS_RTR" addr replace fd00:11:3::1/64 dev "$2" nodad &&
        ip -n "$NS_RTR" route replace 203.0.113.0/24 via 10.11.3.2 &&
        ip -n "$NS_RTR" -6 route replace 2001:db8:200::/48 via fd00:11:3::2
}
q2_exited() { # PID: gone, or a zombie nobody reaps (a successor is not our child)
    local st
    st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)
    [[ -z $st || $st == Z ]]
}
# With no device named r-dst2 any more, r-dst1 deleted and created again:
# the take-back must judge r-dst2 as its successor will find it (by the
# ifindex handed over), not wait for a device of that name.
q2_take_back() {
    local old=$ACCEL_PID idx back not_yet on1 onw i
    ip -n "$NS_RTR" link del r-dst2
    ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
    ip -n "$NS_RTR" link del r-dst1
    for ((i = 0; i < 50; i++)); do lab_accel_log | grep -q 'r-dst1 is gone' && break; sleep 0.1; done
    lab_link_dst1 || note "q2: re-creating r-dst1 failed"
    idx=$(ip -n "$NS_RTR" -o link show r-dst1 | cut -d: -f1)
    for ((i = 0; i < 300; i++)); do q2_exited "$old" && break; sleep 0.1; done
    if q2_exited "$old" && lab_accel_follow_successor && lab_accel_wait 30; then
        back=$(lab_accel_log | grep -c "r-dst1 (ifindex $idx) is back: upgrading in place")
        not_yet=$(lab_accel_log | grep -c 'not attaching again yet')
        on1=$(q_progs "$NS_RTR" r-dst1) onw=$(q_progs "$NS_RTR" q2-wan)
        check "q2. r-dst1 created again meanwhile: taken back, the successor on it and still on q2-wan" \
            "$back 'is back', $not_yet 'not attaching again yet'; accel's programs on r-dst1: $on1, on q2-wan: $onw" \
            eval '[[ $back -eq 1 && $not_yet -eq 0 && $on1 -ge 1 && $onw -ge 1 ]]'
    else
        not_ok "q2. r-dst1 created again meanwhile: taken back" \
            "the instance $old $(q2_exited "$old" && echo exited || echo runs) 30 s after; log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
    fi
}
lab_accel_start
if lab_accel_wait 30 && [[ $(xdp_ifaces) -eq 3 ]]; then
    q2_idx=$(ip -n "$NS_RTR" -o link show r-dst2 | cut -d: -f1)
    q2_rename r-dst2 q2-wan || note "q2: renaming r-dst2 failed"
    q2_decoy=made
    ip -n "$NS_RTR" link add r-dst2 type veth peer name q2-peer && ip -n "$NS_RTR" link set r-dst2 up ||
        q2_decoy=failed
    for ((i = 0; i < 30; i++)); do lab_accel_log | grep -q 'r-dst2 was renamed q2-wan' && break; sleep 0.1; done
    old=$ACCEL_PID
    ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
    q2_up=$(lab_accel upgrade 2>&1); q2_rc=$?
    check "q2. r-dst2 renamed, another device under its name: accel upgrade succeeds" \
        "exit $q2_rc: $(tr '\n' ' ' <<<"$q2_up")" \
        eval '[[ $q2_rc -eq 0 && $q2_up == *"upgraded in place"* ]]'
    if lab_accel_follow_successor && [[ $ACCEL_PID != "$old" ]] && lab_accel_wait 30; then
        on=$(q_progs "$NS_RTR" q2-wan) decoy=$(q_progs "$NS_RTR" r-dst2)
        said=$(lab_accel_log | grep -c "r-dst2: its predecessor ran on the device named q2-wan now (ifindex $q2_idx)")
        adopted=$(lab_accel_log | grep -c "adopted the previous instance's link on r-dst2 (ifindex $q2_idx, ")
        check "q2. the successor runs on the renamed device (adopted hitlessly), not on the new r-dst2" \
            "$said log line, $adopted adopted; accel's programs on q2-wan: $on, on the new r-dst2 ($q2_decoy): $decoy" \
            eval '[[ $said -eq 1 && $adopted -eq 1 && $on -ge 1 && $q2_decoy == made && $decoy -eq 0 ]]'
        LAB_R_DST2=q2-wan p_forwarded \
            "q2. dst2 -> dst1 through q2-wan forwarded in XDP (its counters under its name now)" q2
        in_sync "q2. the successor's mirror matches the kernel (sync --check)"
        q2_att=$(lab_accel stats --format openmetrics 2>&1 | grep '^accel_interface_attached{interface="q2-wan",')
        q2_h=$(lab_accel health 2>&1 | head -n 1)
        check "q2. the health and the metrics name the device as it is named now, as the packet counters do" \
            "$q2_att; $q2_h" eval '[[ $q2_att == *"} 1" && $q2_h == OK*q2-wan* && $q2_h != *r-dst2* ]]'
        q2_take_back
    else
        not_ok "q2. the successor runs on the renamed device" \
            "no successor; log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
    fi
else
    not_ok "q2. r-dst2 renamed: accel upgrade succeeds" "accel did not start"
fi
lab_accel_stop TERM
if ip -n "$NS_RTR" link show q2-wan >/dev/null 2>&1; then
    ip -n "$NS_RTR" link del r-dst2 2>/dev/null # the decoy, if still there
    q2_rename q2-wan r-dst2 || note "q2: renaming q2-wan back to r-dst2 failed"
fi

# ---------------------------------------------------------------- m. capacity
# A structure that runs out of room must never stop accel (under systemd's
# Restart=on-failure an exit restarts it again and again): the routes
# without room are forwarded through bpf_fib_lookup, a WARN says so, and
# they return to the mirror once room frees up.

# path_burst ADDR TAG SINK: one burst; sets P_RECV and the fwd_mirror and
# fwd_fib deltas on r-src (P_MIRROR, P_FIB).
path_burst() {
    local addr=$1 tag=$2 sink=$3 m0 f0 m1 f1
    m0=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_mirror) f0=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_fib)
    lab_send "$NS_SRC" "$addr" "$N" "$RATE" "$tag" >/dev/null
    sleep 0.3
    m1=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_mirror) f1=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_fib)
    P_RECV=$(lab_received "$tag" "$sink") P_MIRROR=$((m1 - m0)) P_FIB=$((f1 - f0))
}
# expect_path NAME ADDR TAG SINK mirror|fib: every datagram arrives, and
# the named path forwarded them.
expect_path() {
    local name=$1 addr=$2 tag=$3 sink=$4 want=$5 d
    path_burst "$addr" "$tag" "$sink"
    d="sent $N, $sink got $P_RECV, fwd_mirror +$P_MIRROR, fwd_fib +$P_FIB"
    if [[ $want == mirror ]]; then
        check "$name" "$d" eval "[[ $P_RECV -eq $N && $P_MIRROR -ge $N && $P_FIB -lt $SMALL ]]"
    else
        check "$name" "$d" eval "[[ $P_RECV -eq $N && $P_FIB -ge $N && $P_MIRROR -lt $SMALL ]]"
    fi
}
# log_wait PATTERN [SECONDS]: until this instance logged PATTERN.
log_wait() {
    local i
    for ((i = 0; i < ${2:-5} * 10; i++)); do
        lab_accel_log | grep -q -- "$1" && return 0
        sleep 0.1
    done
    return 1
}
# cap_field STRUCTURE FIELD: from `accel stats --capacity --json`.
cap_field() {
    lab_accel stats --capacity --json 2>/dev/null |
        python3 "$LAB_TOOL" json "$1.$2" 2>/dev/null || echo none
}
# batch_routes FILE VERB COUNT [NET]: COUNT /25s, one in each /24 from
# NET.64.0.0 on (NET 100 unless given).
batch_routes() {
    python3 "$LAB_TOOL" route-batch "$1" "$2" "$3" "$LAB_DST1_GW4" --net "${4:-100}"
}
# check_in_sync NAME: `accel sync --check` reports no difference.
check_in_sync() {
    local sy rc
    sy=$(lab_accel sync --check 2>&1)
    rc=$?
    check "$1" "exit $rc: $(head -n 3 <<<"$sy" | tr '\n' ' ')" eval "[[ $rc -eq 0 ]] && grep -q '^in sync' <<<\"\$sy\""
}
# check_log NAME PATTERN: this instance logs PATTERN within 5 s.
check_log() {
    log_wait "$2" 5
    local rc=$?
    check "$1" "$(lab_accel_log | grep -m1 -- "$2" | cut -c1-300)" test "$rc" -eq 0
}
# cap_started NAME: the instance just started runs and stays up (not ok,
# and stopped, otherwise).
cap_started() {
    if lab_accel_wait 60 && sleep 1.5 && kill -0 "$ACCEL_PID" 2>/dev/null; then
        ok "$1" "pid $ACCEL_PID"
        return 0
    fi
    not_ok "$1" "not running; its log: $(lab_accel_log | tail -n 2 | tr '\n' ' ')"
    lab_accel_stop KILL
    return 1
}
# cap_stop PREFIX: SIGTERM, and a clean exit.
cap_stop() {
    lab_accel_stop TERM
    local rc=$?
    check "$1 SIGTERM: clean exit" "exit $rc" test "$rc" -eq 0
}
ip -n "$NS_DST1" addr add 100.64.0.1/32 dev lo
ip -n "$NS_DST1" addr add 100.64.7.1/32 dev lo
ip -n "$NS_DST1" addr add 100.191.255.1/32 dev lo
ip -n "$NS_DST1" addr add 223.64.0.1/32 dev lo
ip -n "$NS_DST1" addr add 223.64.7.1/32 dev lo

# lines_used FAMILY: the trie lines accel needs for the router's routes as
# they are now (a run with room, stopped again): the capacity checks below
# take a little less, so that the nodes placed last have none.
lines_used() {
    lab_accel_start --grow-after 0
    local used=none
    if lab_accel_wait 60; then
        sleep 1
        used=$(cap_field "ipv$1_trie" used)
    fi
    lab_accel_stop TERM >/dev/null
    echo "$used"
}

# m1. A trie short of lines: 32,768 /24s in 128 /16s get a /25 each (a
# node of one line per /24, a DIRECT node of 16 per /16), with 256 lines
# fewer than they and the lab's routes need. Nodes get lines shallowest
# first, then in address order: the last /24s of 100.191.0.0/16 (and the
# lab's own ranges after it) have none, and their traffic goes to
# bpf_fib_lookup. On old code `accel run` exited with status 1 here.
M1=32768
batch_routes "$LAB_DIR/m1.add" add $M1
batch_routes "$LAB_DIR/m1.del" del $M1
ip -n "$NS_RTR" -batch "$LAB_DIR/m1.add"
note "m1: $(ip -n "$NS_RTR" route show | grep -c '^100\.') /25 routes in 100.64.0.0-100.191.255.255"
M1_NEED=$(lines_used 4)
M1_LINES=$((${M1_NEED/none/300} - 256))
note "m1: the routes need $M1_NEED IPv4 trie lines; accel gets $M1_LINES"
# Without growth (m3): this check is of what a full structure does.
export ACCEL_CAPACITY=ipv4_trie=$M1_LINES
lab_accel_start --grow-after 0
unset ACCEL_CAPACITY
if cap_started "m1. more routes need trie lines than the IPv4 trie has: accel run starts and keeps running"; then
    warn=$(lab_accel_log | grep -m1 'capacity: IPv4 trie lines exhausted')
    check "m1. a WARN names the exhausted structure with its figures" "$warn" \
        grep -q "WARN.*([0-9]* of $M1_LINES in use): [0-9]* routes in [0-9]* address ranges" <<<"$warn"
    deg=$(cap_field ipv4_trie degraded) used=$(cap_field ipv4_trie used)
    check "m1. accel stats --capacity: the lines all but used, the /25s beyond degraded" \
        "used $used of $M1_LINES, degraded $deg" eval '[[ $used != none && $used -gt $((M1_LINES - 16)) && $deg != none && $deg -ge 4 ]]'
    lk=$(lab_accel lookup 100.191.255.1 2>&1)
    check "m1. accel lookup 100.191.255.1 says there was no room for its route" \
        "$(grep -m1 'room' <<<"$lk")" grep -q 'no room for this route' <<<"$lk"
    ping4 100.64.0.1 2 || note "m1: warm-up ping to 100.64.0.1 failed"
    expect_path "m1. 100.64.0.1 (its /24 has a node): all arrive, forwarded from the mirror" \
        100.64.0.1 m1a dst1 mirror
    expect_path "m1. 100.191.255.1 (its /24 has none): all arrive, forwarded through bpf_fib_lookup" \
        100.191.255.1 m1b dst1 fib
    check_in_sync "m1. accel sync --check: in sync (degraded routes are no difference)"
    # The /25s of two /16s go, and their 544 lines with them: after the
    # grace period every degraded range gets its lines.
    for k in $(seq 0 511); do echo "route del 100.$((64 + k / 256)).$((k % 256)).0/25"; done >"$LAB_DIR/m1.free"
    ip -n "$NS_RTR" -batch "$LAB_DIR/m1.free"
    check_log "m1. room freed: a WARN says the lines recovered" \
        'WARN.*capacity: IPv4 trie lines recovered'
    check "m1. accel stats --capacity: nothing degraded any more" \
        "degraded $(cap_field ipv4_trie degraded)" test "$(cap_field ipv4_trie degraded)" = 0
    expect_path "m1. 100.191.255.1 is forwarded from the mirror again" 100.191.255.1 m1c dst1 mirror
    cap_stop m1.
fi
ip -n "$NS_RTR" -force -batch "$LAB_DIR/m1.del" 2>/dev/null

# m2. Tiny structures (ACCEL_CAPACITY): the IPv4 trie two lines short of
# what the lab's routes and eight /25s in 223.64.0.0/21 (last in address
# order) need, so that the last two /24s' nodes have none; the IPv6 trie
# one line short (the deepest node, of ::1/128, has none); one local4
# entry for four addresses.
batch_routes "$LAB_DIR/m2.add" add 8 223
batch_routes "$LAB_DIR/m2.del" del 8 223
ip -n "$NS_RTR" -batch "$LAB_DIR/m2.add"
M2_NEED4=$(lines_used 4) M2_NEED6=$(lines_used 6)
M2_LINES4=$((${M2_NEED4/none/30} - 2)) M2_LINES6=$((${M2_NEED6/none/30} - 1))
export ACCEL_CAPACITY=ipv4_trie=$M2_LINES4,ipv6_trie=$M2_LINES6,local_addrs=1
lab_accel_start --grow-after 0
unset ACCEL_CAPACITY
if cap_started "m2. tiny structures (ACCEL_CAPACITY), more routes than fit: accel run starts and keeps running"; then
    note "m2: $M2_LINES4 IPv4 and $M2_LINES6 IPv6 trie lines; $(lab_accel_log | grep -m1 -o 'structure sizes from.*')"
    for what in "IPv4 trie lines" "IPv6 trie lines" "local IPv4 address entries"; do
        check_log "m2. a WARN says the $what are exhausted" "WARN.*capacity: $what exhausted"
    done
    ping4 223.64.0.1 2 && ping6 "$LAB_SVC6" 2 && ping6 "$LAB_SVC6B" 2 || note "m2: warm-up pings failed"
    expect_path "m2. 223.64.0.1 (fits): all arrive, from the mirror (sources checked by the kernel's lookup)" \
        223.64.0.1 m2a dst1 mirror
    expect_path "m2. 223.64.7.1 (no line left): all arrive, through bpf_fib_lookup" 223.64.7.1 m2b dst1 fib
    expect_path "m2. $LAB_SVC6 (fits): all arrive, from the mirror" "$LAB_SVC6" m2c dst1 mirror
    expect_path "m2. $LAB_SVC6B (fits): all arrive, from the mirror" "$LAB_SVC6B" m2d dst2 mirror
    check_in_sync "m2. accel sync --check: in sync"
    ip -n "$NS_RTR" -batch "$LAB_DIR/m2.del"
    check_log "m2. the /25s withdrawn: a WARN says the IPv4 lines recovered" \
        'WARN.*capacity: IPv4 trie lines recovered'
    check_in_sync "m2. accel sync --check: still in sync"
    cap_stop m2.
fi
ip -n "$NS_RTR" -force -batch "$LAB_DIR/m2.del" 2>/dev/null

# m3. Growing online: with 8 IPv6 trie lines most of the lab's IPv6
# routes have no room; after 2 s of that (--grow-after 2) accel upgrades
# in place to itself with the lines at what the routes need and an eighth
# (more than doubling here): one growth. Under 1000 datagrams/s to that destination nothing may be lost
# and the kernel must forward nothing: bpf_fib_lookup, then the
# successor's mirror.
M3_LINES=8
# until_exit PID SECONDS: whether PID exits within SECONDS.
until_exit() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}
grow_online() {
    local k0 k1 sent recv
    export ACCEL_CAPACITY=ipv6_trie=$M3_LINES
    lab_accel_start --grow-after 2
    unset ACCEL_CAPACITY
    if ! lab_accel_wait 30; then
        SW_RESULT="did not start; its log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    ping6 "$LAB_SVC6B" 2 || note "m3: warm-up ping failed"
    read -r -a k0 <<<"$(lab_fwd_counters)"
    lab_send_bg "$LAB_DIR/m3.send" "$NS_SRC" "$LAB_SVC6B" 0 "$SW_RATE" m3 --duration 20
    local s6=$LAB_SEND_PID
    if ! until_exit "$ACCEL_PID" 30; then
        wait "$s6"
        SW_RESULT="no growth within 30 s; log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    wait "$ACCEL_PID"
    M3_RC=$?
    M3_GROWTHS=1
    # Each successor grows again while nodes are short; one that runs on
    # for 8 s (the shortage's 2 s and a margin) has room for everything.
    while lab_accel_follow_successor && lab_accel_wait 30 && until_exit "$ACCEL_PID" 8; do
        M3_GROWTHS=$((M3_GROWTHS + 1))
        [[ $M3_GROWTHS -le 4 ]] || break
    done
    M3_LOG=$(lab_accel_log)
    if ! kill -0 "$ACCEL_PID" 2>/dev/null || ! lab_accel_wait 30; then
        wait "$s6"
        SW_RESULT="no successor running after $M3_GROWTHS growths; log: $(lab_accel_log | tail -n 5 | tr '\n' ' ')"
        return 1
    fi
    wait "$s6"
    sleep 0.3
    read -r -a k1 <<<"$(lab_fwd_counters)"
    sent=$(awk '{print $2}' "$LAB_DIR/m3.send")
    recv=$(lab_received m3 dst2)
    M3_KFWD6=$((k1[1] - k0[1])) M3_LOST=$((sent - recv))
    SW_RESULT="old exit $M3_RC; $M3_GROWTHS growths; kernel forwarded +$M3_KFWD6; $recv/$sent arrived"
}
if check_sw "m3. a structure short of room for --grow-after seconds: accel upgrades in place to bigger maps" grow_online; then
    note "m3: $SW_RESULT"
    m3_to=$(grep -m1 -o 'upgrading in place to maps sized ACCEL_CAPACITY=.*' <<<"$M3_LOG" | grep -o 'ipv6_trie=[0-9]*' | cut -d= -f2)
    check "m3. the first instance said why it grew: IPv6 trie lines beyond a doubling (what the routes need)" \
        "$(grep -m1 'upgrading in place to maps sized' <<<"$M3_LOG" | cut -c1-200)" \
        eval "[[ -n '$m3_to' ]] && (( ${m3_to:-0} > 2 * M3_LINES ))"
    check "m3. the first instance exits with status 0 once the successor took over" "exit $M3_RC" test "$M3_RC" -eq 0
    check "m3. 1000 datagrams/s to $LAB_SVC6B throughout: none lost, the kernel forwarded none" \
        "lost $M3_LOST, kernel +$M3_KFWD6" eval "[[ $M3_LOST -eq 0 && $M3_KFWD6 -lt $SMALL ]]"
    m3_cap=$(cap_field ipv6_trie capacity) m3_deg=$(cap_field ipv6_trie degraded)
    check "m3. one growth; accel stats --capacity: the lines it grew to, nothing degraded" \
        "$M3_GROWTHS growths: capacity $m3_cap (grew to ${m3_to:-?}), degraded $m3_deg" \
        eval "[[ $M3_GROWTHS -eq 1 && $m3_cap == '${m3_to:-x}' && $m3_deg == 0 ]]"
    expect_path "m3. $LAB_SVC6B: all arrive, from the last successor's mirror" "$LAB_SVC6B" m3b dst2 mirror
    check_in_sync "m3. accel sync --check: in sync"
    cap_stop m3.
fi

# m4. Starting afresh: the mirror interns every nexthop-object id it ever
# sees (zebra numbers each new group afresh) and forgets none. Once it
# has interned ACCEL_REFRESH_STEP more than when it went live, accel
# upgrades in place to itself: the successor interns only what the
# kernel's routes use. Here 60 objects replace one another under a route
# (step 40) while 1000 datagrams/s go through it: one refresh, nothing
# lost, the kernel forwards none. 50 more objects stay in use, each by a
# route of its own: a successor counting from before its mirror was
# built (more than a step) would start afresh again at once.
M4_STEP=40 M4_OBJECTS=60 M4_KEPT=50
ip -n "$NS_DST1" addr add 100.80.0.1/32 dev lo
ip -n "$NS_RTR" nexthop add id 4000 via "$LAB_DST1_GW4" dev "$LAB_R_DST1"
ip -n "$NS_RTR" route add 100.80.0.0/24 nhid 4000
for ((k = 0; k < M4_KEPT; k++)); do
    echo "nexthop add id $((5000 + k)) via $LAB_DST1_GW4 dev $LAB_R_DST1"
    echo "route add 100.81.$k.0/24 nhid $((5000 + k))"
done >"$LAB_DIR/m4.kept"
ip -n "$NS_RTR" -batch "$LAB_DIR/m4.kept"
# churn_objects: each object in turn takes the route, the one before goes.
churn_objects() {
    local k
    for ((k = 1; k <= M4_OBJECTS; k++)); do
        ip -n "$NS_RTR" nexthop add id $((4000 + k)) via "$LAB_DST1_GW4" dev "$LAB_R_DST1"
        ip -n "$NS_RTR" route replace 100.80.0.0/24 nhid $((4000 + k))
        ip -n "$NS_RTR" nexthop del id $((4000 + k - 1))
        sleep 0.05
    done
}
start_afresh() {
    local k0 k1 sent recv
    M4_RC=-1 M4_LOG= M4_LOST=-1 M4_KFWD4=-1 M4_DURING=no
    export ACCEL_REFRESH_STEP=$M4_STEP
    lab_accel_start
    unset ACCEL_REFRESH_STEP
    if ! lab_accel_wait 30; then
        SW_RESULT="did not start; its log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    sleep 1.5 # the mirror goes live: the step counts from there
    ping4 100.80.0.1 2 || note "m4: warm-up ping failed"
    read -r -a k0 <<<"$(lab_fwd_counters)"
    lab_send_bg "$LAB_DIR/m4.send" "$NS_SRC" 100.80.0.1 0 "$SW_RATE" m4 --duration 12
    local s4=$LAB_SEND_PID
    churn_objects
    if ! until_exit "$ACCEL_PID" 15; then
        wait "$s4"
        SW_RESULT="no refresh within 15 s; log: $(lab_accel_log | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    # The handover came while the datagrams flowed.
    kill -0 "$s4" 2>/dev/null && M4_DURING=yes
    wait "$ACCEL_PID"
    M4_RC=$?
    M4_LOG=$(lab_accel_log)
    if ! lab_accel_follow_successor || ! lab_accel_wait 30; then
        wait "$s4"
        SW_RESULT="no successor running; log: $(lab_accel_log | tail -n 5 | tr '\n' ' ')"
        return 1
    fi
    ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log") # the successor's lines from here
    wait "$s4"
    sleep 0.3
    read -r -a k1 <<<"$(lab_fwd_counters)"
    sent=$(awk '{print $2}' "$LAB_DIR/m4.send")
    recv=$(lab_received m4 dst1)
    M4_KFWD4=$((k1[0] - k0[0])) M4_LOST=$((sent - recv))
    SW_RESULT="old exit $M4_RC; kernel forwarded +$M4_KFWD4; $recv/$sent arrived"
}
if check_sw "m4. $M4_OBJECTS nexthop objects in turn under a route (ACCEL_REFRESH_STEP=$M4_STEP): accel starts afresh" start_afresh; then
    note "m4: $SW_RESULT"
    check "m4. the first instance said why: the interned next hops" \
        "$(grep -m1 'interned' <<<"$M4_LOG" | cut -c1-200)" \
        eval "grep -q 'next hops, path lists and nexthop-object ids.*upgrading in place to a fresh instance' <<<\"\$M4_LOG\""
    check "m4. the first instance exits with status 0 once the successor took over" "exit $M4_RC" test "$M4_RC" -eq 0
    check "m4. 1000 datagrams/s to 100.80.0.1 throughout: none lost, the kernel forwarded none" \
        "handover while sending: $M4_DURING; lost $M4_LOST, kernel +$M4_KFWD4" \
        eval "[[ $M4_DURING == yes && $M4_LOST -eq 0 && $M4_KFWD4 -lt $SMALL ]]"
    sleep 3
    check "m4. the successor, holding the $M4_KEPT objects in use (more than a step), does not start afresh again" \
        "pid $ACCEL_PID; $(lab_accel_log | grep -c 'fresh instance') refreshes in its log" \
        eval "kill -0 $ACCEL_PID && ! lab_accel_log | grep -q 'fresh instance'"
    expect_path "m4. 100.80.0.1: all arrive, from the successor's mirror" 100.80.0.1 m4b dst1 mirror
    check_in_sync "m4. accel sync --check: in sync"
    cap_stop m4.
fi
# Deleting the objects deletes their routes.
for ((k = 0; k <= M4_OBJECTS; k++)); do echo "nexthop del id $((4000 + k))"; done >"$LAB_DIR/m4.del"
for ((k = 0; k < M4_KEPT; k++)); do echo "nexthop del id $((5000 + k))"; done >>"$LAB_DIR/m4.del"
ip -n "$NS_RTR" -force -batch "$LAB_DIR/m4.del" 2>/dev/null

# ---------------------------------------------------------------- summary
note ""
note "router kernel forwarding counters around check b's bursts ($N datagrams per family, XDP running):"
note "  IpForwDatagrams     ${B_K0[0]} -> ${B_K1[0]} (+$((B_K1[0] - B_K0[0])))"
note "  Ip6OutForwDatagrams ${B_K0[1]} -> ${B_K1[1]} (+$((B_K1[1] - B_K0[1])))"
note "accel stats before check b's bursts:"
sed 's/^/#   /' <<<"$B_S0"
note "accel stats after check b's bursts:"
sed 's/^/#   /' <<<"$B_STATS"
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
