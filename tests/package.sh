#!/usr/bin/env bash
# The Debian package, installed and removed on this machine: builds it with
# scripts/package.sh (cargo-deb, installed if missing), installs it with
# dpkg, checks the binary names its commit, the man pages and completions
# are there, the unit is installed but not enabled. Then, with accel
# running from the package on a veth: an upgrade of the package hands it
# over to the new binary (the postinst's `accel upgrade`) unless
# ACCEL_UPGRADE_ON_INSTALL=no, a pid file naming another program is
# ignored, and the removal stops it. Last, the purge leaves nothing.
# Skipped when an accel package is already installed or an accel runs
# with the default directories (a machine in use).
#
#   sudo bash tests/package.sh
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tap.sh
source "$HERE/tap.sh"
cd "$HERE/.."
if [[ $(id -u) -ne 0 ]]; then
    echo "tests/package.sh installs a package: run as root" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
if dpkg -s accel >/dev/null 2>&1; then
    note "an accel package is installed already: not touching it"
    echo "0 passed, 0 failed"
    exit 0
fi
if ! command -v cargo-deb >/dev/null; then
    note "installing cargo-deb (cargo install cargo-deb --locked)"
    cargo install -q cargo-deb --locked || { not_ok "cargo-deb" "cargo install failed"; echo "$PASSED passed, $FAILED failed"; exit 1; }
fi
if [[ -e /run/accel/accel.pid || -n $(ls -A /sys/fs/bpf/accel 2>/dev/null) ]]; then
    note "an accel runs with the default directories: not touching it"
    echo "0 passed, 0 failed"
    exit 0
fi
TMPDIR_PKG=$(mktemp -d)
ARCH=$(dpkg --print-architecture)
rm -f target/debian/accel_*.deb
out=$(scripts/package.sh 2>&1); rc=$?
deb=$(ls target/debian/accel_*-1_"$ARCH".deb 2>/dev/null | head -n 1)
check "scripts/package.sh builds a .deb" "exit $rc: ${deb:-$(tail -n 3 <<<"$out" | tr '\n' ' ')}" eval '[[ $rc -eq 0 && -n $deb ]]'
[[ -n $deb ]] || { echo "$PASSED passed, $FAILED failed"; exit 1; }
contents=$(dpkg-deb -c "$deb")
for f in ./usr/sbin/accel ./etc/default/accel ./usr/lib/systemd/system/accel.service \
    ./usr/share/man/man8/accel.8.gz ./usr/share/man/man8/accel-run.8.gz ./usr/share/man/man8/accel-health.8.gz \
    ./usr/share/bash-completion/completions/accel ./usr/share/accel/prometheus/accel.rules.yml \
    ./usr/share/accel/grafana/accel-dashboard.json; do
    check "the package holds $f" "" eval 'grep -q " $f\$" <<<"$contents"'
done

out=$(dpkg -i "$deb" 2>&1); rc=$?
check "dpkg -i installs it" "exit $rc${out:+: $(tail -n 2 <<<"$out" | tr '\n' ' ')}" eval '[[ $rc -eq 0 ]]'
commit=$(git rev-parse --short=12 HEAD)
v=$(/usr/sbin/accel --version 2>&1)
check "accel --version names the commit it was built from ($commit)" "$v" eval '[[ $v == *"($commit"* ]]'
m=$(MANPAGER=cat man accel-run 2>/dev/null | tr -s ' ' | head -c 100000)
check "man accel-run documents --metrics" "$(man -w accel-run 2>&1)" eval 'grep -q -- "--metrics" <<<"$m"'
check "man accel works" "$(man -w accel 2>&1)" eval 'MANPAGER=cat man accel 2>/dev/null | grep -q "accel-health"'
unit=$(grep ExecStart= /usr/lib/systemd/system/accel.service)
check "the unit runs /usr/sbin/accel and is not enabled" "$unit" \
    eval '[[ $unit == *"/usr/sbin/accel run"* && ! -e /etc/systemd/system/multi-user.target.wants/accel.service ]]'


# --- A running accel across an upgrade of the package and its removal.
# It runs as installed (default run and pin directories) on a veth in a
# namespace of its own, started as an operator would, with a stand-in for
# systemd's notification socket that records who says what.
NS=accel-pkg
cleanup() {
    [[ -n ${SLEEPER:-} ]] && kill "$SLEEPER" 2>/dev/null
    [[ -n ${ACCEL_PID:-} ]] && kill "$ACCEL_PID" 2>/dev/null
    for pid in $(pgrep -x accel); do # successors included
        [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == /usr/sbin/accel* ]] && kill "$pid"
    done
    [[ -n ${NOTIFY_PID:-} ]] && kill "$NOTIFY_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    dpkg -s accel >/dev/null 2>&1 && dpkg -P accel >/dev/null 2>&1
    rm -rf "$TMPDIR_PKG"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add pk0 type veth peer name pk1
ip -n "$NS" link set pk0 up
ip -n "$NS" link set pk1 up
ip -n "$NS" addr add 192.0.2.1/24 dev pk0
xdp_on_pk0() { ip -n "$NS" -d link show pk0 | grep -q "prog/xdp"; }
pid_file() { cat /run/accel/accel.pid 2>/dev/null; }
exited() { [[ ! -e /proc/$1 || $(sed -n 's/^State:\s*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null) == Z ]]; }
plant_sleeper() { # a pid file naming another program (a stale one, its pid reused)
    install -d -m 0700 /run/accel
    sleep 300 &
    SLEEPER=$!
    echo "$SLEEPER" >/run/accel/accel.pid
}

# systemd's side of Type=notify, as far as accel is concerned: each
# datagram with its sender's pid (SCM_CREDENTIALS), one line each.
NOTIFY=$TMPDIR_PKG/notify
python3 - "$NOTIFY" "$TMPDIR_PKG/notified" <<'PY' &
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next(struct.unpack("iII", d)[0] for l, t, d in anc if t == socket.SCM_CREDENTIALS)
        out.write(f"{pid} {msg.decode().strip().replace(chr(10), ' ')}\n")
PY
NOTIFY_PID=$!

plant_sleeper
out=$(dpkg -i "$deb" 2>&1); rc=$?
check "a reinstall with a pid file naming another program: that program is left alone" \
    "exit $rc: $(tr '\n' ' ' <<<"$out" | tail -c 300)" \
    eval '[[ $rc -eq 0 && $out != *upgrading* ]] && ! exited "$SLEEPER"'
kill "$SLEEPER"; SLEEPER=; rm -f /run/accel/accel.pid

NOTIFY_SOCKET=$NOTIFY nsenter --net="/run/netns/$NS" -- /usr/sbin/accel run -i pk0 >"$TMPDIR_PKG/accel.log" 2>&1 &
ACCEL_PID=$!
for _ in $(seq 100); do
    /usr/sbin/accel health >/dev/null 2>&1
    [[ $? -lt 2 ]] && break
    sleep 0.1
done
check "accel runs from the package on a veth, and says READY=1" \
    "$(tail -n 1 "$TMPDIR_PKG/notified" 2>/dev/null); $(tail -n 2 "$TMPDIR_PKG/accel.log" | tr '\n' ' ')" \
    eval '[[ $(pid_file) == "$ACCEL_PID" ]] && xdp_on_pk0 && grep -qx "$ACCEL_PID READY=1" "$TMPDIR_PKG/notified"'

out=$(dpkg-reconfigure accel 2>&1); rc=$?
check "dpkg-reconfigure replaces no binary: the running accel is left as it is" \
    "exit $rc, pid $ACCEL_PID -> $(pid_file): $(tr '\n' ' ' <<<"$out" | tail -c 200)" \
    eval '[[ $rc -eq 0 && $(pid_file) == "$ACCEL_PID" && $out != *upgrading* ]]'

# An upgrade: the same binary in a package of a later revision.
out=$(scripts/package.sh --deb-revision 2 2>&1); rc=$?
deb2=$(ls target/debian/accel_*-2_"$ARCH".deb 2>/dev/null | head -n 1)
check "scripts/package.sh --deb-revision 2 builds the upgrade" "exit $rc: ${deb2:-$(tail -n 3 <<<"$out" | tr '\n' ' ')}" \
    eval '[[ $rc -eq 0 && -n $deb2 ]]'
out=$(dpkg -i "$deb2" 2>&1); rc=$?
new=$(pid_file)
check "an upgrade of the package hands the running accel over to the new binary (accel upgrade)" \
    "exit $rc, pid $ACCEL_PID -> ${new:-none} ($(readlink "/proc/$new/exe" 2>/dev/null)): $(tr '\n' ' ' <<<"$out" | tail -c 300)" \
    eval '[[ $rc -eq 0 && $out == *"upgraded in place"* && -n $new && $new != "$ACCEL_PID" && $(readlink "/proc/$new/exe") == /usr/sbin/accel ]] && exited "$ACCEL_PID" && xdp_on_pk0'
wait "$ACCEL_PID" 2>/dev/null; orc=$?
check "the previous instance exited 0, having handed over" "exit $orc" eval '[[ $orc -eq 0 ]]'
# Before it exits, the old instance names its successor the service's main
# process; the successor says so too, with READY=1, once it forwards.
check "systemd is told the successor is the main process, by the old instance before it exits" \
    "$(tr '\n' ';' <"$TMPDIR_PKG/notified")" \
    eval 'grep -qx "$ACCEL_PID MAINPID=$new" "$TMPDIR_PKG/notified" && grep -qx "$new MAINPID=$new READY=1" "$TMPDIR_PKG/notified"'
ACCEL_PID=$new

cp /etc/default/accel "$TMPDIR_PKG/default"
echo 'ACCEL_UPGRADE_ON_INSTALL="no"  # the operator upgrades' >>/etc/default/accel
out=$(dpkg -i "$deb2" 2>&1); rc=$?
check "with ACCEL_UPGRADE_ON_INSTALL=no, a reinstall leaves the running accel as it is" \
    "exit $rc, pid $ACCEL_PID -> $(pid_file): $(tr '\n' ' ' <<<"$out" | tail -c 300)" \
    eval '[[ $rc -eq 0 && $(pid_file) == "$ACCEL_PID" && $out == *ACCEL_UPGRADE_ON_INSTALL=no* ]]'
cp "$TMPDIR_PKG/default" /etc/default/accel

out=$(apt-get remove -y accel 2>&1); rc=$?
check "apt-get remove accel" "exit $rc" eval '[[ $rc -eq 0 && ! -e /usr/sbin/accel && ! -e /usr/share/man/man8/accel.8.gz && -e /etc/default/accel ]]'
check "the removal stops the running accel: nothing left attached, the kernel forwards alone" \
    "$(tr '\n' ' ' <<<"$out" | tail -c 300)" \
    eval 'exited "$ACCEL_PID" && ! xdp_on_pk0 && [[ ! -e /run/accel/accel.pid ]]'

# The removal stops only an accel: reinstalled, a pid file naming another
# program, removed again.
dpkg -i "$deb2" >/dev/null 2>&1
plant_sleeper
out=$(apt-get remove -y accel 2>&1); rc=$?
check "a removal with a pid file naming another program: that program is left alone" \
    "exit $rc: $(tr '\n' ' ' <<<"$out" | tail -c 200)" \
    eval '[[ $rc -eq 0 && $out != *stopping* ]] && ! exited "$SLEEPER"'
kill "$SLEEPER"; SLEEPER=; rm -f /run/accel/accel.pid

out=$(dpkg -P accel 2>&1); rc=$?
check "dpkg -P accel purges the settings file, nothing left" "exit $rc" \
    eval '[[ $rc -eq 0 && ! -e /etc/default/accel && ! -e /usr/lib/systemd/system/accel.service && ! -e /run/accel && ! -e /sys/fs/bpf/accel ]] && ! dpkg -s accel >/dev/null 2>&1'
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
