"""The evidence pack's pure computations: patch latency (3.2.2) from sightings and the
scans that reached each host, and time to remediate by severity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vcops.evidence import patch_latency, remediation
from vcops.findings_store import FindingView

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def epoch(days: float) -> int:
    return int(at(days).timestamp())


def test_patch_latency_per_host_and_fleet() -> None:
    scans = {
        "kam-01": [at(d) for d in (0, 1, 2, 3, 10)],
        "ast-01": [at(d) for d in (-38, 0, 10, 20)],
    }
    sightings = [
        ("kam-01", "openssl", "3.0.15", epoch(0), epoch(2)),  # gone at the scan of day 3
        ("kam-01", "libc6", "2.36-9", epoch(1), epoch(1)),  # gone at day 2
        ("ast-01", "asterisk", "20.1", epoch(0), epoch(20)),  # still pending at the last scan
        ("ast-01", "old", "1", epoch(-40), epoch(-39)),  # installed before the period
    ]
    result = patch_latency(
        sightings, scans, limit_days={"ast-01": 14}, default_limit=7,
        now=at(25), start=at(-1), end=at(30),
    )  # fmt: skip
    hosts = {h.target: h for h in result.hosts}
    assert (hosts["kam-01"].installed, hosts["kam-01"].mean_days, hosts["kam-01"].max_days) == (
        2,
        2.0,
        3.0,
    )
    assert hosts["kam-01"].pending == 0
    ast = hosts["ast-01"]
    assert (ast.installed, ast.pending) == (0, 1)
    assert [(s.package, s.days) for s in ast.overdue] == [("asterisk", 25.0)]  # 25 > 14 days
    assert (result.installed, result.mean_days, result.median_days, result.max_days) == (
        2,
        2.0,
        2.0,
        3.0,
    )
    assert result.pending == 1 and len(result.overdue) == 1


def test_remediation_by_severity() -> None:
    def finding(severity: str, first: float, resolved: float | None) -> FindingView:
        return FindingView(
            id=1, target="h", control_id="C", clause="3.2.1", severity=severity, title="t",
            expected="e", actual="a", first_seen=at(first).isoformat(), last_seen=at(first).isoformat(),
            resolved_at=at(resolved).isoformat() if resolved is not None else None,
        )  # fmt: skip

    rows = {
        r.severity: r
        for r in remediation([finding("high", 0, 2), finding("high", 0, 4), finding("low", 1, 1.5)])
    }
    assert (rows["high"].closed, rows["high"].mean_days, rows["high"].max_days) == (2, 3.0, 4.0)
    assert (rows["low"].closed, rows["low"].median_days) == (1, 0.5)
    assert rows["critical"].closed == 0 and rows["critical"].mean_days is None
