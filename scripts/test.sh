#!/usr/bin/env bash
# `make test`: three lanes at once, since the lab tests mostly wait on SSH and the
# containers while the rest mostly use the CPU.
#   lane 1: lint, mypy --strict, then every test that does not need the lab
#   lane 2: the default lab (instance 0): the lab lifecycle module (it brings up labs of
#           its own, so it runs alone, before the shared lab), then every test on the
#           shared lab but lane 3's
#   lane 3: a second lab (VCOPS_LAB_INSTANCE=1: its own names, subnet and lock) for the
#           modules in LANE3, chosen to take about as long as lane 2's; a new lab module
#           runs in lane 2 unless it is added here
# Lanes 1 and 3 keep their output in files, printed when lane 2 is done. The exit code is
# non-zero if anything in any lane failed.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PYTEST=("$BIN/pytest" -q -p no:cacheprovider --durations=15)
out=$(mktemp -d /tmp/vcops-test.XXXXXX)
trap 'rm -rf "$out"' EXIT

# "TOTAL IDLE" jiffies of all cores so far (/proc/stat's cpu line, without the guest
# columns, which user and nice already count); busy A B: the % of the cores busy between
# two readings. How busy the machine was tells whether a lane waits or computes.
cpu_ticks() { awk '/^cpu / { for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6; exit }' /proc/stat; }
busy() {
    [ -n "$1" ] && [ -n "$2" ] || { printf "unknown"; return; }
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1]
        if (t > 0) printf "%.0f %%", 100 * (t - (y[2] - x[2])) / t; else printf "unknown" }'
}

lane1() {
    local rc=0
    make --no-print-directory lint typecheck || rc=1
    "${PYTEST[@]}" -m "not lab" tests || rc=1
    cpu_ticks >"$out/lane1.cpu"
    return $rc
}

LANE3=(
    tests/integration/test_apply_ansible.py
    tests/integration/test_molecule.py
    tests/integration/test_workers_apply.py
    tests/integration/test_workers_window.py
    tests/integration/test_workers_devices.py
    tests/integration/test_evidence_lab.py
    tests/integration/test_window_baseline.py
    tests/integration/test_snapshot_lab.py
    tests/integration/test_scan_lab.py
    tests/integration/test_window_needrestart_lab.py
)

lane2() {
    local rc=0 module ignore=(--ignore=tests/integration/test_lab_lifecycle.py)
    for module in "${LANE3[@]}"; do ignore+=("--ignore=$module"); done
    "${PYTEST[@]}" tests/integration/test_lab_lifecycle.py || rc=1
    "${PYTEST[@]}" -m lab tests "${ignore[@]}" || rc=1
    return $rc
}

lane3() {
    local rc=0
    VCOPS_LAB_INSTANCE=1 "${PYTEST[@]}" -m lab "${LANE3[@]}" || rc=1
    echo $((SECONDS - started)) >"$out/lane3.s"
    return $rc
}

started=$SECONDS
cpu_start=$(cpu_ticks)
lane1 >"$out/lane1.log" 2>&1 &
lane1_pid=$!
lane3 >"$out/lane3.log" 2>&1 &
lane3_pid=$!
echo "== lane 2: the default lab (beside it: lane 1, lint + typecheck + tests without the" \
    "lab, and lane 3, the second lab)"
lane2
lane2_rc=$?
lane2_s=$((SECONDS - started))
wait "$lane3_pid"
lane3_rc=$?
wait "$lane1_pid"
lane1_rc=$?
echo "== lane 3: the second lab (VCOPS_LAB_INSTANCE=1)"
cat "$out/lane3.log"
echo "== lane 1: lint, typecheck, tests without the lab"
cat "$out/lane1.log"
cpu_end=$(cpu_ticks)
echo "== make test: lane 1 exit $lane1_rc, lane 2 exit $lane2_rc (done at ${lane2_s} s)," \
    "lane 3 exit $lane3_rc (done at $(cat "$out/lane3.s" 2>/dev/null || echo '?') s)," \
    "$((SECONDS - started)) s"
echo "== the machine's cores were $(busy "$cpu_start" "$cpu_end") busy during make test," \
    "$(busy "$(cat "$out/lane1.cpu" 2>/dev/null)" "$cpu_end") after lane 1 ended"
[ "$lane1_rc" = 0 ] && [ "$lane2_rc" = 0 ] && [ "$lane3_rc" = 0 ]
