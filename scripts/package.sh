#!/usr/bin/env bash
# Builds the Debian package of accel into target/debian/ (cargo-deb):
# the binary in /usr/sbin, the systemd unit (installed disabled), a
# settings example in /etc/default/accel, the Prometheus rules and Grafana
# dashboard under /usr/share/accel, a man page per command and shell
# completions generated from the CLI definition (accel-gen-docs).
#
#   scripts/package.sh          # needs cargo-deb (cargo install cargo-deb)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || { echo "package.sh: cargo-deb is missing (cargo install cargo-deb --locked)" >&2; exit 1; }
cargo build --release --locked
out=target/package
rm -rf "$out"
mkdir -p "$out/systemd"
target/release/accel-gen-docs "$out"
gzip -9n "$out"/man/*.8
# The packaged binary lives in /usr/sbin (contrib/accel.service names the
# /usr/local/sbin of a hand install).
sed 's|/usr/local/sbin/accel|/usr/sbin/accel|' contrib/accel.service >"$out/systemd/accel.service"
cargo deb --no-build --no-strip -p accel "$@"
