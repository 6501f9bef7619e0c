# shellcheck shell=bash
# Lab for accel: four network namespaces joined by veth pairs.
#
#   src (s-rtr) ---- (r-src) rtr (r-dst1) ---- (d1-rtr) dst1
#                            rtr (r-dst2) ---- (d2-rtr) dst2
#
# Source this file, then:
#   lab_private_mountns "$0" "$@"   # first thing: re-exec in a private mount ns
#   lab_init                        # names, temp dir, prerequisites
#   lab_up                          # build namespaces, links, routes; start sinks
#   trap lab_down EXIT
#
# Why a private mount namespace: every `ip netns exec` gets a fresh mount
# namespace and a fresh /sys, so bpffs pins made under one are invisible to the
# next. The scripts therefore run in ONE private mount namespace with bpffs
# mounted once, and enter the router's network namespace with
# `nsenter --net=...` (lab_in), which keeps the mount namespace.
#
# Addressing
#   src-rtr   10.11.1.0/24  fd00:11:1::/64   (.1/::1 is rtr)
#   rtr-dst1  10.11.2.0/24  fd00:11:2::/64
#   rtr-dst2  10.11.3.0/24  fd00:11:3::/64
#   behind dst1: 198.51.100.0/24, 2001:db8:100::/48 (lo: .1 / ::1)
#   behind dst2: 203.0.113.0/24,  2001:db8:200::/48 (lo: .1 / ::1)
#   198.51.100.1 and 2001:db8:100::1 live on BOTH dst1's and dst2's lo, so a
#   route moved to dst2 still gets answers.
#   UDP sinks listen on port $LAB_PORT in dst1 and dst2 (both families) and log
#   every datagram to $LAB_DIR/dst1.sink and $LAB_DIR/dst2.sink.

LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO=$(cd "$LAB_LIB_DIR/.." && pwd)
LAB_TOOL="$LAB_LIB_DIR/labtool.py"
LAB_PORT=${LAB_PORT:-5555}

# Router-side interface names and addresses the tests refer to.
LAB_R_SRC=r-src LAB_R_DST1=r-dst1 LAB_R_DST2=r-dst2
LAB_RTR4_SRC=10.11.1.1 LAB_RTR6_SRC=fd00:11:1::1
LAB_DST1_GW4=10.11.2.2 LAB_DST1_GW6=fd00:11:2::2
LAB_DST2_GW4=10.11.3.2 LAB_DST2_GW6=fd00:11:3::2
LAB_SVC4=198.51.100.1 LAB_SVC6=2001:db8:100::1
LAB_SVC4_NET=198.51.100.0/24 LAB_SVC6_NET=2001:db8:100::/48
LAB_SVC4B=203.0.113.1 LAB_SVC6B=2001:db8:200::1

# Re-exec the calling script inside a private mount namespace (same PID, so
# $$-based names stay unique) and mount a private bpffs on /sys/fs/bpf.
lab_private_mountns() {
    local script=$1
    shift
    if [[ "${LAB_IN_MNTNS:-}" != "$$" ]]; then
        export LAB_IN_MNTNS=$$
        exec unshare -m --propagation private bash "$script" "$@"
    fi
    mount -t bpf bpf /sys/fs/bpf || { echo "cannot mount bpffs on /sys/fs/bpf" >&2; exit 1; }
}

lab_log() { printf '%s\n' "$*" >&2; }

lab_need() {
    local missing=()
    local c
    for c in ip nsenter unshare ethtool ping python3 timeout; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    if ((${#missing[@]})); then
        echo "missing commands: ${missing[*]} (apt-get install iproute2 util-linux ethtool iputils-ping python3 coreutils)" >&2
        return 1
    fi
}

lab_init() {
    lab_need || return 1
    LAB_PREFIX=${LAB_PREFIX:-acc$$}
    NS_SRC=$LAB_PREFIX-src NS_RTR=$LAB_PREFIX-rtr NS_DST1=$LAB_PREFIX-dst1 NS_DST2=$LAB_PREFIX-dst2
    LAB_NSS=("$NS_SRC" "$NS_RTR" "$NS_DST1" "$NS_DST2")
    LAB_DIR=$(mktemp -d "/tmp/$LAB_PREFIX.XXXXXX")
    LAB_PIDS=()
    ACCEL=${ACCEL:-$LAB_REPO/target/release/accel}
    export ACCEL_PIN_DIR=${ACCEL_PIN_DIR:-/sys/fs/bpf/$LAB_PREFIX}
    export ACCEL_RUN_DIR=${ACCEL_RUN_DIR:-$LAB_DIR/run}
    ACCEL_PID=
}

# Run a command in a lab namespace, keeping this mount namespace.
lab_in() {
    local ns=$1
    shift
    nsenter --net="/run/netns/$ns" -- "$@"
}

lab_up() {
    local ns
    for ns in "${LAB_NSS[@]}"; do
        ip netns add "$ns" || return 1
        lab_in "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
            net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0 || return 1
        ip -n "$ns" link set lo up || return 1
    done
    lab_in "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || return 1

    ip -n "$NS_RTR" link add r-src type veth peer name s-rtr netns "$NS_SRC" || return 1
    lab_link_dst1 || return 1
    ip -n "$NS_RTR" link add r-dst2 type veth peer name d2-rtr netns "$NS_DST2" || return 1

    lab_addr "$NS_SRC" s-rtr 10.11.1.2/24 fd00:11:1::2/64
    lab_addr "$NS_RTR" r-src 10.11.1.1/24 fd00:11:1::1/64
    lab_addr "$NS_RTR" r-dst2 10.11.3.1/24 fd00:11:3::1/64
    lab_addr "$NS_DST2" d2-rtr 10.11.3.2/24 fd00:11:3::2/64

    ip -n "$NS_DST1" addr add 198.51.100.1/32 dev lo
    ip -n "$NS_DST1" addr add 2001:db8:100::1/128 dev lo nodad
    ip -n "$NS_DST2" addr add 203.0.113.1/32 dev lo
    ip -n "$NS_DST2" addr add 2001:db8:200::1/128 dev lo nodad
    ip -n "$NS_DST2" addr add 198.51.100.1/32 dev lo
    ip -n "$NS_DST2" addr add 2001:db8:100::1/128 dev lo nodad

    ip -n "$NS_SRC" route add default via 10.11.1.1 || return 1
    ip -n "$NS_SRC" -6 route add default via fd00:11:1::1 || return 1
    ip -n "$NS_DST2" route add default via 10.11.3.1 || return 1
    ip -n "$NS_DST2" -6 route add default via fd00:11:3::1 || return 1

    ip -n "$NS_RTR" route add 203.0.113.0/24 via 10.11.3.2 || return 1
    ip -n "$NS_RTR" -6 route add 2001:db8:200::/48 via fd00:11:3::2 || return 1

    # XDP_REDIRECT into a veth is delivered only if the peer runs NAPI: GRO on
    # every veth end outside rtr.
    # TX checksum offload off on the same ends: a veth hands the router
    # packets whose UDP/TCP checksum is still CHECKSUM_PARTIAL (never filled
    # in); the kernel's forwarding path carries that state along, but a frame
    # redirected by XDP loses it and the receiver drops the datagram as
    # UdpInCsumErrors. Real NICs put complete checksums on the wire.
    local pair
    for pair in "$NS_SRC s-rtr" "$NS_DST2 d2-rtr"; do
        set -- $pair
        lab_in "$1" ethtool -K "$2" gro on tx off >/dev/null || return 1
    done

    lab_sink "$NS_DST1" "$LAB_DIR/dst1.sink" || return 1
    lab_sink "$NS_DST2" "$LAB_DIR/dst2.sink" || return 1
}

# The link between rtr and dst1, with its addresses, the routes through it
# and GRO on dst1's end (see lab_up); again after a test deleted r-dst1.
lab_link_dst1() {
    ip -n "$NS_RTR" link add r-dst1 type veth peer name d1-rtr netns "$NS_DST1" || return 1
    lab_addr "$NS_RTR" r-dst1 10.11.2.1/24 fd00:11:2::1/64 || return 1
    lab_addr "$NS_DST1" d1-rtr 10.11.2.2/24 fd00:11:2::2/64 || return 1
    ip -n "$NS_DST1" route add default via 10.11.2.1 || return 1
    ip -n "$NS_DST1" -6 route add default via fd00:11:2::1 || return 1
    ip -n "$NS_RTR" route add 198.51.100.0/24 via 10.11.2.2 || return 1
    ip -n "$NS_RTR" -6 route add 2001:db8:100::/48 via fd00:11:2::2 || return 1
    lab_in "$NS_DST1" ethtool -K d1-rtr gro on tx off >/dev/null
}

lab_addr() {
    local ns=$1 dev=$2 a4=$3 a6=$4
    ip -n "$ns" addr add "$a4" dev "$dev" || return 1
    ip -n "$ns" addr add "$a6" dev "$dev" nodad || return 1
    ip -n "$ns" link set "$dev" up || return 1
}

# Start a UDP sink in a namespace; waits until it is bound.
lab_sink() {
    local ns=$1 log=$2 ready="$2.ready" i
    : >"$log"
    nsenter --net="/run/netns/$ns" -- python3 "$LAB_TOOL" sink --port "$LAB_PORT" --log "$log" --ready "$ready" &
    LAB_PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        [[ -e $ready ]] && return 0
        sleep 0.05
    done
    echo "sink in $ns did not start" >&2
    return 1
}

# lab_send NS DST COUNT RATE TAG [extra labtool send args]; prints the summary.
lab_send() {
    local ns=$1 dst=$2 count=$3 rate=$4 tag=$5
    shift 5
    timeout 60 nsenter --net="/run/netns/$ns" -- python3 "$LAB_TOOL" send --dst "$dst" \
        --port "$LAB_PORT" --count "$count" --rate "$rate" --tag "$tag" "$@"
}

# lab_send_bg OUTFILE NS DST COUNT RATE TAG [args]: lab_send in the
# background; sets LAB_SEND_PID (SIGTERM to it stops the sender).
lab_send_bg() {
    local out=$1 ns=$2 dst=$3 count=$4 rate=$5 tag=$6
    shift 6
    timeout 60 nsenter --net="/run/netns/$ns" -- python3 "$LAB_TOOL" send --dst "$dst" \
        --port "$LAB_PORT" --count "$count" --rate "$rate" --tag "$tag" "$@" >"$out" &
    LAB_SEND_PID=$!
}

# Distinct datagrams of TAG received by the named sinks (dst1, dst2).
lab_received() {
    local tag=$1
    shift
    local logs=() s
    for s in "$@"; do logs+=("$LAB_DIR/$s.sink"); done
    python3 "$LAB_TOOL" count --tag "$tag" "${logs[@]}"
}

# Router's kernel forwarding counters: "IpForwDatagrams Ip6OutForwDatagrams".
lab_fwd_counters() {
    lab_in "$NS_RTR" python3 "$LAB_TOOL" snmp
}

# MAC address of a device in a namespace.
lab_mac() {
    ip -n "$1" -br link show dev "$2" 2>/dev/null | awk '{print $3}'
}

# le A B: A <= B, as numbers (floats welcome).
le() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }
# jget JSON PATH: the value at dotted PATH of the JSON text, "none" if absent.
jget() { python3 "$LAB_TOOL" json "$2" <<<"$1"; }

# rx packets of a device in a namespace (sysfs is not per-netns here).
lab_rx_packets() {
    ip -n "$1" -s -j link show dev "$2" 2>/dev/null | python3 "$LAB_TOOL" rx
}

# Whether any of rtr's interfaces has an XDP program.
lab_rtr_has_xdp() {
    ip -n "$NS_RTR" link show 2>/dev/null | grep -q 'xdp'
}

lab_accel() {
    timeout 30 nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" "$@"
}

# Start `accel run` in rtr in the background (log in $LAB_DIR/accel.log);
# sets ACCEL_PID. Extra arguments go to `accel run`, after those in
# LAB_ACCEL_ARGS (e.g. "--hook tc").
lab_accel_start() {
    touch "$LAB_DIR/accel.log"
    ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
    local extra
    read -r -a extra <<<"${LAB_ACCEL_ARGS:-}"
    # A simple command, so $! is accel itself (nsenter execs it).
    nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" run -i "$LAB_R_SRC" -i "$LAB_R_DST1" -i "$LAB_R_DST2" \
        "${extra[@]}" "$@" \
        >>"$LAB_DIR/accel.log" 2>&1 &
    ACCEL_PID=$!
}

# This instance's log lines.
lab_accel_log() {
    tail -c +$((${ACCEL_LOG_OFFSET:-0} + 1)) "$LAB_DIR/accel.log"
}

# Wait until this instance says it is running and `accel stats` answers
# (stale pins of a killed instance answer too, hence the log line). Fails if
# the daemon dies or after TIMEOUT seconds.
lab_accel_wait() {
    local timeout=${1:-20} i
    for ((i = 0; i < timeout * 10; i++)); do
        if ! kill -0 "$ACCEL_PID" 2>/dev/null; then
            return 1
        fi
        if lab_accel_log | grep -q 'accel running on' && lab_accel stats >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Where a (stuck) accel is: threads, wait channels, kernel stacks, syscalls.
lab_accel_diag() {
    local t
    [[ -n ${ACCEL_PID:-} && -d /proc/$ACCEL_PID ]] || { echo "accel not running"; return; }
    for t in /proc/"$ACCEL_PID"/task/*; do
        echo "thread ${t##*/} ($(cat "$t/comm")): wchan $(cat "$t/wchan" 2>/dev/null) syscall $(cut -d' ' -f1 "$t/syscall" 2>/dev/null)"
        sed 's/^/    /' "$t/stack" 2>/dev/null
    done
}

# Stop accel with a signal; waits up to 10 s; returns its exit code.
lab_accel_stop() {
    [[ -n $ACCEL_PID ]] || return 0
    # stderr off: bash reports jobs killed by a signal ("Killed") on its own.
    _lab_accel_stop "$@" 2>/dev/null
}
_lab_accel_stop() {
    local sig=${1:-TERM} i rc
    kill -s "$sig" "$ACCEL_PID"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$ACCEL_PID" || break
        sleep 0.1
    done
    if kill -0 "$ACCEL_PID"; then
        kill -KILL "$ACCEL_PID"
    fi
    if [[ -n ${ACCEL_FOREIGN:-} ]]; then
        # A successor started by a handover is not our child: its log says
        # whether it stopped cleanly.
        for ((i = 0; i < 20; i++)); do kill -0 "$ACCEL_PID" || break; sleep 0.05; done
        lab_accel_log | grep -q 'detached; the kernel forwards alone again'
        rc=$?
    else
        wait "$ACCEL_PID"
        rc=$?
    fi
    ACCEL_PID= ACCEL_FOREIGN=
    return $rc
}

# After a handover (SIGUSR2 to $ACCEL_PID, which exited): the successor it
# started becomes this lab's instance. Its log lines follow the old one's.
lab_accel_follow_successor() {
    local pid
    pid=$(cat "$ACCEL_RUN_DIR/accel.pid" 2>/dev/null) || return 1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    ACCEL_PID=$pid ACCEL_FOREIGN=1
}

# The line of a series in accel's metrics (`accel stats --format
# openmetrics`) once it has VALUE, waiting up to 3 s for the status the
# daemon publishes each second; the last line read otherwise:
# lab_accel_series 'accel_handover_failures_total{purpose="upgrade"}' 1
lab_accel_series() {
    local series=$1 value=$2 line i
    for ((i = 0; i < 30; i++)); do
        line=$(lab_accel stats --format openmetrics 2>&1 | grep -F "$series ")
        [[ $line == "$series $value" ]] && break
        sleep 0.1
    done
    echo "$line"
}

# Sum of counters (or "forwarded"/"passed"/"dropped") in `accel stats --json`,
# optionally for one ingress interface: lab_accel_stat [--iface IF] FIELD...
lab_accel_stat() {
    local json
    json=$(lab_accel stats --json 2>/dev/null) || { echo -1; return 1; }
    python3 "$LAB_TOOL" stats "$@" <<<"$json"
}

# How many of the running instance's interfaces have its program attached
# (in whichever hook; `accel stats --json` names it).
lab_accel_hooked() {
    lab_accel stats --json 2>/dev/null |
        python3 -c 'import json, sys; print(sum(1 for i in json.load(sys.stdin) if i.get("hook")))' ||
        echo 0
}

lab_down() {
    local ns p
    if [[ -n ${ACCEL_PID:-} ]]; then
        kill -TERM "$ACCEL_PID" 2>/dev/null
        sleep 0.3
        kill -KILL "$ACCEL_PID" 2>/dev/null
        wait "$ACCEL_PID" 2>/dev/null
        ACCEL_PID=
    fi
    for p in "${LAB_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${LAB_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    LAB_PIDS=()
    for ns in "${LAB_NSS[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    if [[ -n ${LAB_DIR:-} && -d $LAB_DIR && -z ${LAB_KEEP:-} ]]; then
        rm -rf "$LAB_DIR"
    fi
}

# `ip link show` resolves peer namespaces through /run/netns; files there that
# other mount namespaces (parallel lab runs) bind-mounted are plain files here
# and make it print "Peer netns reference is invalid": callers drop stderr.
