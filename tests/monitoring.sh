#!/usr/bin/env bash
# Monitoring end to end: a real Prometheus server (Debian's package, run as
# user nobody in the router's namespace) scrapes `accel run --metrics`; its
# HTTP API must show the packets sent; an induced exception (a blackhole
# flood, a frozen daemon) turns `accel health` non-zero with the matching
# metric and log line, and clears; bad --metrics/--alert input is refused
# with nothing attached; the shipped alert rules pass `promtool test rules`.
#
#   sudo bash tests/monitoring.sh     # ACCEL=path/to/accel for another binary
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
if [[ $(id -u) -ne 0 ]]; then
    echo "tests/monitoring.sh must run as root (namespaces, XDP)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
# shellcheck source=../scripts/lab.sh
source "$HERE/../scripts/lab.sh"
lab_private_mountns "$SELF" "$@"
# shellcheck source=tap.sh
source "$HERE/tap.sh"

PORT=9469
PROM_PID=
finish() {
    local rc=$?
    [[ -n $PROM_PID ]] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    if [[ $FAILED -gt 0 && -f ${LAB_DIR:-/nonexistent}/accel.log ]]; then
        note "accel log (last 25 lines):"
        tail -n 25 "$LAB_DIR/accel.log" | sed 's/^/#   /'
    fi
    [[ -n ${PROM_DIR:-} ]] && rm -rf "$PROM_DIR"
    lab_down
    return $rc
}
lab_init || { echo "0 passed, 1 failed"; exit 1; }
trap finish EXIT
trap "exit 130" INT TERM

# ---------------------------------------------------------------- a. rules
rules=$HERE/../contrib/prometheus
out=$(cd "$rules" && promtool check rules accel.rules.yml 2>&1 && promtool test rules accel.rules.test.yml 2>&1)
check "a. promtool check/test rules: the shipped alert rules fire as documented" \
    "$(tail -n 1 <<<"$out" | tr -s ' ')" eval '[[ $? -eq 0 ]] && grep -q SUCCESS <<<"$out"' 
out=$(python3 -m json.tool "$HERE/../contrib/grafana/accel-dashboard.json" >/dev/null 2>&1 && echo valid)
check "a. the Grafana dashboard is valid JSON" "$out" eval '[[ $out == valid ]]'

lab_up || { not_ok "lab setup" "building the namespaces failed"; echo "$PASSED passed, $FAILED failed"; exit 1; }
xdp_ifaces() { ip -n "$NS_RTR" -o link show 2>/dev/null | grep -c ' xdp'; }
health() { lab_accel health "$@"; }
prom() { lab_in "$NS_RTR" python3 "$LAB_TOOL" prom "$1" 2>/dev/null || echo error; }

# ---------------------------------------------------------------- b. bad input
refused() { # NAME EXPECTED-TEXT ARGS...: accel run refuses, one line, nothing attached
    local name=$1 want=$2 out rc
    shift 2
    out=$(timeout 20 nsenter --net="/run/netns/$NS_RTR" -- "$ACCEL" run -i "$LAB_R_SRC" "$@" 2>&1)
    rc=$?
    check "b. $name: refused (exit $rc), says \"$want\", nothing attached" "$(head -n 1 <<<"$out")" \
        eval '[[ $rc -ne 0 && $rc -ne 124 && $(head -n 1 <<<"$out") == *"$want"* && $(xdp_ifaces) -eq 0 ]]'
}
refused "--metrics 127.0.0.1" "invalid socket address" --metrics 127.0.0.1
refused "--metrics localhost:x" "invalid socket address" --metrics localhost:x
nsenter --net="/run/netns/$NS_RTR" -- python3 -m http.server --bind 127.0.0.1 "$PORT" >/dev/null 2>&1 &
squatter=$!
# Until the squatter listens (Python can take seconds to start on a busy
# machine; accel must find the port taken, not take it first).
for _ in $(seq 100); do
    [[ -n $(nsenter --net="/run/netns/$NS_RTR" -- ss -Hltn "sport = :$PORT") ]] && break
    sleep 0.1
done
refused "--metrics on a port in use" "cannot listen there" --metrics "127.0.0.1:$PORT"
kill "$squatter"; wait "$squatter" 2>/dev/null
refused "--alert capacity-share=1.5" "out of range" --alert capacity-share=1.5
refused "--alert colour=red" "unknown alert threshold" --alert colour=red
refused "--top-blackholes 0" "0 is not in 1..=1000" --top-blackholes 0

# ---------------------------------------------------------------- c. scrape
ip -n "$NS_RTR" route add blackhole 192.0.2.0/24
lab_accel_start --metrics "127.0.0.1:$PORT" --check-every 5 --alert blackhole-pps=200
if ! lab_accel_wait 30; then
    not_ok "accel starts with --metrics" "$(lab_accel_log | tail -n 3 | tr '\n' ' ')"
    echo "$PASSED passed, $FAILED failed"; exit 1
fi
PROM_DIR=$(mktemp -d /tmp/accel-prom.XXXXXX)
mkdir "$PROM_DIR/data"
printf 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: accel\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' \
    "$PORT" >"$PROM_DIR/prometheus.yml"
chmod 755 "$PROM_DIR" && chown -R nobody "$PROM_DIR/data" && chmod 644 "$PROM_DIR/prometheus.yml"
nsenter --net="/run/netns/$NS_RTR" -- setpriv --reuid=65534 --regid=65534 --clear-groups prometheus \
    --config.file "$PROM_DIR/prometheus.yml" --storage.tsdb.path "$PROM_DIR/data" \
    --web.listen-address 127.0.0.1:9090 >"$PROM_DIR/prometheus.log" 2>&1 &
PROM_PID=$!
for ((i = 0; i < 60; i++)); do
    [[ $(prom 'up{job="accel"}') == 1 ]] && break
    sleep 0.5
done
check "c. Prometheus (as nobody) scrapes accel: up{job=\"accel\"} is 1" "$(prom 'up{job="accel"}')" \
    eval '[[ $(prom "up{job=\"accel\"}") == 1 ]]'

fwd_q='sum(accel_packets_total{interface="r-src",outcome="forwarded"})'
# Neighbours resolved first: the first packet to a new one is the kernel's.
lab_in "$NS_SRC" ping -q -c 2 -i 0.2 -W 2 "$LAB_SVC4" >/dev/null 2>&1
sleep 1.5
nh_q="accel_nexthop_packets_total{gateway=\"$LAB_DST1_GW4\",interface=\"r-dst1\"}"
before=$(prom "$fwd_q")
nh_before=$(prom "$nh_q")
[[ $before == none ]] && before=0
[[ $nh_before == none ]] && nh_before=0
N=2000
lab_send "$NS_SRC" "$LAB_SVC4" "$N" 10000 m4 >/dev/null
sleep 3
after=$(prom "$fwd_q")
nh_after=$(prom "$nh_q")
got=$(lab_received m4 dst1)
check "c. Prometheus saw r-src's forwarded packets rise by what was sent ($N)" \
    "before $before, after $after, dst1 received $got" \
    eval '[[ $before != error && $after != error && $((after - before)) -ge $N && $got -eq $N ]]'
check "c. ... and next hop $LAB_DST1_GW4 on r-dst1 forwarded them" \
    "before $nh_before, after $nh_after" \
    eval '[[ $nh_after != error && $nh_after != none && $((nh_after - nh_before)) -ge $N ]]'
for q in 'accel_mirror_routes{family="ipv4"}' 'accel_lease_live' 'accel_netlink_events_total' \
    'accel_build_info{mode="mirror",commit!=""}' 'accel_bytes_total{interface="r-src",outcome="forwarded"}' \
    'accel_change_latency_seconds_count' 'accel_resyncs_total{cause="start"}' \
    'accel_interface_attached{interface="r-src"}'; do
    v=$(prom "$q")
    check "c. Prometheus has $q > 0" "$v" eval '[[ $v != none && $v != error && $v != 0 ]]'
done
# Zero on a quiet router; present, so that the dashboard's panel has a series.
v=$(prom 'accel_event_loop_raises_total')
check "c. Prometheus has accel_event_loop_raises_total" "$v" eval '[[ $v =~ ^[0-9]+$ ]]'
sleep 4
v=$(prom 'accel_checks_total')
d=$(prom 'accel_drift_differences')
check "c. the periodic check ran (--check-every 5) and found no drift" "checks $v, differences $d" \
    eval '[[ $v != none && $v != error && $v -ge 1 && $d == 0 ]]'

url="http://127.0.0.1:$PORT/metrics"
text=$(lab_in "$NS_RTR" python3 "$LAB_TOOL" http "$url" 2>"$LAB_DIR/h1")
lint=$(promtool check metrics <<<"$text" 2>&1)
check "c. GET /metrics without Accept: Prometheus text 0.0.4, promtool finds nothing wrong" \
    "$(cat "$LAB_DIR/h1"); ${lint:0:200}" \
    eval '[[ $(cat "$LAB_DIR/h1") == "200 text/plain; version=0.0.4"* && -z $lint && $text == *accel_packets_total* ]]'
note "a scrape (excerpt):"
grep -E '^accel_(packets_total\{interface="r-src",outcome="forwarded"|bytes_total\{interface="r-src"|nexthop_packets_total|mirror_routes|lease_live|resyncs_total\{cause="start"|change_latency_seconds_(count|sum)|alert\{condition="(drift|capacity)"|build_info)' <<<"$text" | sed 's/^/#   /'
om=$(lab_in "$NS_RTR" python3 "$LAB_TOOL" http --accept 'application/openmetrics-text;version=1.0.0' "$url" 2>"$LAB_DIR/h2")
check "c. GET /metrics asking for OpenMetrics gets it, ending in # EOF" "$(cat "$LAB_DIR/h2")" \
    eval '[[ $(cat "$LAB_DIR/h2") == "200 application/openmetrics-text"* && $(tail -n 1 <<<"$om") == "# EOF" ]]'
lab_in "$NS_RTR" python3 "$LAB_TOOL" http "http://127.0.0.1:$PORT/other" >/dev/null 2>"$LAB_DIR/h3"
check "c. any other path is 404" "$(cat "$LAB_DIR/h3")" eval '[[ $(cat "$LAB_DIR/h3") == "404 "* ]]'
st=$(lab_accel stats --format openmetrics 2>&1)
check "c. accel stats --format openmetrics has the daemon's families too" \
    "$(grep -m1 '^accel_netlink_events_total' <<<"$st")" \
    eval 'grep -q "^accel_netlink_events_total [1-9]" <<<"$st" && grep -q "^accel_resyncs_total{cause=\"start\"} 1" <<<"$st"'

# ---------------------------------------------------------------- d. alerts
out=$(health); rc=$?
check "d. accel health: exit 0 and OK while all is well" "exit $rc: $out" eval '[[ $rc -eq 0 && $out == "OK: "* ]]'
js=$(health --json)
check "d. accel health --json says the same" "$js" eval '[[ $(python3 "$LAB_TOOL" json state <<<"$js") == OK ]]'

lab_send_bg "$LAB_DIR/flood.out" "$NS_SRC" 192.0.2.1 6000 1000 bh
for ((i = 0; i < 40; i++)); do
    out=$(health); rc=$?
    [[ $rc -ne 0 ]] && break
    sleep 0.25
done
check "d. a blackhole flood (1000 pps, threshold 200): accel health exits 1, WARNING blackhole_drops" \
    "exit $rc: $out" eval '[[ $rc -eq 1 && $out == "WARNING: blackhole_drops: "* ]]'
top=$(lab_accel top --once --interval 1 2>&1)
check "d. accel top --once shows the flood: the blackhole prefix, r-src dropping, the alert" \
    "$(grep -m1 '^r-src' <<<"$top"); $(grep -m1 '^192.0.2.0/24' <<<"$top")" \
    eval 'grep -q "^192.0.2.0/24 " <<<"$top" && grep -q "^r-src .* blackhole [0-9]" <<<"$top" && grep -q "^! blackhole_drops (warning)" <<<"$top"'
printf '%s\n' "$top" >"$LAB_DIR/top.txt"
note "accel top --once during the flood:"
sed 's/^/#   /' "$LAB_DIR/top.txt"
out=$(lab_accel top </dev/null 2>&1); rc=$?
check "d. accel top without a terminal: one line, exit 1" "exit $rc: $out" \
    eval '[[ $rc -eq 1 && $out == *"needs a terminal (or --once)"* ]]'
sleep 1
v=$(prom 'accel_alert{condition="blackhole_drops"}')
check "d. ... Prometheus sees accel_alert{condition=\"blackhole_drops\"} = 1" "$v" eval '[[ $v == 1 ]]'
check "d. ... and the log says it started, with the figures" "$(lab_accel_log | grep -m1 'alert blackhole_drops started')" \
    eval 'lab_accel_log | grep -q "alert blackhole_drops started (warning): [0-9]* packets/s dropped by blackhole routes"'
wait "$LAB_SEND_PID" 2>/dev/null
for ((i = 0; i < 120; i++)); do
    out=$(health); rc=$?
    [[ $rc -eq 0 ]] && break
    sleep 0.5
done
check "d. once the flood stops the alert ends: health OK again, one end line in the log" "exit $rc: $out" \
    eval '[[ $rc -eq 0 && $(lab_accel_log | grep -c "alert blackhole_drops ended") -eq 1 && $(lab_accel_log | grep -c "alert blackhole_drops started") -eq 1 ]]'

kill -STOP "$ACCEL_PID"
out=$(health); rc=$?
check "d. a frozen daemon (SIGSTOP): accel health exits 2, CRITICAL, says it did not answer" "exit $rc: $out" \
    eval '[[ $rc -eq 2 && $out == "CRITICAL: "*"did not answer within 5s"* ]]'
kill -CONT "$ACCEL_PID"
sleep 1.5
out=$(health); rc=$?
check "d. ... and OK again once it runs" "exit $rc: $out" eval '[[ $rc -eq 0 ]]'

# Someone detaches one of accel's XDP links (BPF_LINK_DETACH; this
# bpftool does not say which interface a link is on, so the first one): the
# daemon asks the kernel off its event loop, and health names that
# interface a tick or two later.
link=$(bpftool -j link show | python3 -c '
import json, sys
progs = {int(p) for p in sys.argv[1:]}
print(next((l["id"] for l in json.load(sys.stdin) if l.get("type") == "xdp" and l["prog_id"] in progs), ""))' \
    $(ip -n "$NS_RTR" -j link show | python3 -c '
import json, sys
print(" ".join(str(l["xdp"]["prog"]["id"]) for l in json.load(sys.stdin) if "prog" in l.get("xdp", {})))'))
[[ -n $link ]] && bpftool link detach id "$link"
gone=$(ip -n "$NS_RTR" -o link show | grep -v ' xdp' | grep -oE "$LAB_R_SRC|$LAB_R_DST1|$LAB_R_DST2" | head -n1)
for ((i = 0; i < 20; i++)); do
    out=$(health); rc=$?
    [[ $rc -eq 2 ]] && break
    sleep 0.25
done
check "d. one of accel's links detached by someone else (${gone:-none}): health exits 2, CRITICAL detached, names it, within 5 s" \
    "link ${link:-none}; exit $rc after $((i * 250)) ms: $out" \
    eval '[[ -n $gone && $rc -eq 2 && $out == "CRITICAL: detached: "*"attached to $gone"* ]]'

lab_accel_stop
check "d. accel stops cleanly" "" eval '[[ $(xdp_ifaces) -eq 0 ]]'
out=$(health); rc=$?
check "d. accel health with no accel running: exit 2, CRITICAL" "exit $rc: $out" \
    eval '[[ $rc -eq 2 && $out == "CRITICAL: accel is not running"* ]]'

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
