#!/usr/bin/env bash
# Installs what building and testing accel needs on Debian 12 (as root).
# Idempotent: does nothing when everything is already there.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have clang || need_pkgs+=(clang)
have pkg-config || need_pkgs+=(pkg-config)
have make || need_pkgs+=(make)
have gcc || need_pkgs+=(gcc)
have bpftool || need_pkgs+=(bpftool)
have ip || need_pkgs+=(iproute2)
have ethtool || need_pkgs+=(ethtool)
have ping || need_pkgs+=(iputils-ping)
have python3 || need_pkgs+=(python3)
# tests/hostile.sh runs Python as user nobody, who cannot use root's own
# interpreter (pyenv under /root): Debian's must be there.
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
have sysctl || need_pkgs+=(procps)
have nsenter || need_pkgs+=(util-linux)
# tests/e2e.sh checks that accel refuses to bypass nftables chains.
[ -x /usr/sbin/nft ] || need_pkgs+=(nftables)
# promtool (in Debian's prometheus package) lints accel's metrics in e2e.
[ -x /usr/bin/promtool ] || need_pkgs+=(prometheus)
[ -f /usr/include/libelf.h ] || need_pkgs+=(libelf-dev)
[ -f /usr/include/zlib.h ] || need_pkgs+=(zlib1g-dev)
# Real routing daemons for tests/daemons.sh (started by hand in namespaces).
[ -x /usr/lib/frr/bgpd ] || need_pkgs+=(frr)
have bird || need_pkgs+=(bird2)

if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "install-deps: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # frr and bird2 ship services that the tests never use: keep dpkg from
    # starting them (it would fail without systemd, or leave daemons running
    # outside the test namespaces). A policy-rc.d that already exists stays.
    added_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
    fi
    rc=0
    apt-get install -y -qq "${need_pkgs[@]}" >/dev/null || rc=$?
    [ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || { echo "install-deps: apt-get install ${need_pkgs[*]} failed" >&2; exit "$rc"; }
fi

if ! have cargo; then
    # Debian's own Rust is older than accel's dependencies need (1.85).
    echo "install-deps: cargo not found; install Rust >= 1.85 (rustup) and re-run" >&2
    exit 1
fi
