"""The drift scan: gather facts (one round trip per server), check controls, record drift.

Evaluation is pure (:func:`evaluate_server`, :func:`evaluate_device`); gathering goes
through the connectors; bookkeeping goes through :mod:`vcops.findings` (pure) and
:mod:`vcops.findings_store`. The scan never changes a target.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Literal

from pydantic import BaseModel

from vcops.baseline.network import parse_device_config
from vcops.connectors.hosttask import (
    HostRun,
)
from vcops.connectors.netdev import DeviceResult, DeviceTarget, fetch_many
from vcops.errors import InventoryError, VcopsError
from vcops.evaluate import (
    contained,
    device_context,
    evaluate_device,
    evaluate_server,
    server_context,
)
from vcops.facts.upgrades import UpgradeCache
from vcops.findings import (
    ControlResult,
    Drift,
    TargetOutcome,
    Waiver,
    clause_scores,
    compliance_score,
    compute_drift,
    waiver_verdict,
)
from vcops.findings_store import (
    FindingView,
    list_findings,
    list_waivers,
    load_upgrade_cache,
    open_findings,
    record_scan,
    view_of,
)
from vcops.inventory.models import Device, Inventory, Server, Target
from vcops.inventory.select import select_targets
from vcops.scan_servers import (
    RemoteScan,
    facts_tasks,
    first_seen_from,
    gather_fleet,
    gather_servers,
    server_outcome,
)
from vcops.snapshot.collect import paths_for_roles
from vcops.snapshot.models import TakeReport
from vcops.snapshot.take import DeviceCollection, Remote, SnapshotContext, take_with
from vcops.store import Store, current_actor

__all__ = [
    "RemoteScan",
    "RemoteScanSnapshot",
    "ScanReport",
    "apply_waivers",
    "contained",
    "device_context",
    "evaluate_device",
    "evaluate_server",
    "first_seen_from",
    "gather_servers",
    "run_scan",
    "scan_summary",
    "server_context",
    "server_outcome",
    "waiver_coverage",
]


#: ``scan --snapshot`` through site workers: for the scan time, the take's
#: :class:`~vcops.snapshot.take.Remote` and the scan's hook that reads the outcomes
#: the same worker sessions brought back (see :mod:`vcops.workers_snapshot`).
RemoteScanSnapshot = Callable[[datetime], tuple[Remote, RemoteScan]]


class ScanReport(BaseModel):
    """Everything one scan found, ready for a table, JSON or an email."""

    scan_id: int | None
    started_at: str
    finished_at: str
    selection: str
    outcomes: list[TargetOutcome]
    new: list[ControlResult]
    resolved: list[FindingView]
    open: list[FindingView]
    passed: int
    failed: int
    unknown_checks: int
    score: float
    #: ``scan --snapshot``: the snapshot taken in the same session (commit, hosts).
    snapshot: TakeReport | None = None

    @property
    def unknown_targets(self) -> list[TargetOutcome]:
        return [o for o in self.outcomes if o.status == "unknown"]

    @property
    def drift(self) -> list[FindingView]:
        return [f for f in self.open if f.status == "open"]

    def exit_code(self) -> Literal[0, 1, 3]:
        """3 if any target is unknown (or, with ``--snapshot``, could not be snapshotted),
        else 1 if any unwaived finding is open, else 0."""
        if self.unknown_targets:
            return 3
        if self.snapshot is not None and (self.snapshot.unreachable or self.snapshot.failed):
            return 3
        return 1 if self.drift else 0


def _scan_device(inv: Inventory, device: Device, output: str) -> TargetOutcome:
    facts = parse_device_config(device.platform, output)
    return TargetOutcome(
        target=device.name,
        kind="device",
        status="scanned",
        results=evaluate_device(device.name, facts, device_context(inv, device)),
    )


def gather_devices(
    inv: Inventory,
    devices: list[Device],
    parallel: int,
    advance: Callable[[str], None],
    fetched: dict[str, DeviceCollection] | None = None,
) -> list[TargetOutcome]:
    """Each device's outcome from its running config: the one ``fetched`` with a
    snapshot in this scan, or fetched here (the same code on a site worker)."""
    done = {name: _as_result(inv, c) for name, c in (fetched or {}).items()}
    for name in done:
        advance(name)
    targets = [DeviceTarget.from_inventory(inv, d) for d in devices if d.name not in done]
    for result in fetch_many(
        targets, max_parallel=min(parallel, 16), on_result=lambda r: advance(r.name)
    ):
        done[result.name] = result
    results = [done[d.name] for d in devices]
    outcomes = []
    for device, result in zip(devices, results, strict=True):
        if result.status != "ok":
            outcomes.append(
                TargetOutcome(
                    target=device.name,
                    kind="device",
                    status="unknown",
                    error=result.error or "failed",
                )
            )
            continue
        work = partial(_scan_device, inv, device, result.output)
        outcomes.append(contained(device.name, "device", 0.0, work))
    return outcomes


def _devices(
    inv: Inventory,
    devices: list[Device],
    now: datetime,
    parallel: int,
    advance: Callable[[str], None],
    fetched: dict[str, DeviceCollection],
    remote: RemoteScan | None,
) -> list[TargetOutcome]:
    """The devices' outcomes: from their sites' workers (``remote``), or from here."""
    asked = remote(devices, now, advance) if remote is not None and devices else {}
    done = {name: outcome for name, (outcome, _pending) in asked.items()}
    here = [d for d in devices if d.name not in done]
    done |= {o.target: o for o in gather_devices(inv, here, parallel, advance, fetched)}
    return [done[d.name] for d in devices]


def _as_result(inv: Inventory, collected: DeviceCollection) -> DeviceResult:
    """A snapshot's device fetch as the scan's fetch result (the running config)."""
    device = inv.target(collected.name)
    transport = device.transport if isinstance(device, Device) else "?"
    if collected.status == "ok" and collected.configs is not None:
        return DeviceResult(
            name=collected.name, status="ok", transport=transport, output=collected.configs.running
        )
    status = "unreachable" if collected.status == "unreachable" else "failed"
    return DeviceResult(
        name=collected.name, status=status, transport=transport, error=collected.error or status
    )


def waiver_coverage(inv: Inventory, waivers: list[Waiver]) -> dict[int, frozenset[str]]:
    """Which target names each waiver covers (a pattern that no longer matches covers none)."""
    covered: dict[int, frozenset[str]] = {}
    for w in waivers:
        try:
            covered[w.id] = frozenset(t.name for t in select_targets(inv, w.hosts))
        except InventoryError:  # the pattern no longer matches anything: it covers nothing
            covered[w.id] = frozenset()
    return covered


def apply_waivers(
    views: list[FindingView], inv: Inventory, waivers: list[Waiver], now: datetime
) -> list[FindingView]:
    covered = waiver_coverage(inv, waivers)
    out = []
    for view in views:
        shown = view
        if view.status != "resolved":
            verdict = waiver_verdict(view.target, view.control_id, waivers, covered, now)
            if verdict.waived_by is not None:
                shown = view.model_copy(update={"status": "waived", "waiver": verdict.note})
            elif verdict.expired:
                shown = view.model_copy(update={"waiver": verdict.note})
        out.append(shown)
    return out


def scan_summary(outcomes: list[TargetOutcome], drift: Drift) -> dict[str, object]:
    """What a scan records beside its score: counts, unknown targets, the score per clause
    and each target's passed/failed checks (for scores by site and role)."""
    return {
        "new": len(drift.new),
        "resolved": len(drift.resolved),
        "unknown": [o.target for o in outcomes if o.status == "unknown"],
        "clauses": clause_scores(outcomes),
        "targets": {
            o.target: [
                sum(r.status == "pass" for r in o.results),
                sum(r.status == "fail" for r in o.results),
            ]
            for o in outcomes
            if o.status == "scanned"
        },
    }


def run_scan(
    inv: Inventory,
    limit: str | None,
    *,
    store: Store | None,
    record: bool = True,
    now: Callable[[], datetime],
    max_parallel: int = 50,
    advance: Callable[[str], None] = lambda _name: None,
    remote: RemoteScan | None = None,
    snapshot: SnapshotContext | None = None,
    remote_snapshot: RemoteScanSnapshot | None = None,
) -> ScanReport:
    """Scan the selected targets; with a store, record findings and their history.
    ``remote`` scans the servers and devices of sites that have workers (see
    :mod:`vcops.workers`).

    With ``snapshot``, every server's facts and its config snapshot are gathered here by
    ONE script over ONE SSH session (one pass over the files), and the snapshot is
    committed as one run; its commit is stored with the scan. ``remote_snapshot``: the
    same for the servers of sites with workers, on the workers (it replaces ``remote``).
    """
    targets: list[Target] = select_targets(inv, limit)
    started = now()
    servers = [t for t in targets if isinstance(t, Server)]
    devices = [t for t in targets if isinstance(t, Device)]
    taken: TakeReport | None = None
    runs: dict[str, HostRun] | None = None
    cache: dict[str, UpgradeCache] = {}
    if store is not None and record:
        cache = load_upgrade_cache(store, [s.name for s in servers])
    fetched: dict[str, DeviceCollection] = {}
    if snapshot is not None:
        by_name = {s.name: s for s in servers}
        take_remote = None
        if remote_snapshot is not None:
            take_remote, remote = remote_snapshot(started)
        taken, runs = take_with(
            snapshot,
            targets,
            reason=f"scan {limit or 'all'}",
            on_result=lambda name: advance(name) if name in by_name else None,
            extra=lambda s: facts_tasks(s, paths_for_roles(s.roles), cache.get(s.name), started),
            on_device=lambda c: fetched.__setitem__(c.name, c),
            remote=take_remote,
        )
    outcomes = gather_fleet(
        inv,
        servers,
        store if record else None,
        started,
        max_parallel,
        advance,
        remote,
        runs,
        cache,
    )
    outcomes += _devices(inv, devices, started, max_parallel, advance, fetched, remote)
    finished = now()
    passed, failed, unknown, score = compliance_score(outcomes)
    selection = limit or "all"
    scan_id: int | None = None
    names = {t.name for t in targets}
    if store is not None and record:
        previous = open_findings(store)
        drift: Drift = compute_drift([f for f in previous if f.target in names], outcomes)
        summary = scan_summary(outcomes, drift)
        if taken is not None:
            summary["snapshot_commit"] = taken.commit or snapshot_head(snapshot)
        scan_id = record_scan(
            store,
            started_at=started,
            finished_at=finished,
            actor=current_actor(),
            selection=selection,
            outcomes=outcomes,
            drift=drift,
            score=(passed, failed, unknown, score),
            summary=summary,
        )
        resolved_ids = set(drift.resolved)
        views = [v for v in list_findings(store) if v.target in names]
        resolved = [v for v in views if v.id in resolved_ids]
        open_views = apply_waivers(
            [v for v in views if v.status == "open"], inv, list_waivers(store), finished
        )
        new = drift.new
        store.audit(
            "scan",
            selection,
            {
                "scan_id": scan_id,
                "targets": len(targets),
                "new": len(new),
                "resolved": len(resolved),
                "open": len(open_views),
                "score": score,
                "unknown": summary["unknown"],
                **({"snapshot_commit": summary["snapshot_commit"]} if taken else {}),
            },
        )
    else:
        fails = [r for o in outcomes for r in o.results if r.status == "fail"]
        new, resolved = fails, []
        open_views = [view_of(r, finished) for r in fails]
        if store is not None:
            open_views = apply_waivers(open_views, inv, list_waivers(store), finished)
    return ScanReport(
        scan_id=scan_id,
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        selection=selection,
        outcomes=outcomes,
        new=new,
        resolved=resolved,
        open=open_views,
        passed=passed,
        failed=failed,
        unknown_checks=unknown,
        score=score,
        snapshot=taken,
    )


def snapshot_head(ctx: SnapshotContext | None) -> str | None:
    """The snapshot store's HEAD (an unchanged fleet adds no commit: HEAD holds it)."""
    if ctx is None:
        return None
    try:
        return ctx.repo.resolve("HEAD")
    except VcopsError:
        return None
