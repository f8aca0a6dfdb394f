"""Scans, findings, waivers, package sightings and the pending-upgrades cache in the
database."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import insert, select, update

from vcops.facts.upgrades import UpgradeCache
from vcops.findings import ControlResult, Drift, OpenFinding, TargetOutcome, Waiver
from vcops.store import Store
from vcops.tables import (
    FindingRow,
    PackageSightingRow,
    ScanRow,
    ScanTargetRow,
    UpgradeCacheRow,
    WaiverRow,
)


class FindingView(BaseModel):
    """A finding as shown to people and in JSON (times as ISO 8601 text in UTC, the
    form they always had in the JSON output)."""

    id: int
    target: str
    control_id: str
    clause: str
    severity: str
    title: str
    expected: str
    actual: str
    first_seen: str
    last_seen: str
    resolved_at: str | None
    status: str = "open"
    waiver: str = ""


def _view(row: FindingRow) -> FindingView:
    return FindingView(
        id=row.id,
        target=row.target,
        control_id=row.control_id,
        clause=row.clause,
        severity=row.severity,
        title=row.title,
        expected=row.expected,
        actual=row.actual,
        first_seen=row.first_seen.isoformat(),
        last_seen=row.last_seen.isoformat(),
        resolved_at=row.resolved_at.isoformat() if row.resolved_at else None,
        status="open" if row.resolved_at is None else "resolved",
    )


def view_of(result: ControlResult, now: datetime) -> FindingView:
    """A finding view of one failing result that is not (or not yet) stored."""
    return FindingView(
        id=0,
        target=result.target,
        control_id=result.control_id,
        clause=result.clause,
        severity=result.severity,
        title=result.title,
        expected=result.expected,
        actual=result.actual,
        first_seen=now.isoformat(),
        last_seen=now.isoformat(),
        resolved_at=None,
    )


def open_findings(store: Store) -> list[OpenFinding]:
    with store.session() as s:
        rows = s.execute(select(FindingRow).where(FindingRow.resolved_at.is_(None))).scalars()
        return [
            OpenFinding(id=r.id, target=r.target, control_id=r.control_id, first_seen=r.first_seen)
            for r in rows
        ]


def list_findings(
    store: Store,
    *,
    status: str | None = None,
    target: str | None = None,
    control: str | None = None,
    first_seen_after: datetime | None = None,
    resolved_after: datetime | None = None,
) -> list[FindingView]:
    """Findings by target and control; ``first_seen_after`` / ``resolved_after`` keep
    those first seen / resolved after that time (compared in SQL)."""
    with store.session() as s:
        query = select(FindingRow).order_by(FindingRow.target, FindingRow.control_id, FindingRow.id)
        if status in {"open", "waived"}:
            query = query.where(FindingRow.resolved_at.is_(None))
        elif status == "resolved":
            query = query.where(FindingRow.resolved_at.is_not(None))
        if target:
            query = query.where(FindingRow.target == target)
        if control:
            query = query.where(FindingRow.control_id == control.upper())
        if first_seen_after is not None:
            query = query.where(FindingRow.first_seen > first_seen_after)
        if resolved_after is not None:
            query = query.where(FindingRow.resolved_at > resolved_after)
        return [_view(r) for r in s.execute(query).scalars()]


def record_scan(
    store: Store,
    *,
    started_at: datetime,
    finished_at: datetime,
    actor: str,
    selection: str,
    outcomes: list[TargetOutcome],
    drift: Drift,
    score: tuple[int, int, int, float],
    summary: dict[str, object],
) -> int:
    """Store one scan, its per-target status and the finding changes; return the scan id."""
    passed, failed, unknown, percent = score
    now = finished_at
    with store.session(write=True) as s:
        scan = ScanRow(
            started_at=started_at,
            finished_at=now,
            actor=actor,
            selection=selection,
            targets=len(outcomes),
            unknown_targets=sum(o.status == "unknown" for o in outcomes),
            passed=passed,
            failed=failed,
            unknown_checks=unknown,
            score=percent,
            summary=json.dumps(summary, default=str),
        )
        s.add(scan)
        s.flush()
        if outcomes:
            s.execute(
                insert(ScanTargetRow),
                [
                    {
                        "scan_id": scan.id,
                        "target": o.target,
                        "status": o.status,
                        "error": o.error,
                        "seconds": o.seconds,
                    }
                    for o in outcomes
                ],
            )
        if drift.new:  # one multi-row INSERT, not one ORM object per finding
            s.execute(insert(FindingRow), [_new_values(r, scan.id, now) for r in drift.new])
        if drift.persisting:  # bulk UPDATE by primary key
            s.execute(
                update(FindingRow),
                [
                    {
                        "id": finding_id,
                        "last_seen": now,
                        "last_scan_id": scan.id,
                        "actual": result.actual,
                        "expected": result.expected,
                        "severity": result.severity,
                    }
                    for finding_id, result in drift.persisting
                ],
            )
        if drift.resolved:
            s.execute(
                update(FindingRow),
                [{"id": finding_id, "resolved_at": now} for finding_id in drift.resolved],
            )
        return scan.id


def _new_values(result: ControlResult, scan_id: int, now: datetime) -> dict[str, object]:
    return {
        "target": result.target,
        "control_id": result.control_id,
        "clause": result.clause,
        "severity": result.severity,
        "title": result.title,
        "expected": result.expected,
        "actual": result.actual,
        "first_seen": now,
        "last_seen": now,
        "resolved_at": None,
        "first_scan_id": scan_id,
        "last_scan_id": scan_id,
    }


class ScorePoint(BaseModel):
    """One scan's compliance score, overall and per clause (clauses are empty for scans
    recorded before per-clause scores were kept)."""

    scan_id: int
    at: datetime
    score: float
    clauses: dict[str, float] = {}
    #: target -> (passed, failed) checks, for scores by site and role
    targets: dict[str, tuple[int, int]] = {}


def score_history(store: Store, limit: int = 30, since: datetime | None = None) -> list[ScorePoint]:
    """The newest ``limit`` scans' scores, oldest first (only scans finished after ``since``)."""
    with store.session() as s:
        query = select(ScanRow).where(ScanRow.finished_at.is_not(None))
        if since is not None:
            query = query.where(ScanRow.finished_at >= since)
        rows = [
            (r.id, r.finished_at, r.score, r.summary)
            for r in s.execute(query.order_by(ScanRow.id.desc()).limit(limit)).scalars()
        ]
    out = []
    for scan_id, at, score, summary in reversed(rows):
        assert at is not None  # the query keeps finished scans only
        try:
            data = json.loads(summary or "{}")
            clauses = data.get("clauses") or {}
            targets = data.get("targets") or {}
        except (ValueError, AttributeError):
            clauses, targets = {}, {}
        out.append(
            ScorePoint(
                scan_id=scan_id,
                at=at,
                score=score,
                clauses={str(k): float(v) for k, v in clauses.items()},
                targets={str(k): (int(v[0]), int(v[1])) for k, v in targets.items()},
            )
        )
    return out


def add_waiver(store: Store, waiver: Waiver) -> Waiver:
    with store.session(write=True) as s:
        row = WaiverRow(
            control_id=waiver.control_id,
            hosts=waiver.hosts,
            reason=waiver.reason,
            approved_by=waiver.approved_by,
            expires_at=waiver.expires_at,
            created_at=waiver.created_at,
            created_by=waiver.created_by,
        )
        s.add(row)
        s.flush()
        return waiver.model_copy(update={"id": row.id})


def list_waivers(store: Store) -> list[Waiver]:
    with store.session() as s:
        rows = s.execute(select(WaiverRow).order_by(WaiverRow.id)).scalars()
        return [
            Waiver(
                id=r.id,
                control_id=r.control_id,
                hosts=r.hosts,
                reason=r.reason,
                approved_by=r.approved_by,
                expires_at=r.expires_at,
                created_at=r.created_at,
                created_by=r.created_by,
            )
            for r in rows
        ]


def record_sightings(
    store: Store, pending: dict[str, list[tuple[str, str]]], now: int
) -> dict[str, dict[str, int]]:
    """Note the pending security updates seen now on each target, in one transaction;
    return ``target -> {pkg=version: first seen}``. ``now`` and the returned times are
    epoch seconds, the unit the update-age check works in (stored as DateTime)."""
    out: dict[str, dict[str, int]] = {t: {} for t in pending}
    if not pending:
        return out
    moment = datetime.fromtimestamp(now, UTC)
    with store.session(write=True) as s:
        existing: dict[tuple[str, str, str], PackageSightingRow] = {}
        names = sorted(pending)
        for i in range(0, len(names), 500):
            query = select(PackageSightingRow).where(
                PackageSightingRow.target.in_(names[i : i + 500])
            )
            for r in s.execute(query).scalars():
                existing[(r.target, r.package, r.version)] = r
        for target, items in pending.items():
            for package, version in items:
                row = existing.get((target, package, version))
                if row is None:
                    row = PackageSightingRow(
                        target=target,
                        package=package,
                        version=version,
                        first_seen=moment,
                        last_seen=moment,
                    )
                    existing[(target, package, version)] = row
                    s.add(row)
                else:
                    row.last_seen = moment
                out[target][f"{package}={version}"] = _epoch(row.first_seen)
    return out


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def package_sightings(store: Store) -> list[tuple[str, str, str, int, int]]:
    """Every package sighting: (target, package, version, first seen, last seen), the
    times as epoch seconds."""
    with store.session() as s:
        return [
            (r.target, r.package, r.version, _epoch(r.first_seen), _epoch(r.last_seen))
            for r in s.execute(select(PackageSightingRow)).scalars()
        ]


def scans_reached(store: Store) -> dict[str, list[datetime]]:
    """When each target was scanned (not unknown): target -> scan start times, in scan
    order."""
    out: dict[str, list[datetime]] = {}
    with store.session() as s:
        rows = s.execute(
            select(ScanTargetRow.target, ScanRow.started_at)
            .join(ScanRow, ScanRow.id == ScanTargetRow.scan_id)
            .where(ScanTargetRow.status == "scanned")
            .order_by(ScanRow.id)
        ).all()
    for target, started in rows:
        out.setdefault(target, []).append(started)
    return out


def load_upgrade_cache(store: Store, targets: Iterable[str]) -> dict[str, UpgradeCache]:
    """The stored pending-upgrades fingerprint and list of each target that has one,
    with its needrestart fingerprint (a row that no longer parses is left out: that host
    computes afresh)."""
    names = sorted(set(targets))
    out: dict[str, UpgradeCache] = {}
    with store.session() as s:
        for i in range(0, len(names), 500):
            query = select(UpgradeCacheRow).where(UpgradeCacheRow.target.in_(names[i : i + 500]))
            for r in s.execute(query).scalars():
                try:
                    out[r.target] = UpgradeCache(
                        fingerprint=r.fingerprint,
                        upgradable=json.loads(r.upgradable),
                        needrestart=r.needrestart or "",
                        needrestart_at=r.needrestart_at,
                    )
                except ValueError:
                    continue
    return out


def save_upgrade_cache(store: Store, entries: dict[str, UpgradeCache], now: datetime) -> None:
    """Store (replace) each target's entry, in one transaction."""
    if not entries:
        return
    names = sorted(entries)
    with store.session(write=True) as s:
        existing: dict[str, UpgradeCacheRow] = {}
        for i in range(0, len(names), 500):
            query = select(UpgradeCacheRow).where(UpgradeCacheRow.target.in_(names[i : i + 500]))
            existing.update((r.target, r) for r in s.execute(query).scalars())
        for name in names:
            entry = entries[name]
            data = json.dumps([u.model_dump() for u in entry.upgradable])
            row = existing.get(name)
            if row is None:
                s.add(
                    UpgradeCacheRow(
                        target=name,
                        fingerprint=entry.fingerprint,
                        upgradable=data,
                        computed_at=now,
                        needrestart=entry.needrestart,
                        needrestart_at=entry.needrestart_at,
                    )
                )
            else:
                row.fingerprint, row.upgradable = entry.fingerprint, data
                row.computed_at = now
                row.needrestart, row.needrestart_at = entry.needrestart, entry.needrestart_at


def known_sightings(store: Store, targets: Iterable[str]) -> dict[str, dict[str, int]]:
    """Read-only: ``target -> {pkg=version: first seen}`` (what a site worker needs to
    evaluate update age exactly as :func:`record_sightings` would here)."""
    names = set(targets)
    out: dict[str, dict[str, int]] = {n: {} for n in names}
    with store.session() as s:
        for r in s.execute(select(PackageSightingRow)).scalars():
            if r.target in names:
                out[r.target][f"{r.package}={r.version}"] = _epoch(r.first_seen)
    return out


class ScanSummary(BaseModel):
    id: int
    started_at: datetime
    #: None while the scan has not finished.
    finished_at: datetime | None
    selection: str
    score: float
    unknown: list[tuple[str, str]]


def last_scans(store: Store, limit: int = 2) -> list[ScanSummary]:
    """The newest scans, newest first, with their unknown targets."""
    with store.session() as s:
        scans = list(s.execute(select(ScanRow).order_by(ScanRow.id.desc()).limit(limit)).scalars())
        out = []
        for scan in scans:
            unknown = [
                (t.target, t.error)
                for t in s.execute(
                    select(ScanTargetRow).where(
                        ScanTargetRow.scan_id == scan.id, ScanTargetRow.status == "unknown"
                    )
                ).scalars()
            ]
            out.append(
                ScanSummary(
                    id=scan.id,
                    started_at=scan.started_at,
                    finished_at=scan.finished_at,
                    selection=scan.selection,
                    score=scan.score,
                    unknown=unknown,
                )
            )
        return out
