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

# link_lab_accel LOG_FILTER WAIT_S: starts `accel run -i r0` in $NS, in a
# private mount namespace (so that the pins meet no other instance's),
# logging to $TMP/log with RUST_LOG=LOG_FILTER; sets PID and waits up to
# WAIT_S seconds for `mirror live`, exiting with the log if accel dies.
link_lab_accel() {
    RUST_LOG=$1 unshare -m --propagation private \
        sh -c "mount -t bpf bpf /sys/fs/bpf && exec nsenter --net=/run/netns/$NS $ACCEL run -i r0" \
        >"$TMP/log" 2>&1 &
    PID=$!
    for _ in $(seq $(($2 * 10))); do
        grep -q "mirror live" "$TMP/log" && break
        kill -0 "$PID" 2>/dev/null || { cat "$TMP/log" >&2; exit 1; }
        sleep 0.1
    done
    # $PID is unshare until it execs accel: wait for the comm to say so.
    for _ in $(seq 50); do [ "$(cat /proc/$PID/comm)" = accel ] && break; sleep 0.1; done
}
