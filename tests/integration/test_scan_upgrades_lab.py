"""Pending upgrades on the lab: a scan right after another skips ``apt list`` on every
unchanged host (``upgrades: cached`` per target in the JSON), a host whose apt lists
changed recomputes, and the findings equal those of a full scan (``--no-store``: no
stored fingerprint, so every host computes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory

pytestmark = pytest.mark.lab
BIN = Path(sys.executable).parent


def scan(lab: Inventory, db: Path, *args: str) -> dict[str, object]:
    proc = subprocess.run(
        [
            str(BIN / "vcops"),
            "-i",
            str(lab.root),
            "scan",
            "--limit",
            "kind:server",
            *args,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "VCOPS_DATABASE_URL": f"sqlite:///{db}", "VCOPS_CONFIG": ""},
    )
    assert proc.returncode in {0, 1}, proc.stderr[-2000:]
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def upgrades(report: dict[str, object]) -> dict[str, object]:
    return {o["target"]: o["upgrades"] for o in report["outcomes"]}  # type: ignore[attr-defined, index]


def results(report: dict[str, object]) -> set[tuple[str, ...]]:
    return {
        (o["target"], r["control_id"], r["status"], r["actual"])
        for o in report["outcomes"]  # type: ignore[attr-defined]
        for r in o["results"]
    }


def seconds(report: dict[str, object]) -> float:
    times = [o["seconds"] for o in report["outcomes"]]  # type: ignore[attr-defined, index]
    return round(sum(times) / len(times), 3)


def test_a_second_scan_skips_apt_until_the_lists_change(lab: Inventory, tmp_path: Path) -> None:
    db = tmp_path / "vcops.db"
    names = {s.name for s in lab.servers}
    first = scan(lab, db)
    assert upgrades(first) == dict.fromkeys(names, "computed")
    second = scan(lab, db)
    assert upgrades(second) == dict.fromkeys(names, "cached")
    assert results(second) == results(first)
    changed = next(s for s in lab.servers if "generic" in s.name)
    touched = run_one(
        SshTarget.from_inventory(lab, changed),
        "set -e; ls /var/lib/apt/lists/*_Packages >/dev/null\n"
        'for f in /var/lib/apt/lists/*_Packages; do touch "$f"; done\n',
    )
    assert touched.exit_status == 0, touched.stderr
    third = scan(lab, db)
    assert upgrades(third) == {n: "computed" if n == changed.name else "cached" for n in names}
    full = scan(lab, db, "--no-store")
    assert upgrades(full) == dict.fromkeys(names, "computed")
    assert results(third) == results(full)
    print(  # the figures the README quotes (pytest -s)
        f"\nper-host seconds: computed {seconds(first)}, cached {seconds(second)},"
        f" one recomputed {seconds(third)}, full {seconds(full)}"
    )
