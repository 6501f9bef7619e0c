#!/usr/bin/env bash
# Keeping up with BGP (issue 9): what accel costs the routing daemon, and how
# far behind the kernel it runs, with FRR and BIRD and the full table.
#
#   sudo scripts/bench/bgp.sh                      # full table, 3 rounds (long)
#   sudo TABLE=20000 ROUNDS=2 scripts/bench/bgp.sh # quick run on a sample
#
#   (bird) b-rtr ---- r-bird (rtr)
#
#   bird runs BIRD 2, which originates the table from two `static` protocols
#   (tbl4, tbl6: `route P blackhole;`, disabled at start) and exports them over
#   eBGP (AS 65002 -> 65001; one IPv4 and one IPv6 session over the veth).
#   rtr runs FRR 8.4 (zebra with a 32 MiB netlink buffer, bgpd), which installs
#   every route in the kernel FIB with nexthop objects (IPv6 via BIRD's
#   link-local address), and, in mode accel, `accel run -i r-bird`.
#
# Each round runs the modes one after the other, in this order:
#   none      FRR alone
#   listener  FRR and a bare rtnetlink listener (scripts/bench/nl-listener.c:
#             IPv4/IPv6 route and nexthop groups, 64 MiB receive buffer, one
#             text line per message with its receive time; the control: what
#             any listener costs FRR)
#   accel     FRR, accel, and the same listener beside it (the kernel-side
#             clock for the lag, so this mode carries the listener's cost too)
#   accel-alone  FRR and accel only (not in the default MODES: add it to
#             compare accel alone with the bare listener; no lag figures)
# and in each mode: announce (`birdc enable "tbl*"`) until the kernel holds
# every route, then withdraw (`birdc disable "tbl*"`, BGP withdrawals over the
# sessions, which stay up) until it holds none of them. A phase's time runs
# from the birdc command to the moment the kernel's route counts reach the
# target (IPv4: "Main: Prefixes" of /proc/net/fib_triestat, IPv6:
# fib_rt_entries of /proc/net/rt6_stats; polled from rtr, never a full dump
# and nothing asked of FRR; the IPv4 read walks the trie without giving up
# the CPU, 50-120 ms at full table, so it is read once the routes stopped
# coming: when the count of the kernel's ip_fib_alias objects (/proc/slabinfo,
# cheap) is within 25,000 of its target and still for 0.3 s, and the IPv6
# count is done; the phase ends when that count last came closer to its
# target. Bounded waits keep a wrong slab count from hanging a phase: see
# bgpbench.py, class Tracker). CPU time of zebra, bgpd, bird, the listener and accel
# (all threads, /proc/PID/task/*/schedstat) is taken over each phase plus
# SETTLE seconds. A warm-up announce/withdraw (FRR alone) comes first and is
# not counted; it also checks that every prefix reaches the kernel.
# Stalls: over the rounds, a probe pinned to each CPU at SCHED_FIFO 50
# (scripts/bench/stall-probe.c, 2,000 wake-ups a second per CPU) records
# every time its CPU could not run it for over 2 ms; each route's lag is
# also given less the longest such stall (of either CPU) within it: a lower
# bound of what accel could have avoided.
#
# accel's CPU per route event = its CPU over the phase / the route and
# nexthop messages the listener received in that phase (same run).
# Against the listener (issue 9): per round, each accel mode's time less the
# listener's, in points of FRR alone's time. "loop raised Nx" after an accel
# phase: accel_event_loop_raises_total's increase over it (batches that
# waited 2 ms for the event loop).
# Lag (mode accel, when this accel writes ACCEL_TRACE_ROUTES): per prefix,
# from the listener's receive time of the RTM_NEWROUTE / RTM_DELROUTE to the
# time accel's trace says it applied that change to the datapath.
# Restart: with the full table installed, RESTARTS times stop accel (SIGTERM)
# and start it again: ready = `accel running on` in its log, mirror live =
# `mirror live`, and the first `accel sync --check` that exits 0, each from
# the moment the new process was started.
#
# Knobs (environment): TABLE=N (a seeded sample of N prefixes, IPv4/IPv6 in
# the full table's proportion; default: all), ROUNDS=3, RESTARTS=3,
# MODES="none listener accel" (in this order in each round; also
# accel-alone), SETTLE=2 (s), TIMEOUT=900 (s per
# phase), ACCEL=path (default target/release/accel; not built here),
# ACCEL_ARGS="..." (more options for `accel run`),
# BGP_TABLE_GZ=file (default ../shared/data/bgp-full-table.txt.gz; absent:
# `accel-bench gen-table`'s synthetic table, and the output says so;
# BENCH=path, default target/release/accel-bench),
# RECORDS=file (keep the raw JSON records), LAB_KEEP=1 (keep the temp dir),
# PERF_DIR=dir (`perf record` accel in each phase it runs in:
# dir/perf.ROUND.MODE.PHASE.data, its messages in .log; PERF_ARGS= more
# options, e.g. -g).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
ROOT=$(cd "$HERE/../.." && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "bgp.sh: needs root (network namespaces, XDP, routing daemons)" >&2
    exit 1
fi
missing=()
for c in vtysh birdc bird /usr/lib/frr/zebra /usr/lib/frr/bgpd cc python3 nsenter unshare ethtool; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
if ((${#missing[@]})); then
    echo "bgp.sh: missing ${missing[*]} (apt-get install frr bird2 gcc python3 util-linux ethtool; scripts/install-deps.sh installs them)" >&2
    exit 1
fi

if [[ -n ${PERF_DIR:-} ]]; then
    if ! command -v perf >/dev/null 2>&1 || [[ ! -d $PERF_DIR ]]; then
        echo "bgp.sh: PERF_DIR needs perf (apt-get install linux-perf) and an existing directory" >&2
        exit 1
    fi
    # perf, as root, creates files there: not in a directory another user
    # could have planted a symlink in.
    read -r owner mode < <(stat -c '%u %a' -- "$PERF_DIR")
    if [[ -L $PERF_DIR || $owner != 0 || $((8#$mode & 8#022)) != 0 ]]; then
        echo "bgp.sh: PERF_DIR $PERF_DIR must be a directory owned by root and writable by no one else (not a symlink)" >&2
        exit 1
    fi
fi

# shellcheck source=../lab.sh
source "$ROOT/scripts/lab.sh"
lab_private_mountns "$SELF" "$@" # re-exec in a private mount namespace, private bpffs

TABLE=${TABLE:-0}
ROUNDS=${ROUNDS:-3}
RESTARTS=${RESTARTS:-3}
MODES=${MODES:-none listener accel}
SETTLE=${SETTLE:-2}
TIMEOUT=${TIMEOUT:-900}
BB="$HERE/bgpbench.py"

LAB_PREFIX=${LAB_PREFIX:-bgp$$}
lab_init
NS_RTR=$LAB_PREFIX-rtr NS_BIRD=$LAB_PREFIX-bird
LAB_NSS=("$NS_RTR" "$NS_BIRD")
chmod 755 "$LAB_DIR" # FRR runs as user frr
FRR_DIR=$LAB_DIR/frr
BIRD_DIR=$LAB_DIR/bird
REC=$LAB_DIR/records.jsonl
LISTENER=$LAB_DIR/nl-listener
PROBE=$LAB_DIR/stall-probe
LPID= PROBE_PID=
mkdir -p "$FRR_DIR" "$BIRD_DIR" "$ACCEL_RUN_DIR"
: >"$REC"
# Per-event records (the listener's and accel's trace: 100-200 MB a phase
# at full table) go to memory: on a disk, a journal commit can hold a
# writer for hundreds of milliseconds, and the records would measure that.
EVDIR=$(mktemp -d /dev/shm/accel-bgp.XXXXXX)

stop_pid() { # PID [seconds]: SIGTERM, then SIGKILL after the grace period
    local pid=$1 grace=${2:-5} i
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}
pidfile() { [[ -s $1 ]] && cat "$1" || echo ""; }
finish() {
    local rc=$?
    set +e
    [[ -n $LPID ]] && stop_pid "$LPID" 2
    [[ -n $PROBE_PID ]] && stop_pid "$PROBE_PID" 2
    if [[ -n ${ACCEL_PID:-} ]]; then stop_pid "$ACCEL_PID" 20; wait "$ACCEL_PID" 2>/dev/null; ACCEL_PID=; fi
    for d in bgpd zebra; do stop_pid "$(pidfile "$FRR_DIR/$d.pid")" 10; done
    stop_pid "$(pidfile "$BIRD_DIR/bird.pid")" 10
    if [[ $rc -ne 0 ]]; then
        echo "bgp.sh: failed (exit $rc); logs in $LAB_DIR$([[ -z ${LAB_KEEP:-} ]] && echo ' (removed; LAB_KEEP=1 keeps them)')" >&2
        for f in "$LAB_DIR"/accel.log "$BIRD_DIR/bird.log" "$FRR_DIR/zebra.log" "$FRR_DIR/bgpd.log"; do
            [[ -s $f ]] && { echo "--- tail $f" >&2; tail -n 8 "$f" >&2; }
        done
    fi
    lab_down || true
    [[ -n ${LAB_KEEP:-} ]] && echo "bgp.sh: per-event records kept in $EVDIR" >&2 || rm -rf "$EVDIR"
    return $rc
}
trap finish EXIT
trap 'echo "bgp.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
trap "exit 130" INT TERM

[[ -x $ACCEL ]] || { echo "bgp.sh: $ACCEL is not executable (cargo build --release, or set ACCEL)" >&2; exit 1; }
cc -O2 -Wall -o "$LISTENER" "$HERE/nl-listener.c"
cc -O2 -Wall -pthread -o "$PROBE" "$HERE/stall-probe.c"
HAS_TRACE=0 HAS_LIVE=0
grep -aq ACCEL_TRACE_ROUTES "$ACCEL" && HAS_TRACE=1
grep -aq 'mirror live' "$ACCEL" && HAS_LIVE=1

# ------------------------------------------------------------------ table
GZ=${BGP_TABLE_GZ:-$ROOT/../shared/data/bgp-full-table.txt.gz}
if [[ -r $GZ ]]; then
    TABLE_DESC="real full table ($(realpath "$GZ"))"
else
    TABLE_DESC="SYNTHETIC table (accel-bench gen-table, seed 1, the real table's prefix-length mix; $GZ absent)"
    GZ=
fi
BENCH=${BENCH:-$ROOT/target/release/accel-bench}
tbl=$(python3 "$BB" table ${GZ:+--gz "$GZ"} --gen "$BENCH" --limit "$TABLE" --out "$BIRD_DIR")
read -r N4 N6 <<<"$tbl"
if [[ $TABLE -gt 0 ]]; then TABLE_DESC="$TABLE_DESC, seeded sample (seed 42) of $((N4 + N6)) prefixes"; fi
FRR_V=$(/usr/lib/frr/zebra --version 2>&1 | head -n1 | sed 's/^zebra version /FRR /')
BIRD_V=$(bird --version 2>&1 | sed 's/^BIRD version /BIRD /')
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
echo "== BGP benchmark (issue 9): $FRR_V + $BIRD_V, accel $ACCEL"
echo "   table: $TABLE_DESC: $N4 IPv4 + $N6 IPv6 prefixes"
echo "   machine: $(nproc) CPUs ($CPU_MODEL), Linux $(uname -r), $(free -g | awk '/^Mem:/ {print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   rounds $ROUNDS (modes: $MODES), restarts $RESTARTS, settle ${SETTLE}s"
echo "   accel trace (ACCEL_TRACE_ROUTES): $([[ $HAS_TRACE == 1 ]] && echo supported || echo 'not in this binary: no lag figures'); 'mirror live' log line: $([[ $HAS_LIVE == 1 ]] && echo supported || echo 'not in this binary')"

# ------------------------------------------------------------------ topology
ip netns add "$NS_RTR"
ip netns add "$NS_BIRD"
for ns in "$NS_RTR" "$NS_BIRD"; do
    lab_in "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0
    ip -n "$ns" link set lo up
done
lab_in "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$NS_RTR" link add r-bird type veth peer name b-rtr netns "$NS_BIRD"
lab_addr "$NS_RTR" r-bird 10.31.0.1/24 fd00:31::1/64
lab_addr "$NS_BIRD" b-rtr 10.31.0.2/24 fd00:31::2/64
lab_in "$NS_BIRD" ethtool -K b-rtr gro on >/dev/null # XDP_REDIRECT into a veth needs NAPI on the peer

# ------------------------------------------------------------------ BIRD
cat >"$BIRD_DIR/bird.conf" <<EOF
log "$BIRD_DIR/bird.log" { info, warning, error, fatal };
router id 10.31.0.2;
protocol device { scan time 10; }
protocol static tbl4 {
    disabled;
    ipv4;
include "$BIRD_DIR/routes4.conf";
}
protocol static tbl6 {
    disabled;
    ipv6;
include "$BIRD_DIR/routes6.conf";
}
template bgp rtr {
    local as 65002;
    connect delay time 1;
    connect retry time 2;
    error wait time 1, 4;
    hold time 240;
    keepalive time 60;
}
protocol bgp v4 from rtr { local 10.31.0.2; neighbor 10.31.0.1 as 65001; ipv4 { import none; export all; }; }
protocol bgp v6 from rtr { local fd00:31::2; neighbor fd00:31::1 as 65001; ipv6 { import none; export all; }; }
EOF
birdc_() { birdc -s "$BIRD_DIR/bird.ctl" "$@"; }
t=$SECONDS
lab_in "$NS_BIRD" bird -c "$BIRD_DIR/bird.conf" -s "$BIRD_DIR/bird.ctl" -P "$BIRD_DIR/bird.pid"
for ((i = 0; i < 600; i++)); do birdc_ show status 2>/dev/null | grep -q 'Daemon is up' && break; sleep 0.5; done
echo "   BIRD up after $((SECONDS - t)) s (config with $((N4 + N6)) static routes)"

# ------------------------------------------------------------------ FRR
cat >"$FRR_DIR/zebra.conf" <<EOF
hostname rtr
log file $FRR_DIR/zebra.log
EOF
cat >"$FRR_DIR/bgpd.conf" <<EOF
hostname rtr
log file $FRR_DIR/bgpd.log
router bgp 65001
 bgp router-id 10.31.0.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 timers bgp 60 240
 neighbor 10.31.0.2 remote-as 65002
 neighbor 10.31.0.2 timers connect 2
 neighbor fd00:31::2 remote-as 65002
 neighbor fd00:31::2 timers connect 2
 address-family ipv4 unicast
  neighbor 10.31.0.2 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor fd00:31::2 activate
 exit-address-family
EOF
chown -R frr:frr "$FRR_DIR"
for d in zebra bgpd; do
    extra=()
    [[ $d == zebra ]] && extra=(-s 33554432)
    ip netns exec "$NS_RTR" /usr/lib/frr/$d -d -f "$FRR_DIR/$d.conf" -i "$FRR_DIR/$d.pid" \
        -z "$FRR_DIR/zserv.api" --vty_socket "$FRR_DIR" -u frr -g frr "${extra[@]}" >>"$FRR_DIR/start.log" 2>&1 ||
        { echo "$d failed to start: $(tail -n 3 "$FRR_DIR/start.log")" >&2; exit 1; }
    if [[ $d == zebra ]]; then
        for ((i = 0; i < 50; i++)); do [[ -S $FRR_DIR/zserv.api ]] && break; sleep 0.1; done
    fi
done
vtysh_() { lab_in "$NS_RTR" vtysh --vty_socket "$FRR_DIR" "$@"; }
sessions() { # prints "ESTABLISHED DROPPED" over both sessions
    vtysh_ -c 'show bgp summary json' 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    d = {}
ps = [p for af in ("ipv4Unicast", "ipv6Unicast") for p in d.get(af, {}).get("peers", {}).values()]
print(sum(p.get("state") == "Established" for p in ps), sum(p.get("connectionsDropped", 0) for p in ps))'
}
t=$SECONDS
until [[ $(sessions | cut -d' ' -f1) == 2 ]]; do
    ((SECONDS - t < 120)) || { echo "BGP sessions not up after 120 s: $(birdc_ show protocols 2>&1 | tr -s ' \n' ' ')" >&2; exit 1; }
    sleep 0.5
done
echo "   FRR up, 2 BGP sessions Established after $((SECONDS - t)) s"
DROPS0=$(sessions | cut -d' ' -f2)
# Daemon log lines from here on (the set-up's connection races are not counted).
nlines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
LOG0_ZEBRA=$(nlines "$FRR_DIR/zebra.log") LOG0_BGPD=$(nlines "$FRR_DIR/bgpd.log") LOG0_BIRD=$(nlines "$BIRD_DIR/bird.log")
since_start() { tail -n +$(($2 + 1)) "$1" 2>/dev/null || true; }
sessions_note() {
    local e d
    read -r e d <<<"$(sessions)"
    echo "$e of 2 Established, $((d - DROPS0)) dropped since the start"
}
ZPID=$(pidfile "$FRR_DIR/zebra.pid") BGPD_PID=$(pidfile "$FRR_DIR/bgpd.pid") BIRD_PID=$(pidfile "$BIRD_DIR/bird.pid")

# ------------------------------------------------------------------ modes
listener_start() { # FILE
    local err=$1.err i
    : >"$err"
    # A simple command, so $! is the listener itself (nsenter execs it).
    nsenter --net="/run/netns/$NS_RTR" -- "$LISTENER" -o "$1" 2>"$err" &
    LPID=$!
    for ((i = 0; i < 100; i++)); do grep -q listening "$err" && return 0; sleep 0.02; done
    echo "listener did not start: $(cat "$err")" >&2
    return 1
}
listener_stop() {
    local rc=0
    [[ -n $LPID ]] || return 0
    kill -TERM "$LPID" 2>/dev/null || true
    wait "$LPID" || rc=$?
    LPID=
    [[ $rc -eq 3 ]] && echo "   WARNING: the listener saw receive-buffer overruns" >&2
    return 0
}
read -ra ACCEL_ARGS <<<"${ACCEL_ARGS:-}" # options, split into words (no globbing)
read -ra PERF_ARGS <<<"${PERF_ARGS:-}"
ACCEL_LOG=$LAB_DIR/accel.log
touch "$ACCEL_LOG"
ACCEL_STARTS=0
accel_start() { # [TRACE_FILE]: starts accel; sets ACCEL_PID, ACCEL_T0, ACCEL_LOG_OFFSET
    ACCEL_LOG_OFFSET=$(stat -c %s "$ACCEL_LOG")
    ACCEL_STARTS=$((ACCEL_STARTS + 1))
    ACCEL_T0=$EPOCHREALTIME
    # A simple command, so $! is accel itself (env and nsenter exec it).
    if [[ -n ${1:-} ]]; then
        env ACCEL_TRACE_ROUTES="$1" nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" run -i r-bird "${ACCEL_ARGS[@]}" >>"$ACCEL_LOG" 2>&1 &
    else
        nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" run -i r-bird "${ACCEL_ARGS[@]}" >>"$ACCEL_LOG" 2>&1 &
    fi
    ACCEL_PID=$!
}
# accel_start_wait [TRACE_FILE] [-- CMD...]: starts accel and waits for its
# log to say ready (and mirror live), then runs CMD until it exits 0; prints
# {"ready": t, "live": t, "ok": t, ...} (CLOCK_REALTIME; null if not seen).
# The log watcher runs before accel starts, so the times are not late by its
# own start-up.
accel_start_wait() {
    local tf=${1:-} pats=(--pattern 'ready=accel running on') wpid i
    shift || true
    [[ $HAS_LIVE == 1 ]] && pats+=(--pattern 'live=mirror live')
    rm -f "$LAB_DIR/watch.ready" "$LAB_DIR/watch.pid"
    python3 "$BB" waitlog --log "$ACCEL_LOG" --offset "$(stat -c %s "$ACCEL_LOG")" "${pats[@]}" --timeout 300 \
        --pid-file "$LAB_DIR/watch.pid" --ready-file "$LAB_DIR/watch.ready" "$@" >"$LAB_DIR/watch.out" &
    wpid=$!
    for ((i = 0; i < 500; i++)); do [[ -e $LAB_DIR/watch.ready ]] && break; sleep 0.01; done
    accel_start "$tf"
    echo "$ACCEL_PID" >"$LAB_DIR/watch.pid"
    wait "$wpid" || true
    cat "$LAB_DIR/watch.out"
}
accel_stop() { # returns after accel exited; prints the seconds it took
    local t0=$EPOCHREALTIME i
    kill -TERM "$ACCEL_PID" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do kill -0 "$ACCEL_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$ACCEL_PID" 2>/dev/null && echo "   WARNING: accel did not stop within 30 s of SIGTERM" >&2
    wait "$ACCEL_PID" 2>/dev/null || true
    ACCEL_PID=
    python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$t0" "$EPOCHREALTIME"
}
# accel_event_loop_raises_total of the running accel (0 when it has none:
# a build before the counter).
accel_raises() {
    local n
    n=$(nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" stats --format openmetrics 2>/dev/null |
        awk '$1 == "accel_event_loop_raises_total" { print $2 }') || true
    echo "${n:-0}"
}
jget() { python3 -c "import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print('' if v is None else v)" "$1" "$2"; }
since() { python3 -c "import sys; print('' if not sys.argv[2] else round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$1" "$2"; }

D4=$N4 D6=$N6 # routes a full announce adds to the kernel (checked by the warm-up)
perf_stop() { # PID (or nothing): ends a perf record started by phase
    [[ -n ${1:-} ]] || return 0
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
# phase ROUND MODE PHASE [meta...]: one announce or withdrawal, timed.
phase() {
    local rnd=$1 mode=$2 ph=$3 out d4 d6 cmd extra=()
    shift 3
    if [[ $ph == install ]]; then d4=$D4 d6=$D6 cmd=enable; else d4=-$D4 d6=-$D6 cmd=disable; fi
    [[ $rnd == warmup && $ph == install ]] && extra=(--stall 30)
    local perf_pid= raises0= raises=
    [[ -n ${ACCEL_PID:-} ]] && raises0=$(accel_raises)
    if [[ -n ${PERF_DIR:-} && -n ${ACCEL_PID:-} ]]; then
        perf record -q -e cpu-clock -F 999 "${PERF_ARGS[@]}" -p "$ACCEL_PID" \
            -o "$PERF_DIR/perf.$rnd.$mode.$ph.data" >"$PERF_DIR/perf.$rnd.$mode.$ph.log" 2>&1 &
        perf_pid=$!
    fi
    if ! out=$(lab_in "$NS_RTR" python3 "$BB" phase --delta4 "$d4" --delta6 "$d6" --settle "$SETTLE" --timeout "$TIMEOUT" \
        --pids "zebra=$ZPID,bgpd=$BGPD_PID,bird=$BIRD_PID,listener=$LPID,accel=${ACCEL_PID:-}" \
        --idle 1 --record "$REC" --meta "round=$rnd" --meta "mode=$mode" --meta "phase=$ph" "${extra[@]}" "$@" \
        -- birdc -s "$BIRD_DIR/bird.ctl" "$cmd" '"tbl*"'); then
        perf_stop "$perf_pid"
        echo "   $rnd $mode $ph: FAILED: $out" >&2
        echo "   kernel counts now: $(lab_in "$NS_RTR" python3 "$BB" count); sessions: $(sessions_note)" >&2
        return 1
    fi
    perf_stop "$perf_pid"
    PH_OUT=$out
    [[ -n $raises0 ]] && raises="  loop raised $(($(accel_raises) - raises0))x"
    printf '   %-7s %-8s %-8s %ss  cpu %s%s\n' "$rnd" "$mode" "$ph" "$(jget "$out" seconds | cut -c1-6)" \
        "$(python3 -c "import json,sys; c=json.loads(sys.argv[1])['cpu']; print(' '.join(f'{k}={v/1e9:.2f}s' for k, v in c.items() if v is not None))" "$out")" \
        "$raises"
}
run_mode() { # ROUND MODE
    local rnd=$1 mode=$2 lf= tf= w
    case $mode in
    listener)
        lf=$EVDIR/listener.$rnd.$mode
        listener_start "$lf"
        ;;
    accel | accel-alone)
        if [[ $mode == accel ]]; then
            lf=$EVDIR/listener.$rnd.$mode
            listener_start "$lf"
            tf=$EVDIR/trace.$rnd # written only by an accel that knows ACCEL_TRACE_ROUTES
        fi
        accel_start_wait "$tf" >"$LAB_DIR/w.json"
        w=$(cat "$LAB_DIR/w.json")
        [[ -n $(jget "$w" ready) ]] || { echo "accel did not start: $(lab_accel_log | tail -n 5)" >&2; return 1; }
        ;;
    esac
    phase "$rnd" "$mode" install --meta "listener=$lf" --meta "trace=$tf"
    phase "$rnd" "$mode" withdraw --meta "listener=$lf" --meta "trace=$tf"
    [[ $mode == accel* ]] && accel_stop >/dev/null
    listener_stop
    if [[ $mode == accel* ]]; then
        lab_accel_log | grep -i -E 'overrun|lost|resync|warn|error' | grep -v 'resync (start)' | head -n 3 | sed 's/^/   accel log: /' || true
    fi
    return 0
}

T_START=$SECONDS
echo "== warm-up (FRR alone, not counted)"
phase warmup none install
got4=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['final'][0]-d['base'][0], d['final'][1]-d['base'][1], d['status'])" "$PH_OUT")
read -r g4 g6 st <<<"$got4"
if [[ $st != ok ]]; then
    echo "   WARNING: the kernel got $g4 of $N4 IPv4 and $g6 of $N6 IPv6 routes (counts stalled); the rounds use these counts"
    D4=$g4 D6=$g6
fi
echo "   sessions: $(sessions_note); FRR: $(vtysh_ -c 'show ip route summary' 2>/dev/null | grep -E '^(bgp|Totals)' | tr -s ' \n' ' ')"
phase warmup none withdraw

# The CPUs' own stalls over the rounds (stall-probe.c), to set the lag against.
STALLS=$EVDIR/stalls
"$PROBE" "$STALLS" &
PROBE_PID=$!
for ((i = 0; i < 50; i++)); do grep -q '^# stall-probe' "$STALLS" 2>/dev/null && break; sleep 0.02; done
grep -q '^# stall-probe' "$STALLS" 2>/dev/null || { echo "bgp.sh: the stall probe did not start" >&2; exit 1; }
for ((r = 1; r <= ROUNDS; r++)); do
    echo "== round $r of $ROUNDS"
    for m in $MODES; do
        case $m in none | listener | accel | accel-alone) run_mode "$r" "$m" ;; *) echo "unknown mode $m" >&2; exit 2 ;; esac
    done
done

# ------------------------------------------------------------------ restarts
if [[ $RESTARTS -gt 0 ]]; then
    echo "== restarts with the table installed ($RESTARTS)"
    phase restart none install
    for ((n = 0; n <= RESTARTS; n++)); do
        stop_s=
        if [[ $n -gt 0 ]]; then stop_s=$(accel_stop); fi
        # Once the log says ready (and mirror live), `accel sync --check` until it exits 0.
        accel_start_wait "" -- timeout 60 nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" sync --check >"$LAB_DIR/w.json"
        w=$(cat "$LAB_DIR/w.json")
        read -r ready live check check_run tries note < <(python3 -c 'import json, sys
w, t0 = json.loads(sys.argv[1]), float(sys.argv[2])
d = lambda k: "-" if w.get(k) is None else f"{w[k] - t0:.3f}"
r = w.get("ok_run")
print(d("ready"), d("live"), d("ok"), "-" if r is None else f"{r:.3f}", w.get("ok_tries", 0),
      ("sync --check never clean: " + w["ok_last"].replace("\n", " ")) if w.get("ok") is None and w.get("ok_last") else "")' "$w" "$ACCEL_T0")
        if [[ $n -eq 0 ]]; then note="first start (no previous instance)${note:+; $note}"; fi
        python3 -c 'import json, sys
n, *v = sys.argv[1:7]
print(json.dumps(dict({k: (None if x in ("", "-") else float(x)) for k, x in zip(("ready", "live", "check", "check_run", "stop"), v)},
                      type="restart", n=int(n), tries=int(sys.argv[7]), note=sys.argv[8])))' \
            "$n" "$ready" "$live" "$check" "$check_run" "$stop_s" "$tries" "$note" >>"$REC"
        echo "   start $n: ready $ready s, mirror live $live s, sync --check clean $check s (that check took $check_run s, try $tries)${stop_s:+; the stop before it took $stop_s s}"
        echo "     log: $(lab_accel_log | grep -E 'accel running on|mirror (live|holds)' | sed 's/^.*\(accel running\|mirror\)/\1/' | head -n 3 | tr '\n' ';')"
    done
    phase restart accel withdraw
    accel_stop >/dev/null
fi
echo "   sessions at the end: $(sessions_note)"
echo "   daemon log lines since the sessions came up that say error/fail/overrun/expired/warning:" \
    "zebra $(since_start "$FRR_DIR/zebra.log" "$LOG0_ZEBRA" | grep -c -i -E 'error|fail|overrun|ENOBUFS' || true)," \
    "bgpd $(since_start "$FRR_DIR/bgpd.log" "$LOG0_BGPD" | grep -v 'v6 LL address' | grep -c -i -E 'error|fail|expired' || true)," \
    "BIRD $(since_start "$BIRD_DIR/bird.log" "$LOG0_BIRD" | grep -c -i -E '<(ERR|WARN)' || true) (LAB_KEEP=1 keeps the logs)"
echo "   total $((SECONDS - T_START)) s"

# ------------------------------------------------------------------ report
echo
echo "== Results: $FRR_V + $BIRD_V; $TABLE_DESC: $N4 IPv4 + $N6 IPv6 prefixes"
echo "   $(nproc) CPUs ($CPU_MODEL), Linux $(uname -r); rounds $ROUNDS; accel $ACCEL"
echo
stop_pid "$PROBE_PID" 2
PROBE_PID=
python3 "$BB" report --records "$REC" --stalls "$STALLS"
if [[ -n ${RECORDS:-} ]]; then cp "$REC" "$RECORDS" && echo "(raw records in $RECORDS)"; fi
