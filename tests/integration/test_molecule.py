"""`molecule test` of the default scenario against the session lab.

The lab is one per machine and the session ``lab`` fixture holds it (and its lock) for
the whole pytest session, so Molecule cannot bring its own lab up here. Instead the
scenario adopts the session lab: ``VCOPS_MOLECULE_LAB`` names its inventory, which
makes create write only the instance config and host variables and destroy leave the
lab alone. It converges lab-rtpengine-01 (given back stock afterwards by ``vcops lab
reset``, so the module runs in any order) and runs
the whole sequence: syntax, create, prepare, check, converge, idempotence, verify
(a vcops scan that must show zero drift), destroy.

Stand-alone, Molecule brings up and tears down its own lab:
``flock /run/vcops-lab-tests.lock .venv/bin/molecule test`` (``make molecule``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import reset_lab_hosts
from vcops.inventory import Inventory
from vcops.lab.layout import SUBNET
from vcops.lab.probe import ssh_ready

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1500)]
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOST = "lab-rtpengine-01"


@pytest.fixture(scope="module", autouse=True)
def _stock_afterwards(lab: Inventory) -> Iterator[None]:
    yield
    reset_lab_hosts([HOST])


def test_molecule_test_converges_is_idempotent_and_verifies_with_a_scan(
    lab: Inventory, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "VCOPS_MOLECULE_LAB": str(lab.root),
        "VCOPS_MOLECULE_HOST": HOST,
        "VCOPS_CONFIG": "",
        "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"),
        "ANSIBLE_NOCOLOR": "1",
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "molecule"), "test"],
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    seconds = time.monotonic() - started
    out = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    assert done.returncode == 0, out[-6000:]
    for action in ("syntax", "create", "prepare", "check", "converge", "idempotence", "verify"):
        assert re.search(rf"{action}\W+Executed: Successful", out), action
    assert "vcops scan: zero drift" in out
    assert ssh_ready(str(SUBNET[15]))
    print(f"\nmolecule test on {HOST}: {seconds:.0f} s")
