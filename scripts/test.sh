#!/usr/bin/env bash
# `make test`: two lanes at once, since the lab tests mostly wait on SSH and the
# containers while the rest mostly use the CPU.
#   lane 1: lint, mypy --strict, then every test that does not need the lab
#   lane 2: the lab lifecycle module (it brings up labs of its own, so it runs alone,
#           before the shared lab), then every test on the shared lab
# Lane 1's output is kept in a file and printed when lane 2 is done. The exit code is
# non-zero if anything in either lane failed.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PYTEST=("$BIN/pytest" -q -p no:cacheprovider --durations=15)
out=$(mktemp -d /tmp/vcops-test.XXXXXX)
trap 'rm -rf "$out"' EXIT

lane1() {
    local rc=0
    make --no-print-directory lint typecheck || rc=1
    "${PYTEST[@]}" -m "not lab" tests || rc=1
    return $rc
}

lane2() {
    local rc=0
    "${PYTEST[@]}" tests/integration/test_lab_lifecycle.py || rc=1
    "${PYTEST[@]}" -m lab tests --ignore=tests/integration/test_lab_lifecycle.py || rc=1
    return $rc
}

started=$SECONDS
lane1 >"$out/lane1.log" 2>&1 &
lane1_pid=$!
echo "== lane 2: the lab (lane 1, lint + typecheck + tests without the lab, runs beside it)"
lane2
lane2_rc=$?
wait "$lane1_pid"
lane1_rc=$?
echo "== lane 1: lint, typecheck, tests without the lab"
cat "$out/lane1.log"
echo "== make test: lane 1 exit $lane1_rc, lane 2 exit $lane2_rc, $((SECONDS - started)) s"
[ "$lane1_rc" = 0 ] && [ "$lane2_rc" = 0 ]
