"""The drift report: what the change board and security lead read after a scan.

Pure: findings, waivers, scores and ``now`` in; a :class:`DriftReport` out, ready for
the text and HTML templates and the JSON attachment.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from pydantic import BaseModel

from vcops.findings import Waiver
from vcops.findings_store import FindingView

SEVERITY_ORDER = ("critical", "high", "medium", "low")
CLAUSES = {"3.2.1": "3.2.1 Security measures", "3.2.2": "3.2.2 Update and patch"}


class Group(BaseModel):
    """Findings of one clause and severity, by host."""

    clause: str
    clause_title: str
    severity: str
    hosts: dict[str, list[FindingView]]

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.hosts.values())


class UnknownTarget(BaseModel):
    target: str
    error: str


class DriftReport(BaseModel):
    generated_at: datetime
    since: datetime | None
    new: list[FindingView]
    resolved: list[FindingView]
    open: list[FindingView]
    unknown: list[UnknownTarget]
    expiring_waivers: list[Waiver]
    scores: list[float]
    score: float

    @property
    def subject(self) -> str:
        unknown = f", {len(self.unknown)} unknown hosts" if self.unknown else ""
        return (
            f"vcops drift: {len(self.new)} new, {len(self.resolved)} resolved, "
            f"{sum(f.status == 'open' for f in self.open)} open, {self.score:g}% compliant{unknown}"
        )

    def groups(self, which: str) -> list[Group]:
        findings: list[FindingView] = getattr(self, which)
        buckets: dict[tuple[str, str], dict[str, list[FindingView]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for f in findings:
            buckets[(f.clause, f.severity)][f.target].append(f)
        out = []
        for clause in sorted(CLAUSES):
            for severity in SEVERITY_ORDER:
                hosts = buckets.get((clause, severity))
                if hosts:
                    out.append(
                        Group(
                            clause=clause,
                            clause_title=CLAUSES[clause],
                            severity=severity,
                            hosts={
                                h: sorted(v, key=lambda f: f.control_id)
                                for h, v in sorted(hosts.items())
                            },
                        )
                    )
        return out


def build_report(
    *,
    now: datetime,
    since: datetime | None,
    new: list[FindingView],
    resolved: list[FindingView],
    open_: list[FindingView],
    unknown: list[UnknownTarget],
    waivers: list[Waiver],
    scores: list[float],
    score: float,
) -> DriftReport:
    soon = now + timedelta(days=14)
    expiring = [w for w in waivers if now < w.expires_at <= soon]
    return DriftReport(
        generated_at=now,
        since=since,
        new=new,
        resolved=resolved,
        open=open_,
        unknown=unknown,
        expiring_waivers=sorted(expiring, key=lambda w: w.expires_at),
        scores=scores,
        score=score,
    )
