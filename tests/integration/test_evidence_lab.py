"""The evidence pack from the lab: a real `vcops scan` of the lab hosts, a waiver, a window
planned from real apt on real hosts and approved by a signature made with `ssh-keygen`
outside vcops (`--signature`), then `vcops report evidence`: the figures in the HTML equal
the JSON and the database, and the signed MANIFEST verifies. Nothing here changes a host."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import html as lxml_html

from vcops.inventory import Inventory

pytestmark = pytest.mark.lab
BIN = Path(sys.executable).parent


def test_evidence_pack_from_a_lab_scan_waiver_and_signed_window(
    lab: Inventory, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "VCOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'vcops.db'}",
        "VCOPS_CONFIG": "",
        "VCOPS_STATE_DIR": str(tmp_path / "state"),
        "VCOPS_ACTOR": "ops-oncall",
    }

    def vcops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "vcops"), "-i", str(lab.root), *args],
            capture_output=True, text=True, timeout=300, check=False, env=env,
        )  # fmt: skip

    scan = vcops("scan", "--limit", "kind:server", "--json")
    assert scan.returncode in (0, 1), scan.stderr  # 1: drift found, as on any fresh lab
    waiver = vcops(
        "waiver", "add", "VC-AUD-001", "--hosts", "lab-*", "--reason", "no audit in a container",
        "--expires", (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d"),
        "--approved-by", "alice",
    )  # fmt: skip
    assert waiver.returncode == 0, waiver.stderr
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).isoformat()
    created = vcops(
        "window", "create", "--targets", "role:kamailio", "--start", start,
        "--actions", "all-updates", "--change-id", "CHG-EVID", "--title", "evidence",
        "--key", str(lab.root / "lab_key"), "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    wid = json.loads(created.stdout)["id"]
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

    out = tmp_path / "pack"
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    made = vcops("report", "evidence", "--from", day, "--to", day, "-o", str(out))
    assert made.returncode == 0, made.stderr
    data = json.loads((out / "evidence.json").read_text())
    doc = lxml_html.fromstring((out / "report.html").read_bytes())

    def figure(ident: str) -> str:
        return str(doc.xpath(f'//*[@id="{ident}"]')[0].text_content()).strip()

    db = sqlite3.connect(tmp_path / "vcops.db")
    [(scan_id, score)] = db.execute("SELECT id, score FROM scans").fetchall()
    assert float(figure(f"scan-{scan_id}-score")) == score == data["scans"][0]["score"]
    assert set(data["scans"][0]["clauses"]) == {"3.2.1", "3.2.2"}
    opened = db.execute("SELECT count(*) FROM findings").fetchone()[0]
    assert int(figure("findings-opened")) == len(data["findings_opened"]) == opened > 0
    sighted = db.execute("SELECT count(*) FROM package_sightings").fetchone()[0]
    latency = data["patch_latency"]
    assert int(figure("latency-pending")) == latency["pending"] == sighted
    [window] = data["windows"]
    assert (window["id"], window["valid_approvals"], window["approvals"][0]["verified"]) == (
        wid,
        1,
        True,
    )
    assert int(figure(f"window-{wid}-valid")) == 1
    assert [w["control_id"] for w in data["waivers"]] == ["VC-AUD-001"]
    assert data["audit"]["verdict"]["ok"] is True
    check = vcops("report", "verify-evidence", str(out))
    assert check.returncode == 0 and "evidence pack intact" in check.stdout, (
        check.stdout + check.stderr
    )
