# Sourced by the live benchmarks that follow one link (events.sh, sync.sh;
# from the repository root): root, the accel binary, and a router namespace
# with one veth to a peer namespace.
#
# bench_accel: exits unless root; sets ACCEL (built with accel-bench when
# the environment names none).
bench_accel() {
    if [ "$(id -u)" != 0 ]; then
        echo "$0: needs root (network namespaces, BPF)" >&2
        exit 1
    fi
    ACCEL="${ACCEL:-}"
    if [ -z "$ACCEL" ]; then
        cargo build --release --bin accel --bin accel-bench >&2
        ACCEL="$PWD/target/release/accel"
    fi
}

# link_lab_init NAME: sets NS and PEER (namespace names from NAME and this
# shell's pid), TMP (a fresh directory) and PID (accel's, once started),
# and a trap that stops accel and removes all of them on exit.
link_lab_init() {
    NS="accel-$1-$$"
    PEER="accel-$1p-$$"
    TMP="$(mktemp -d)"
    PID=
    trap link_lab_cleanup EXIT
}

link_lab_cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$PEER" 2>/dev/null || true
    rm -rf "$TMP"
}

nsx() { ip netns exec "$NS" "$@"; }

# link_lab_up: the namespaces, forwarding on, r0 (10.9.0.1/24, fd00:9::1/64)
# to the peer's p0 (GRO on, as a NIC's receive path would have it).
link_lab_up() {
    ip netns add "$NS"
    ip netns add "$PEER"
    nsx sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    nsx ip link add r0 type veth peer name p0
    nsx ip link set p0 netns "$PEER"
    ip netns exec "$PEER" ip link set p0 up
    ip netns exec "$PEER" ethtool -K p0 gro on >/dev/null
    nsx ip link set lo up
    nsx ip link set r0 up
    nsx ip addr add 10.9.0.1/24 dev r0
    nsx ip -6 addr add fd00:9::1/64 dev r0 nodad
}
