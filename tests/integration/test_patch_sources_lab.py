"""3.2.2 patch sources on real lab hosts, both engines: a host whose apt sources lack
the security suite (here: the lab's repository, the lab inventory's mirror, moved out of
sources.list.d) fails VC-PATCH-002 and VC-PATCH-005 with that reason; `vcops apply`
adds the security suite from the template (before any install, so the installs still
work), after which the scan shows zero drift and a second apply changes nothing.
The hosts are given back stock afterwards (``vcops lab reset``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.apply_helpers import host_status, target, vcops
from tests.integration.conftest import reset_lab_hosts
from vcops.connectors.ssh import run_one
from vcops.facts.aptsources import OWN_FILE
from vcops.inventory import Inventory
from vcops.lab.aptrepo import REPO_URL

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
ENGINES = {"pyinfra": "lab-generic-01", "ansible": "lab-rtpengine-01"}
TIMINGS: dict[str, float] = {}
REASON = f"apt sources lack bookworm-security, bookworm-updates and the mirror {REPO_URL}"


@pytest.fixture(scope="module", autouse=True)
def _stock_afterwards(lab: Inventory) -> Iterator[None]:
    yield
    reset_lab_hosts(list(ENGINES.values()))


def _results(scan: dict[str, object], host: str) -> dict[str, dict[str, str]]:
    outcome = next(o for o in scan["outcomes"] if o["target"] == host)  # type: ignore[union-attr, index]
    return {r["control_id"]: r for r in outcome["results"]}  # type: ignore[index]


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_sources_without_the_security_suite_fail_then_apply_adds_it(
    lab: Inventory, tmp_path: Path, engine: str
) -> None:
    host = ENGINES[engine]
    db = tmp_path / "vcops.db"
    run_one(
        target(lab, host),
        "mv /etc/apt/sources.list.d/vcops-lab.list /etc/apt/vcops-lab.list.off\n",
    )
    code, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    assert code == 1, err
    before = _results(scan, host)
    for control in ("VC-PATCH-002", "VC-PATCH-005"):
        assert before[control]["status"] == "fail", before[control]
        assert REASON in before[control]["actual"], before[control]
    assert before["VC-PATCH-007"]["status"] == "fail"  # needrestart not installed yet

    started = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    TIMINGS[f"{engine} first"] = time.monotonic() - started
    assert code == 0, (report, err)
    assert host_status(report)[host]["status"] == "changed"
    sources = run_one(target(lab, host), f"cat {OWN_FILE}\n").stdout
    assert f"URIs: {REPO_URL}\nSuites: ./\nTrusted: yes\n" in sources, sources

    code, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    after = _results(scan, host)
    failing = [(c, r["actual"]) for c, r in after.items() if r["status"] == "fail"]
    assert failing == [] and code == 0, failing
    for control in ("VC-PATCH-001", "VC-PATCH-002", "VC-PATCH-005", "VC-PATCH-006"):
        assert after[control]["status"] == "pass", after[control]
    assert after["VC-PATCH-007"]["status"] == "pass", after["VC-PATCH-007"]
    assert after["VC-PATCH-008"]["status"] == "pass", after["VC-PATCH-008"]

    started = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    TIMINGS[f"{engine} second"] = time.monotonic() - started
    assert code == 0, err
    assert host_status(report)[host]["status"] == "unchanged", report
    print(f"\npatch-sources apply timings: {TIMINGS}")
