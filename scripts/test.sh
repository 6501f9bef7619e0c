#!/usr/bin/env bash
# The whole test suite: unit tests (no root needed), golden-packet tests of
# the XDP program through BPF_PROG_TEST_RUN, a bounded fuzz pass (about a
# minute and a half), and the end-to-end tests in network namespaces. Run
# as root on Linux >= 6.2.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: the golden and end-to-end tiers load XDP programs and create namespaces: run as root" >&2
    exit 1
fi
scripts/install-deps.sh
cargo build --release --locked
echo "== unit and golden-packet tests"
cargo test --release --locked
echo "== the benchmark scripts' own analysis (scripts/bench/bgpbench.py selftest)"
python3 scripts/bench/bgpbench.py selftest >/dev/null
echo "== fuzz pass, bounded (docs/fuzzing.md: a long run)"
ACCEL_FUZZ_SECS=${ACCEL_FUZZ_SECS:-45} cargo test --release --locked --test fuzz_datapath -- --nocapture
PROPTEST_CASES=${PROPTEST_CASES:-50000} cargo test --release --locked --lib props
ACCEL="$PWD/target/release/accel" bash tests/fuzz_lab.sh
echo "== end-to-end test in network namespaces"
ACCEL="$PWD/target/release/accel" bash tests/e2e.sh
echo "== the TC datapath: bridge, VXLAN, macvlan, XDP and TC together"
ACCEL="$PWD/target/release/accel" bash tests/tc.sh
echo "== hostile cases: frozen daemon, lost events, planted paths, least privilege"
ACCEL="$PWD/target/release/accel" bash tests/hostile.sh
echo "== protection: spoofed sources dropped in XDP where the kernel drops them"
ACCEL="$PWD/target/release/accel" bash tests/protection.sh
echo "== monitoring: a real Prometheus scrapes accel; alerts, accel health, the shipped rules"
ACCEL="$PWD/target/release/accel" bash tests/monitoring.sh
echo "== the Debian package: build, install, remove"
bash tests/package.sh
echo "== end-to-end test beside real FRR and BIRD (BGP, ECMP, nexthop objects)"
ACCEL="$PWD/target/release/accel" bash tests/daemons.sh
