"""``vcops scan`` on a terminal: open findings rolled up by control, not host by host.

Six hosts failing the same control are one row with a count of 6 (the long form is
``scan --details``); hostile host names and titles still print verbatim.
"""

from __future__ import annotations

import io

from rich.console import Console

from vcops.cli.scan_cmds import render_scan
from vcops.findings import ControlResult, TargetOutcome
from vcops.findings_store import FindingView
from vcops.scan import ScanReport

HOSTS = [f"sbc-{i:02d}" for i in range(1, 7)]
HOSTILE = "[/x] [smtp]"


def _finding(i: int, target: str, control: str, title: str, status: str = "open") -> FindingView:
    return FindingView(
        id=i,
        target=target,
        control_id=control,
        clause="3.2.1",
        severity="high",
        title=title,
        expected="no",
        actual="yes",
        first_seen="2026-11-30T10:00:00",
        last_seen="2026-11-30T10:00:00",
        resolved_at=None,
        status=status,
    )


def _report() -> ScanReport:
    open_ = [_finding(i, h, "SSH-ROOT", "root login over SSH") for i, h in enumerate(HOSTS)]
    open_.append(_finding(99, f"bad {HOSTILE}", "NTP-SYNC", f"title {HOSTILE}", "waived"))
    outcomes = [
        TargetOutcome(
            target=h,
            kind="server",
            status="scanned",
            results=[
                ControlResult(
                    target=h,
                    control_id="SSH-ROOT",
                    clause="3.2.1",
                    severity="high",
                    title="root login over SSH",
                    status="fail",
                    expected="no",
                    actual="yes",
                )
            ],
        )
        for h in HOSTS
    ]
    return ScanReport(
        scan_id=7,
        started_at="2026-11-30T10:00:00",
        finished_at="2026-11-30T10:00:01",
        selection="all",
        outcomes=outcomes,
        new=[],
        resolved=[],
        open=open_,
        passed=0,
        failed=6,
        unknown_checks=0,
        score=0.0,
    )


def _render(details: bool) -> list[str]:
    buf = io.StringIO()
    console = Console(file=buf, width=200, markup=False, color_system=None)
    render_scan(console, _report(), details=details)
    return buf.getvalue().splitlines()


def test_six_hosts_with_the_same_finding_are_one_row_with_count_6() -> None:
    lines = _render(details=False)
    rows = [line for line in lines if "SSH-ROOT" in line]
    assert len(rows) == 1, lines
    cells = [c.strip() for c in rows[0].split("│")]
    assert "6" in cells and "root login over SSH" in cells
    assert "sbc-01, sbc-02, sbc-03, sbc-04, sbc-05 +1" in cells
    waived = [line for line in lines if "NTP-SYNC" in line]
    assert len(waived) == 1 and f"title {HOSTILE}" in waived[0] and "(1 waived)" in waived[0]
    assert f"bad {HOSTILE}" in waived[0]
    # then the per-target summary, then the score
    summary = [i for i, line in enumerate(lines) if "drift" in line and "sbc-" in line]
    assert len(summary) == 6 and min(summary) > lines.index(rows[0])
    assert "0.0% compliant" in lines[-1]


def test_details_restores_one_row_per_finding() -> None:
    lines = _render(details=True)
    assert len([line for line in lines if "SSH-ROOT" in line]) == 6
    assert any(f"bad {HOSTILE}" in line and "NTP-SYNC" in line for line in lines)
