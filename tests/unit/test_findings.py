"""Drift bookkeeping: new, persisting, resolved; unknown never resolves; waivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vcops.findings import (
    ControlResult,
    OpenFinding,
    TargetOutcome,
    Waiver,
    compliance_score,
    compute_drift,
    waiver_verdict,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SEEN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def r(target: str, control: str, status: str) -> ControlResult:
    return ControlResult(
        target=target,
        control_id=control,
        clause="3.2.1",
        severity="high",
        title="t",
        status=status,
        expected="e",
        actual="a",
    )  # type: ignore[arg-type]


def scanned(target: str, *results: ControlResult) -> TargetOutcome:
    return TargetOutcome(target=target, kind="server", status="scanned", results=list(results))


def test_new_persisting_resolved() -> None:
    previous = [
        OpenFinding(id=1, target="a", control_id="C1", first_seen=SEEN),
        OpenFinding(id=2, target="a", control_id="C2", first_seen=SEEN),
    ]
    drift = compute_drift(
        previous, [scanned("a", r("a", "C1", "fail"), r("a", "C2", "pass"), r("a", "C3", "fail"))]
    )
    assert [x.control_id for x in drift.new] == ["C3"]
    assert [i for i, _ in drift.persisting] == [1]
    assert drift.resolved == [2]


def test_an_unreachable_target_resolves_nothing() -> None:
    previous = [OpenFinding(id=1, target="b", control_id="C1", first_seen=SEEN)]
    outcome = TargetOutcome(target="b", kind="server", status="unknown", error="timeout")
    drift = compute_drift(previous, [outcome])
    assert drift.resolved == [] and drift.untouched == [1] and drift.new == []


def test_an_undecided_check_neither_opens_nor_resolves() -> None:
    previous = [OpenFinding(id=1, target="a", control_id="C1", first_seen=SEEN)]
    drift = compute_drift(
        previous, [scanned("a", r("a", "C1", "unknown"), r("a", "C2", "unknown"))]
    )
    assert drift.resolved == [] and drift.new == [] and drift.untouched == [1]


def test_a_control_that_no_longer_applies_resolves() -> None:
    previous = [OpenFinding(id=7, target="a", control_id="VC-AST-001", first_seen=SEEN)]
    assert compute_drift(previous, [scanned("a", r("a", "C1", "pass"))]).resolved == [7]


def _waiver(id_: int, expires: datetime) -> Waiver:
    return Waiver(
        id=id_,
        control_id="C1",
        hosts="a",
        reason="vendor fix pending",
        approved_by="dana",
        expires_at=expires,
        created_at=NOW - timedelta(days=30),
        created_by="ops",
    )


def test_waivers_mark_and_expire() -> None:
    active = _waiver(1, NOW + timedelta(days=3))
    expired = _waiver(2, NOW - timedelta(days=1))
    covered = {1: frozenset({"a"}), 2: frozenset({"a"})}
    v = waiver_verdict("a", "C1", [active, expired], covered, NOW)
    assert v.waived_by == 1 and "waived by #1 until 2026-12-01" in v.note
    v = waiver_verdict("a", "C1", [expired], covered, NOW)
    assert (
        v.waived_by is None
        and v.expired == [2]
        and "expired 2026-11-27: no longer hidden" in v.note
    )
    assert waiver_verdict("b", "C1", [active], covered, NOW).waived_by is None
    assert waiver_verdict("a", "C2", [active], covered, NOW).waived_by is None


def test_score_counts_decided_checks_of_reached_targets() -> None:
    outcomes = [
        scanned(
            "a",
            r("a", "C1", "pass"),
            r("a", "C2", "fail"),
            r("a", "C3", "unknown"),
            r("a", "C4", "not_applicable"),
            r("a", "C5", "pass"),
            r("a", "C6", "pass"),
        ),
        TargetOutcome(target="z", kind="server", status="unknown"),
    ]
    assert compliance_score(outcomes) == (3, 1, 1, 75.0)
