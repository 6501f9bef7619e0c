#!/usr/bin/env bash
# Hostile and unlucky cases, as regression tests: a frozen or starved
# daemon, lost events, a time namespace, idle control clients, and a local
# user trying to turn accel's root privileges against the host (planted
# directories, symlinks, a replaced binary, a permissive umask).
#
#   sudo bash tests/hostile.sh     # ACCEL=path/to/accel to test another binary
#
# Prints `ok - NAME` / `not ok - NAME: DETAILS` per check and finally
# `N passed, M failed`; exits non-zero on any failure. Uses the lab of
# scripts/lab.sh (src -> rtr -> dst1 | dst2) in a private mount namespace;
# steps of the local user run as `nobody` through setpriv.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

if [[ $(id -u) -ne 0 ]]; then
    echo "tests/hostile.sh must run as root (namespaces, XDP, setpriv)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# shellcheck source=../scripts/lab.sh
source "$HERE/../scripts/lab.sh"
lab_private_mountns "$SELF" "$@"

# shellcheck source=tap.sh
source "$HERE/tap.sh"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

finish() {
    local rc=$?
    if [[ $FAILED -gt 0 && -f ${LAB_DIR:-/nonexistent}/accel.log ]]; then
        cp "$LAB_DIR/accel.log" "/tmp/$LAB_PREFIX-hostile-accel.log"
        note "accel log (last 15 lines; all of it in /tmp/$LAB_PREFIX-hostile-accel.log):"
        tail -n 15 "$LAB_DIR/accel.log" | sed 's/^/#   /'
    fi
    [[ -n ${FREEZE_PID:-} ]] && kill -CONT "$FREEZE_PID" 2>/dev/null
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
lab_up || { not_ok "lab setup" "building the namespaces failed"; echo "$PASSED passed, $FAILED failed"; exit 1; }

RATE=2000 # datagrams per second in the streams below
KERNEL_SMALL=100

# accel's threads as "name policy priority;" (ps: FF is SCHED_FIFO, TS normal).
thread_sched() { ps -L -o comm=,cls=,rtprio= -p "$ACCEL_PID" | awk '{ printf "%s %s %s;", $1, $2, $3 }'; }
# start_accel [WRAPPER...]: starts accel in rtr (optionally under a wrapper
# such as `unshare --time ...`) and waits until it forwards. Sets ACCEL_PID
# (what to signal: accel itself, not the wrapper).
start_accel() {
    touch "$LAB_DIR/accel.log"
    ACCEL_LOG_OFFSET=$(stat -c %s "$LAB_DIR/accel.log")
    # Slow turns of the event loop (over 10 ms) logged, for A5.
    RUST_LOG=${RUST_LOG:-info,accel::daemon::event_loop=debug} \
        nsenter --net="/run/netns/$NS_RTR" -- "$@" "$ACCEL" run -i "$LAB_R_SRC" -i "$LAB_R_DST1" -i "$LAB_R_DST2" \
        >>"$LAB_DIR/accel.log" 2>&1 &
    ACCEL_PID=$!
    local i child
    # Wrappers that exec (nsenter, setpriv) leave accel at $!; those that
    # fork (unshare --fork) make it a child.
    WRAPPER_PID=$ACCEL_PID
    for ((i = 0; i < 50; i++)); do
        [[ $(cat "/proc/$WRAPPER_PID/comm" 2>/dev/null) == accel ]] && break
        child=$(pgrep -P "$WRAPPER_PID" | head -n1)
        if [[ -n $child && $(cat "/proc/$child/comm" 2>/dev/null) == accel ]]; then
            ACCEL_PID=$child
            break
        fi
        sleep 0.05
    done
    lab_accel_wait 30 || return 1
    # Resolve the gateways (first packets to a new neighbour go to the kernel).
    lab_send "$NS_SRC" "$LAB_SVC4" 20 200 warm >/dev/null
    lab_send "$NS_SRC" "$LAB_SVC4B" 20 200 warm >/dev/null
    sleep 0.3
}

stop_accel() {
    [[ -n ${ACCEL_PID:-} ]] || return 0
    kill -CONT "$ACCEL_PID" 2>/dev/null
    kill -TERM "$ACCEL_PID" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$ACCEL_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ACCEL_PID" 2>/dev/null
    wait "${WRAPPER_PID:-$ACCEL_PID}" 2>/dev/null
    ACCEL_PID= WRAPPER_PID=
}

route_to() { # dst1|dst2: where 198.51.100.0/24 goes
    local gw=$LAB_DST1_GW4
    [[ $1 == dst2 ]] && gw=$LAB_DST2_GW4
    ip -n "$NS_RTR" route replace "$LAB_SVC4_NET" via "$gw"
}

stream_start() { # TAG: 198.51.100.1 at $RATE/s until stream_stop
    lab_send_bg "$LAB_DIR/$1.send" "$NS_SRC" "$LAB_SVC4" 0 "$RATE" "$1" --duration 30
    STREAM_PID=$LAB_SEND_PID
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(lab_received "$1" dst1 dst2) -ge 100 ]] && return 0
        sleep 0.05
    done
    return 1
}
stream_stop() {
    kill "$STREAM_PID" 2>/dev/null
    wait "$STREAM_PID" 2>/dev/null
    sleep 0.3
}

kernel_fwd4() { read -r -a k <<<"$(lab_fwd_counters)"; echo "${k[0]}"; }

# ---------------------------------------------------------------- A2. frozen daemon
# SIGSTOP the daemon, move the route: the datapath may follow the frozen
# mirror only until its lease runs out (<= 1 s), and then keeps forwarding
# in XDP through bpf_fib_lookup, not through the kernel.
freeze_round() { # TAG: sets FR (stale JSON), FR_KFWD, FR_FIB
    local tag=$1 t1 k0 k1 f0 f1
    route_to dst1
    stream_start "$tag" || return 1
    kill -STOP "$ACCEL_PID"
    FREEZE_PID=$ACCEL_PID
    route_to dst2
    t1=$EPOCHREALTIME
    sleep 1
    k0=$(kernel_fwd4)
    f0=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_fib)
    sleep 1
    k1=$(kernel_fwd4)
    f1=$(lab_accel_stat --iface "$LAB_R_SRC" fwd_fib)
    kill -CONT "$ACCEL_PID"
    FREEZE_PID=
    sleep 0.3
    stream_stop
    FR=$(python3 "$LAB_TOOL" stale --old "$LAB_DIR/dst1.sink" --tag "$tag" --t1 "$t1")
    FR_KFWD=$((k1 - k0)) FR_FIB=$((f1 - f0))
    route_to dst1
}

start_accel || not_ok "A. accel starts" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
if freeze_round a2; then
    w=$(jget "$FR" stale_window_ms)
    check "A2. frozen daemon: the mirror is used at most 1 s after a route change (lease)" \
        "stale datagrams $(jget "$FR" stale), last sent ${w} ms after the change" le "$w" 1000
    check "A2. ... and then XDP forwards through bpf_fib_lookup, not the kernel" \
        "in the 2nd second frozen: fwd_fib +$FR_FIB, kernel forwarded +$FR_KFWD" \
        eval "[[ $FR_FIB -ge $((RATE / 2)) && $FR_KFWD -lt $KERNEL_SMALL ]]"
else
    not_ok "A2. frozen daemon" "the stream never arrived"
fi

# ---------------------------------------------------------------- A1. resume after a freeze
# Frozen long enough for the lease to lapse, the route moved meanwhile: on
# SIGCONT not one datagram may follow the old mirror, however the event
# loop orders its work.
resume_rounds() {
    local r tag t1 tc res bad=0 all=""
    for ((r = 1; r <= 5; r++)); do
        tag=a1r$r
        route_to dst1
        sleep 0.2
        stream_start "$tag" || return 1
        kill -STOP "$ACCEL_PID"
        FREEZE_PID=$ACCEL_PID
        route_to dst2
        t1=$EPOCHREALTIME
        sleep 0.8
        tc=$EPOCHREALTIME
        kill -CONT "$ACCEL_PID"
        FREEZE_PID=
        sleep 0.5
        stream_stop
        res=$(python3 "$LAB_TOOL" stale --old "$LAB_DIR/dst1.sink" --tag "$tag" --t1 "$t1" --resume "$tc")
        all+="$(jget "$res" stale_after_resume) "
        bad=$((bad + $(jget "$res" stale_after_resume)))
    done
    A1_DETAILS="stale datagrams after SIGCONT per round: $all"
    [[ $bad -eq 0 ]]
}
check "A1. resume after a freeze: no datagram follows the old route after SIGCONT (5 rounds)" \
    "${A1_DETAILS:-}" resume_rounds
note "A1: ${A1_DETAILS:-}"

# Events lost while frozen (200k route additions overrun the socket):
# the known-stale mirror must not be used, from SIGCONT through the resync.
overrun_round() {
    local t1 tc res lines
    python3 -c '
import sys
for i in range(200000):
    print(f"route add 100.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32 via 10.11.2.2 table 100")
' >"$LAB_DIR/routes.batch"
    route_to dst1
    stream_start a1o || return 1
    kill -STOP "$ACCEL_PID"
    FREEZE_PID=$ACCEL_PID
    route_to dst2
    t1=$EPOCHREALTIME
    ip -n "$NS_RTR" -batch "$LAB_DIR/routes.batch"
    sleep 0.6
    tc=$EPOCHREALTIME
    kill -CONT "$ACCEL_PID"
    FREEZE_PID=
    sleep 3
    stream_stop
    res=$(python3 "$LAB_TOOL" stale --old "$LAB_DIR/dst1.sink" --tag a1o --t1 "$t1" --resume "$tc")
    lines=$(lab_accel_log | grep -c 'events were lost')
    OV_DETAILS="$res; overrun logged $lines time(s)"
    ip -n "$NS_RTR" route flush table 100
    [[ $(jget "$res" stale_after_resume) -eq 0 ]]
}
check "A1. events lost while frozen: no datagram follows the old route after SIGCONT" \
    "${OV_DETAILS:-}" overrun_round
note "A1 overrun: ${OV_DETAILS:-}"
sleep 1
sy=$(lab_accel sync --check 2>&1)
check "A1. ... and the mirror is exact again (sync --check)" "$(head -n1 <<<"$sy")" grep -q '^in sync' <<<"$sy" ||
    lab_accel_diag | sed 's/^/#   /'

# ---------------------------------------------------------------- A4. idle control clients
# Clients that connect and say nothing must not stop the daemon: route
# changes still reach the datapath at once, the lease stays live, other
# clients are answered, and the idle ones are cut off.
idle_clients() { # N SECONDS: holds N silent connections open
    python3 "$LAB_TOOL" ctl-idle "$ACCEL_RUN_DIR/accel.sock" "$1" "$2" &
    IDLE_PID=$!
    sleep 0.3
}
idle_clients 1 8
route_to dst1
if stream_start a4; then
    k0=$(kernel_fwd4)
    t0=$EPOCHREALTIME
    route_to dst2
    t1=$EPOCHREALTIME
    sleep 0.5
    k1=$(kernel_fwd4)
    stream_stop
    res=$(python3 "$LAB_TOOL" switch --old "$LAB_DIR/dst1.sink" --new "$LAB_DIR/dst2.sink" --tag a4 --t0 "$t0" --t1 "$t1")
    lat=$(jget "$res" latency_ms)
    check "A4. an idle control client does not stop route changes (XDP traffic moves within 100 ms)" \
        "latency $lat ms, kernel forwarded +$((k1 - k0))" \
        eval '[[ $lat != none ]] && le "$lat" 100 && [[ $((k1 - k0)) -lt $KERNEL_SMALL ]]'
else
    not_ok "A4. an idle control client does not stop route changes" "no traffic"
fi
out=$(timeout 10 nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" sync --check 2>&1)
check "A4. ... and sync --check is answered meanwhile" "$(head -n1 <<<"$out")" grep -q '^in sync' <<<"$out"
st=$(lab_accel stats 2>&1 | head -n1)
check "A4. ... and the lease stays live" "$st" grep -q 'lease: live' <<<"$st"
kill "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null
# Many at once: the ones over the limit are turned away, the rest time out.
idle_clients 12 7
t=$EPOCHREALTIME
out=$(python3 "$LAB_TOOL" ctl-ask "$ACCEL_RUN_DIR/accel.sock")
el=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$t" "$EPOCHREALTIME")
check "A4. 13 idle clients: one over the limit is told the daemon is busy, or cut off within 6 s" \
    "after ${el} s: $out" eval 'grep -q "busy\|no request" <<<"$out" && le "$el" 6'
sleep 1
route_to dst1
burst_ok() {
    local r
    lab_send "$NS_SRC" "$LAB_SVC4" 500 5000 "$1" >/dev/null
    sleep 0.3
    r=$(lab_received "$1" dst1)
    BURST="dst1 got $r/500"
    [[ $r -eq 500 ]]
}
check "A4. ... while the daemon follows route changes" "${BURST:-}" burst_ok a4b
kill "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null

# ---------------------------------------------------------------- A5. work the daemon chose
# A check (and a resync) of a large table runs beside the event loop: a
# route change made meanwhile reaches the datapath as at rest, and the
# lease stays live. 500k routes (the real table's first IPv4 prefixes
# when ../shared is there, else generated) make the dump take a while.
big_table() {
    local src=$HERE/../../shared/data/bgp-full-table.txt.gz
    if [[ -r $src ]]; then
        zcat "$src" | tr -d '\r' | grep -v : | grep -v '^198\.51\.100\.' | head -n 500000
    else
        python3 -c '
for i in range(500000):
    print(f"{100 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24")'
    fi | awk -v gw="$LAB_DST2_GW4" '{print "route add " $1 " via " gw " proto 99"}' >"$LAB_DIR/big.batch"
}
during_check() { # KIND (check|sync): sets DC (switch JSON), DC_LEASE, DC_KFWD
    local kind=$1 tag=a5$1 t0 t1 k0 k1 job i
    route_to dst1
    stream_start "$tag" || return 1
    if [[ $kind == check ]]; then
        lab_accel sync --check >"$LAB_DIR/a5.out" 2>&1 &
    else
        lab_accel sync >"$LAB_DIR/a5.out" 2>&1 &
    fi
    job=$!
    # Into the dump (which takes about a second for this table).
    sleep 0.1
    k0=$(kernel_fwd4)
    t0=$EPOCHREALTIME
    route_to dst2
    t1=$EPOCHREALTIME
    DC_LEASE=""
    for ((i = 0; i < 5; i++)); do
        DC_LEASE+="$(lab_accel stats 2>&1 | head -n1 | awk '{print $3}') "
        sleep 0.1
    done
    k1=$(kernel_fwd4)
    DC_RUNNING=$(kill -0 "$job" 2>/dev/null && echo yes || echo no)
    wait "$job"
    stream_stop
    DC=$(python3 "$LAB_TOOL" switch --old "$LAB_DIR/dst1.sink" --new "$LAB_DIR/dst2.sink" --tag "$tag" --t0 "$t0" --t1 "$t1")
    DC_KFWD=$((k1 - k0))
    DC_OUT=$(head -n1 "$LAB_DIR/a5.out")
}
# Housekeeping turns of the event loop (status, counters, attachment,
# neighbours) over LIMIT ms in the log since byte OFFSET, one per line, in ms.
slow_housekeeping() { # OFFSET LIMIT
    tail -c +$(($1 + 1)) "$LAB_DIR/accel.log" |
        sed -En -e 's/.*slow turn: housekeeping took ([0-9.]+)(ms|s|µs)$/\1 \2/p' \
            -e 's/.*one turn of the event loop took ([0-9.]+)(ms|s|µs) \(housekeeping\).*/\1 \2/p' |
        awk -v limit="$2" '{ ms = $2 == "s" ? $1 * 1000 : $2 == "µs" ? $1 / 1000 : $1; if (ms > limit) print ms }'
}
stalls() { # OFFSET: event loop turns over the 250 ms warning since OFFSET
    tail -c +$(($1 + 1)) "$LAB_DIR/accel.log" | grep -o 'one turn of the event loop took .*' | tr '\n' ' '
}
big_table
hk_from=$(stat -c %s "$LAB_DIR/accel.log")
# A rule change in the middle: reading the rules takes the RTNL lock, so it
# is read beside the event loop, which sends both families to
# bpf_fib_lookup until it is (the rule's config is logged when read). An
# IPv6 rule: an IPv4 one would leave the kernel's sticky
# fib_has_custom_rules set for the later sections.
ip -n "$NS_RTR" -batch "$LAB_DIR/big.batch" &
batch_job=$!
sleep 2
rule_during=$(kill -0 "$batch_job" 2>/dev/null && echo "while the batch ran" || echo "after the batch ended")
ip -n "$NS_RTR" -6 rule add from 2001:db8:ffff::/48 table 100 pref 100
# The lease while the routes pour in: the queues are never empty in such a
# burst, so it is renewed from the last moment the reader found the socket
# empty (it lapsed for most of a full table's install before).
batch_lease=""
while kill -0 "$batch_job" 2>/dev/null; do
    batch_lease+="$(lab_accel stats 2>&1 | head -n1 | awk '{print $3}') "
    sleep 0.1
done
wait "$batch_job"
sleep 2
# Every sample must say live (an error or a new wording fails), and the
# batch must have run long enough to be sampled.
all_live() { # SAMPLES...
    local s
    for s in "$@"; do [[ $s == live ]] || return 1; done
    (($# >= 3))
}
check "A5. while the routes are added, the lease stays live (renewed within the burst)" \
    "samples: $(awk '{ for (i = 1; i <= NF; i++) n[$i]++ } END { for (k in n) printf "%s %d ", k, n[k] }' <<<"$batch_lease")" \
    all_live $batch_lease
rule_log=$(tail -c +$((hk_from + 1)) "$LAB_DIR/accel.log" | grep 'ip rules changed' | tail -n1)
check "A5. a source rule added while the routes are added is read and mirrored (config with ACCEL_CFG_SRC_RULES6)" \
    "rule added $rule_during; ${rule_log:-no rule config logged}" \
    eval '[[ $rule_during == while* && -n $rule_log ]] && (( ${rule_log##* } & 0x200 ))'
stall=$(stalls "$hk_from")
check "A5. ... and no turn of the event loop took over 250 ms meanwhile" "${stall:-none}" eval '[[ -z $stall ]]'
# While a routing daemon installs a table it takes the RTNL lock once per
# route: nothing the event loop does once a second may wait for that lock
# (asking the kernel which program an interface runs did, 35-490 ms).
slow=$(slow_housekeeping "$hk_from" 50 | tr '\n' ' ')
check "A5. while $(wc -l <"$LAB_DIR/big.batch") routes are added (RTNL busy), no housekeeping turn of the event loop takes over 50 ms" \
    "over 50 ms: ${slow:-none}" eval '[[ -z $slow ]]'
for kind in check sync; do
    if during_check "$kind"; then
        lat=$(jget "$DC" latency_ms)
        check "A5. during a ${kind} of $(wc -l <"$LAB_DIR/big.batch") routes, a route change reaches the datapath within 100 ms (XDP throughout)" \
            "latency $lat ms; ${kind} still running at the change: $DC_RUNNING; kernel forwarded +$DC_KFWD; $DC_OUT" \
            eval '[[ $lat != none ]] && le "$lat" 100 && [[ $DC_KFWD -lt $KERNEL_SMALL ]]'
        check "A5. ... and the lease stayed live throughout the ${kind}" "lease: $DC_LEASE" \
            eval '[[ $DC_LEASE != *lapsed* && $DC_LEASE != *inactive* ]]'
    else
        not_ok "A5. during a ${kind}" "the stream never arrived"
    fi
done
sy=$(lab_accel sync --check 2>&1)
check "A5. ... and the mirror is exact afterwards" "$(head -n1 <<<"$sy")" grep -q '^in sync' <<<"$sy"
ip -n "$NS_RTR" route flush proto 99
ip -n "$NS_RTR" -6 rule del from 2001:db8:ffff::/48 table 100 pref 100
route_to dst1
sleep 1

# ---------------------------------------------------------------- C10. after SIGKILL
kill -KILL "$ACCEL_PID"; wait "$ACCEL_PID" 2>/dev/null; ACCEL_PID=
out=$(lab_accel stats 2>&1); rc=$?
check "C10. after SIGKILL, accel stats says the instance is gone (not live from its pins)" \
    "exit $rc: $out" eval '[[ $rc -ne 0 ]] && grep -q "no live .accel run.*left over from a stopped instance" <<<"$out"'

# ---------------------------------------------------------------- A3. time namespace
# Started with its CLOCK_MONOTONIC 100000 s ahead: the lease must still be
# computed in the datapath's clock.
if start_accel unshare --time --monotonic 100000 --fork; then
    if freeze_round a3; then
        w=$(jget "$FR" stale_window_ms)
        check "A3. in a time namespace (+100000 s), a frozen daemon's mirror is used at most 1 s" \
            "stale datagrams $(jget "$FR" stale), last sent ${w} ms after the change" le "$w" 1000
    else
        not_ok "A3. in a time namespace" "the stream never arrived"
    fi
    st=$(lab_accel stats 2>&1 | head -n1)
    check "A3. ... and accel stats (outside the time namespace) shows the lease live" "$st" grep -q 'lease: live' <<<"$st"
else
    not_ok "A3. accel starts in a time namespace" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
fi
stop_accel

# ---------------------------------------------------------------- B5. bpffs and the pin directory
# A pin directory (or the run directory) that a user made first, with a
# `links` symlink planted into a root-only directory.
VICTIM=$LAB_DIR/victim
mkdir -m 700 "$VICTIM" && echo keep >"$VICTIM/file"
PLANTED=/sys/fs/bpf/$LAB_PREFIX-planted
as_nobody mkdir "$PLANTED" && as_nobody ln -s "$VICTIM" "$PLANTED/links"
out=$(ACCEL_PIN_DIR=$PLANTED timeout 20 nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" run -i "$LAB_R_SRC" 2>&1)
rc=$?
check "B5. a pin directory a user created is refused" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "refusing $PLANTED: owned by uid 65534" <<<"$out"'
check "B5. ... and the planted links symlink was not followed" "$(ls "$VICTIM" | tr '\n' ' ')" \
    test -f "$VICTIM/file"
rm -rf "$PLANTED"
# accel mounts bpffs itself where none is: root-only, not the kernel's 1777.
# Every bpffs stacked there goes (the lab's own, and the host's if it has one).
mode=$(unshare -m --propagation private sh -c "while umount /sys/fs/bpf 2>/dev/null; do :; done; \
    ACCEL_PIN_DIR=/sys/fs/bpf/x ACCEL_RUN_DIR=$LAB_DIR/runm timeout 20 nsenter --net=/run/netns/$NS_RTR -- \
    $ACCEL run -i $LAB_R_SRC >$LAB_DIR/mount.log 2>&1 & p=\$!; sleep 2; stat -c %a /sys/fs/bpf; kill \$p; wait \$p")
# The kernel adds the sticky bit to a bpffs root whatever the mode.
check "B5. the bpffs accel mounts is root-only (no access for group or others)" \
    "mode $mode; $(tail -n1 "$LAB_DIR/mount.log")" eval '[[ $mode == *00 ]]'


# ---------------------------------------------------------------- B6. run directory
# Started under umask 000 with a run directory others could reach:
# everything accel creates is still root-only.
SAVED_RUN_DIR=$ACCEL_RUN_DIR
export ACCEL_RUN_DIR=/run/$LAB_PREFIX-umask
(umask 000; start_accel)
ACCEL_PID=$(cat "$ACCEL_RUN_DIR/accel.pid" 2>/dev/null)
modes=$(stat -c '%n %a' "$ACCEL_RUN_DIR" "$ACCEL_RUN_DIR"/accel.* "$ACCEL_PIN_DIR" 2>&1 | tr '\n' ' ')
check "B6. under umask 000: run dir 700, lock and pid 600, socket 700, pin dir 700" "$modes" \
    eval '[[ $(stat -c %a "$ACCEL_RUN_DIR") == 700 && $(stat -c %a "$ACCEL_RUN_DIR/accel.pid") == 600 &&
        $(stat -c %a "$ACCEL_RUN_DIR/accel.lock") == 600 && $(stat -c %a "$ACCEL_RUN_DIR/accel.sock") == 700 &&
        $(stat -c %a "$ACCEL_PIN_DIR") == 700 ]]'
# Straight to the socket, as an attacker would (the CLI's own checks aside).
# The helper comes on stdin: nobody may not be able to read the checkout.
out=$(as_nobody /usr/bin/python3 - ctl-ask --send sync "$ACCEL_RUN_DIR/accel.sock" 2>&1 <"$LAB_TOOL"); rc=$?
# (Python itself must have run and been refused, not failed to start.)
check "B6. nobody cannot ask for a resync through the socket" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "PermissionError" <<<"$out" && ! grep -q "synced" <<<"$out"'
out=$(as_nobody sh -c "echo 1 >$ACCEL_RUN_DIR/accel.pid" 2>&1); rc=$?
check "B6. nobody cannot rewrite the pid file" "exit $rc: $out; pid file: $(cat "$ACCEL_RUN_DIR/accel.pid")" \
    eval '[[ $rc -ne 0 && $(cat "$ACCEL_RUN_DIR/accel.pid") == "$ACCEL_PID" ]]'
out=$(as_nobody "$ACCEL" stats 2>&1); rc=$?
check "B6. nobody cannot read the maps" "exit $rc: $out" test "$rc" -ne 0
stop_accel
rm -rf "$ACCEL_RUN_DIR"
export ACCEL_RUN_DIR=$SAVED_RUN_DIR
# A run directory others can write, with a symlink planted for the pid file.
OPEN=/tmp/$LAB_PREFIX-open-run
mkdir -m 777 "$OPEN"
echo "root only" >"$VICTIM/secret"; chmod 600 "$VICTIM/secret"
as_nobody ln -s "$VICTIM/secret" "$OPEN/accel.pid"
out=$(ACCEL_RUN_DIR=$OPEN timeout 20 nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" run -i "$LAB_R_SRC" 2>&1); rc=$?
check "B6. a run directory writable by others is refused" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "writable by group or others" <<<"$out"'
check "B6. ... and the planted pid symlink was not followed" "$(cat "$VICTIM/secret"), link $(readlink "$OPEN/accel.pid")" \
    eval '[[ -L $OPEN/accel.pid ]] && grep -qx "root only" "$VICTIM/secret"'
rm -rf "$OPEN"
OWNED=$LAB_DIR/user-run
mkdir -m 700 "$OWNED" && chown 65534:65534 "$OWNED"
out=$(ACCEL_RUN_DIR=$OWNED timeout 20 nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" run -i "$LAB_R_SRC" 2>&1); rc=$?
check "B6. a run directory a user owns is refused" "exit $rc: $(tail -n1 <<<"$out")" \
    eval '[[ $rc -ne 0 ]] && grep -q "owned by uid 65534" <<<"$out"'

# ---------------------------------------------------------------- B7. the upgrade binary
# accel started from a directory a user owns: on SIGUSR2 the user's
# replacement must not run as root.
UBIN=/tmp/$LAB_PREFIX-ubin
mkdir -m 755 "$UBIN" && cp "$ACCEL" "$UBIN/accel" && chown 65534:65534 "$UBIN"
REAL_ACCEL=$ACCEL ACCEL=$UBIN/accel
start_accel
ACCEL=$REAL_ACCEL
# A binary, not a script: accel executes the file it checked through
# /proc/self/fd/N, where a script's interpreter could not open it, and
# the canary would stay silent whatever accel did.
printf '#include <fcntl.h>\nint main(void) { return creat("%s", 0600) < 0; }\n' "$LAB_DIR/pwned" |
    cc -x c -o "$UBIN/accel.new" -
chmod 755 "$UBIN/accel.new"; chown 65534:65534 "$UBIN/accel.new"
as_nobody mv "$UBIN/accel.new" "$UBIN/accel"
kill -USR2 "$ACCEL_PID"
sleep 1.5
refused=$(lab_accel_log | grep -c "will not execute the successor")
check "B7. SIGUSR2 refuses to execute a binary in a directory a user owns" \
    "$(lab_accel_log | grep -m1 'handover' | cut -c1-220)" eval '[[ $refused -ge 1 && ! -e $LAB_DIR/pwned ]]'
alive=$(kill -0 "$ACCEL_PID" 2>/dev/null && echo yes || echo no)
burst_ok b7
check "B7. ... and the running instance carries on" "alive $alive, $BURST" eval '[[ $alive == yes ]] && burst_ok b7b'
out=$(lab_accel upgrade 2>&1); rc=$?
check "B7. accel upgrade is refused the same way: exit 1, one line saying why" "exit $rc: $out" \
    eval '[[ $rc -eq 1 && $(wc -l <<<"$out") -eq 1 && $out == *"will not execute the successor"* && ! -e $LAB_DIR/pwned ]] && kill -0 "$ACCEL_PID"'
b7_failed=$(lab_accel_series 'accel_handover_failures_total{purpose="upgrade"}' 2)
check "B7. both refusals counted (AccelUpgradeFailed)" "$b7_failed" eval '[[ $b7_failed == *"} 2" ]]'

stop_accel
rm -rf "$UBIN"

# contended: two busy loops per CPU (ordinary processes, nice 0) for
# CT_SECONDS; meanwhile the lease sampled every 0.2 s, and the route to
# 198.51.100.0/24 moved halfway. Sets CT (switch JSON), CT_LEASE, CT_KFWD,
# CT_HOGS, CT_RAISES (accel_event_loop_raises_total before -> after).
CT_SECONDS=4
loop_raises() { lab_accel stats --format openmetrics 2>&1 | awk '$1 == "accel_event_loop_raises_total" { print $2 }'; }
contended() {
    local tag=ct t0 k0 k1 i hogs=()
    route_to dst1
    CT_RAISES=$(loop_raises)
    stream_start "$tag" || return 1
    CT_HOGS=$((2 * $(nproc)))
    for ((i = 0; i < CT_HOGS; i++)); do
        # Bounded: an interrupted run must not leave them spinning.
        timeout -s KILL $((CT_SECONDS + 20)) bash -c 'while :; do :; done' &
        hogs+=($!)
    done
    CT_LEASE=""
    for ((i = 0; i < CT_SECONDS * 5; i++)); do
        if ((i == CT_SECONDS * 5 / 2)); then
            k0=$(kernel_fwd4)
            t0=$EPOCHREALTIME
            route_to dst2
        fi
        CT_LEASE+="$(lab_accel stats 2>&1 | head -n1 | awk '{print $3}') "
        sleep 0.2
    done
    k1=$(kernel_fwd4)
    kill "${hogs[@]}"
    wait "${hogs[@]}" 2>/dev/null
    CT_RAISES+=" -> $(loop_raises)"
    stream_stop
    # Measured from before `ip route replace` started: its own run, slowed
    # by the busy loops, counts against accel.
    CT=$(python3 "$LAB_TOOL" switch --old "$LAB_DIR/dst1.sink" --new "$LAB_DIR/dst2.sink" --tag "$tag" --t0 "$t0" --t1 "$t0")
    CT_KFWD=$((k1 - k0))
    route_to dst1
}

# ---------------------------------------------------------------- B8. least privilege
# Root with only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (bpffs is mounted),
# as the systemd unit runs it.
CAPS=+bpf,+net_admin,+perfmon
if start_accel setpriv --bounding-set=-all,$CAPS --inh-caps=-all,$CAPS --; then
    caps=$(grep CapEff "/proc/$ACCEL_PID/status" | awk '{print $2}')
    burst_ok b8
    check "B8. runs and forwards with only CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON" "CapEff $caps; $BURST" \
        eval '[[ $caps == 000000c000001000 ]] && burst_ok b8b'
    # No CAP_SYS_NICE and no RLIMIT_RTPRIO: the real-time priority is refused.
    refused=$(lab_accel_log | grep -c 'real-time priority 1 refused' || true)
    sched=$(thread_sched)
    check "B8. ... the real-time priority refused: one WARN, every thread at normal priority" \
        "$refused WARN; $sched" eval '[[ $refused -eq 1 && $sched != *" FF "* ]]'
else
    not_ok "B8. runs with only CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON" "$(lab_accel_log | tail -n 2 | tr '\n' ' ')"
fi
stop_accel
# Allowed real-time priority (the unit's LimitRTPRIO=1 needs CAP_SYS_RESOURCE
# to set up, which root lacks on the test machines; CAP_SYS_NICE allows the
# same call): the netlink reader takes SCHED_FIFO 1, the event loop only
# while it applies changes, and nothing they start inherits it.
if start_accel setpriv --bounding-set=-all,$CAPS,+sys_nice --inh-caps=-all,$CAPS,+sys_nice --; then
    sleep 1
    sched=$(thread_sched)
    fifo=$(grep -o ' FF ' <<<"$sched" | wc -l)
    check "B8. with CAP_SYS_NICE too, at rest: the netlink reader at SCHED_FIFO 1, the event loop and every other thread at normal priority" \
        "$sched" eval '[[ $sched == *"accel-netlink FF 1;"* && $sched == *"accel TS -;"* && $fifo -eq 1 ]]'
    head -n 100000 "$LAB_DIR/big.batch" >"$LAB_DIR/b8.batch"
    # The event loop is accel's main thread; field 41 of its stat is its
    # policy (1: SCHED_FIFO). It is at FIFO only while it applies changes:
    # sampled every 2 ms (read -t on a pipe that never speaks: no process
    # per sample) while the routes are added, and for 2 s from their
    # flush, whose 100,000 notifications come at once.
    exec {b8_pipe}<> <(:)
    loop_fifo=0 loop_samples=0
    sample_loop() { # while COMMAND succeeds
        while "$@"; do
            read -ra stat <"/proc/$ACCEL_PID/stat" || break
            [[ ${stat[40]} == 1 ]] && loop_fifo=$((loop_fifo + 1))
            loop_samples=$((loop_samples + 1))
            read -r -t 0.002 -u "$b8_pipe" || true
        done
    }
    ip -n "$NS_RTR" -batch "$LAB_DIR/b8.batch" &
    b8_job=$!
    sample_loop kill -0 "$b8_job" 2>/dev/null
    wait "$b8_job"
    ip -n "$NS_RTR" route flush proto 99 &
    b8_job=$!
    b8_until=$((SECONDS + 2))
    before_b8_until() { ((SECONDS < b8_until)); }
    sample_loop before_b8_until
    wait "$b8_job"
    exec {b8_pipe}<&-
    sleep 1
    sched=$(thread_sched)
    check "B8. ... while $(wc -l <"$LAB_DIR/b8.batch") routes are added and flushed, the event loop at SCHED_FIFO 1 at times, and back at normal priority after" \
        "at FIFO in $loop_fifo of $loop_samples samples; after: $sched" \
        eval '[[ $loop_fifo -ge 1 && $sched == *"accel-netlink FF 1;"* && $(grep -o " FF " <<<"$sched" | wc -l) -eq 1 ]]'
    # At rest the event loop renews the lease at normal priority: ordinary
    # processes holding every CPU must neither lapse it nor hold back a
    # route change, which the reader (at SCHED_FIFO) hands over at once,
    # raising the loop should the batch wait 2 ms for it (here it seldom
    # has to: the count is shown, not required to rise).
    if contended; then
        check "B8. ... while $CT_HOGS busy loops hold every CPU for ${CT_SECONDS} s, the lease stays live and a route change reaches the datapath within 100 ms (XDP)" \
            "lease: $CT_LEASE; $CT; kernel forwarded +$CT_KFWD; loop raised by the reader: $CT_RAISES" \
            eval 'all_live $CT_LEASE && [[ $CT_RAISES =~ ^[0-9]+\ -\>\ [0-9]+$ && $(jget "$CT" latency_ms) != none ]] && le "$(jget "$CT" latency_ms)" 100 && [[ $CT_KFWD -lt $KERNEL_SMALL ]]'
    else
        not_ok "B8. ... while busy loops hold every CPU" "the stream never arrived"
    fi
else
    not_ok "B8. runs with CAP_SYS_NICE too" "$(lab_accel_log | tail -n 2 | tr '\n' ' ')"
fi
stop_accel
CAPS=+bpf,+net_admin
out=$(nsenter --net="/run/netns/$NS_RTR" -- setpriv --bounding-set=-all,$CAPS --inh-caps=-all,$CAPS -- \
    "$ACCEL" run -i "$LAB_R_SRC" 2>&1); rc=$?
check "B8. without CAP_PERFMON: one clear line naming it" "exit $rc: $out" \
    eval '[[ $rc -ne 0 && $(wc -l <<<"$out") -eq 1 ]] && grep -q "needs CAP_PERFMON" <<<"$out"'

# ---------------------------------------------------------------- C11. one clear line each
out=$(lab_accel run -i lo --xdp-mode generic 2>&1); rc=$?
check "C11. lo is refused (nothing can be forwarded from it)" "exit $rc: $out" \
    eval '[[ $rc -ne 0 ]] && grep -q "interface lo: has no Ethernet address" <<<"$out"'
out=$(ACCEL_PIN_DIR=/sys/fs/bpf/nothing-here lab_accel stats 2>&1); rc=$?
# Every cause said once: no ": X" repeated in the line.
once() {
    python3 -c '
import re, sys
msg = sys.argv[1]
# Each cause (the parts between ": ", without parenthesised details) must
# appear once in the whole line.
causes = [c.strip() for part in msg.split(": ") for c in re.split(r"[()]", part)]
sys.exit(0 if all(msg.count(c) == 1 for c in causes if len(c) > 8) else 1)' "$1"
}
check "C11. stats without an instance: one line, each cause once" "exit $rc: $out" \
    eval '[[ $rc -ne 0 && $(wc -l <<<"$out") -eq 1 ]] && once "$out"'

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
