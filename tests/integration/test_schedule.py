"""Scheduled runs: the units pass systemd-analyze verify, overlapping runs are skipped and
every run is recorded."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from vcops.schedule import render_units, render_worker_unit, write_units

BIN = Path(sys.executable).parent


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("windows", [False, True])
def test_units_pass_systemd_analyze_verify(tmp_path: Path, windows: bool) -> None:
    units = render_units(
        vcops=BIN / "vcops",
        workdir=REPO,
        inventory=REPO / "inventory",
        config=None,
        scan_calendar="*-*-* 06:00:00",
        windows=windows,
    )
    paths = write_units(units, tmp_path)
    assert len(paths) == (4 if windows else 2)
    proc = subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OnCalendar=*-*-* 06:00:00" in units["vcops-scan.timer"]
    assert (
        f"ExecStart={BIN / 'vcops'} schedule run scan -- scan --email"
        in units["vcops-scan.service"]
    )


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_the_worker_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    [(name, text)] = render_worker_unit(
        vcops=BIN / "vcops", workdir=REPO, inventory=REPO / "inventory", config=None, concurrency=4
    ).items()
    assert name == "vcops-worker@.service"
    assert f"ExecStart={BIN / 'vcops'} worker --site %i --concurrency 4" in text
    instance = tmp_path / "vcops-worker@lon1.service"  # verify needs an instance name
    instance.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(instance)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def vcops(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VCOPS_DATABASE_URL", "VCOPS_CONFIG"}}
    return subprocess.run(
        [str(BIN / "vcops"), "-i", str(REPO / "inventory"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_runs_are_recorded_and_never_overlap(tmp_path: Path) -> None:
    first = vcops(tmp_path, "schedule", "run", "scan", "--", "inventory", "check")
    assert first.returncode == 0, first.stderr
    (tmp_path / ".vcops" / "locks").mkdir(parents=True, exist_ok=True)
    with open(tmp_path / ".vcops" / "locks" / "scan.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a run still in progress
        second = vcops(tmp_path, "schedule", "run", "scan", "--", "inventory", "check")
    assert second.returncode == 0
    entries = json.loads(vcops(tmp_path, "audit", "log", "--json", "--action", "schedule.*").stdout)
    assert [e["action"] for e in entries] == ["schedule.start", "schedule.end", "schedule.skipped"]
    assert entries[1]["detail"]["exit"] == 0
    failing = vcops(
        tmp_path, "schedule", "run", "scan", "--", "inventory", "show", "--limit", "nothing-matches"
    )
    assert failing.returncode == 2
    last = json.loads(vcops(tmp_path, "audit", "log", "--json", "--last", "1").stdout)[0]
    assert last["action"] == "schedule.end" and last["detail"]["exit"] == 2


def test_an_unwritable_unit_directory_is_one_readable_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    proc = vcops(tmp_path, "schedule", "install", "--dir", str(blocker / "units"))
    assert proc.returncode == 2, proc.stderr
    assert "cannot write the units" in proc.stderr and "Traceback" not in proc.stderr
