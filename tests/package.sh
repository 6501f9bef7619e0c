#!/usr/bin/env bash
# The Debian package, installed and removed on this machine: builds it with
# scripts/package.sh (cargo-deb, installed if missing), installs it with
# dpkg, checks the binary names its commit, the man pages and completions
# are there, the unit is installed but not enabled, then removes and purges
# it and checks nothing is left. Skipped when an accel package is already
# installed (a machine in use).
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
out=$(scripts/package.sh 2>&1)
deb=$(ls -t target/debian/accel_*.deb 2>/dev/null | head -n 1)
check "scripts/package.sh builds a .deb" "${deb:-$(tail -n 3 <<<"$out" | tr '\n' ' ')}" eval '[[ -n $deb ]]'
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

out=$(apt-get remove -y accel 2>&1); rc=$?
check "apt-get remove accel" "exit $rc" eval '[[ $rc -eq 0 && ! -e /usr/sbin/accel && ! -e /usr/share/man/man8/accel.8.gz && -e /etc/default/accel ]]'
out=$(dpkg -P accel 2>&1); rc=$?
check "dpkg -P accel purges the settings file, nothing left" "exit $rc" \
    eval '[[ $rc -eq 0 && ! -e /etc/default/accel && ! -e /usr/lib/systemd/system/accel.service ]] && ! dpkg -s accel >/dev/null 2>&1'
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
