"""Creating a window on the lab: the plan comes from real apt on real hosts, freezes refuse,
a board member's lab key approves it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vcops.inventory import Inventory

pytestmark = pytest.mark.lab
BIN = Path(sys.executable).parent


def vcops(inv_dir: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VCOPS_DATABASE_URL": f"sqlite:///{db}",
        "VCOPS_CONFIG": "",
        "VCOPS_ACTOR": "ops-oncall",
    }
    return subprocess.run(
        [str(BIN / "vcops"), "-i", str(inv_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def test_create_plan_and_approve_on_the_lab(lab: Inventory, tmp_path: Path) -> None:
    db = tmp_path / "vcops.db"
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0).isoformat()
    proc = vcops(
        lab.root,
        db,
        "window",
        "create",
        "--targets",
        "role:kamailio,role:sbc",
        "--start",
        start,
        "--duration",
        "2h",
        "--cutoff",
        "30m",
        "--max-concurrency",
        "1",
        "--max-errors",
        "1",
        "--actions",
        "all-updates",
        "--change-id",
        "CHG-LAB-1",
        "--title",
        "lab updates",
        "--key",
        str(lab.root / "lab_key"),  # the requester signs the terms (not a board key)
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    w = json.loads(proc.stdout)
    assert [h["target"] for h in w["plan"]["hosts"]] == ["lab-kamailio-01", "lab-sbc-01"]
    assert w["requester"] == "ops-oncall" and w["quorum"] == 1 and len(w["plan_hash"]) == 64
    approve = vcops(
        lab.root, db, "window", "approve", w["id"], "--key", str(lab.root / "board" / "alice")
    )
    assert approve.returncode == 0, approve.stderr
    shown = json.loads(vcops(lab.root, db, "window", "show", w["id"], "--json").stdout)
    assert shown["state"] == "approved" and shown["approvals"][0]["valid"] is True
    assert shown["batches"] == [["lab-kamailio-01"], ["lab-sbc-01"]]


def test_a_window_inside_a_freeze_is_refused(lab: Inventory, tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(lab.root, inv, ignore=shutil.ignore_patterns("*.db"))
    start = datetime.now(UTC) + timedelta(days=1)
    freeze = (
        f"freezes:\n  - {{name: lab-freeze, start: {(start - timedelta(hours=1)).isoformat()}, "
        f"end: {(start + timedelta(hours=1)).isoformat()}, reason: year-end peak}}\n"
    )
    (inv / "lab.yml").write_text((inv / "lab.yml").read_text().replace("freezes: []\n", freeze))
    proc = vcops(
        inv,
        tmp_path / "vcops.db",
        "window",
        "create",
        "--targets",
        "role:generic",
        "--start",
        start.isoformat(),
        "--change-id",
        "CHG-2",
        "--title",
        "frozen",
        "--key",
        str(inv / "lab_key"),
    )
    assert proc.returncode == 1
    assert "overlaps freeze 'lab-freeze'" in proc.stderr and "year-end peak" in proc.stderr
    assert "Traceback" not in proc.stderr
