#!/usr/bin/env bash
# Attack traffic the kernel drops anyway is dropped in XDP, exactly where
# the kernel would drop it: the same spoofed packets are sent through the
# router without accel (the kernel drops them: its IPReversePathFilter or
# in_martian_src counters rise) and with accel (nothing arrives either,
# accel's drop_rpfilter and per-prefix source RTBH counters rise, the
# kernel's stay flat), while legitimate traffic is forwarded throughout.
# And IPsec: while XFRM policies apply to forwarded packets, accel hands
# them all to the kernel (pass_xfrm), which drops or holds back what the
# policies say; without them XDP forwards again.
#
#   sudo bash tests/protection.sh     # ACCEL=path/to/accel for another binary
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
if [[ $(id -u) -ne 0 ]]; then
    echo "tests/protection.sh must run as root (namespaces, XDP)" >&2
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

N=500
# Spoofed sources, put on src's loopback so that its sockets can use them:
# one routed back through r-dst2 (strict rp_filter rejects it on r-src),
# one without any route on the router, one in a blackholed prefix (source
# RTBH), and the lab's own 10.11.1.2 as the legitimate one.
SPOOF_OTHER=203.0.113.77 SPOOF_NOROUTE=100.64.0.9 SPOOF_RTBH=192.0.2.9
for a in $SPOOF_OTHER $SPOOF_NOROUTE $SPOOF_RTBH; do
    ip -n "$NS_SRC" addr add "$a/32" dev lo
done
ip -n "$NS_RTR" route add blackhole 192.0.2.0/24
lab_in "$NS_SRC" ping -q -c 2 -i 0.2 -W 2 "$LAB_SVC4" >/dev/null 2>&1  # neighbours

kernel_drops() { lab_in "$NS_RTR" python3 "$LAB_TOOL" srcdrops; }
rpf() { lab_in "$NS_RTR" sysctl -qw "net.ipv4.conf.all.rp_filter=$1" "net.ipv4.conf.r-src.rp_filter=$1"; }

# send_case LABEL SRC TAG: sends $N datagrams from SRC to svc4; sets GOT
# (datagrams dst1 received), K_RPF and K_MART (kernel counter deltas).
send_case() {
    local src=$2 tag=$3 k0 k1
    read -r -a k0 <<<"$(kernel_drops)"
    lab_send "$NS_SRC" "$LAB_SVC4" "$N" 5000 "$tag" --src "$src" >/dev/null
    sleep 0.5
    read -r -a k1 <<<"$(kernel_drops)"
    GOT=$(lab_received "$tag" dst1)
    K_RPF=$((k1[0] - k0[0])) K_MART=$((k1[1] - k0[1]))
}

run_cases() { # MODE (kernel|accel)
    local mode=$1 s0 s1 d
    # rp_filter mode, source, level: a source routed elsewhere, no route,
    # a blackholed source (the kernel's reverse lookup fails for it as for
    # no route).
    for c in "strict:$SPOOF_OTHER:1" "strict:$SPOOF_NOROUTE:1" "loose:$SPOOF_NOROUTE:2" \
        "loose:$SPOOF_RTBH:2" "strict:$SPOOF_RTBH:1"; do
        IFS=: read -r name src level <<<"$c"
        rpf "$level"
        sleep 1.2 # accel polls sysctls once a second
        s0=$(lab_accel_stat --iface "$LAB_R_SRC" drop_rpfilter 2>/dev/null)
        send_case "$name" "$src" "$mode-$name-$src"
        s1=$(lab_accel_stat --iface "$LAB_R_SRC" drop_rpfilter 2>/dev/null)
        d="dst1 got $GOT; kernel IPReversePathFilter +$K_RPF, in_martian_src +$K_MART"
        if [[ $mode == kernel ]]; then
            check "kernel alone, rp_filter $name, source $src: all $N dropped by the kernel (IPReversePathFilter)" "$d" \
                eval '[[ $GOT -eq 0 && $K_RPF -ge $N ]]'
        else
            check "accel, rp_filter $name, source $src: all $N dropped in XDP (drop_rpfilter), the kernel sees none" \
                "$d; drop_rpfilter +$((s1 - s0))" \
                eval '[[ $GOT -eq 0 && $((s1 - s0)) -eq $N && $K_RPF -eq 0 && $K_MART -lt 10 ]]'
        fi
    done
    rpf 1
    sleep 1.2
    send_case legit 10.11.1.2 "$mode-legit"
    check "$mode: legitimate traffic from 10.11.1.2 with strict rp_filter is forwarded" "dst1 got $GOT of $N" \
        eval '[[ $GOT -eq $N ]]'
}

# Frames ip_rcv_core()/ip6_rcv_core() or the martian-source check drop:
# kind, the kernel counter (index in `labtool hdrdrops`), accel's counter.
RMAC=$(lab_mac "$NS_RTR" r-src) SMAC=$(lab_mac "$NS_SRC" s-rtr)
header_cases() { # MODE
    local mode=$1 kind idx counter k0 k1 r0 r1 a0 a1 kd c
    for c in badcsum4:0:hdr_errors truncated4:1:truncated martian4:4:martian_src zeronet4:4:martian_src \
        loop6:2:hdr_errors mcsrc6:2:hdr_errors truncated6:3:truncated; do
        IFS=: read -r kind idx counter <<<"$c"
        read -r -a k0 <<<"$(lab_in "$NS_RTR" python3 "$LAB_TOOL" hdrdrops)"
        r0=$(lab_rx_packets "$NS_DST1" d1-rtr)
        a0=$(lab_accel_stat --iface "$LAB_R_SRC" "drop_$counter" 2>/dev/null)
        lab_in "$NS_SRC" python3 "$LAB_TOOL" rawsend --iface s-rtr --dst-mac "$RMAC" --src-mac "$SMAC" \
            --kind "$kind" --count "$N"
        sleep 0.3
        read -r -a k1 <<<"$(lab_in "$NS_RTR" python3 "$LAB_TOOL" hdrdrops)"
        r1=$(lab_rx_packets "$NS_DST1" d1-rtr)
        a1=$(lab_accel_stat --iface "$LAB_R_SRC" "drop_$counter" 2>/dev/null)
        kd=$((k1[idx] - k0[idx]))
        d="kernel counter +$kd, dst1 rx +$((r1 - r0))"
        if [[ $mode == kernel ]]; then
            check "kernel alone: $N $kind frames dropped silently by the kernel" "$d" \
                eval '[[ $kd -ge $N && $((r1 - r0)) -lt 5 ]]'
        else
            check "accel: $N $kind frames dropped in XDP as drop_$counter, the kernel's counter flat" \
                "$d, drop_$counter +$((a1 - a0))" eval '[[ $((a1 - a0)) -eq $N && $kd -lt 5 && $((r1 - r0)) -lt 5 ]]'
        fi
    done
}

run_cases kernel
header_cases kernel
lab_accel_start
lab_accel_wait 30 || { not_ok "accel starts" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"; echo "$PASSED passed, $FAILED failed"; exit 1; }
run_cases accel
header_cases accel

# rp_filter switched off: the kernel announces it (netconf) and accel
# re-reads it at once; the very next spoofed packets are forwarded, as the
# kernel now would, not dropped until the next once-a-second poll.
rpf 1
sleep 1.2
rpf 0
send_case off "$SPOOF_OTHER" rpf-off
check "rp_filter set to 0: the next packets from $SPOOF_OTHER are forwarded at once (no stale drop)" \
    "dst1 got $GOT of $N" eval '[[ $GOT -eq $N ]]'

bh=$(lab_accel stats --blackholes 2>&1)
check "accel stats --blackholes counts the source RTBH drops under 192.0.2.0/24" "$(grep -A3 'source RTBH' <<<"$bh" | tr -s ' \n' ' ')" \
    eval 'grep -A3 "source RTBH" <<<"$bh" | grep -Eq "^192.0.2.0/24 +$((2 * N)) "'
om=$(lab_accel stats --format prometheus 2>&1)
check "the metric accel_source_blackhole_dropped_packets_total{prefix=\"192.0.2.0/24\"} says $((2 * N))" \
    "$(grep '^accel_source_blackhole_dropped_packets_total' <<<"$om" | tr '\n' ' ')" \
    eval 'grep -q "^accel_source_blackhole_dropped_packets_total{prefix=\"192.0.2.0/24\"} $((2 * N))\$" <<<"$om"'

# With the lease revoked (a frozen daemon), rp_filter as mirrored may be
# stale: the kernel decides again, and drops.
rpf 1
sleep 1.2
kill -STOP "$ACCEL_PID"
sleep 1.5
send_case frozen "$SPOOF_NOROUTE" frozen
kill -CONT "$ACCEL_PID"
check "a frozen accel (lease lapsed) leaves the source check to the kernel, which drops" \
    "dst1 got $GOT; kernel IPReversePathFilter +$K_RPF" eval '[[ $GOT -eq 0 && $K_RPF -ge $N ]]'

# IPsec: while XFRM policies apply to forwarded packets (ip_forward's
# xfrm4_policy_check(FWD) and xfrm4_route_forward, ip6_forward's twins),
# accel hands every packet it would forward to the kernel (pass_xfrm), which
# drops plaintext a fwd policy requires protected and keeps an out policy's
# traffic from leaving unencrypted; once they are gone, XDP forwards again.
xfrm() { ip -n "$NS_RTR" xfrm "$@"; }
# xfrm_stat NAME: the router's /proc/net/xfrm_stat counter (0 without
# CONFIG_XFRM_STATISTICS, where checks on it are skipped).
XFRM_STATS=0
lab_in "$NS_RTR" test -r /proc/net/xfrm_stat && XFRM_STATS=1
xfrm_stat() {
    if [[ $XFRM_STATS -eq 0 ]]; then
        echo 0
        return
    fi
    lab_in "$NS_RTR" awk -v k="$1" '$1 == k { n = $2 } END { print n + 0 }' /proc/net/xfrm_stat
}
# xfrm_wait on|off: until `accel lookup` says accel hands over for IPsec
# (at once after a notification; within its 5 s poll at worst).
xfrm_wait() {
    local i
    for ((i = 0; i < 80; i++)); do
        if lab_accel lookup "$LAB_SVC4" 2>/dev/null | grep -q 'IPsec'; then
            [[ $1 == on ]] && return 0
        else
            [[ $1 == off ]] && return 0
        fi
        sleep 0.1
    done
    return 1
}
# xfrm_send TAG DST [STAT]: $N datagrams from src to DST; sets GOT (dst1
# received), PX (pass_xfrm on r-src), FWD (XDP-forwarded on r-src), KS
# (the rise of xfrm_stat STAT) and KF (the kernel's IpForwDatagrams and
# Ip6OutForwDatagrams rise, summed).
xfrm_send() {
    local tag=$1 dst=$2 stat=${3:-XfrmInNoPols} p0 p1 f0 f1 x0 x1 k0 k1
    p0=$(lab_accel_stat --iface "$LAB_R_SRC" pass_xfrm) f0=$(lab_accel_stat --iface "$LAB_R_SRC" forwarded)
    x0=$(xfrm_stat "$stat")
    read -r -a k0 <<<"$(lab_fwd_counters)"
    lab_send "$NS_SRC" "$dst" "$N" 5000 "$tag" >/dev/null
    sleep 0.5
    read -r -a k1 <<<"$(lab_fwd_counters)"
    p1=$(lab_accel_stat --iface "$LAB_R_SRC" pass_xfrm) f1=$(lab_accel_stat --iface "$LAB_R_SRC" forwarded)
    x1=$(xfrm_stat "$stat")
    GOT=$(lab_received "$tag" dst1) PX=$((p1 - p0)) FWD=$((f1 - f0)) KS=$((x1 - x0))
    KF=$((k1[0] - k0[0] + k1[1] - k0[1]))
}
# kernel_saw COUNT: the xfrm_stat rise is at least COUNT (or not counted).
kernel_saw() { [[ $XFRM_STATS -eq 0 || $KS -ge $1 ]]; }

FWD_SEL=(src 10.11.1.0/24 dst "$LAB_SVC4_NET" dir fwd)
xfrm policy add "${FWD_SEL[@]}" tmpl src 10.11.1.2 dst "$LAB_RTR4_SRC" proto esp mode tunnel
xfrm_wait on || not_ok "accel notices the fwd policy" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
xfrm_send xfrm-fwd4 "$LAB_SVC4" XfrmInTmplMismatch
check "a fwd policy requiring ESP: $N plaintext datagrams to $LAB_SVC4 handed to the kernel (pass_xfrm), which drops them" \
    "dst1 got $GOT; pass_xfrm +$PX, XDP-forwarded +$FWD, XfrmInTmplMismatch +$KS" \
    eval '[[ $GOT -eq 0 && $PX -eq $N && $FWD -eq 0 ]] && kernel_saw $N'
xfrm_send xfrm-fwd6 "$LAB_SVC6"
check "meanwhile IPv6, which no policy covers, goes to the kernel too, and the kernel forwards it" \
    "dst1 got $GOT; pass_xfrm +$PX, kernel forwarded +$KF" eval '[[ $GOT -eq $N && $PX -eq $N && $KF -ge $N ]]'
check "the log says once that forwarded traffic goes to the kernel" "$(lab_accel_log | grep -c 'IPsec (XFRM) policies present')" \
    eval '[[ $(lab_accel_log | grep -c "IPsec (XFRM) policies present") -eq 1 ]]'
xfrm policy delete "${FWD_SEL[@]}"
xfrm_wait off || not_ok "accel notices the fwd policy gone" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
xfrm_send xfrm-fwd4-gone "$LAB_SVC4"
check "the fwd policy deleted: XDP forwards again" "dst1 got $GOT; pass_xfrm +$PX, XDP-forwarded +$FWD" \
    eval '[[ $GOT -eq $N && $PX -eq 0 && $FWD -eq $N ]]'

# An out policy without its SA: the kernel must not send plaintext (it
# drops while it would ask an IKE daemon for the SA).
xfrm policy add src fd00:11:1::/64 dst "$LAB_SVC6_NET" dir out \
    tmpl src fd00:11:2::1 dst "$LAB_DST1_GW6" proto esp mode tunnel
xfrm_wait on || not_ok "accel notices the out policy" ""
xfrm_send xfrm-out6 "$LAB_SVC6" XfrmOutNoStates
check "an IPv6 out policy without SA: $N datagrams to $LAB_SVC6 handed to the kernel, none leaves in plaintext" \
    "dst1 got $GOT; pass_xfrm +$PX, XDP-forwarded +$FWD, XfrmOutNoStates +$KS" \
    eval '[[ $GOT -eq 0 && $PX -eq $N && $FWD -eq 0 ]] && kernel_saw $N'
xfrm policy flush
xfrm_wait off || not_ok "accel notices the flush" ""
xfrm_send xfrm-out6-gone "$LAB_SVC6"
check "policies flushed: XDP forwards IPv6 again" "dst1 got $GOT; pass_xfrm +$PX, XDP-forwarded +$FWD" \
    eval '[[ $GOT -eq $N && $PX -eq 0 && $FWD -eq $N ]]'

# The default policy (no policy at all): fwd block drops every forwarded
# packet in the kernel (XfrmInNoPols).
xfrm policy setdefault fwd block
xfrm_wait on || not_ok "accel notices the default policy" ""
xfrm_send xfrm-block4 "$LAB_SVC4" XfrmInNoPols
check "setdefault fwd block: $N datagrams handed to the kernel, which drops them" \
    "dst1 got $GOT; pass_xfrm +$PX, XfrmInNoPols +$KS" eval '[[ $GOT -eq 0 && $PX -eq $N ]] && kernel_saw $N'
xfrm policy setdefault fwd accept
xfrm_wait off || not_ok "accel notices the default back to accept" ""
xfrm_send xfrm-accept4 "$LAB_SVC4"
check "setdefault fwd accept: XDP forwards again" "dst1 got $GOT; pass_xfrm +$PX, XDP-forwarded +$FWD" \
    eval '[[ $GOT -eq $N && $PX -eq 0 && $FWD -eq $N ]]'

# A policy there before accel starts: the datapath hands over from the
# first packet it sees.
lab_accel_stop
xfrm policy add "${FWD_SEL[@]}" tmpl src 10.11.1.2 dst "$LAB_RTR4_SRC" proto esp mode tunnel
lab_accel_start
lab_accel_wait 30 || not_ok "accel restarts" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
xfrm_send xfrm-start4 "$LAB_SVC4" XfrmInTmplMismatch
check "accel started with a fwd policy in place: the first datagrams already go to the kernel, which drops them" \
    "dst1 got $GOT; pass_xfrm +$PX, XDP-forwarded +$FWD, XfrmInTmplMismatch +$KS" \
    eval '[[ $GOT -eq 0 && $PX -eq $N && $FWD -eq 0 ]] && kernel_saw $N'
xfrm policy delete "${FWD_SEL[@]}"
xfrm_wait off || not_ok "accel notices the fwd policy gone after a restart" ""

lab_accel_stop

# An ingress without IPv4 address (unnumbered, as with BGP over IPv6 next
# hops) under loose rp_filter: the kernel accepts only sources routed back
# through it (__fib_validate_source: no address -> last_resort -> -EXDEV).
# r-src loses its address; src reaches svc4 through a static neighbour.
ip -n "$NS_RTR" addr del 10.11.1.1/24 dev r-src
ip -n "$NS_RTR" route add 10.99.0.0/24 dev r-src
ip -n "$NS_SRC" addr add 10.99.0.5/32 dev lo
rmac=$(lab_mac "$NS_RTR" r-src)
ip -n "$NS_SRC" route replace "$LAB_SVC4/32" dev s-rtr
ip -n "$NS_SRC" neigh replace "$LAB_SVC4" lladdr "$rmac" dev s-rtr nud permanent
rpf 2
unnumbered() { # MODE
    send_case unnumbered "$SPOOF_OTHER" "$1-unnumbered-other"
    local other=$GOT rpf_other=$K_RPF
    send_case unnumbered 10.99.0.5 "$1-unnumbered-back"
    check "$1, loose rp_filter on an ingress without IPv4 address: a source routed elsewhere is dropped, one routed back through it forwarded" \
        "from $SPOOF_OTHER: dst1 got $other (kernel IPReversePathFilter +$rpf_other); from 10.99.0.5: dst1 got $GOT" \
        eval '[[ $other -eq 0 && $GOT -eq $N ]]'
}
sleep 1
unnumbered kernel
lab_accel_start
lab_accel_wait 30 || not_ok "accel starts (unnumbered)" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
s0=$(lab_accel_stat --iface "$LAB_R_SRC" drop_rpfilter 2>/dev/null)
unnumbered accel
s1=$(lab_accel_stat --iface "$LAB_R_SRC" drop_rpfilter 2>/dev/null)
check "accel: the unnumbered ingress's rejected source counted as drop_rpfilter" "+$((s1 - s0))" eval '[[ $((s1 - s0)) -eq $N ]]'
lab_accel_stop
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
