"""A stock lab host managed as the unprivileged ``vcops`` user with sudo, as a real fleet
would be: the scan finds drift (root login still allowed), the pyinfra apply fixes it
(PermitRootLogin no, the sudoers drop-in validated with visudo), root's own SSH login is
then refused, and scan, snapshot and a second apply with the other engine still work
through sudo; Kamailio still answers SIP OPTIONS. The host is reset to stock afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.apply_helpers import ssh_as
from tests.integration.conftest import reset_lab_hosts
from vcops.inventory import Inventory
from vcops.lab.probe import sip_options

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
BIN = Path(sys.executable).parent
HOST = "lab-kamailio-01"


@pytest.fixture(scope="module")
def fleet(lab: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the lab inventory that logs in as vcops (become defaults to sudo)."""
    root = tmp_path_factory.mktemp("sudo-fleet") / "inventory"
    shutil.copytree(lab.root, root)
    doc = yaml.safe_load((root / "lab.yml").read_text())
    doc["settings"]["ssh"]["user"] = "vcops"  # the lab host's own login (lab up made it)
    for server in doc["servers"]:
        server.pop("user", None)  # the lab pins root per host
    (root / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        yield root
    finally:
        reset_lab_hosts([HOST])


def vcops(root: Path, *args: str) -> tuple[int, dict[str, object], str]:
    state = root.parent / "state"
    proc = subprocess.run(
        [str(BIN / "vcops"), "-i", str(root), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "VCOPS_CONFIG": "", "VCOPS_STATE_DIR": str(state),
             "VCOPS_DATABASE_URL": f"sqlite:///{state / 'vcops.db'}"},
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}, proc.stderr


def address(root: Path) -> str:
    servers = yaml.safe_load((root / "lab.yml").read_text())["servers"]
    return str(next(s for s in servers if s["name"] == HOST)["address"])


def ssh(root: Path, user: str, command: str) -> subprocess.CompletedProcess[str]:
    return ssh_as(root, address(root), user, command)


def _results(scan: dict[str, object]) -> dict[str, dict[str, object]]:
    [outcome] = scan["outcomes"]  # type: ignore[misc]
    assert outcome["status"] == "scanned", outcome
    return {r["control_id"]: r for r in outcome["results"]}


def test_a_stock_host_managed_through_sudo_is_hardened_and_refuses_root(fleet: Path) -> None:
    code, scan, err = vcops(fleet, "scan", "--limit", HOST)
    assert code == 1, err  # drift, found through sudo (sshd -T, nft, shadow modes need root)
    before = _results(scan)
    assert before["VC-SSH-002"]["status"] == "fail"  # root login allowed; vcops needs none
    assert before["VC-SSH-002"]["expected"] == "permitrootlogin no"
    assert before["VC-FILE-001"]["status"] != "unknown"  # /etc/shadow read as root

    code, report, err = vcops(fleet, "apply", "--engine", "pyinfra", "--limit", HOST)
    assert code == 0, (report, err)
    [host] = report["hosts"]  # type: ignore[misc]
    assert host["status"] == "changed", host
    drop_in = ssh(
        fleet, "vcops", "sudo -n cat /etc/sudoers.d/vcops; sudo -n stat -c %a /etc/sudoers.d/vcops"
    )
    assert "vcops ALL=(root) NOPASSWD: ALL" in drop_in.stdout and "440" in drop_in.stdout

    refused = ssh(fleet, "root", "true")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
    assert ssh(fleet, "vcops", "sudo -n true").returncode == 0

    code, scan, err = vcops(fleet, "scan", "--limit", HOST)
    failing = [(c, r["actual"]) for c, r in _results(scan).items() if r["status"] == "fail"]
    assert code == 0 and failing == [], (failing, err)

    code, _, err = vcops(fleet, "snapshot", "take", "--limit", HOST, "--reason", "sudo")
    assert code == 0, err

    code, report, err = vcops(fleet, "apply", "--engine", "ansible", "--limit", HOST)
    assert code == 0, (report, err)
    [host] = report["hosts"]  # type: ignore[misc]
    assert host["status"] == "unchanged", host.get("changes")  # the other engine agrees (become)

    answer = sip_options(address(fleet), timeout=2.0)
    assert answer is not None and answer.startswith("SIP/2.0 200"), answer
