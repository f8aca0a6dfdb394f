"""The evidence pack from the lab after a scan, an apply, a window and a waiver.

On ``lab-generic-01``: a security update is published (a real .deb built with dpkg-deb,
in a flat apt repository served by the lab's repository server whose ``Release`` names
the suite ``bookworm-security``); a real ``vcops scan`` sights it and opens findings; a
waiver is added; a window planned from real apt is approved by a signature made with
``ssh-keygen`` outside vcops (``--signature``); ``vcops apply`` (pyinfra) hardens the
host; the window is run and installs the update; a second scan closes findings and sees
the update installed. ``vcops report evidence`` then shows time to remediate, patch
latency, the window with its outcome and verified approval: the figures in the HTML
equal the JSON and the database, and the signed MANIFEST verifies.

The store's first sightings are moved back by whole days before the second scan (the
lab cannot wait days), so latency and time to remediate are figures a wrong computation
would change, not 0.0 days. The host is given back stock afterwards (``vcops lab reset``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import html as lxml_html

from tests.integration.conftest import reset_lab_hosts
from tests.integration.test_window_run_lab import build_deb
from vcops.connectors.ssh import SshTarget, run_one
from vcops.dbtime import parse_stored, stored_text
from vcops.inventory import Inventory
from vcops.lab.aptrepo import REPO_DIR, REPO_URL, write_index

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]
BIN = Path(sys.executable).parent
HOST = "lab-generic-01"
PACKAGE = "vcops-evidpkg"
SUITE = "bookworm-security"
SECURITY_REPO = REPO_DIR / "evidence-security"
SOURCES = "/etc/apt/sources.list.d/vcops-evidence.list"
SIGHTING_AGE = 2.5
"""Days the first sighting of the update is moved back."""
FINDING_AGE = 1.25
"""Days the first sighting of each finding is moved back."""


def security_repository(debs: list[Path]) -> None:
    """A flat repository whose Release names a security suite (what apt and vcops read
    as a security update), next to the lab's own repository on its HTTP server."""
    SECURITY_REPO.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        shutil.copyfile(deb, SECURITY_REPO / deb.name)
    write_index(SECURITY_REPO)
    index = (SECURITY_REPO / "Packages").read_bytes()
    (SECURITY_REPO / "Release").write_text(
        f"Origin: vcops-lab\nLabel: vcops-lab\nSuite: {SUITE}\nCodename: {SUITE}\n"
        f"Date: {datetime.now(UTC).strftime('%a, %d %b %Y %H:%M:%S UTC')}\n"
        f"SHA256:\n {hashlib.sha256(index).hexdigest()} {len(index)} Packages\n"
    )


@pytest.fixture
def host(lab: Inventory, tmp_path: Path) -> Iterator[SshTarget]:
    """``lab-generic-01`` with ``vcops-evidpkg`` 1.0 installed and 1.1 pending from the
    security suite; stock again afterwards."""
    work = tmp_path / "debs"
    work.mkdir()
    security_repository(
        [build_deb(work, PACKAGE, version, service=False) for version in ("1.0", "1.1")]
    )
    target = SshTarget.from_inventory(lab, next(s for s in lab.servers if s.name == HOST))
    try:
        prepared = run_one(
            target,
            f"set -e; echo 'deb [trusted=yes] {REPO_URL}evidence-security/ ./' > {SOURCES}\n"
            "export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null\n"
            f"apt-get install -y -q {PACKAGE}=1.0 >/dev/null\n"
            "apt list --upgradable 2>/dev/null\n",
            timeout=300,
        )
        assert prepared.exit_status == 0, prepared.stderr
        assert f"{PACKAGE}/{SUITE} 1.1 all [upgradable from: 1.0]" in prepared.stdout
        yield target
    finally:
        shutil.rmtree(SECURITY_REPO, ignore_errors=True)
        reset_lab_hosts([HOST])


def days(later: str, earlier: str) -> float:
    def when(text: str) -> datetime:
        value = datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return (when(later) - when(earlier)).total_seconds() / 86400


def test_evidence_pack_after_scan_apply_window_and_waiver(
    lab: Inventory, host: SshTarget, tmp_path: Path
) -> None:
    started = time.monotonic()
    db_path = tmp_path / "vcops.db"
    env = {
        **os.environ,
        "VCOPS_DATABASE_URL": f"sqlite:///{db_path}",
        "VCOPS_CONFIG": "",
        "VCOPS_STATE_DIR": str(tmp_path / "state"),
        "VCOPS_ACTOR": "ops-oncall",
    }

    def vcops(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "vcops"), "-i", str(lab.root), *args],
            capture_output=True, text=True, timeout=300, check=False, env=env,
            cwd=tmp_path,
        )  # fmt: skip
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    scan = vcops("scan", "--limit", HOST, "--json")
    assert scan.returncode == 1, scan.stderr  # drift on a stock host
    waiver = vcops(
        "waiver", "add", "VC-AUD-001", "--hosts", "lab-*", "--reason", "no audit in a container",
        "--expires", (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d"),
        "--approved-by", "alice",
    )  # fmt: skip
    assert waiver.returncode == 0, waiver.stderr
    # The window opens once the apply below is done (it takes longer than the lead); the
    # approval is recorded first, as the board's rules require.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=45)
    created = vcops(
        "window", "create", "--targets", HOST, "--start", start.isoformat(),
        "--actions", "security-updates", "--change-id", "CHG-EVID", "--title", "evidence",
        "--key", str(lab.root / "lab_key"), "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    wid = json.loads(created.stdout)["id"]
    [planned] = json.loads(created.stdout)["plan"]["hosts"]
    assert [(p["package"], p["target"]) for p in planned["packages"]] == [(PACKAGE, "1.1")]
    payload = tmp_path / "payload.txt"
    issued = vcops(
        "window", "payload", wid, "--decision", "approve", "--member", "bob", "-o", str(payload)
    )
    assert issued.returncode == 0, issued.stderr
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-n", "vcops-window", "-f", str(lab.root / "board" / "bob"), str(payload)],
        check=True, capture_output=True,
    )  # fmt: skip
    approved = vcops("window", "approve", wid, "--signature", f"{payload}.sig", "--member", "bob")
    assert approved.returncode == 0, approved.stderr

    applied = vcops("apply", "--engine", "pyinfra", "--limit", HOST, "--json")
    assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.5))
    ran = vcops("window", "run", wid, "--json")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr
    assert json.loads(ran.stdout)["state"] == "finished"
    installed = run_one(host, f"dpkg-query -W -f='${{Version}}' {PACKAGE}\n").stdout
    assert installed == "1.1"

    db = sqlite3.connect(db_path)
    with db:  # first sightings moved back (see the module docstring)
        for rowid, first in db.execute(
            "SELECT rowid, first_seen FROM package_sightings"
        ).fetchall():
            moved = parse_stored(first) - timedelta(days=SIGHTING_AGE)
            db.execute(
                "UPDATE package_sightings SET first_seen = ? WHERE rowid = ?",
                (stored_text(moved), rowid),
            )
        for fid, first in db.execute("SELECT id, first_seen FROM findings").fetchall():
            moved = parse_stored(first) - timedelta(days=FINDING_AGE)
            db.execute("UPDATE findings SET first_seen = ? WHERE id = ?", (stored_text(moved), fid))
    rescan = vcops("scan", "--limit", HOST, "--json")
    assert rescan.returncode in (0, 1), rescan.stderr

    out = tmp_path / "pack"
    today = datetime.now(UTC)
    made = vcops(
        "report", "evidence", "-o", str(out),
        "--from", (today - timedelta(days=7)).strftime("%Y-%m-%d"),
        "--to", today.strftime("%Y-%m-%d"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    data = json.loads((out / "evidence.json").read_text())
    doc = lxml_html.fromstring((out / "report.html").read_bytes())

    def figure(ident: str) -> str:
        return str(doc.xpath(f'//*[@id="{ident}"]')[0].text_content()).strip()

    # scans: both, with the scores the database holds
    scans = db.execute("SELECT id, score, started_at FROM scans ORDER BY id").fetchall()
    assert len(scans) == 2 and int(figure("scan-count")) == len(data["scans"]) == 2
    for (scan_id, score, _at), shown in zip(scans, data["scans"], strict=True):
        assert float(figure(f"scan-{scan_id}-score")) == score == shown["score"]
        assert set(shown["clauses"]) == {"3.2.1", "3.2.2"}
    assert scans[1][1] > scans[0][1]  # the apply and the window raised the score

    # findings opened and closed, and time to remediate by severity
    opened = db.execute("SELECT count(*) FROM findings").fetchone()[0]
    assert int(figure("findings-opened")) == len(data["findings_opened"]) == opened > 0
    closed = db.execute(
        "SELECT id, severity, first_seen, resolved_at FROM findings WHERE resolved_at IS NOT NULL"
    ).fetchall()
    assert len(closed) >= 1, "the apply closed no finding"
    assert int(figure("findings-closed")) == len(data["findings_closed"]) == len(closed)
    assert {(f["id"], f["first_seen"], f["resolved_at"]) for f in data["findings_closed"]} == {
        (fid, first, resolved) for fid, _sev, first, resolved in closed
    }
    for r in data["remediation"]:
        spans = [days(res, first) for _i, sev, first, res in closed if sev == r["severity"]]
        assert int(figure(f"ttr-{r['severity']}-closed")) == r["closed"] == len(spans)
        mean = round(statistics.fmean(spans), 2) if spans else None
        assert r["mean_days"] == mean and r["max_days"] == (round(max(spans), 2) if spans else None)
        assert figure(f"ttr-{r['severity']}-mean") == ("-" if mean is None else str(mean))
        if spans:
            assert FINDING_AGE <= r["mean_days"] < FINDING_AGE + 0.05
    assert db.execute(
        "SELECT count(*) FROM findings WHERE resolved_at IS NULL AND control_id = 'VC-SSH-001'"
    ).fetchone() == (0,)  # hardened by the apply

    # patch latency (3.2.2): the update sighted by the first scan, installed by the window
    [(first_seen, last_seen)] = db.execute(
        "SELECT first_seen, last_seen FROM package_sightings WHERE target = ? AND package = ? "
        "AND version = '1.1'",
        (HOST, PACKAGE),
    ).fetchall()
    seen_installed = datetime.fromisoformat(scans[1][2])
    seen_installed = seen_installed if seen_installed.tzinfo else seen_installed.replace(tzinfo=UTC)
    expected = round((seen_installed.timestamp() - parse_stored(first_seen).timestamp()) / 86400, 2)
    assert SIGHTING_AGE <= expected < SIGHTING_AGE + 0.05
    latency = data["patch_latency"]
    sighted = db.execute("SELECT count(*) FROM package_sightings").fetchone()[0]
    assert int(figure("latency-installed")) == latency["installed"] == sighted == 1
    assert int(figure("latency-pending")) == latency["pending"] == 0
    assert float(figure("latency-mean")) == latency["mean_days"] == expected
    [per_host] = latency["hosts"]
    assert (per_host["target"], per_host["installed"], per_host["mean_days"]) == (
        HOST,
        1,
        expected,
    )
    assert int(figure(f"latency-{HOST}-installed")) == 1
    assert float(figure(f"latency-{HOST}-mean")) == expected
    assert parse_stored(last_seen) < seen_installed

    # the window: finished, its verified approval, what it installed
    [window] = data["windows"]
    [(db_state,)] = db.execute("SELECT state FROM windows WHERE id = ?", (wid,)).fetchall()
    assert window["id"] == wid and window["state"] == db_state == "finished"
    assert figure(f"window-{wid}-state") == "finished"
    assert window["counts"]["done"] == 1 and window["rolled_back"] == []
    assert int(figure(f"window-{wid}-installed")) == window["packages_installed"] == 1
    members = db.execute("SELECT member FROM approvals WHERE window_id = ?", (wid,)).fetchall()
    assert [(a["member"], a["verified"]) for a in window["approvals"]] == [("bob", True)]
    assert members == [("bob",)]
    assert int(figure(f"window-{wid}-valid")) == window["valid_approvals"] == 1

    assert [w["control_id"] for w in data["waivers"]] == ["VC-AUD-001"]
    assert data["audit"]["verdict"]["ok"] is True
    # the head when the pack was made: the entry before the one that records the pack
    [(_made_id, made_action, made_detail, _h), (head_id, _a, _d, head_hash)] = db.execute(
        "SELECT id, action, detail, hash FROM audit_log ORDER BY id DESC LIMIT 2"
    ).fetchall()
    assert made_action == "report.evidence" and json.loads(made_detail)["audit_head"] == head_hash
    assert (data["audit"]["head_id"], data["audit"]["head_hash"]) == (head_id, head_hash)
    assert int(figure("audit-head-id")) == head_id and figure("audit-head-hash") == head_hash
    check = vcops("report", "verify-evidence", str(out))
    assert check.returncode == 0 and "evidence pack intact" in check.stdout, (
        check.stdout + check.stderr
    )
    print(f"\nevidence lab test: {time.monotonic() - started:.1f} s before the reset")
