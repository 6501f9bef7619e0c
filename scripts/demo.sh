#!/usr/bin/env bash
# accel in one minute: builds a four-namespace lab (src - rtr - dst1/dst2),
# forwards traffic first with the kernel alone, then with accel's XDP
# datapath, and shows the counters of both; then a route change, ECMP hashed
# in XDP as the kernel hashes, and an upgrade in place under traffic.
# Installs the Debian packages it
# needs and builds accel (set ACCEL=/path/to/accel to use another binary).
#
#   sudo scripts/demo.sh
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/demo.sh must run as root (network namespaces, XDP)" >&2
    exit 1
fi
if [[ -z "${LAB_IN_MNTNS:-}" && -z "${ACCEL:-}" ]]; then
    "$HERE/install-deps.sh" || exit 1
    echo "building accel (cargo build --release)..."
    (cd "$HERE/.." && cargo build --release --locked -q) || exit 1
fi
# shellcheck source=lab.sh
source "$HERE/lab.sh"
lab_private_mountns "$SELF" "$@"
lab_init || exit 1
trap lab_down EXIT
trap "exit 130" INT TERM
if [[ ! -x $ACCEL ]]; then
    echo "no accel binary at $ACCEL: run \`cargo build --release\` or set ACCEL" >&2
    exit 1
fi

N=${DEMO_COUNT:-2000}
section() { printf '\n=== %s ===\n' "$*"; }
say() { printf '  %s\n' "$*"; }

section "1. Lab"
lab_up || { echo "building the lab failed" >&2; exit 1; }
say "namespaces: $NS_SRC -- $NS_RTR -- $NS_DST1 (and $NS_DST2)"
say "rtr routes $LAB_SVC4_NET and $LAB_SVC6_NET via dst1:"
ip -n "$NS_RTR" route show "$LAB_SVC4_NET" | sed 's/^/    /'
ip -n "$NS_RTR" -6 route show "$LAB_SVC6_NET" | sed 's/^/    /'

# traffic LABEL: pings and UDP bursts of both families; prints the router's
# kernel forwarding counters and what the dst1 sink received.
traffic() {
    local label=$1 k0 k1 fam addr got
    read -r -a k0 <<<"$(lab_fwd_counters)"
    lab_in "$NS_SRC" ping -q -c 3 -i 0.2 -W 2 "$LAB_SVC4" | grep -E 'packets|rtt' | sed 's/^/    ping    /'
    lab_in "$NS_SRC" ping -6 -q -c 3 -i 0.2 -W 2 "$LAB_SVC6" | grep -E 'packets|rtt' | sed 's/^/    ping -6 /'
    for fam in 4 6; do
        if [[ $fam == 4 ]]; then addr=$LAB_SVC4; else addr=$LAB_SVC6; fi
        lab_send "$NS_SRC" "$addr" "$N" 10000 "$label$fam" >/dev/null
        sleep 0.3
        got=$(lab_received "$label$fam" dst1)
        say "UDP to $addr: sent $N, dst1 received $got"
    done
    read -r -a k1 <<<"$(lab_fwd_counters)"
    say "router's kernel forwarding counters (forwarded by the Linux stack):"
    say "  IpForwDatagrams      +$((k1[0] - k0[0]))"
    say "  Ip6OutForwDatagrams  +$((k1[1] - k0[1]))"
}

section "2. Before: the kernel forwards ($N UDP datagrams per family, plus pings)"
traffic before

section "3. Start accel in rtr"
say "accel run -i $LAB_R_SRC -i $LAB_R_DST1 -i $LAB_R_DST2"
lab_accel_start
if ! lab_accel_wait 30; then
    echo "accel did not start; its log:" >&2
    lab_accel_log >&2
    exit 1
fi
lab_accel_log | sed 's/^/    /'
ip -n "$NS_RTR" -o link show 2>/dev/null | grep -o '^[0-9]*: [^:@]*.*prog/xdp id [0-9]* name [a-z_]*' \
    | sed -E 's/^[0-9]+: ([^:@]+).*(prog\/xdp .*)/    \1: \2/'

section "4. After: accel's XDP datapath forwards (same traffic)"
traffic after

section "5. accel stats (per ingress interface)"
lab_accel stats | sed 's/^/    /'

section "6. accel lookup $LAB_SVC4 and $LAB_SVC6"
lab_accel lookup "$LAB_SVC4" | sed 's/^/    /'
lab_accel lookup "$LAB_SVC6" | sed 's/^/    /'

section "7. A route change: $LAB_SVC4_NET now via dst2"
ip -n "$NS_RTR" route replace "$LAB_SVC4_NET" via "$LAB_DST2_GW4"
lab_send "$NS_SRC" "$LAB_SVC4" 200 10000 moved >/dev/null
sleep 0.3
say "200 datagrams sent right after \`ip route replace\`: dst1 got $(lab_received moved dst1), dst2 got $(lab_received moved dst2)"
lab_accel lookup "$LAB_SVC4" | sed -n '2,5p' | sed 's/^/    /'

section "8. ECMP: $LAB_SVC4_NET over dst1 and dst2, hashed in XDP as the kernel hashes"
# A hash seed makes the kernel's multipath hash reproducible; policy 1 hashes
# the ports too, so that flows to one address spread.
lab_in "$NS_RTR" sysctl -qw net.ipv4.fib_multipath_hash_seed=20261127 net.ipv4.fib_multipath_hash_policy=1
ip -n "$NS_RTR" route replace "$LAB_SVC4_NET" nexthop via "$LAB_DST1_GW4" nexthop via "$LAB_DST2_GW4"
sleep 1.2 # accel polls the sysctls every second
m0=$(lab_accel_stat fwd_mirror) f0=$(lab_accel_stat fwd_fib)
read -r -a k0 <<<"$(lab_fwd_counters)"
lab_send "$NS_SRC" "$LAB_SVC4" 640 10000 ecmp --flows 64 >/dev/null
sleep 0.3
m1=$(lab_accel_stat fwd_mirror) f1=$(lab_accel_stat fwd_fib)
read -r -a k1 <<<"$(lab_fwd_counters)"
say "640 datagrams in 64 flows: dst1 got $(lab_received ecmp dst1), dst2 got $(lab_received ecmp dst2);"
say "accel fwd_mirror +$((m1 - m0)), fwd_fib +$((f1 - f0)); the router's kernel forwarded +$((k1[0] - k0[0]))"
lab_accel lookup "$LAB_SVC4" | sed -n '2,$p' | sed 's/^/    /'

section "9. Upgrade in place (accel upgrade, or SIGUSR2): the successor takes over, XDP never stops"
lab_send_bg "$LAB_DIR/up.send" "$NS_SRC" "$LAB_SVC4" 0 1000 up --duration 3 --flows 64
up=$LAB_SEND_PID
sleep 0.5
read -r -a k0 <<<"$(lab_fwd_counters)"
ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
lab_accel upgrade 2>&1 | sed 's/^/    /'
[[ ${PIPESTATUS[0]} -eq 0 ]] || { lab_accel_log | tail -n 5; exit 1; }
wait "$ACCEL_PID"
say "the old instance exited with status $? once its successor had adopted the links"
lab_accel_follow_successor && lab_accel_wait 30 && say "the successor (pid $ACCEL_PID) runs:"
lab_accel_log | grep -E 'adopted|handover' | sed 's/^.*\] //; s/^/    /' | head -n 4
wait "$up"
sleep 0.3
read -r -a k1 <<<"$(lab_fwd_counters)"
say "$(awk '{print $2}' "$LAB_DIR/up.send") datagrams sent across the upgrade: $(( $(lab_received up dst1) + $(lab_received up dst2) )) arrived; the router's kernel forwarded +$((k1[0] - k0[0]))"

section "10. Stop accel (SIGTERM): the kernel forwards alone again"
lab_accel_stop TERM
say "accel exited with status $?"
if lab_rtr_has_xdp; then say "XDP still attached?!"; else say "no XDP program left on rtr's interfaces"; fi
lab_in "$NS_SRC" ping -q -c 2 -i 0.2 -W 2 "$LAB_SVC4" | grep -E 'packets' | sed 's/^/    ping    /'

section "Done: tearing the lab down"
