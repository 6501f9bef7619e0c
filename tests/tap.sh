# shellcheck shell=bash
# The reporting of the shell test suites (e2e, hostile, daemons): a line
# `ok - NAME (DETAILS)` or `not ok - NAME: DETAILS` per check, `# ...`
# comments, and the PASSED / FAILED counts each suite sums up at its end.
# Sourced, not run.

PASSED=0
FAILED=0
ok() {
    echo "ok - $1${2:+ ($2)}"
    PASSED=$((PASSED + 1))
}
not_ok() {
    echo "not ok - $1: $2"
    FAILED=$((FAILED + 1))
}
# check NAME DETAILS COMMAND...: ok if COMMAND succeeds.
check() {
    local name=$1 details=$2
    shift 2
    if "$@"; then ok "$name" "$details"; else not_ok "$name" "$details"; fi
}
note() { echo "# $*"; }
