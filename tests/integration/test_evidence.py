"""`vcops report evidence` and `verify-evidence` on a controller built through the CLI
(scans recorded as `vcops scan` records them, a waiver, signed approvals): the numbers in
the HTML equal the JSON and the database, the PDF has pages that render non-blank
(pdftoppm), the MANIFEST verifies with the controller key (and `sha256sum -c`), and
tampering with any one file, or another key, fails the check."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from lxml import html as lxml_html
from PIL import Image

from tests.integration import test_window_approval as base
from tests.integration.web_helpers import now, record_scans
from vcops.store import open_store

env = base.env  # the fixture: a board of three (+ mallory off the board), windows W-A, W-B, W-PAST
vcops = base.vcops


@pytest.fixture
def pack(env: Path) -> Path:
    if not shutil.which("chromium") or not shutil.which("pdftoppm"):
        pytest.skip("apt-get install chromium poppler-utils")
    store = open_store(f"sqlite:///{env / '.vcops' / 'vcops.db'}", env / ".vcops")
    record_scans(store, now())
    for member in ("dana", "fatima"):
        proc = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / member))
        assert proc.returncode == 0, proc.stderr
    proc = vcops(
        env, "waiver", "add", "VC-PATCH-002", "--hosts", "kam-01", "--reason", "vendor fix due",
        "--expires", "2099-01-31", "--approved-by", "dana",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = env / "pack"
    day = now().strftime("%Y-%m-%d")
    proc = vcops(env, "report", "evidence", "--from", "2026-01-01", "--to", day, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def figure(doc: lxml_html.HtmlElement, ident: str) -> str:
    [element] = doc.xpath(f'//*[@id="{ident}"]')
    return str(element.text_content()).strip()


def test_html_numbers_match_the_json_and_the_database(env: Path, pack: Path) -> None:
    data = json.loads((pack / "evidence.json").read_text())
    doc = lxml_html.fromstring((pack / "report.html").read_bytes())
    db = sqlite3.connect(env / ".vcops" / "vcops.db")
    scans = db.execute("SELECT id, score FROM scans ORDER BY id").fetchall()
    assert int(figure(doc, "scan-count")) == len(data["scans"]) == len(scans) == 3
    for scan_id, score in scans:
        assert float(figure(doc, f"scan-{scan_id}-score")) == score
        assert next(s["score"] for s in data["scans"] if s["scan_id"] == scan_id) == score
    opened = db.execute("SELECT count(*) FROM findings").fetchone()[0]
    closed = db.execute("SELECT count(*) FROM findings WHERE resolved_at IS NOT NULL").fetchone()[0]
    assert int(figure(doc, "findings-opened")) == len(data["findings_opened"]) == opened
    assert int(figure(doc, "findings-closed")) == len(data["findings_closed"]) == closed > 0
    by_severity = {r["severity"]: r for r in data["remediation"]}
    for severity, row in by_severity.items():
        assert int(figure(doc, f"ttr-{severity}-closed")) == row["closed"]
    assert sum(r["closed"] for r in data["remediation"]) == closed
    controls = len(data["catalog"])
    assert int(figure(doc, "catalog-count")) == controls >= 50
    assert int(figure(doc, "window-count")) == len(data["windows"]) == 3
    valid = next(w for w in data["windows"] if w["id"] == "W-B")["valid_approvals"]
    assert int(figure(doc, "window-W-B-valid")) == valid == 2
    assert [w["approved_by"] for w in data["waivers"]] == ["dana"]
    head_id, head_hash = db.execute(
        "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert figure(doc, "audit-head-hash") == data["audit"]["head_hash"]
    # the pack's own audit entry comes after the head it reports
    assert data["audit"]["head_id"] == head_id - 1
    assert data["audit"]["verdict"]["ok"] is True and "Chain verified" in figure(
        doc, "audit-verdict"
    )
    assert head_hash != data["audit"]["head_hash"]


def test_the_pdf_has_pages_that_are_not_blank(pack: Path, tmp_path: Path) -> None:
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(pack / "report.pdf"), str(tmp_path / "page")],
        check=True,
        timeout=120,
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    for page in pages:
        grey = Image.open(page).convert("L")
        dark = sum(count for count, value in grey.getcolors(256) or [] if value < 200)
        assert dark > 500, f"{page.name} looks blank ({dark} dark pixels)"


def test_the_manifest_verifies_and_any_tampering_fails(env: Path, pack: Path) -> None:
    ok = vcops(env, "report", "verify-evidence", str(pack))
    assert ok.returncode == 0 and "evidence pack intact" in ok.stdout, ok.stderr
    subprocess.run(["sha256sum", "-c", "MANIFEST"], cwd=pack, capture_output=True, check=True)
    for name in ("report.html", "report.pdf", "evidence.json", "controller.pub"):
        copy = env / f"copy-{name}"
        shutil.copytree(pack, copy)
        with (copy / name).open("ab") as f:
            f.write(b" ")
        bad = vcops(env, "report", "verify-evidence", str(copy))
        assert bad.returncode == 1 and f"{name}: changed since the pack was signed" in bad.stdout
    forged = env / "copy-manifest"
    shutil.copytree(pack, forged)
    text = (forged / "MANIFEST").read_text().replace("report.pdf", "report.PDF")
    (forged / "MANIFEST").write_text(text)
    bad = vcops(env, "report", "verify-evidence", str(forged))
    assert bad.returncode == 1 and "MANIFEST: the signature does not verify" in bad.stdout
    other = vcops(
        env, "report", "verify-evidence", str(pack), "--pubkey", str(env / "keys" / "mallory.pub")
    )
    assert other.returncode == 1 and "the signature does not verify" in other.stdout
