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


def test_a_file_op_is_one_operation_per_path_whatever_the_other_hosts_have() -> None:
    """pyinfra names an op by its call site: hosts with different file lists must not
    share an op (the plan would then name another host's file, at random)."""
    from pyinfra.api import Config, Inventory, State
    from pyinfra.context import ctx_host, ctx_state

    from vcops.enforce import pyinfra_deploy
    from vcops.enforce.files import HostState, ManagedFile

    files = {
        "kam": ["/etc/fail2ban/jail.d/vcops.conf", "/etc/fail2ban/filter.d/vcops-kamailio.conf"],
        "ast": ["/etc/fail2ban/jail.d/vcops.conf", "/etc/fail2ban/jail.d/other.conf"],
    }
    inventory = Inventory((list(files), {}))
    state = State(inventory, Config())
    for h in inventory:
        with ctx_state.use(state), ctx_host.use(h):
            for path in files[h.name]:
                pyinfra_deploy._file_op(ManagedFile("fail2ban", path, "x\n"), HostState())
            pyinfra_deploy._packages("fail2ban", HostState())
    names = sorted(sorted(meta.names) for meta in state.op_meta.values())
    assert all(len(n) == 1 for n in names), names
    assert len(names) == 4  # three paths and one package install (same list on both)
