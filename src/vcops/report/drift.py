"""The drift report: what the change board and security lead read after a scan.

Pure: findings, waivers, scores and ``now`` in; a :class:`DriftReport` out, ready for
the text and HTML templates and the JSON attachment.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from urllib.parse import quote

from pydantic import BaseModel

from vcops.findings import Waiver
from vcops.findings_store import FindingView, ScorePoint

SEVERITY_ORDER = ("critical", "high", "medium", "low")
#: Host names shown per rolled-up control in the mail; the rest are counted (and listed
#: in the JSON attachment and on the dashboard).
NAMES_SHOWN = 5
#: New or resolved findings listed one by one up to this many; past it (a first scan, a
#: fleet-wide change) they are rolled up by control like the open ones.
FULL_LIST_LIMIT = 60
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


class ControlRollup(BaseModel):
    """The open findings of one control across the fleet: one line in the mail, with the
    most common actual value and on how many hosts it was seen."""

    control_id: str
    clause: str
    clause_title: str
    severity: str
    title: str
    hosts: list[str]
    waived: int
    since: str
    actual: str
    actual_hosts: int

    @property
    def shown(self) -> list[str]:
        return self.hosts[:NAMES_SHOWN]

    @property
    def more(self) -> int:
        return max(0, len(self.hosts) - NAMES_SHOWN)


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
    history: list[ScorePoint]
    score: float
    base_url: str | None = None

    @property
    def scores(self) -> list[float]:
        return [p.score for p in self.history]

    def rollup(self, which: str = "open") -> list[ControlRollup]:
        """Findings (open by default) by control (clause, severity, most hosts first)."""
        findings: list[FindingView] = getattr(self, which)
        return rollup(findings)

    def listed(self, which: str) -> bool:
        """Whether ``which`` (new or resolved) is short enough to list finding by finding."""
        return len(getattr(self, which)) <= FULL_LIST_LIMIT

    def link(self, kind: str, name: str) -> str | None:
        """The dashboard page of a control or host, when ``[web] base_url`` is set."""
        if not self.base_url:
            return None
        return f"{self.base_url}/{kind}/{quote(name, safe='')}"

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


def rollup(findings: list[FindingView]) -> list[ControlRollup]:
    """Findings by control (clause, then severity, then most hosts first)."""
    by_control: dict[str, list[FindingView]] = defaultdict(list)
    for f in findings:
        by_control[f.control_id].append(f)
    out = []
    for control_id, group in by_control.items():
        first = group[0]
        actual, actual_hosts = Counter(f.actual for f in group).most_common(1)[0]
        out.append(
            ControlRollup(
                control_id=control_id,
                clause=first.clause,
                clause_title=CLAUSES.get(first.clause, first.clause),
                severity=first.severity,
                title=first.title,
                hosts=sorted({f.target for f in group}),
                waived=sum(f.status == "waived" for f in group),
                since=min((f.first_seen for f in group), key=datetime.fromisoformat),
                actual=actual,
                actual_hosts=actual_hosts,
            )
        )
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(
        out, key=lambda r: (r.clause, rank.get(r.severity, 9), -len(r.hosts), r.control_id)
    )


def build_report(
    *,
    now: datetime,
    since: datetime | None,
    new: list[FindingView],
    resolved: list[FindingView],
    open_: list[FindingView],
    unknown: list[UnknownTarget],
    waivers: list[Waiver],
    history: list[ScorePoint],
    score: float,
    base_url: str | None = None,
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
        history=history,
        score=score,
        base_url=base_url,
    )
