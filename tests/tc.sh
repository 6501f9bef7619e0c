#!/usr/bin/env bash
# The TC half of the datapath, end to end: a router whose interfaces XDP
# cannot serve (a bridge it routes into, a VXLAN tunnel, a macvlan) beside
# veths that run native XDP. Traffic is checked in both directions, with
# the kernel's forwarding counters flat (accel forwarded every packet), as
# are a neighbour still to resolve (no packet lost while the kernel
# resolves it), the hook each interface got from --hook auto, bad hook
# requests, and what is left attached afterwards.
#
#   sudo bash tests/tc.sh     # ACCEL=path/to/accel for another binary
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
if [[ $(id -u) -ne 0 ]]; then
    echo "tests/tc.sh must run as root (namespaces, XDP, TC)" >&2
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
    if [[ $FAILED -gt 0 && -f ${LAB_DIR:-/nonexistent}/accel.log ]]; then
        note "accel log (last 15 lines):"
        tail -n 15 "$LAB_DIR/accel.log" | sed 's/^/#   /'
    fi
    lab_down
    return $rc
}
lab_init || { echo "0 passed, 1 failed"; exit 1; }
trap finish EXIT
trap "exit 130" INT TERM
lab_up || { not_ok "lab setup" "building the namespaces failed"; echo "$PASSED passed, $FAILED failed"; exit 1; }

# Three more hosts behind the router, each reached through an interface
# XDP cannot serve:
#   hb: behind the bridge br0 (port r-bp), the router's address on br0;
#   vt: a VXLAN tunnel endpoint, the underlay r-ul, the overlay vx0;
#   mh: behind the macvlan mv0 on r-mvl.
NS_HB=$LAB_PREFIX-hb NS_VT=$LAB_PREFIX-vt NS_MH=$LAB_PREFIX-mh
LAB_NSS+=("$NS_HB" "$NS_VT" "$NS_MH")
extra_up() {
    local ns
    for ns in "$NS_HB" "$NS_VT" "$NS_MH"; do
        ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
        lab_in "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 || return 1
    done
    ip -n "$NS_RTR" link add br0 type bridge || return 1
    ip -n "$NS_RTR" link add r-bp type veth peer name h-rtr netns "$NS_HB" || return 1
    ip -n "$NS_RTR" link set r-bp master br0 up || return 1
    lab_addr "$NS_RTR" br0 10.12.1.1/24 fd00:12:1::1/64 || return 1
    lab_addr "$NS_HB" h-rtr 10.12.1.2/24 fd00:12:1::2/64 || return 1

    ip -n "$NS_RTR" link add r-ul type veth peer name u-rtr netns "$NS_VT" || return 1
    ip -n "$NS_RTR" addr add 10.13.0.1/24 dev r-ul && ip -n "$NS_RTR" link set r-ul up || return 1
    ip -n "$NS_VT" addr add 10.13.0.2/24 dev u-rtr && ip -n "$NS_VT" link set u-rtr up || return 1
    ip -n "$NS_RTR" link add vx0 type vxlan id 42 local 10.13.0.1 remote 10.13.0.2 dstport 4789 dev r-ul || return 1
    ip -n "$NS_VT" link add vx0 type vxlan id 42 local 10.13.0.2 remote 10.13.0.1 dstport 4789 dev u-rtr || return 1
    lab_addr "$NS_RTR" vx0 10.14.0.1/24 fd00:14::1/64 || return 1
    lab_addr "$NS_VT" vx0 10.14.0.2/24 fd00:14::2/64 || return 1

    ip -n "$NS_RTR" link add r-mvl type veth peer name m-rtr netns "$NS_MH" || return 1
    ip -n "$NS_RTR" link set r-mvl up || return 1
    ip -n "$NS_RTR" link add mv0 link r-mvl type macvlan mode bridge || return 1
    lab_addr "$NS_RTR" mv0 10.15.0.1/24 fd00:15::1/64 || return 1
    lab_addr "$NS_MH" m-rtr 10.15.0.2/24 fd00:15::2/64 || return 1

    local host gw4 gw6 dev
    for host in "$NS_HB 10.12.1.1 fd00:12:1::1 h-rtr" "$NS_VT 10.14.0.1 fd00:14::1 vx0" \
        "$NS_MH 10.15.0.1 fd00:15::1 m-rtr"; do
        set -- $host
        ip -n "$1" route add default via "$2" && ip -n "$1" -6 route add default via "$3" || return 1
        # As for the lab's own veths (scripts/lab.sh): full checksums on
        # the wire from the hosts.
        lab_in "$1" ethtool -K "$4" tx off >/dev/null 2>&1
    done
    lab_sink "$NS_HB" "$LAB_DIR/hb.sink" && lab_sink "$NS_VT" "$LAB_DIR/vt.sink" &&
        lab_sink "$NS_MH" "$LAB_DIR/mh.sink"
}
extra_up || { not_ok "lab setup (bridge, VXLAN, macvlan)" "failed"; echo "$PASSED passed, $FAILED failed"; exit 1; }

N=1000
RATE=4000
hook_of() { lab_accel stats --json 2>/dev/null | python3 -c "
import json, sys
print(next((i.get('hook') or 'none') for i in json.load(sys.stdin) if i['iface'] == '$1'))"; }
handoff_of() { lab_accel stats --json 2>/dev/null | python3 -c "
import json, sys
print(next((i.get('handoff') or 'none') for i in json.load(sys.stdin) if i['iface'] == '$1'))"; }
tcx_links() {
    lab_in "$NS_RTR" python3 "$LAB_TOOL" tcx r-src r-dst1 r-dst2 br0 vx0 mv0
}

# flow NAME SRC_NS DST SINK [TAG]: N datagrams; sets GOT (datagrams SINK
# received) and KFWD (the router's kernel forwarding counters, both
# families, delta).
flow() {
    local tag=${5:-$1} k0 k1
    read -r -a k0 <<<"$(lab_fwd_counters)"
    lab_send "$2" "$3" "$N" "$RATE" "$tag" >/dev/null
    sleep 0.3
    read -r -a k1 <<<"$(lab_fwd_counters)"
    GOT=$(lab_received "$tag" "$4")
    KFWD=$((k1[0] - k0[0] + k1[1] - k0[1]))
}

# ---------------------------------------------------------------- bad input
out=$(lab_accel run -i br0:xdp 2>&1); rc=$?
check "-i br0:xdp: refused with one clear line, nothing attached" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "br0.*does not support native XDP" <<<"$out" && [[ $(tcx_links) -eq 0 ]] && ! lab_rtr_has_xdp'
out=$(lab_accel run -i br0:fast 2>&1); rc=$?
check "-i br0:fast: refused at parsing" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -eq 2 ]] && grep -q "unknown hook .fast." <<<"$out"'

# ---------------------------------------------------------------- auto
IFS_TC=(-i br0 -i vx0 -i mv0)
lab_accel_start "${IFS_TC[@]}"
if lab_accel_wait 30; then
    ok "accel run starts on 3 veths, a bridge, a VXLAN and a macvlan" "pid $ACCEL_PID"
else
    not_ok "accel run starts" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
hooks="r-src=$(hook_of r-src) br0=$(hook_of br0) vx0=$(hook_of vx0) mv0=$(hook_of mv0)"
check "--hook auto: native XDP on the veths, TC on the bridge, VXLAN and macvlan" "$hooks" \
    eval '[[ $hooks == "r-src=native XDP br0=TC ingress (tcx) vx0=TC ingress (tcx) mv0=TC ingress (tcx)" ]]'
# The loader says in its log when the kernel refuses XDP metadata; the
# program's own read-only data, which `accel stats` reads, must agree.
want_handoff=marked
lab_accel_log | grep -q "refuses XDP metadata" && want_handoff=unmarked
handoffs="$(handoff_of r-src) $(handoff_of br0)"
check "accel stats: r-src's frames to TC $want_handoff, as the loader logged; none on br0 (TC)" "$handoffs" \
    eval '[[ $handoffs == "$want_handoff none" ]]'
# 3 TC interfaces, and the TC program beside each of the 3 XDP ones.
check "TC programs: one per TC interface, one beside each XDP interface" "$(tcx_links)" eval '[[ $(tcx_links) -eq 6 ]]'
lab_in "$NS_SRC" ping -q -c 1 -W 2 10.12.1.2 >/dev/null 2>&1 # neighbours
lab_in "$NS_SRC" ping -q -c 1 -W 2 10.14.0.2 >/dev/null 2>&1
lab_in "$NS_SRC" ping -q -c 1 -W 2 10.15.0.2 >/dev/null 2>&1
lab_in "$NS_SRC" ping -6 -q -c 1 -W 2 fd00:12:1::2 >/dev/null 2>&1

# ------------------------------------------------- XDP in, TC interface out
h0=$(lab_accel_stat --iface r-src handoff_tc)
for dst in "bridge 10.12.1.2 hb" "bridge-v6 fd00:12:1::2 hb" "VXLAN 10.14.0.2 vt" "macvlan 10.15.0.2 mh"; do
    set -- $dst
    flow "x-$1" "$NS_SRC" "$2" "$3"
    check "XDP in (r-src), out through the $1 (TC): all delivered, the kernel forwarded none" \
        "$3 got $GOT/$N, kernel forwarded $KFWD" eval '[[ $GOT -eq $N && $KFWD -eq 0 ]]'
done
h1=$(lab_accel_stat --iface r-src handoff_tc)
check "r-src's XDP program handed those frames to the TC program beside it" "handoff_tc +$((h1 - h0))" \
    eval '[[ $((h1 - h0)) -ge $((4 * N)) ]]'

# ------------------------------------------------- TC in, XDP interface out
f0=$(lab_accel_stat --iface br0 fwd_mirror fwd_fib fwd_neigh)
flow "from-bridge" "$NS_HB" "$LAB_SVC4" dst1
f1=$(lab_accel_stat --iface br0 fwd_mirror fwd_fib fwd_neigh)
check "TC in (br0), out through r-dst1 (XDP): all delivered, the kernel forwarded none" \
    "dst1 got $GOT/$N, kernel forwarded $KFWD, br0 forwarded +$((f1 - f0))" \
    eval '[[ $GOT -eq $N && $KFWD -eq 0 && $((f1 - f0)) -ge $N ]]'
flow "tunnel-to-bridge" "$NS_VT" 10.12.1.2 hb
check "TC in (vx0), out through TC (br0): all delivered, the kernel forwarded none" \
    "hb got $GOT/$N, kernel forwarded $KFWD" eval '[[ $GOT -eq $N && $KFWD -eq 0 ]]'

# ------------------------------------------------- unresolved neighbour
# The router forgets hb's MAC; the first datagrams wait in the kernel's
# neighbour queue (bpf_redirect_neigh) while it asks, none is lost.
ip -n "$NS_RTR" neigh flush dev br0
ip -n "$NS_HB" neigh flush dev h-rtr
n0=$(lab_accel_stat fwd_neigh)
N_SAVED=$N N=20
flow "unresolved" "$NS_SRC" 10.12.1.2 hb
N=$N_SAVED
n1=$(lab_accel_stat fwd_neigh)
check "a neighbour to resolve: no datagram lost, the first ones through bpf_redirect_neigh" \
    "hb got $GOT/20, fwd_neigh +$((n1 - n0)), kernel forwarded $KFWD" \
    eval '[[ $GOT -eq 20 && $((n1 - n0)) -ge 1 && $KFWD -eq 0 ]]'

# ------------------------------------------------- the operator's tc
# A qdisc someone configured on an egress, and tc ingress filters, act on
# what the kernel forwards: XDP must not pass them by. accel follows tc's
# notifications.
tbf_sent() {
    tc -s -n "$NS_RTR" qdisc show dev r-dst1 | awk '/^qdisc tbf/ { getline; print $4; exit }'
}
tc -n "$NS_RTR" qdisc add dev r-dst1 root handle 1: tbf rate 1gbit burst 256k latency 100ms
sleep 0.5
q0=$(tbf_sent) h0=$(lab_accel_stat --iface r-src handoff_tc)
flow "shaped" "$NS_SRC" "$LAB_SVC4" dst1
q1=$(tbf_sent) h1=$(lab_accel_stat --iface r-src handoff_tc)
check "a tbf qdisc on r-dst1: all delivered through it, handed to the TC program beside r-src, the kernel forwarded none" \
    "dst1 got $GOT/$N, tbf sent +$((q1 - q0)), handoff_tc +$((h1 - h0)), kernel forwarded $KFWD" \
    eval '[[ $GOT -eq $N && $((q1 - q0)) -ge $N && $((h1 - h0)) -ge $N && $KFWD -eq 0 ]]'
check "accel lookup says the TC program forwards through r-dst1's qdisc" \
    "$(lab_accel lookup "$LAB_SVC4" 2>&1 | grep -m1 'tc egress')" \
    eval 'lab_accel lookup "$LAB_SVC4" 2>&1 | grep -q "a qdisc or tc egress filters configured on r-dst1"'
tc -n "$NS_RTR" qdisc del dev r-dst1 root
sleep 0.5
h0=$(lab_accel_stat --iface r-src handoff_tc) m0=$(lab_accel_stat --iface r-src fwd_mirror)
flow "unshaped" "$NS_SRC" "$LAB_SVC4" dst1
h1=$(lab_accel_stat --iface r-src handoff_tc) m1=$(lab_accel_stat --iface r-src fwd_mirror)
check "the qdisc deleted: XDP redirects to r-dst1 again" \
    "dst1 got $GOT/$N, fwd_mirror +$((m1 - m0)), handoff_tc +$((h1 - h0)), kernel forwarded $KFWD" \
    eval '[[ $GOT -eq $N && $((m1 - m0)) -ge $N && $((h1 - h0)) -eq 0 && $KFWD -eq 0 ]]'
tc -n "$NS_RTR" qdisc add dev r-src clsact
tc -n "$NS_RTR" filter add dev r-src ingress pref 9 protocol ip u32 match u32 0 0 flowid 1:1
sleep 0.5
p0=$(lab_accel_stat --iface r-src pass_tc_filters)
flow "filtered" "$NS_SRC" "$LAB_SVC4" dst1
p1=$(lab_accel_stat --iface r-src pass_tc_filters)
check "a tc ingress filter on r-src (u32, protocol ip): all delivered by the kernel, after the filter" \
    "dst1 got $GOT/$N, pass_tc_filters +$((p1 - p0)), kernel forwarded $KFWD" \
    eval '[[ $GOT -eq $N && $((p1 - p0)) -ge $N && $KFWD -ge $N ]]'
check "the log says why r-src's traffic goes to the kernel" \
    "$(lab_accel_log | grep -m1 'r-src: tc ingress filter' | sed 's/.*WARN *//')" \
    eval 'lab_accel_log | grep -q "r-src: tc ingress filter u32 pref 9 act on what arrives there"'
check "accel lookup says what arrives on r-src goes to the kernel" \
    "$(lab_accel lookup "$LAB_SVC4" 2>&1 | grep -m1 'arriving on')" \
    eval 'lab_accel lookup "$LAB_SVC4" 2>&1 | grep -q "arriving on r-src: passed to the kernel"'
tc -n "$NS_RTR" filter del dev r-src ingress pref 9
sleep 0.5
flow "unfiltered" "$NS_SRC" "$LAB_SVC4" dst1
check "the filter deleted: accel forwards what arrives on r-src again" \
    "dst1 got $GOT/$N, kernel forwarded $KFWD" eval '[[ $GOT -eq $N && $KFWD -eq 0 ]]'
tc -n "$NS_RTR" qdisc del dev r-src clsact

# ------------------------------------------------- stop
lab_accel_stop
check "after SIGTERM: no TC program and no XDP program left" "TC programs $(tcx_links)" \
    eval '[[ $(tcx_links) -eq 0 ]] && ! lab_rtr_has_xdp'
flow "after" "$NS_SRC" 10.12.1.2 hb
check "after SIGTERM: the kernel forwards alone" "hb got $GOT/$N, kernel forwarded $KFWD" \
    eval '[[ $GOT -eq $N && $KFWD -ge $N ]]'

# ------------------------------------------------- everything TC
lab_accel_start --hook tc "${IFS_TC[@]}"
lab_accel_wait 30 || not_ok "accel run --hook tc starts" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
check "--hook tc: r-src runs TC too" "$(hook_of r-src)" eval '[[ "$(hook_of r-src)" == "TC ingress (tcx)" ]]'
for dst in "dst1 $LAB_SVC4 dst1" "dst1-v6 $LAB_SVC6 dst1" "bridge 10.12.1.2 hb"; do
    set -- $dst
    flow "t-$1" "$NS_SRC" "$2" "$3"
    check "--hook tc: r-src to $1: all delivered, the kernel forwarded none" \
        "$3 got $GOT/$N, kernel forwarded $KFWD" eval '[[ $GOT -eq $N && $KFWD -eq 0 ]]'
done
# TCP through GRO: r-src merges segments into GSO packets of up to 64 KiB,
# which the TC program must hold against br0's MTU by their segment size
# (a packet left to the kernel shows in its forwarding counter).
lab_in "$NS_RTR" ethtool -K r-src gro on >/dev/null 2>&1
TCP_BYTES=$((32 << 20))
lab_in "$NS_HB" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.12.1.2", 5601)); s.listen(1); open("'"$LAB_DIR"'/tcp.ready", "w").close()
c, _ = s.accept(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    n += len(b)
open("'"$LAB_DIR"'/tcp.got", "w").write(str(n))
' &
TCP_SINK=$!
for ((i = 0; i < 50; i++)); do [[ -e $LAB_DIR/tcp.ready ]] && break; sleep 0.1; done
read -r -a k0 <<<"$(lab_fwd_counters)"
f0=$(lab_accel_stat --iface r-src fwd_mirror fwd_fib fwd_neigh)
timeout 60 nsenter --net="/run/netns/$NS_SRC" -- python3 -c '
import socket
c = socket.create_connection(("10.12.1.2", 5601)); buf = bytes(1 << 20)
for _ in range('"$((TCP_BYTES >> 20))"'): c.sendall(buf)
c.close()'
wait "$TCP_SINK"
read -r -a k1 <<<"$(lab_fwd_counters)"
f1=$(lab_accel_stat --iface r-src fwd_mirror fwd_fib fwd_neigh)
got=$(cat "$LAB_DIR/tcp.got" 2>/dev/null || echo 0)
KFWD=$((k1[0] - k0[0]))
check "--hook tc: 32 MiB of TCP through GRO on r-src reach the bridge, forwarded by TC (GSO packets within the MTU per segment)" \
    "received $got bytes; r-src forwarded $((f1 - f0)) packets for $((TCP_BYTES / 1448)) segments; kernel forwarded $KFWD" \
    eval '[[ $got -eq $TCP_BYTES && $KFWD -le 10 && $((f1 - f0)) -gt 0 ]]'
lab_accel_stop

# ------------------------------------------------- without tcx: cls_bpf
# Kernels before 6.6 have no tcx links: accel adds a cls_bpf filter on a
# clsact qdisc instead. ACCEL_TC_FILTER takes that path here. A user's own
# filter on the same qdisc must survive everything accel does.
filter_of() { tc -n "$NS_RTR" filter show dev br0 ingress 2>/dev/null | grep -c "accel_tc"; }
tc -n "$NS_RTR" qdisc add dev br0 clsact
tc -n "$NS_RTR" filter add dev br0 ingress pref 7 protocol arp u32 match u32 0 0 flowid 1:1
user_filter() { tc -n "$NS_RTR" filter show dev br0 ingress 2>/dev/null | grep -c "pref 7 u32 chain 0 fh 800::800"; }
ACCEL_TC_FILTER=1 lab_accel_start "${IFS_TC[@]}"
lab_accel_wait 30 || not_ok "accel run with cls_bpf filters starts" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
check "cls_bpf: br0 runs the TC program as a filter" "$(hook_of br0); filters $(filter_of)" \
    eval '[[ "$(hook_of br0)" == "TC ingress (cls_bpf)" && $(filter_of) -eq 1 ]]'
flow "f-bridge" "$NS_SRC" 10.12.1.2 hb
check "cls_bpf: XDP in, out through the bridge: all delivered, the kernel forwarded none" \
    "hb got $GOT/$N, kernel forwarded $KFWD" eval '[[ $GOT -eq $N && $KFWD -eq 0 ]]'
flow "f-from-bridge" "$NS_HB" "$LAB_SVC4" dst1
check "cls_bpf: in through the bridge, out through XDP: all delivered, the kernel forwarded none" \
    "dst1 got $GOT/$N, kernel forwarded $KFWD" eval '[[ $GOT -eq $N && $KFWD -eq 0 ]]'
kill -USR2 "$ACCEL_PID"
sleep 1
check "cls_bpf: a handover is refused (no link to hand over), the instance carries on" \
    "$(lab_accel_log | grep -m1 'handover failed' | sed 's/.*WARN *//')" \
    eval 'lab_accel_log | grep -q "cannot be handed over; restart instead" && kill -0 $ACCEL_PID'
lab_accel_stop KILL
check "cls_bpf: a killed instance leaves its filter (passing to the kernel once its deadlines lapse)" \
    "filters $(filter_of)" eval '[[ $(filter_of) -eq 1 ]]'
ACCEL_TC_FILTER=1 lab_accel_start "${IFS_TC[@]}"
lab_accel_wait 30 || not_ok "accel run restarts over a leftover filter" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
flow "f-restart" "$NS_SRC" 10.12.1.2 hb
check "cls_bpf: the next instance replaces the leftover filter and forwards" \
    "filters $(filter_of); hb got $GOT/$N, kernel forwarded $KFWD" \
    eval '[[ $(filter_of) -eq 1 && $GOT -eq $N && $KFWD -eq 0 ]]'
lab_accel_stop
check "cls_bpf: after SIGTERM accel's filter is gone, the qdisc and the user's filter stay" \
    "accel filters $(filter_of), user filters $(user_filter)" \
    eval '[[ $(filter_of) -eq 0 && $(user_filter) -eq 1 ]] && tc -n "$NS_RTR" qdisc show dev br0 | grep -q clsact'
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
