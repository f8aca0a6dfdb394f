"""Findings, drift and waivers: the pure core of a scan's bookkeeping.

Given the findings still open from earlier scans and what this scan saw, decide what
is *new*, *persisting* and *resolved*; given the waivers, mark findings *waived*
(never dropped) and say when a waiver has expired. No database, no clock: the
callers pass ``now``.

Rules:

- only targets this scan actually reached can resolve a finding: an unreachable
  target keeps every open finding (it is unknown, not fixed);
- a check that could not decide (*unknown*) neither opens nor resolves a finding;
- a control that no longer applies to a target (its roles changed) resolves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from vcops.baseline.model import Status


class ControlResult(BaseModel):
    """One control's verdict on one target in one scan."""

    target: str
    control_id: str
    clause: str
    severity: str
    title: str
    status: Status
    expected: str
    actual: str
    detail: str = ""


class TargetOutcome(BaseModel):
    """What a scan got from one target: results, or *unknown* with the reason."""

    target: str
    kind: Literal["server", "device"]
    status: Literal["scanned", "unknown"]
    error: str = ""
    seconds: float = 0.0
    results: list[ControlResult] = []
    #: Servers: whether the pending upgrades were ``computed`` on the host this scan or
    #: ``cached`` (nothing apt reads had changed since the last scan: see
    #: :mod:`vcops.facts.upgrades`); None when unknown or not a server.
    upgrades: Literal["cached", "computed"] | None = None
    #: Servers: whether needrestart ran on the host this scan (``computed``) or was
    #: skipped because nothing it reads had changed since it last found no service to
    #: restart (``cached``); None when unknown or not a server.
    needrestart: Literal["cached", "computed"] | None = None


class OpenFinding(BaseModel):
    """A finding still open before this scan."""

    id: int
    target: str
    control_id: str
    first_seen: datetime


class Drift(BaseModel):
    """What changed since the previous scan."""

    new: list[ControlResult] = []
    persisting: list[tuple[int, ControlResult]] = []
    resolved: list[int] = []
    untouched: list[int] = []


def compute_drift(open_findings: Iterable[OpenFinding], outcomes: Iterable[TargetOutcome]) -> Drift:
    """New, persisting and resolved findings of this scan against the open ones."""
    open_by_key = {(f.target, f.control_id): f for f in open_findings}
    drift = Drift()
    seen: set[tuple[str, str]] = set()
    scanned: set[str] = set()
    undecided: set[tuple[str, str]] = set()
    for outcome in outcomes:
        if outcome.status != "scanned":
            continue
        scanned.add(outcome.target)
        for result in outcome.results:
            key = (result.target, result.control_id)
            if result.status == "unknown":
                undecided.add(key)
                continue
            if result.status != "fail":
                continue
            seen.add(key)
            if key in open_by_key:
                drift.persisting.append((open_by_key[key].id, result))
            else:
                drift.new.append(result)
    for key, finding in open_by_key.items():
        if key in seen:
            continue
        if finding.target in scanned and key not in undecided:
            drift.resolved.append(finding.id)
        else:
            drift.untouched.append(finding.id)
    return drift


class Waiver(BaseModel):
    """An accepted deviation with its justification, approver and expiry."""

    id: int
    control_id: str
    hosts: str
    reason: str
    approved_by: str
    expires_at: datetime
    created_at: datetime
    created_by: str

    def active(self, now: datetime) -> bool:
        return now < self.expires_at


class WaiverVerdict(BaseModel):
    """Whether a finding is waived, and any expired waiver that no longer hides it."""

    waived_by: int | None = None
    expired: list[int] = []
    note: str = ""


def waiver_verdict(
    target: str,
    control_id: str,
    waivers: Iterable[Waiver],
    covered: Mapping[int, frozenset[str]],
    now: datetime,
) -> WaiverVerdict:
    """Match a finding against the waivers (``covered`` maps waiver id -> its target names)."""
    verdict = WaiverVerdict()
    for w in waivers:
        if w.control_id != control_id or target not in covered.get(w.id, frozenset()):
            continue
        if w.active(now):
            verdict.waived_by = w.id
            verdict.note = (
                f"waived by #{w.id} until {w.expires_at.date()} ({w.approved_by}: {w.reason})"
            )
            return verdict
        verdict.expired.append(w.id)
    if verdict.expired:
        latest = max((w for w in waivers if w.id in verdict.expired), key=lambda w: w.expires_at)
        verdict.note = f"waiver #{latest.id} expired {latest.expires_at.date()}: no longer hidden"
    return verdict


def compliance_score(outcomes: Iterable[TargetOutcome]) -> tuple[int, int, int, float]:
    """(passed, failed, unknown checks, percent passed of decided checks) over reached targets."""
    passed = failed = unknown = 0
    for outcome in outcomes:
        for r in outcome.results:
            if r.status == "pass":
                passed += 1
            elif r.status == "fail":
                failed += 1
            elif r.status == "unknown":
                unknown += 1
    decided = passed + failed
    return passed, failed, unknown, round(100.0 * passed / decided, 1) if decided else 0.0


def clause_scores(outcomes: Iterable[TargetOutcome]) -> dict[str, float]:
    """Percent passed of decided checks per Code of Practice clause, e.g.
    ``{"3.2.1": 91.7, "3.2.2": 75.0}`` (the same rule as :func:`compliance_score`)."""
    counts: dict[str, list[int]] = {}
    for outcome in outcomes:
        for r in outcome.results:
            if r.status in ("pass", "fail"):
                passed_failed = counts.setdefault(r.clause, [0, 0])
                passed_failed[0 if r.status == "pass" else 1] += 1
    return {
        clause: round(100.0 * p / (p + f), 1) for clause, (p, f) in sorted(counts.items()) if p + f
    }
