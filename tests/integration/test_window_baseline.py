"""A ``baseline`` window on the lab: drift found by a scan is fixed by the runner with the
pyinfra baseline, gated, and the next scan shows it resolved.

It hardens lab-kamailio-01 first (whatever state it is in) and gives it back stock
afterwards (``vcops lab reset``), so it runs in any order.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.apply_helpers import inventory_cli
from tests.integration.conftest import reset_lab_hosts
from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory

pytestmark = pytest.mark.lab
HOST = "lab-kamailio-01"


@pytest.fixture(scope="module", autouse=True)
def _stock_afterwards(lab: Inventory) -> Iterator[None]:
    yield
    reset_lab_hosts([HOST])


def test_a_baseline_window_fixes_the_drift_a_scan_found(lab: Inventory, tmp_path: Path) -> None:
    root = tmp_path / "inventory"
    shutil.copytree(lab.root, root)
    vcops = inventory_cli(root, tmp_path)

    server = next(s for s in lab.servers if s.name == HOST)
    target = SshTarget.from_inventory(lab, server)
    hardened = vcops("apply", "--limit", HOST)  # whatever ran before, start hardened
    assert hardened.returncode == 0, hardened.stderr
    run_one(
        target,
        "sed -i 's/^MaxAuthTries .*/MaxAuthTries 6/' /etc/ssh/sshd_config && sshd -t "
        "&& systemctl reload ssh\n",
    )
    scan = vcops("scan", "--limit", HOST, "--json")
    assert scan.returncode == 1, scan.stderr
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    created = vcops(
        "window", "create", "--targets", HOST, "--start", start.isoformat(),
        "--actions", "baseline", "--change-id", "CHG-LAB-BASE", "--title", "fix drift",
        "--key", str(root / "lab_key"), "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    window = json.loads(created.stdout)
    changes = window["plan"]["hosts"][0]["baseline_changes"]
    assert any(c.startswith("VC-SSH-006 MaxAuthTries") for c in changes), changes
    approve = vcops("window", "approve", window["id"], "--key", str(root / "board" / "bob"))
    assert approve.returncode == 0, approve.stderr
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.5))

    run = vcops("window", "run", window["id"], "--json")
    assert run.returncode == 0, run.stderr + run.stdout[-2000:]
    [host] = json.loads(run.stdout)["hosts"]
    assert host["state"] == "done" and any("passed" in g for g in host["gate"]), host
    assert host["baseline"] and "baseline applied" in host["summary"], host
    assert "MaxAuthTries 3" in run_one(target, "grep ^MaxAuthTries /etc/ssh/sshd_config\n").stdout
    again = vcops("scan", "--limit", HOST, "--json")
    assert again.returncode == 0, again.stdout[-3000:]
