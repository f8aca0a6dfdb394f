"""The drift report's subject and grouping, and the trend chart PNG."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta

from vcops.findings import Waiver
from vcops.findings_store import FindingView
from vcops.report.chart import trend_png
from vcops.report.drift import UnknownTarget, build_report

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def view(
    target: str, control: str, clause: str, severity: str, status: str = "open"
) -> FindingView:
    return FindingView(
        id=1,
        target=target,
        control_id=control,
        clause=clause,
        severity=severity,
        title="t",
        expected="e",
        actual="a",
        first_seen="2026-11-27",
        last_seen="2026-11-28",
        resolved_at=None,
        status=status,
    )


def test_subject_and_groups() -> None:
    open_ = [
        view("b", "VC-SSH-001", "3.2.1", "high"),
        view("a", "VC-PATCH-002", "3.2.2", "high"),
        view("a", "VC-SSH-006", "3.2.1", "medium"),
        view("a", "VC-SSH-001", "3.2.1", "high"),
        view("c", "VC-SSH-007", "3.2.1", "low", status="waived"),
    ]
    waivers = [
        Waiver(
            id=1,
            control_id="VC-SSH-007",
            hosts="c",
            reason="r",
            approved_by="dana",
            created_by="x",
            created_at=NOW - timedelta(days=60),
            expires_at=NOW + timedelta(days=days),
        )
        for days in (3, 40)
    ]
    rep = build_report(
        now=NOW,
        since=None,
        new=open_[:1],
        resolved=[],
        open_=open_,
        unknown=[UnknownTarget(target="z", error="timeout")],
        waivers=waivers,
        scores=[50, 90.5],
        score=90.5,
    )
    assert rep.subject == "vcops drift: 1 new, 0 resolved, 4 open, 90.5% compliant, 1 unknown hosts"
    groups = rep.groups("open")
    assert [(g.clause, g.severity) for g in groups] == [
        ("3.2.1", "high"),
        ("3.2.1", "medium"),
        ("3.2.1", "low"),
        ("3.2.2", "high"),
    ]
    assert list(groups[0].hosts) == ["a", "b"] and groups[0].count == 2
    assert [w.expires_at for w in rep.expiring_waivers] == [NOW + timedelta(days=3)]


def test_trend_png_is_a_valid_png() -> None:
    data = trend_png([40.0, 70.0, 95.0])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (320, 90)
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == height * (1 + 3 * width)
    assert trend_png([]) != data  # empty history still renders
