"""``apply --check`` with pyinfra: the changes are pyinfra's own dry-run plan."""

from __future__ import annotations

import json
from pathlib import Path

from vcops.enforce.apply import FileChange, HostOutcome, merge_check
from vcops.enforce.pyinfra_run import CONDITIONAL, parse_plan

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pyinfra" / "dry_plan.json"
STDERR = "--> Connecting to hosts...\n    [kam-01] Connected\n    [ast-01] Connected\n"


def test_the_plan_lists_each_hosts_changes_and_marks_guarded_ones() -> None:
    payload = json.loads(FIXTURE.read_text())
    kam, ast, gone = parse_plan(payload, ["kam-01", "ast-01", "gone-01"], STDERR)
    assert kam.reached and kam.changed == [
        "ssh: /etc/ssh/sshd_config",
        "ssh: reload sshd" + CONDITIONAL,
        "fail2ban: running",
        "kernel: apply sysctls",
    ]
    assert ast.reached and ast.changed == [
        "ssh: reload sshd" + CONDITIONAL,
        "kernel: apply sysctls" + CONDITIONAL,
    ]
    assert not gone.reached and gone.changed == []


def test_the_check_takes_its_changes_from_the_plan_and_its_diffs_from_vcops() -> None:
    payload = json.loads(FIXTURE.read_text())
    plan = parse_plan(payload, ["kam-01", "ast-01", "gone-01"], STDERR)
    diff = FileChange(path="/etc/ssh/sshd_config", area="ssh", diff="+PasswordAuthentication no\n")
    local = [
        HostOutcome(
            name="kam-01", status="changed", changes=["/etc/ssh/sshd_config"], files=[diff]
        ),
        HostOutcome(name="ast-01", status="unchanged"),
        HostOutcome(name="gone-01", status="changed"),
    ]
    kam, ast, gone = merge_check(local, plan)
    assert kam.status == "changed" and kam.files == [diff]
    assert "kernel: apply sysctls" in kam.changes and "fail2ban: running" in kam.changes
    # only guarded operations: none of them can fire
    assert ast.status == "unchanged" and ast.changes == []
    assert gone.status == "unreachable"
