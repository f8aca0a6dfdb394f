"""``snapshot take``: collect every target in parallel, mask, write one commit (I/O edge).

Servers: one SSH session each running the collection script; devices: their configs
through NAPALM or Netmiko in threads, at the same time. An unreachable or failing
target is a result, never an exception; its folder in the store is left as it was.
Example::

    ctx = SnapshotContext.open(inventory, config)
    report = take_snapshots(ctx, targets, reason="before patching", window=None)
    report.commit          # None when nothing changed
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from vcops.config import Config
from vcops.connectors.hosttask import HostRun, HostTask, Unreadable, read_host, run_tasks
from vcops.connectors.netdev import DeviceTarget
from vcops.connectors.ssh import SshTarget
from vcops.errors import ConnectError, InventoryError, StoreError
from vcops.inventory.models import Device, Inventory, Server, Target
from vcops.snapshot.build import (
    RUNNING,
    apply_delta,
    build_device_snapshot,
    build_server_snapshot,
)
from vcops.snapshot.collect import Section, SnapshotTask, paths_for_roles, snapshot_sections
from vcops.snapshot.devices import DeviceConfigs, describe_error, fetch_configs
from vcops.snapshot.gitstore import SnapshotRepo
from vcops.snapshot.keys import load_or_create_key
from vcops.snapshot.mask import mask_text
from vcops.snapshot.models import HostSnapshot, HostTakeResult, TakeReport
from vcops.store import Store, current_actor

SSH_TIMEOUT = 180.0
#: Other host tasks to run in the same script as a server's snapshot (scan --snapshot,
#: a window's precheck): one SSH session, one pass over the files.
ExtraTasks = Callable[[Server], Sequence[HostTask]]


@dataclass(frozen=True)
class Since:
    """An earlier snapshot of a server to collect against (incremental): its stored
    files (``read_tree`` of its revision) and the host's ``sums`` and ``meta`` records
    of that collection (memory only: never stored)."""

    files: Mapping[str, str] = field(repr=False)
    sums: bytes = field(repr=False)
    meta: bytes = field(repr=False)

    @classmethod
    def of(cls, repo: SnapshotRepo, host: str, rev: str, checksums: Checksums) -> Since:
        """The baseline for ``host``: its files at ``rev`` and the checksums of the
        collection that revision holds."""
        stored = repo.read_tree(host, rev)
        files = {k: v.decode("utf-8", "replace") for k, v in stored.items()}
        return cls(files=files, sums=checksums.sums, meta=checksums.meta)


@dataclass(frozen=True)
class Checksums:
    """A host's ``sums`` and ``meta`` records of one collection (memory only)."""

    sums: bytes = field(repr=False)
    meta: bytes = field(repr=False)

    @classmethod
    def of(cls, run: HostRun) -> Checksums | None:
        """From a run that collected with ``checksums`` and ran to its end, else None."""
        out = run.output("snapshot")
        sums, meta = out.get("sums"), out.get("meta")
        if sums is None or meta is None or not out.complete:
            return None
        return cls(sums=sums.data, meta=meta.data)


@dataclass
class SnapshotContext:
    """What snapshot operations need: inventory, store, masking key, fan-out, operator."""

    inventory: Inventory
    repo: SnapshotRepo
    key: bytes = field(repr=False)
    max_parallel: int = 50
    actor: str = ""
    store: Store | None = None

    @classmethod
    def open(
        cls, inventory: Inventory, config: Config, store: Store | None = None
    ) -> SnapshotContext:
        """The context for an inventory and configuration (creates the masking key)."""
        key = load_or_create_key(config.state_dir, config.snapshots_dir)
        return cls(
            inventory=inventory,
            repo=SnapshotRepo(config.snapshots_dir),
            key=key,
            max_parallel=config.run.max_parallel,
            actor=current_actor(),
            store=store,
        )


@dataclass
class ServerCollection:
    """One server's collection output, split (NOT masked: memory only)."""

    name: str
    status: str
    error: str | None = None
    sections: dict[str, Section] = field(default_factory=dict, repr=False)
    roots: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: The whole run (other tasks' records too); NOT masked: memory only.
    run: HostRun | None = field(default=None, repr=False)


def collect_servers(
    ctx: SnapshotContext,
    servers: Sequence[Server],
    on_result: Callable[[str], None] | None = None,
    extra: ExtraTasks | None = None,
    *,
    checksums: bool = False,
    since: Mapping[str, Since] | None = None,
) -> list[ServerCollection]:
    """Run the snapshot task (and ``extra`` tasks) on every server, one SSH session each,
    in parallel; ``checksums``: with the host-side checksums a later incremental
    collection needs; ``since``: incremental for the servers it names."""
    by_name = {s.name: s for s in servers}
    roots = {s.name: paths_for_roles(s.roles) for s in servers}
    targets = [SshTarget.from_inventory(ctx.inventory, s) for s in servers]
    base = since or {}

    def tasks(target: SshTarget) -> list[HostTask]:
        earlier = base.get(target.name)
        wanted: list[HostTask] = [
            SnapshotTask(
                roots=roots[target.name],
                checksums=checksums,
                known_sums=earlier.sums if earlier else None,
                known_meta=earlier.meta if earlier else None,
            )
        ]
        return wanted + list(extra(by_name[target.name]) if extra is not None else [])

    def done(result: HostRun) -> None:
        if on_result is not None:
            on_result(result.name)

    results = run_tasks(
        targets, tasks, max_parallel=ctx.max_parallel, timeout=SSH_TIMEOUT, on_result=done
    )
    collections = []
    for result in results:
        item = ServerCollection(
            name=result.name,
            status=result.status,
            roots=roots[result.name],
            seconds=result.seconds,
            run=result,
        )
        if result.status == "unreachable":
            item.error = result.error
        else:
            sections = snapshot_sections(result.output("snapshot"))
            if result.status == "failed" or "end" not in sections:
                item.status = "failed"
                tail = mask_text(result.error or "", "generic", ctx.key).text
                item.error = tail or f"{result.name}: the collection output was cut short"
            else:
                item.sections = sections
        collections.append(item)
    return collections


@dataclass
class DeviceCollection:
    """One device's fetch: configs (NOT masked) or why not."""

    name: str
    status: str
    configs: DeviceConfigs | None = None
    error: str | None = None
    seconds: float = 0.0


def collect_device(ctx: SnapshotContext, device: Device) -> DeviceCollection:
    """Fetch one device's configs; failures become a result."""
    started = time.monotonic()
    target = DeviceTarget.from_inventory(ctx.inventory, device)
    try:
        configs = fetch_configs(target, ctx.key)
    except ConnectError as exc:
        item = DeviceCollection(name=device.name, status="unreachable", error=str(exc))
    except InventoryError as exc:
        item = DeviceCollection(name=device.name, status="failed", error=str(exc))
    except Exception as exc:
        item = DeviceCollection(
            name=device.name,
            status="failed",
            error=f"{device.name}: {describe_error(exc, target, ctx.key)}",
        )
    else:
        item = DeviceCollection(name=device.name, status="ok", configs=configs)
    item.seconds = round(time.monotonic() - started, 3)
    return item


def device_snapshot(ctx: SnapshotContext, device: Device, configs: DeviceConfigs) -> HostSnapshot:
    """A device's masked snapshot from its fetched configs."""
    snap = build_device_snapshot(
        device.name, device.platform, configs.running, configs.startup, configs.via, ctx.key
    )
    snap.warnings = [*configs.notes, *snap.warnings]
    return snap


#: A server's masked snapshot (None when there is none) and its row in the report.
Built = tuple[HostSnapshot | None, HostTakeResult]


@dataclass(frozen=True)
class Remote:
    """Targets (servers and devices) collected and masked elsewhere (a site's
    workers): which ones (``routes``) and how (``take(targets, on_result)``: each one's
    :data:`Built`)."""

    routes: Callable[[Target], bool]
    take: Callable[[list[Target], Callable[[str], None] | None], dict[str, Built]]


def device_built(ctx: SnapshotContext, device: Device, dcoll: DeviceCollection) -> Built:
    """One fetched device's masked snapshot and row, or the row saying why not (the
    same code on the controller and on a site worker)."""
    dsnap = device_snapshot(ctx, device, dcoll.configs) if dcoll.configs else None
    if dsnap is None or RUNNING not in dsnap.files:
        status = dcoll.status if dcoll.status != "ok" else "failed"
        why = "; ".join(dsnap.warnings) if dsnap else "nothing fetched"
        error = dcoll.error or f"{device.name}: no running config ({why})"
        row = HostTakeResult(
            name=device.name,
            kind="device",
            status=status,
            error=error,
            seconds=dcoll.seconds,
        )
        return None, row
    return dsnap, _row(dsnap, dcoll.seconds)


def server_snapshot(
    ctx: SnapshotContext, server: Server, coll: ServerCollection, earlier: Since | None
) -> Built:
    """One collected server's masked snapshot and row, or the row saying why not (the
    same code on the controller and on a site worker)."""
    if coll.status != "ok":
        row = HostTakeResult(
            name=server.name,
            kind="server",
            status=coll.status,
            via="ssh",
            error=coll.error,
            seconds=coll.seconds,
        )
        return None, row
    if "delta" not in coll.sections:  # the host sent every file: a full collection
        earlier = None
    built = read_host(
        partial(apply_delta, server.name, earlier.files, coll.sections, coll.roots, ctx.key)
        if earlier is not None
        else partial(build_server_snapshot, server.name, coll.sections, coll.roots, ctx.key)
    )
    if isinstance(built, Unreadable):  # one host's output never stops the others'
        row = HostTakeResult(
            name=server.name,
            kind="server",
            status="failed",
            via="ssh",
            error=f"{server.name}: {built.error}",
            seconds=coll.seconds,
        )
        return None, row
    return built, _row(built, coll.seconds)


def _unanswered(target: Target) -> Built:
    row = HostTakeResult(
        name=target.name, kind=target.kind, status="failed", via="worker", error="no answer"
    )
    return None, row


def commit_message(
    reason: str,
    actor: str,
    window: str | None,
    changed: Sequence[str],
    unchanged: int,
    failed: dict[str, str],
) -> str:
    """The commit message of one run: a subject line and git trailers."""
    total = len(changed) + unchanged + len(failed)
    subject = f"snapshot: {reason} ({len(changed)} of {total} hosts changed)"
    lines = [subject, "", f"Reason: {reason}", f"Operator: {actor}"]
    if window:
        lines.append(f"Window: {window}")
    lines.append(f"Hosts-changed: {', '.join(changed)}")
    lines.append(f"Hosts-unchanged: {unchanged}")
    if failed:
        lines.append(f"Hosts-failed: {', '.join(f'{h} ({s})' for h, s in failed.items())}")
    return "\n".join(lines) + "\n"


def record(
    ctx: SnapshotContext,
    snapshots: Sequence[HostSnapshot],
    reason: str,
    window: str | None,
    failed: dict[str, str],
) -> tuple[str | None, dict[str, str]]:
    """Write the snapshots and commit them as one run; (commit or None, host -> new|changed)."""
    ctx.repo.ensure()
    with ctx.repo.lock():
        ctx.repo.check_clean()
        try:
            for snap in snapshots:
                ctx.repo.write_host(snap)
            statuses = ctx.repo.stage([s.name for s in snapshots])
            changed = [s.name for s in snapshots if s.name in statuses]
            message = commit_message(
                reason, ctx.actor, window, changed, len(snapshots) - len(changed), failed
            )
            commit = ctx.repo.commit(message, ctx.actor)
        except BaseException:
            # the tree was clean before this take: leave it so for the next one
            with contextlib.suppress(StoreError):
                ctx.repo.discard_changes()
            raise
    return commit, statuses


def take_snapshots(
    ctx: SnapshotContext,
    targets: Sequence[Target],
    *,
    reason: str,
    window: str | None = None,
    on_result: Callable[[str], None] | None = None,
    remote: Remote | None = None,
) -> TakeReport:
    """Snapshot every target; one commit for the run (none if nothing changed).
    ``remote``: the servers of sites with workers (see :mod:`vcops.workers_snapshot`)."""
    report, _runs = take_with(
        ctx, targets, reason=reason, window=window, on_result=on_result, remote=remote
    )
    return report


def take_with(
    ctx: SnapshotContext,
    targets: Sequence[Target],
    *,
    reason: str,
    window: str | None = None,
    on_result: Callable[[str], None] | None = None,
    extra: ExtraTasks | None = None,
    checksums: bool = False,
    since: Mapping[str, Since] | None = None,
    on_device: Callable[[DeviceCollection], None] | None = None,
    remote: Remote | None = None,
) -> tuple[TakeReport, dict[str, HostRun]]:
    """Snapshot every target with ``extra`` tasks in each server's script; the report
    and each server's whole run (for the other tasks' records). ``checksums`` and
    ``since``: see :func:`collect_servers` (a server collected incrementally is built
    with :func:`~vcops.snapshot.build.apply_delta`). ``on_device`` gets each device's
    fetch (configs NOT masked: in memory only), so a scan taken with the snapshot reads
    the same fetch instead of logging in again. ``remote``: the servers it routes are
    collected and masked elsewhere (site workers) and committed here with the rest;
    ``extra`` tasks and their runs are the local servers' only (the remote side runs
    its own), and never incremental (``since`` names none of them)."""
    ctx.repo.ensure()
    with ctx.repo.lock():
        ctx.repo.check_clean()  # fail before connecting anywhere, not after
    routed = [t for t in targets if remote is not None and remote.routes(t)]
    names = {t.name for t in routed}
    servers = [t for t in targets if isinstance(t, Server)]
    devices = [t for t in targets if isinstance(t, Device) and t.name not in names]
    if since is not None and names & set(since):
        raise ValueError("take_with: remote collection is never incremental")
    device_results: list[Future[DeviceCollection]] = []
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(devices)) + 1)) as pool:
        elsewhere = pool.submit(remote.take, routed, on_result) if remote and routed else None
        for device in devices:
            future = pool.submit(collect_device, ctx, device)
            if on_result is not None:
                future.add_done_callback(lambda f: on_result(f.result().name))
            device_results.append(future)
        server_results = collect_servers(
            ctx,
            [s for s in servers if s.name not in names],
            on_result,
            extra,
            checksums=checksums,
            since=since,
        )
        devices_done = [f.result() for f in device_results]
        remote_done = elsewhere.result() if elsewhere is not None else {}
    if on_device is not None:
        for dcoll in devices_done:
            on_device(dcoll)
    rows: dict[str, HostTakeResult] = {}
    snapshots: list[HostSnapshot] = []
    failed: dict[str, str] = {}
    local_results = iter(server_results)
    local_devices = dict(zip([d.name for d in devices], devices_done, strict=True))
    for target in targets:
        if target.name in names:
            snap, row = remote_done.get(target.name) or _unanswered(target)
        elif isinstance(target, Server):
            coll = next(local_results)
            snap, row = server_snapshot(ctx, target, coll, (since or {}).get(target.name))
        else:
            snap, row = device_built(ctx, target, local_devices[target.name])
        rows[target.name] = row
        if snap is None:
            failed[target.name] = row.status
        else:
            snapshots.append(snap)
    commit, statuses = record(ctx, snapshots, reason, window, failed) if snapshots else (None, {})
    for name, status in statuses.items():
        rows[name].status = status  # type: ignore[assignment]
    report = TakeReport(
        commit=commit,
        reason=reason,
        operator=ctx.actor,
        window=window,
        hosts=[rows[t.name] for t in targets],
    )
    if ctx.store is not None:
        ctx.store.audit(
            "snapshot.take",
            ",".join(t.name for t in targets) if len(targets) <= 20 else f"{len(targets)} targets",
            {
                "commit": commit,
                "reason": reason,
                "window": window,
                "changed": report.changed,
                "unchanged": sum(h.status == "unchanged" for h in report.hosts),
                "unreachable": report.unreachable,
                "failed": report.failed,
            },
            actor=ctx.actor,
        )
    runs = {c.name: c.run for c in server_results if c.run is not None}
    return report, runs


def _row(snap: HostSnapshot, seconds: float) -> HostTakeResult:
    return HostTakeResult(
        name=snap.name,
        kind=snap.kind,
        status="unchanged",
        via=snap.via,
        files=len(snap.files),
        masked=snap.masked,
        warnings=snap.warnings,
        seconds=seconds,
    )
