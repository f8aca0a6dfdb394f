"""Integrity (AIDE, debsums), logging (rsyslog, journald) and the audit rule groups on
real lab hosts, one host per engine: stock fails every VC-AIDE / VC-LOG / VC-AUD-003
control, an apply makes the host pass its whole scan, a second apply changes nothing,
and the daily AIDE check then runs clean (also measured: what ``aide --init`` and
``aide --check`` cost on a lab host). Both hosts are given back stock afterwards.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.apply_helpers import host_status, target, vcops
from tests.integration.conftest import reset_lab_hosts
from vcops.connectors.ssh import run_one
from vcops.enforce.pyinfra_run import CONDITIONAL
from vcops.inventory import Inventory
from vcops.lab.probe import sip_options

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
ENGINES = {"pyinfra": "lab-generic-01", "ansible": "lab-kamailio-01"}
CONTROLS = {
    "VC-AUD-003",
    "VC-AIDE-001",
    "VC-AIDE-002",
    "VC-AIDE-003",
    "VC-LOG-001",
    "VC-LOG-002",
    "VC-LOG-003",
}
# What one AIDE run costs on the host: wall seconds, CPU seconds (user + sys of the child).
MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'rc': p.returncode, 'wall': round(time.monotonic() - t, 2),\n"
    "    'cpu': round(u.ru_utime + u.ru_stime, 2), 'out': p.stdout[:1500]}))\n"
)
FIGURES: dict[str, object] = {}


@pytest.fixture(scope="module", autouse=True)
def _stock_afterwards(lab: Inventory) -> Iterator[None]:
    yield
    reset_lab_hosts(list(ENGINES.values()))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("integ") / "vcops.db"


def _results(scan: dict[str, object], host: str) -> dict[str, dict[str, str]]:
    outcome = next(o for o in scan["outcomes"] if o["target"] == host)  # type: ignore[union-attr, index]
    return {r["control_id"]: r for r in outcome["results"]}  # type: ignore[index]


def _measure(lab: Inventory, host: str, *argv: str) -> dict[str, object]:
    cmd = shlex.join(["python3", "-c", MEASURE, *argv])
    out = run_one(target(lab, host), f"sudo -n {cmd}\n", timeout=600)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def stock_scan(lab: Inventory, db: Path) -> tuple[int, dict[str, object], str]:
    """Both hosts scanned stock, before either apply (the apply tests ask for it)."""
    return vcops(lab.root, db, "scan", "--limit", ",".join(ENGINES.values()))


def test_stock_hosts_fail_every_integrity_and_logging_control(
    stock_scan: tuple[int, dict[str, object], str],
) -> None:
    code, scan, err = stock_scan
    assert code == 1, err
    for host in ENGINES.values():
        got = {c: r["status"] for c, r in _results(scan, host).items() if c in CONTROLS}
        assert got == dict.fromkeys(CONTROLS, "fail"), (host, got)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_apply_hardens_then_changes_nothing_and_aide_checks_clean(
    lab: Inventory, db: Path, engine: str, stock_scan: tuple[int, dict[str, object], str]
) -> None:
    host = ENGINES[engine]
    planned: set[str] = set()
    if engine == "pyinfra":  # pyinfra's dry run lists what the apply then does
        code, check, err = vcops(lab.root, db, "apply", "--check", "--limit", host)
        assert code == 0, err
        changes = host_status(check)[host]["changes"]
        planned = {str(c).removesuffix(CONDITIONAL) for c in changes}  # type: ignore[union-attr]
        assert "integrity: build the AIDE database" in planned, planned
    started = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    FIGURES[f"{engine} first apply s"] = round(time.monotonic() - started, 1)
    assert code == 0, (report, err[-3000:])
    assert host_status(report)[host]["status"] == "changed"
    if planned:
        done = host_status(report)[host]["changes"]
        assert [c for c in done if c not in planned] == [], done  # type: ignore[union-attr]
    code, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    results = _results(scan, host)
    failing = {c: r["actual"] for c, r in results.items() if r["status"] == "fail"}
    assert failing == {}, failing
    # zero drift on this host (the other host's stock findings stay open in this store)
    assert [f for f in scan["open"] if f["target"] == host] == [], err  # type: ignore[union-attr, index]
    assert {results[c]["status"] for c in CONTROLS} == {"pass"}
    assert "first check is due" in results["VC-AIDE-003"]["actual"]

    started = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    FIGURES[f"{engine} second apply s"] = round(time.monotonic() - started, 1)
    assert code == 0, err
    assert host_status(report)[host]["status"] == "unchanged", report

    # The host's own proof: the daily check (the timer's unit) finds nothing changed
    # after two applies, rsyslog accepts its whole config, the journal is on disk.
    proof = run_one(
        target(lab, host),
        "sudo -n systemctl start vcops-aide-check.service; echo $?; "
        "sudo -n sed -n 2p /var/log/aide/vcops-check.log; "
        "sudo -n rsyslogd -N1 >/dev/null 2>&1; echo $?; "
        "test -d /var/log/journal && echo persistent; "
        "systemctl is-enabled vcops-aide-check.timer rsyslog\n",
        timeout=600,
    )
    lines = proof.stdout.splitlines()
    assert lines[0] == "0" and "found NO differences" in lines[1], proof.stdout
    assert lines[2:] == ["0", "persistent", "enabled", "enabled"], proof.stdout
    code, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    report_result = _results(scan, host)["VC-AIDE-003"]
    assert report_result["status"] == "pass" and "no changes" in report_result["actual"]

    init = _measure(lab, host, "aide", "--config=/etc/aide/vcops.conf", "--init")
    check = _measure(lab, host, "aide", "--config=/etc/aide/vcops.conf", "--check")
    assert init["rc"] == 0 and check["rc"] == 0, (init, check)
    run_one(target(lab, host), "sudo -n rm -f /var/lib/aide/vcops.db.new\n")
    entries = [ln for ln in str(check["out"]).splitlines() if "entries" in ln]
    FIGURES[f"{engine} aide --init"] = {k: init[k] for k in ("wall", "cpu")}
    FIGURES[f"{engine} aide --check"] = {k: check[k] for k in ("wall", "cpu")}
    FIGURES[f"{engine} aide entries"] = entries[:1]
    if engine == "pyinfra":
        # An apply that changes the host rebuilds the database; what the rebuild takes
        # in (here a file nobody manages, beside the banner vcops puts back) is kept in
        # the rebuild log first, never silently absorbed.
        run_one(
            target(lab, host),
            "sudo -n sh -c 'echo probe > /etc/probe-written-by-hand; echo edited >> /etc/issue.net'\n",
        )
        code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
        assert code == 0 and host_status(report)[host]["status"] == "changed", err[-2000:]
        log = run_one(
            target(lab, host),
            "sudo -n cat /var/log/aide/vcops-rebuilds.log; sudo -n rm -f /etc/probe-written-by-hand\n",
        ).stdout
        assert "rebuild (" in log and "/etc/probe-written-by-hand" in log, log[-3000:]
    if engine == "ansible":  # the VoIP host still answers SIP after the whole baseline
        answer = sip_options("10.213.0.11", timeout=2.0)
        assert answer is not None and answer.startswith("SIP/2.0 200"), answer
    print(f"\nintegrity figures: {FIGURES}")
