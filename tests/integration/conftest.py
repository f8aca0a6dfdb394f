"""The lab, brought up once per test session and torn down at the end."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from vcops.inventory import Inventory, load_inventory

VCOPS = [sys.executable, "-m", "vcops.cli"]


def lab_available() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root"
    if not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"):
        return "apt-get install debootstrap systemd-container"
    return None


def reset_lab_hosts(names: list[str]) -> None:
    """Give lab hosts back stock (``vcops lab reset``): a module that hardens or breaks
    a host calls this when it is done, so modules run in any order."""
    proc = subprocess.run(
        [*VCOPS, "lab", "reset", *names],
        env={**os.environ, "VCOPS_CONFIG": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inventory]:
    """A lab of 6 hosts (one per role) and 2 switches (napalm and netmiko)."""
    reason = lab_available()
    if reason:
        pytest.skip(reason)
    # One lab per machine: sessions (developers, helpers, CI) take turns.
    lock = open("/run/vcops-lab-tests.lock", "w")  # noqa: SIM115 - held for the session
    fcntl.flock(lock, fcntl.LOCK_EX)
    lab_dir = tmp_path_factory.mktemp("lab") / "inventory"
    state = tmp_path_factory.mktemp("state")
    env = {
        **os.environ,
        "VCOPS_CONFIG": "",
        "VCOPS_DATABASE_URL": f"sqlite:///{state / 'vcops.db'}",
    }
    up = subprocess.run(
        [*VCOPS, "lab", "up", "--hosts", "6", "--switches", "2", "--dir", str(lab_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield load_inventory(lab_dir)
    finally:
        down = subprocess.run(
            [*VCOPS, "lab", "down"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        assert down.returncode == 0, down.stderr[-2000:]
