#!/usr/bin/env bash
# Kernel against accel on the same mutated frames, in the namespace lab
# (scripts/lab.sh): a few hundred frames from scripts/fuzzlab.py (seeded)
# go from src into the router twice, once with the kernel alone and once
# with `accel run` attached; AF_PACKET captures on dst1, dst2 and src
# (the router's ICMP errors) must hold the same multiset of frames.
#
#   sudo bash tests/fuzz_lab.sh     # FUZZLAB_SEED, FUZZLAB_FRAMES, ACCEL
#
# Prints `ok - ...` / `not ok - ...` and `N passed, M failed`.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
if [[ $(id -u) -ne 0 ]]; then
    echo "tests/fuzz_lab.sh must run as root (network namespaces, XDP)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
# shellcheck source=../scripts/lab.sh
source "$HERE/../scripts/lab.sh"
lab_private_mountns "$SELF" "$@"

SEED=${FUZZLAB_SEED:-1}
COUNT=${FUZZLAB_FRAMES:-300}
MTU=1400 # r-dst1's: frames around it probe the MTU checks
FUZZ="$LAB_REPO/scripts/fuzzlab.py"
PASSED=0 FAILED=0
ok() { echo "ok - $1${2:+ ($2)}"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $1: $2"; FAILED=$((FAILED + 1)); }
finish() {
    local rc=$?
    [[ $FAILED -gt 0 ]] && LAB_KEEP=1 && echo "# captures kept in $LAB_DIR"
    lab_down
    return $rc
}

lab_init || { echo "0 passed, 1 failed"; exit 1; }
trap finish EXIT
trap "exit 130" INT TERM
if ! lab_up; then
    not_ok "lab setup" "building the namespaces failed"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

# Every ICMP error must be sent in both runs, whatever the timing: no rate
# limits. Next hops and the sender are permanent neighbours, so that no
# resolution races the frames.
for ns in "$NS_RTR" "$NS_DST1" "$NS_DST2"; do
    lab_in "$ns" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 \
        net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=1000000
done
ip -n "$NS_RTR" link set r-dst1 mtu "$MTU"
ip -n "$NS_RTR" route add blackhole 192.0.2.0/24
ip -n "$NS_RTR" -6 route add blackhole 2001:db8:dead::/48
for n in "10.11.1.2 $NS_SRC s-rtr r-src" "fd00:11:1::2 $NS_SRC s-rtr r-src" \
    "10.11.2.2 $NS_DST1 d1-rtr r-dst1" "fd00:11:2::2 $NS_DST1 d1-rtr r-dst1" \
    "10.11.3.2 $NS_DST2 d2-rtr r-dst2" "fd00:11:3::2 $NS_DST2 d2-rtr r-dst2"; do
    set -- $n
    ip -n "$NS_RTR" neigh replace "$1" lladdr "$(lab_mac "$2" "$3")" dev "$4" nud permanent
done

CAPTURES=("$NS_SRC s-rtr" "$NS_DST1 d1-rtr" "$NS_DST2 d2-rtr")

# run_pass DIR: captures running, the frames sent, then 5 s for the last
# ICMP errors (address unreachable comes ~3 s after a failed neighbour
# resolution), captures stopped.
run_pass() {
    local dir=$1 pids=() c i
    mkdir -p "$dir"
    for c in "${CAPTURES[@]}"; do
        set -- $c
        # nsenter execs python: $! is the capture itself.
        nsenter --net="/run/netns/$1" -- python3 "$FUZZ" capture --iface "$2" \
            --out "$dir/$2.cap" --ready "$dir/$2.ready" &
        pids+=($!)
    done
    for c in "${CAPTURES[@]}"; do
        set -- $c
        for ((i = 0; i < 100; i++)); do [[ -e $dir/$2.ready ]] && break; sleep 0.05; done
    done
    timeout 120 nsenter --net="/run/netns/$NS_SRC" -- python3 "$FUZZ" send --iface s-rtr \
        --seed "$SEED" --count "$COUNT" --mtu "$MTU" \
        --dst-mac "$(lab_mac "$NS_RTR" r-src)" --src-mac "$(lab_mac "$NS_SRC" s-rtr)"
    sleep 5
    kill -TERM "${pids[@]}"
    wait "${pids[@]}"
}

echo "# seed $SEED, $COUNT frames; lab $LAB_PREFIX, files in $LAB_DIR"
run_pass "$LAB_DIR/kernel" >"$LAB_DIR/kernel.send"
echo "# kernel alone: $(cat "$LAB_DIR/kernel.send")"

lab_accel_start
if lab_accel_wait 30; then
    ok "accel run attaches in rtr"
else
    not_ok "accel run attaches in rtr" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
fi
fwd0=$(lab_accel_stat fwd_mirror fwd_fib)
run_pass "$LAB_DIR/accel" >"$LAB_DIR/accel.send"
echo "# with accel: $(cat "$LAB_DIR/accel.send")"
fwd=$(($(lab_accel_stat fwd_mirror fwd_fib) - fwd0))
lab_accel_stop

if [[ $fwd -gt 0 ]]; then
    ok "accel forwarded part of the frames in XDP" "$fwd frames"
else
    not_ok "accel forwarded part of the frames in XDP" "none: the comparison would prove nothing"
fi
if out=$(python3 "$FUZZ" compare "$LAB_DIR/kernel" "$LAB_DIR/accel"); then
    ok "the same frames arrive with accel as with the kernel alone" "$(head -n 1 <<<"$out")"
else
    not_ok "the same frames arrive with accel as with the kernel alone" "$out"
fi
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
