"""The compliance evidence pack (Code of Practice 3.2, and 3.3): what an auditor asks for,
read from the store for a period and signed by the controller.

:func:`collect` gathers the data (pure reads, ``now`` a parameter); :func:`patch_latency`
is the pure 3.2.2 computation; :mod:`vcops.report.evidence_pack` writes the files
(HTML, PDF, JSON), the ``MANIFEST`` and its signature, and verifies a pack.

Patch latency: a security update is *sighted* the first time a scan finds it pending on a
host (``package_sightings``); it counts as *installed* at the first later scan that
reached the host and no longer found it pending. Days between the two are its latency;
one still pending past ``security_update_max_age_days`` is listed as overdue.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from vcops import dashboard
from vcops.audit import VerifyResult
from vcops.baseline.catalog import all_controls
from vcops.baseline.settings import settings_for
from vcops.errors import VcopsError
from vcops.findings import Waiver
from vcops.findings_store import (
    FindingView,
    ScorePoint,
    list_findings,
    list_waivers,
    package_sightings,
    scans_reached,
    score_history,
)
from vcops.inventory.models import Inventory
from vcops.store import Store
from vcops.window.store import list_windows

SEVERITIES = ("critical", "high", "medium", "low")


class CatalogEntry(BaseModel):
    id: str
    clause: str
    severity: str
    title: str


class Remediation(BaseModel):
    """Time to remediate the findings closed in the period, for one severity."""

    severity: str
    closed: int
    mean_days: float | None
    median_days: float | None
    max_days: float | None


class Sighting(BaseModel):
    """One security update on one host: first seen pending, and when it was installed."""

    target: str
    package: str
    version: str
    first_seen: datetime
    installed_at: datetime | None
    days: float


class HostLatency(BaseModel):
    target: str
    installed: int
    mean_days: float | None
    max_days: float | None
    pending: int
    overdue: list[Sighting]


class PatchLatency(BaseModel):
    limit_days: int
    hosts: list[HostLatency]
    installed: int
    mean_days: float | None
    median_days: float | None
    max_days: float | None
    pending: int
    overdue: list[Sighting]


class WindowEvidence(BaseModel):
    id: str
    title: str
    change_id: str
    requester: str
    start: datetime
    state: str
    terms_sha256: str
    plan_intact: bool
    hosts: int
    quorum: int
    approvals: list[dict[str, object]]
    valid_approvals: int
    counts: dict[str, int]
    packages_installed: int
    rolled_back: list[str]
    customer_notice: list[dict[str, object]]


class AuditEvidence(BaseModel):
    verdict: VerifyResult
    head_id: int | None
    head_hash: str | None
    entries_in_period: int
    controller_key: str


class Evidence(BaseModel):
    """Everything in the pack (the JSON is this model)."""

    period_from: datetime
    period_to: datetime
    generated_at: datetime
    catalog: list[CatalogEntry]
    scans: list[ScorePoint]
    findings_opened: list[FindingView]
    findings_closed: list[FindingView]
    remediation: list[Remediation]
    patch_latency: PatchLatency
    waivers: list[Waiver]
    windows: list[WindowEvidence]
    audit: AuditEvidence

    @property
    def clauses(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for c in self.catalog:
            out[c.clause] += 1
        return dict(sorted(out.items()))


def _stats(days: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    if not days:
        return None, None, None
    return (
        round(statistics.fmean(days), 2),
        round(statistics.median(days), 2),
        round(max(days), 2),
    )


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def remediation(closed: Sequence[FindingView]) -> list[Remediation]:
    """Days from first seen to resolved, by severity."""
    out = []
    for severity in SEVERITIES:
        days = [
            (_when(f.resolved_at) - _when(f.first_seen)).total_seconds() / 86400
            for f in closed
            if f.severity == severity and f.resolved_at
        ]
        mean, median, top = _stats(days)
        out.append(
            Remediation(
                severity=severity,
                closed=len(days),
                mean_days=mean,
                median_days=median,
                max_days=top,
            )
        )
    return out


def patch_latency(
    sightings: Sequence[tuple[str, str, str, int, int]],
    scans_of: dict[str, list[datetime]],
    *,
    limit_days: dict[str, int],
    default_limit: int,
    now: datetime,
    start: datetime,
    end: datetime,
) -> PatchLatency:
    """Latency per host and fleet-wide (pure).

    Args:
        sightings: (target, package, version, first seen, last seen), times as epoch seconds.
        scans_of: target -> start times of the scans that reached it, oldest first.
        limit_days: target -> its ``security_update_max_age_days``.
    """
    per_host: dict[str, list[Sighting]] = defaultdict(list)
    for target, package, version, first, last in sightings:
        first_seen = datetime.fromtimestamp(first, UTC)
        last_seen = datetime.fromtimestamp(last, UTC)
        later = [t for t in scans_of.get(target, []) if t > last_seen + timedelta(seconds=1)]
        installed = later[0] if later else None
        if installed is not None and not start <= installed <= end:
            continue
        if installed is None and first_seen > end:
            continue
        days = ((installed or now) - first_seen).total_seconds() / 86400
        per_host[target].append(
            Sighting(
                target=target,
                package=package,
                version=version,
                first_seen=first_seen,
                installed_at=installed,
                days=round(days, 2),
            )
        )
    hosts = []
    for target in sorted(per_host):
        items = per_host[target]
        done = [s.days for s in items if s.installed_at is not None]
        pending = [s for s in items if s.installed_at is None]
        mean, _median, top = _stats(done)
        limit = limit_days.get(target, default_limit)
        hosts.append(
            HostLatency(
                target=target,
                installed=len(done),
                mean_days=mean,
                max_days=top,
                pending=len(pending),
                overdue=[s for s in pending if s.days > limit],
            )
        )
    every = [s.days for items in per_host.values() for s in items if s.installed_at is not None]
    mean, median, top = _stats(every)
    return PatchLatency(
        limit_days=default_limit,
        hosts=hosts,
        installed=len(every),
        mean_days=mean,
        median_days=median,
        max_days=top,
        pending=sum(h.pending for h in hosts),
        overdue=[s for h in hosts for s in h.overdue],
    )


def _latency(
    inv: Inventory, store: Store, start: datetime, end: datetime, now: datetime
) -> PatchLatency:
    scans_of = scans_reached(store)
    default = settings_for({}).security_update_max_age_days
    limits = {}
    for server in inv.servers:
        try:
            limits[server.name] = settings_for(inv.host_vars(server)).security_update_max_age_days
        except (ValueError, VcopsError):
            limits[server.name] = default
    return patch_latency(
        package_sightings(store),
        scans_of,
        limit_days=limits,
        default_limit=default,
        now=now,
        start=start,
        end=end,
    )


def _window(inv: Inventory, store: Store, window_id: str) -> WindowEvidence:
    view = dashboard.window_view(inv, store, window_id)
    w = view.window
    notices = [
        {k: e.detail.get(k) for k in ("to", "subject", "sent", "errors", "skipped")} | {"at": e.ts}
        for e in store.audit_entries(action="notify.customers")
        if e.target == w.id
    ]
    counts = view.summary.get("counts")
    rolled = view.summary.get("rolled_back")
    installed = view.summary.get("packages_installed")
    return WindowEvidence(
        id=w.id,
        title=w.title,
        change_id=w.change_id,
        requester=w.requester,
        start=w.start,
        state=w.state,
        terms_sha256=view.terms_sha256,
        plan_intact=view.plan_intact,
        hosts=len(w.plan.hosts),
        quorum=view.quorum,
        approvals=[
            {
                "member": c.approval.member,
                "decision": c.approval.decision,
                "at": c.approval.at.isoformat(),
                "comment": c.approval.comment,
                "verified": c.valid,
                "problem": c.problem,
            }
            for c in view.approvals
        ],
        valid_approvals=view.approved,
        counts={str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {},
        packages_installed=int(installed) if isinstance(installed, int) else 0,
        rolled_back=[str(h) for h in rolled] if isinstance(rolled, list) else [],
        customer_notice=notices,
    )


def collect(
    inv: Inventory, store: Store, start: datetime, end: datetime, *, now: datetime
) -> Evidence:
    """Everything the pack shows for ``start`` <= time <= ``end``."""
    findings = list_findings(store)
    opened = [f for f in findings if start <= _when(f.first_seen) <= end]
    closed = [f for f in findings if f.resolved_at and start <= _when(f.resolved_at) <= end]
    scans = [p for p in score_history(store, 100_000, since=start) if p.at <= end]
    waivers = [w for w in list_waivers(store) if w.created_at <= end and w.expires_at >= start]
    windows = [
        w for w in list_windows(store) if start <= w.start <= end or start <= w.created_at <= end
    ]
    entries = store.audit_entries()
    head = entries[-1] if entries else None
    return Evidence(
        period_from=start,
        period_to=end,
        generated_at=now,
        catalog=[
            CatalogEntry(id=c.id, clause=c.clause, severity=c.severity, title=c.title)
            for c in all_controls()
        ],
        scans=scans,
        findings_opened=opened,
        findings_closed=closed,
        remediation=remediation(closed),
        patch_latency=_latency(inv, store, start, end, now),
        waivers=waivers,
        windows=[_window(inv, store, w.id) for w in windows],
        audit=AuditEvidence(
            verdict=dashboard.audit_verdict(store),
            head_id=head.id if head else None,
            head_hash=head.hash if head else None,
            entries_in_period=sum(start <= _when(e.ts) <= end for e in entries),
            controller_key=store.public_key() if store.key_file is not None else "",
        ),
    )
