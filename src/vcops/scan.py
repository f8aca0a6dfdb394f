"""The drift scan: gather facts (one round trip per server), check controls, record drift.

Evaluation is pure (:func:`evaluate_server`, :func:`evaluate_device`); gathering goes
through the connectors; bookkeeping goes through :mod:`vcops.findings` (pure) and
:mod:`vcops.findings_store`. The scan never changes a target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Literal, TypeVar

from pydantic import BaseModel

from vcops.baseline.catalog import DEVICE_CATALOG, SERVER_CATALOG
from vcops.baseline.context import DeviceContext, ServerContext
from vcops.baseline.model import Control
from vcops.baseline.network import DeviceFacts, parse_device_config
from vcops.baseline.settings import server_settings, settings_for
from vcops.connectors.hosttask import (
    HostRun,
    HostTask,
    Unreadable,
    read_host,
    run_tasks,
    tar_members,
)
from vcops.connectors.netdev import DeviceTarget, fetch_many
from vcops.connectors.ssh import SshTarget
from vcops.errors import InventoryError, VcopsError
from vcops.facts.server import CONF_TREES, FactsTask, Section, ServerFacts, parse_facts
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
    known_sightings,
    list_findings,
    list_waivers,
    open_findings,
    record_scan,
    record_sightings,
    view_of,
)
from vcops.inventory.models import Device, Inventory, Server, Target
from vcops.inventory.select import select_targets
from vcops.snapshot.collect import paths_for_roles
from vcops.snapshot.models import TakeReport
from vcops.snapshot.take import SnapshotContext, take_with
from vcops.store import Store, current_actor

F = TypeVar("F")
C = TypeVar("C")


def _evaluate(
    name: str,
    controls: Sequence[Control[F, C]],
    labels: set[str] | frozenset[str],
    facts: F,
    ctx: C,
) -> list[ControlResult]:
    results = []
    for control in controls:
        if not control.applies(labels):
            continue
        verdict = control.check(facts, ctx)
        results.append(
            ControlResult(
                target=name,
                control_id=control.id,
                clause=control.clause,
                severity=control.severity,
                title=control.title,
                status=verdict.status,
                expected=verdict.expected,
                actual=verdict.actual,
                detail=verdict.detail,
            )
        )
    return results


def evaluate_server(name: str, facts: ServerFacts, ctx: ServerContext) -> list[ControlResult]:
    """Every applicable server control on these facts (pure)."""
    return _evaluate(name, SERVER_CATALOG, ctx.roles, facts, ctx)


def evaluate_device(name: str, facts: DeviceFacts, ctx: DeviceContext) -> list[ControlResult]:
    """Every applicable device control on this running config (pure)."""
    return _evaluate(name, DEVICE_CATALOG, {facts.platform}, facts, ctx)


def device_context(inv: Inventory, device: Device) -> DeviceContext:
    """The resolved baseline and management networks for one device."""
    settings = settings_for(inv.host_vars(device), where=f"inventory: device {device.name}")
    return DeviceContext(settings, tuple(inv.management_networks(device)))


def server_context(inv: Inventory, server: Server, now: datetime) -> ServerContext:
    settings = server_settings(
        inv.host_vars(server), user=inv.ssh_user(server), where=f"inventory: server {server.name}"
    )
    return ServerContext(
        settings=settings,
        roles=frozenset(server.roles),
        management_networks=tuple(inv.management_networks(server)),
        now=now,
    )


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


def contained(
    target: str,
    kind: Literal["server", "device"],
    seconds: float,
    work: Callable[[], TargetOutcome],
) -> TargetOutcome:
    """Parse and evaluate one target inside the per-host boundary of the host-task layer
    (:func:`vcops.connectors.hosttask.read_host`; devices use the same one): whatever its
    output does (huge numbers, nesting that exhausts the stack, a type a check did not
    expect), only this target becomes *unknown*, with the reason; the rest of the scan
    goes on. The reason names the exception type and the function that raised it, never
    the exception's text (it could quote a config line holding a secret).

    Raises:
        InventoryError: a bad baseline override in the inventory (the operator's error,
            not the host's).
    """
    outcome = read_host(work)
    if isinstance(outcome, Unreadable):
        return TargetOutcome(
            target=target, kind=kind, status="unknown", error=outcome.error, seconds=seconds
        )
    return outcome


def facts_tasks(server: Server, snapshot_roots: list[str] | None = None) -> list[HostTask]:
    """The scan's host task for one server; beside a snapshot with these roots it leaves
    out what the snapshot reads (the VoIP config trees, ``sshd -T``)."""
    if snapshot_roots is None:
        return [FactsTask()]
    shared = {tree for tree, root in CONF_TREES.items() if root in snapshot_roots}
    return [FactsTask(shared=frozenset({*shared, "sshd_t"}))]


def server_facts(run: HostRun) -> ServerFacts:
    """The facts of one host's run, with the snapshot's files when it took one (pure)."""
    snap = run.output("snapshot")
    files = snap.get("files")
    sshd = snap.get("sshd_t")
    return parse_facts(
        run.output("facts"),
        tar_members(files.data) if files is not None else None,
        Section(rc=sshd.rc, text=sshd.text) if sshd is not None else None,
    )


#: ``remote(servers, now, advance)``: outcomes of the servers whose site has workers
#: (see :mod:`vcops.workers`), with the pending security updates each one reported.
RemoteScan = Callable[
    [list[Server], datetime, Callable[[str], None]],
    dict[str, tuple[TargetOutcome, list[tuple[str, str]]]],
]
#: ``first_seen(target, pending)``: ``pkg=version`` -> when each was first seen.
FirstSeen = Callable[[str, list[tuple[str, str]]], dict[str, int]]


def server_outcome(
    inv: Inventory,
    server: Server,
    host: HostRun,
    now: datetime,
    first_seen: FirstSeen | None,
) -> tuple[TargetOutcome, list[tuple[str, str]]]:
    """One server's outcome from its facts task (alone, or beside a snapshot in the same
    script), and its pending security updates (the same function runs on the controller
    and on a site worker)."""
    if not host.framed.started:
        return _unknown(server, host.error or "no output", host.seconds), []
    pending: list[tuple[str, str]] = []

    def work() -> TargetOutcome:
        facts = server_facts(host)
        if facts.os_id is None and facts.sshd is None:
            why = host.error or "the fact script returned nothing usable"
            return _unknown(server, why, host.seconds)
        if facts.upgradable is not None:
            pending.extend((u.package, u.version) for u in facts.upgradable if u.security)
            if first_seen is not None:
                facts.security_first_seen = first_seen(server.name, pending)
        ctx = server_context(inv, server, now)
        return TargetOutcome(
            target=server.name,
            kind="server",
            status="scanned",
            seconds=host.seconds,
            results=evaluate_server(server.name, facts, ctx),
        )

    outcome = contained(server.name, "server", host.seconds, work)
    return outcome, pending if outcome.status == "scanned" else []


def _unknown(server: Server, error: str, seconds: float) -> TargetOutcome:
    return TargetOutcome(
        target=server.name, kind="server", status="unknown", error=error, seconds=seconds
    )


def gather_servers(
    inv: Inventory,
    servers: list[Server],
    now: datetime,
    parallel: int,
    advance: Callable[[str], None],
    first_seen: FirstSeen | None,
    runs: dict[str, HostRun] | None = None,
) -> list[tuple[TargetOutcome, list[tuple[str, str]]]]:
    """Run the facts task on the servers from here, one SSH session each (or read the
    ``runs`` a snapshot already made with the facts task in the same script)."""
    if runs is None:
        targets = [SshTarget.from_inventory(inv, s) for s in servers]
        results = run_tasks(
            targets,
            [FactsTask()],
            max_parallel=parallel,
            timeout=180,
            on_result=lambda r: advance(r.name),
        )
        runs = {r.name: r for r in results}
    missing = HostRun(name="?", status="unreachable", error="no output")
    return [
        server_outcome(inv, server, runs.get(server.name, missing), now, first_seen)
        for server in servers
    ]


def first_seen_from(known: dict[str, dict[str, int]], stamp: int) -> FirstSeen:
    """``first_seen`` from the sightings stored before this scan: a pending update not
    seen before is first seen now (pure; the controller and the workers both use it)."""

    def first_seen(target: str, pending: list[tuple[str, str]]) -> dict[str, int]:
        mine = known.get(target, {})
        return {f"{p}={v}": int(mine.get(f"{p}={v}", stamp)) for p, v in pending}

    return first_seen


def _gather_servers(
    inv: Inventory,
    servers: list[Server],
    store: Store | None,
    now: datetime,
    parallel: int,
    advance: Callable[[str], None],
    remote: RemoteScan | None = None,
    runs: dict[str, HostRun] | None = None,
) -> list[TargetOutcome]:
    """Outcomes of every server: from site workers (``remote``), from ``runs`` (a
    snapshot already ran the facts task here in the same script), or from here."""
    stamp = int(now.timestamp())
    first_seen = None
    if store is not None:
        first_seen = first_seen_from(known_sightings(store, [s.name for s in servers]), stamp)
    by_name: dict[str, TargetOutcome] = {}
    pending_by: dict[str, list[tuple[str, str]]] = {}
    if remote is not None and runs is None:
        for name, (outcome, pending) in remote(servers, now, advance).items():
            by_name[name] = outcome
            pending_by[name] = pending
    local = [s for s in servers if s.name not in by_name]
    if local:
        for outcome, pending in gather_servers(
            inv, local, now, parallel, advance, first_seen, runs
        ):
            by_name[outcome.target] = outcome
            pending_by[outcome.target] = pending
    if store is not None:  # one transaction for the whole fleet
        scanned = {n: p for n, p in pending_by.items() if by_name[n].status == "scanned"}
        record_sightings(store, scanned, stamp)
    return [by_name[s.name] for s in servers]


def _scan_device(inv: Inventory, device: Device, output: str) -> TargetOutcome:
    facts = parse_device_config(device.platform, output)
    return TargetOutcome(
        target=device.name,
        kind="device",
        status="scanned",
        results=evaluate_device(device.name, facts, device_context(inv, device)),
    )


def _gather_devices(
    inv: Inventory, devices: list[Device], parallel: int, advance: Callable[[str], None]
) -> list[TargetOutcome]:
    targets = [DeviceTarget.from_inventory(inv, d) for d in devices]
    results = fetch_many(
        targets, max_parallel=min(parallel, 16), on_result=lambda r: advance(r.name)
    )
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
) -> ScanReport:
    """Scan the selected targets; with a store, record findings and their history.
    ``remote`` scans the servers of sites that have workers (see :mod:`vcops.workers`).

    With ``snapshot``, every server's facts and its config snapshot are gathered here by
    ONE script over ONE SSH session (one pass over the files), and the snapshot is
    committed as one run; its commit is stored with the scan.
    """
    targets: list[Target] = select_targets(inv, limit)
    started = now()
    servers = [t for t in targets if isinstance(t, Server)]
    devices = [t for t in targets if isinstance(t, Device)]
    taken: TakeReport | None = None
    runs: dict[str, HostRun] | None = None
    if snapshot is not None:
        by_name = {s.name: s for s in servers}
        taken, runs = take_with(
            snapshot,
            targets,
            reason=f"scan {limit or 'all'}",
            on_result=lambda name: advance(name) if name in by_name else None,
            extra=lambda s: facts_tasks(s, paths_for_roles(s.roles)),
        )
    outcomes = _gather_servers(
        inv, servers, store if record else None, started, max_parallel, advance, remote, runs
    )
    outcomes += _gather_devices(inv, devices, max_parallel, advance)
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
