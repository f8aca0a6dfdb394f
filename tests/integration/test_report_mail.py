"""Drift reports by email against a real SMTP server (aiosmtpd) on loopback: STARTTLS with a
self-signed certificate and AUTH, both parts, the JSON attachment, the inline chart, no
secret; and the outbox: server down, then up, delivered exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.smtp_helpers import PASSWORD, free_port, make_cert, smtp_toml, start_server
from vcops.findings import ControlResult, TargetOutcome, compute_drift
from vcops.findings_store import record_scan
from vcops.store import open_store

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def workdir(tmp_path: Path, cert: tuple[Path, Path]) -> Iterator[tuple[Path, int]]:
    port = free_port()
    (tmp_path / "vcops.toml").write_text(
        smtp_toml(port, cert[0], "VCOPS_TEST_SMTP_PASSWORD")
        + '[recipients]\ndrift = ["secops@example.net", "board@example.net"]\n'
    )
    store = open_store(f"sqlite:///{tmp_path / '.vcops' / 'vcops.db'}", tmp_path / ".vcops")
    now = datetime.now(UTC)

    def result(target: str, control: str, status: str, actual: str) -> ControlResult:
        return ControlResult(
            target=target,
            control_id=control,
            clause="3.2.2" if control.startswith("VC-PATCH") else "3.2.1",
            severity="high",
            title=f"title of {control}",
            status=status,
            expected="x",
            actual=actual,
        )  # type: ignore[arg-type]

    for i, outcomes in enumerate(
        [
            [
                TargetOutcome(
                    target="kam-01",
                    kind="server",
                    status="scanned",
                    results=[
                        result("kam-01", "VC-SSH-001", "fail", "passwordauthentication yes"),
                        result("kam-01", "VC-PATCH-001", "fail", "<script>alert(1)</script>"),
                    ],
                )
            ],
            [
                TargetOutcome(
                    target="kam-01",
                    kind="server",
                    status="scanned",
                    results=[
                        result("kam-01", "VC-SSH-001", "pass", "no"),
                        result("kam-01", "VC-PATCH-001", "fail", "<script>alert(1)</script>"),
                    ],
                ),
                TargetOutcome(
                    target="sbc-01",
                    kind="server",
                    status="unknown",
                    error="sbc-01 (192.0.2.1:22): no answer within 10s",
                ),
            ],
        ]
    ):
        from vcops.findings_store import open_findings

        drift = compute_drift(open_findings(store), outcomes)
        record_scan(
            store,
            started_at=now + timedelta(minutes=i),
            finished_at=now + timedelta(minutes=i, seconds=5),
            actor="t",
            selection="all",
            outcomes=outcomes,
            drift=drift,
            score=(1, 1, 0, 50.0 + 25 * i),
            summary={},
        )
    yield tmp_path, port


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VCOPS_TEST_SMTP_PASSWORD": PASSWORD, "VCOPS_DATABASE_URL": ""}
    env.pop("VCOPS_DATABASE_URL")
    env.pop("VCOPS_CONFIG", None)
    return subprocess.run(
        [str(BIN / "vcops"), "-i", str(workdir / "noinventory"), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_drift_report_over_starttls(workdir: tuple[Path, int], cert: tuple[Path, Path]) -> None:
    root, port = workdir
    controller, handler = start_server(port, cert)
    try:
        proc = run(root, "report", "drift", "--email")
    finally:
        controller.stop()
    assert proc.returncode == 0, proc.stderr
    assert len(handler.messages) == 1
    msg = handler.messages[0]
    assert (
        msg["Subject"] == "vcops drift: 0 new, 1 resolved, 1 open, 75% compliant, 1 unknown hosts"
    )
    assert msg["To"] == "secops@example.net, board@example.net"
    text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert text.index("UNKNOWN HOSTS") < text.index("RESOLVED")  # unknown hosts at the top
    assert "sbc-01" in text and "VC-SSH-001" in text and "3.2.2 Update and patch" in text
    assert "&lt;script&gt;" in html and "<script>" not in html  # autoescaped
    assert 'src="cid:trend"' in html
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    assert parts["trend.png"].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    # matplotlib's chart, its plotted series equal to the scores stored with the scans
    import io
    import sqlite3

    from PIL import Image

    png = Image.open(io.BytesIO(parts["trend.png"].get_content()))
    assert "Matplotlib" in png.info["Software"]
    with sqlite3.connect(root / ".vcops" / "vcops.db") as db:
        stored = [r[0] for r in db.execute("SELECT score FROM scans ORDER BY id")]
    assert json.loads(png.info["Description"])["all controls"] == stored == [50.0, 75.0]
    findings = json.loads(parts["findings.json"].get_content())
    assert [f["control_id"] for f in findings["open"]] == ["VC-PATCH-001"]
    assert findings["unknown"][0]["target"] == "sbc-01"
    everything = msg.as_string() + proc.stdout + proc.stderr
    assert PASSWORD not in everything


def test_outbox_keeps_mail_while_the_server_is_down_and_sends_it_once(
    workdir: tuple[Path, int], cert: tuple[Path, Path]
) -> None:
    root, port = workdir
    down = run(root, "report", "drift", "--email")
    assert down.returncode == 1
    assert "mail not sent" in down.stderr and "outbox" in down.stderr
    assert len(list((root / ".vcops" / "outbox" / "queued").glob("*.eml"))) == 1
    controller, handler = start_server(port, cert)
    try:
        up = run(root, "report", "outbox", "--flush")
        again = run(root, "report", "outbox", "--flush")
    finally:
        controller.stop()
    assert up.returncode == 0 and again.returncode == 0, up.stderr + again.stderr
    assert len(handler.messages) == 1
    assert list((root / ".vcops" / "outbox" / "queued").glob("*.eml")) == []
    # The next report also flushes first: still exactly one copy of the first message.
    controller, handler2 = start_server(port, cert)
    try:
        assert run(root, "report", "drift", "--email").returncode == 0
    finally:
        controller.stop()
    assert len(handler2.messages) == 1
