"""Read models for people who are not on the controller: the dashboard pages and the
evidence pack read the store through these functions, and the CLI shares them (audit
verification, the window summary), so a page never computes a rule of its own.

Each function takes the inventory and the store and returns a pydantic model; nothing
here writes. Example::

    ov = overview(inv, store)
    ov.score, ov.by_clause, ov.by_site, ov.failing[:3], ov.unknown
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from vcops import sshsig
from vcops.audit import AuditEntry, VerifyResult, verify_chain
from vcops.errors import VcopsError
from vcops.findings import Waiver
from vcops.findings_store import (
    FindingView,
    ScanSummary,
    ScorePoint,
    last_scans,
    list_findings,
    list_waivers,
    score_history,
)
from vcops.inventory.models import Inventory
from vcops.report.drift import ControlRollup, rollup
from vcops.store import Store
from vcops.window.approval import Approval
from vcops.window.board import quorum_for, tally, verified
from vcops.window.model import Window, plan_hash, terms_hash
from vcops.window.progress import HostRecord
from vcops.window.rules import max_concurrency, plan_batches
from vcops.window.store import approvals_of, list_windows, load_window, progress_of


def _percent(passed: int, failed: int) -> float | None:
    return round(100.0 * passed / (passed + failed), 1) if passed + failed else None


class Overview(BaseModel):
    history: list[ScorePoint]
    score: float | None
    by_clause: dict[str, float]
    by_site: dict[str, float | None]
    by_role: dict[str, float | None]
    failing: list[ControlRollup]
    unknown: list[tuple[str, str]]
    last_scan: str | None


def overview(inv: Inventory, store: Store, *, limit: int = 30) -> Overview:
    """The fleet at a glance, from the newest scans and the open findings."""
    history = score_history(store, limit)
    last = history[-1] if history else None
    sites: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    roles: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, (passed, failed) in (last.targets if last else {}).items():
        target = inv.target(name)
        site = target.site if target is not None else "(not in the inventory)"
        kinds = (
            list(getattr(target, "roles", None) or [getattr(target, "platform", "device")])
            if target is not None
            else ["(not in the inventory)"]
        )
        sites[site][0] += passed
        sites[site][1] += failed
        for role in kinds:
            roles[str(role)][0] += passed
            roles[str(role)][1] += failed
    scans = last_scans(store, 1)
    open_ = [f for f in list_findings(store, status="open")]
    return Overview(
        history=history,
        score=last.score if last else None,
        by_clause=dict(last.clauses) if last else {},
        by_site={k: _percent(*v) for k, v in sorted(sites.items())},
        by_role={k: _percent(*v) for k, v in sorted(roles.items())},
        failing=sorted(rollup(open_), key=lambda r: (-len(r.hosts), r.control_id))[:15],
        unknown=list(scans[0].unknown) if scans else [],
        last_scan=_finished(scans),
    )


def _finished(scans: list[ScanSummary]) -> str | None:
    """When the newest scan finished, as the ISO 8601 text the pages show."""
    finished = scans[0].finished_at if scans else None
    return finished.isoformat() if finished else None


class HostView(BaseModel):
    name: str
    in_inventory: bool
    site: str
    roles: list[str]
    open: list[FindingView]
    resolved: list[FindingView]
    last_scan: str | None
    last_scan_status: str | None
    last_snapshot: str | None
    last_apply: AuditEntry | None
    waivers: list[Waiver]


def host_view(inv: Inventory, store: Store, name: str, snapshots_dir: Path | None) -> HostView:
    """One host: open findings with their history, last scan, snapshot, apply, waivers."""
    from vcops.scan import apply_waivers, waiver_coverage

    findings = list_findings(store, target=name)
    waivers = list_waivers(store)
    covered: dict[int, frozenset[str]] = {}
    with suppress(VcopsError):  # a waiver problem must not hide the page
        covered = waiver_coverage(inv, waivers)
        findings = apply_waivers(findings, inv, waivers, _now())
    target = inv.target(name)
    scans = last_scans(store, 1)
    status = None
    last = score_history(store, 1)
    if last and name in last[0].targets:
        status = "scanned"
    if scans and any(t == name for t, _ in scans[0].unknown):
        status = "unknown"
    applies = [e for e in store.audit_entries(action="apply.host") if name in _named(e)]
    return HostView(
        name=name,
        in_inventory=target is not None,
        site=target.site if target is not None else "",
        roles=[str(r) for r in getattr(target, "roles", [])] if target is not None else [],
        open=[f for f in findings if f.resolved_at is None],
        resolved=[f for f in findings if f.resolved_at is not None][-20:],
        last_scan=_finished(scans) if status else None,
        last_scan_status=status,
        last_snapshot=_last_snapshot(snapshots_dir, name),
        last_apply=applies[-1] if applies else None,
        waivers=[w for w in waivers if name in covered.get(w.id, frozenset())],
    )


def _named(entry: AuditEntry) -> set[str]:
    hosts = entry.detail.get("hosts")
    names = {str(h) for h in hosts} if isinstance(hosts, list) else set()
    return {entry.target, *names}


def _last_snapshot(snapshots_dir: Path | None, host: str) -> str | None:
    if snapshots_dir is None or not (snapshots_dir / ".git").exists():
        return None
    from vcops.snapshot.gitstore import SnapshotRepo

    try:
        log = SnapshotRepo(snapshots_dir).log(host, limit=1)
    except (VcopsError, OSError):
        return None
    return f"{log[0].short} {log[0].date} {log[0].subject}" if log else None


class ControlView(BaseModel):
    control_id: str
    title: str
    clause: str
    severity: str
    rationale: str
    failing: list[FindingView]
    waived: list[FindingView]
    resolved: int


def control_view(inv: Inventory, store: Store, control_id: str) -> ControlView:
    """One control: the hosts failing it, the waived ones, since when."""
    from vcops.baseline.catalog import all_controls
    from vcops.scan import apply_waivers

    control = next((c for c in all_controls() if c.id == control_id), None)
    findings = list_findings(store, control=control_id)
    open_ = [f for f in findings if f.resolved_at is None]
    with suppress(VcopsError):  # a waiver problem must not hide the page
        open_ = apply_waivers(open_, inv, list_waivers(store), _now())
    return ControlView(
        control_id=control_id,
        title=control.title if control else (findings[0].title if findings else ""),
        clause=control.clause if control else "",
        severity=control.severity if control else "",
        rationale=getattr(control, "rationale", "") if control else "",
        failing=[f for f in open_ if f.status != "waived"],
        waived=[f for f in open_ if f.status == "waived"],
        resolved=sum(f.resolved_at is not None for f in findings),
    )


def _now() -> datetime:
    return datetime.now(UTC)


class WindowRow(BaseModel):
    window: Window
    approvals: int
    rejections: int
    quorum: int


def windows_list(inv: Inventory, store: Store) -> list[WindowRow]:
    out = []
    for w in list_windows(store):
        ok, rejected, quorum = tally(inv, w, approvals_of(store, w.id))
        out.append(WindowRow(window=w, approvals=ok, rejections=rejected, quorum=quorum))
    return out


class CheckedApproval(BaseModel):
    approval: Approval
    valid: bool
    problem: str | None


class WindowView(BaseModel):
    window: Window
    terms_sha256: str
    plan_intact: bool
    approvals: list[CheckedApproval]
    approved: int
    rejected: int
    quorum: int
    batches: list[list[str]]
    progress: list[HostRecord]
    summary: dict[str, object]


def window_summary(
    inv: Inventory, store: Store, w: Window, hosts: list[HostRecord]
) -> dict[str, object]:
    """What a window did, from its saved progress and the audit log."""
    ok, rejected, quorum = tally(inv, w, approvals_of(store, w.id))
    events = [
        e
        for e in store.audit_entries(action="window.*")
        if e.target == w.id or e.detail.get("window") == w.id
    ]
    started = [h.started_at for h in hosts if h.started_at]
    finished = [h.finished_at for h in hosts if h.finished_at]
    return {
        "window": w.id,
        "title": w.title,
        "change_id": w.change_id,
        "state": w.state,
        "approvals": ok,
        "rejections": rejected,
        "quorum": quorum,
        "scheduled": {"start": w.start.isoformat(), "end": w.end.isoformat()},
        "ran": {
            "first_start": min(started, key=datetime.fromisoformat, default=None),
            "last_finish": max(finished, key=datetime.fromisoformat, default=None),
        },
        "counts": {
            s: sum(h.state == s for h in hosts)
            for s in ("done", "failed", "skipped", "running", "pending")
        },
        "packages_installed": sum(len(h.installed) for h in hosts),
        "rolled_back": [h.target for h in hosts if h.rollback],
        "audit_events": len(events),
        "halt_reason": next(
            (
                str(e.detail.get("reason", ""))
                for e in reversed(events)
                if e.action == "window.run.halt"
            ),
            None,
        ),
        "hosts": [h.model_dump(mode="json") for h in hosts],
    }


def window_view(inv: Inventory, store: Store, window_id: str) -> WindowView:
    """One window: plan, terms hash, approvals with their verification, batches, progress."""
    w = load_window(store, window_id)
    checked = verified(inv, w, approvals_of(store, w.id))
    progress = progress_of(store, w)
    return WindowView(
        window=w,
        terms_sha256=terms_hash(w),
        plan_intact=plan_hash(w.plan) == w.plan_hash,
        approvals=[CheckedApproval(approval=a, valid=p is None, problem=p) for a, p in checked],
        approved=len({a.member for a, p in checked if p is None and a.decision == "approve"}),
        rejected=len({a.member for a, p in checked if p is None and a.decision == "reject"}),
        quorum=quorum_for(inv, w),
        batches=plan_batches(w.plan.hosts, max_concurrency(w)),
        progress=progress,
        summary=window_summary(inv, store, w, progress),
    )


def audit_verdict(store: Store, pinned_key: str | None = None) -> VerifyResult:
    """The chain and the signed anchor, checked as ``vcops audit verify`` does."""
    entries = store.audit_entries()
    anchor = store.read_anchor()
    result = verify_chain(entries, anchor, anchored=store.anchor_file is not None)
    if result.ok and anchor is not None:
        problem = store.anchor_problem(anchor, sshsig.key_id(pinned_key) if pinned_key else None)
        if problem is not None:
            result = VerifyResult(
                ok=False, entries=result.entries, first_bad_id=anchor.id, reason=problem
            )
    return result
