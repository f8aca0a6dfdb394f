"""``snapshot take`` through site workers: the servers of a site listed in
``[workers] sites`` are collected AND masked by that site's workers; the controller
commits what comes back exactly as it commits an in-process take (one commit, the
same message, the same audit entry).

A worker runs the same collection (:func:`vcops.snapshot.take.collect_servers`: one
SSH session per host through the host-task layer) and builds each host's snapshot
with the same code (:func:`vcops.snapshot.take.server_snapshot`), masking with the
masking key it reads from its own ``[store] state_dir`` (copied there from the
controller; never sent). The controller sends the key's public id
(:func:`vcops.snapshot.keys.key_id`) and a worker whose key differs refuses, so both
paths give the same markers. Only masked trees cross the broker. The payload is sealed
(:mod:`vcops.workers_seal`): a worker collects only for its controller. Example::

    {"targets": ["kam-fra1-01"], "inventory": "5f0c9a1b...", "key": "1a2b3c4d5e6f7a8b",
     "expires": 1764500000, "seal": "9c1e..."}

and answer (per host)::

    {"kam-fra1-01": {"snapshot": {"name": "kam-fra1-01", "files": {...}, ...},
                     "row": {"name": "kam-fra1-01", "status": "unchanged", ...}}}

Hosts without an answer (broker down, no live worker for the site, ``result_timeout``,
an unreadable answer) are *unreachable* with the reason (exit 3, as a scan's *unknown*);
the others are committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import PurePosixPath

from vcops.connectors import broker
from vcops.connectors.hosttask import HostTask
from vcops.errors import StoreError, VcopsError
from vcops.findings import TargetOutcome
from vcops.findings_store import known_sightings
from vcops.inventory.models import Device, Server, Target
from vcops.scan import RemoteScan, RemoteScanSnapshot, gather_devices
from vcops.scan_servers import FirstSeen, facts_tasks, first_seen_from, server_outcome
from vcops.snapshot.build import FILE_LIST, FILES_DIR, RUNNING, STARTUP
from vcops.snapshot.collect import paths_for_roles
from vcops.snapshot.gitstore import SnapshotRepo
from vcops.snapshot.keys import key_id, load_or_create_key
from vcops.snapshot.models import HostSnapshot, HostTakeResult
from vcops.snapshot.take import (
    Built,
    Remote,
    SnapshotContext,
    collect_device,
    collect_servers,
    device_built,
    server_snapshot,
)
from vcops.store import Store
from vcops.workers import (
    Outcomes,
    Sealer,
    SitePlan,
    WorkerContext,
    fan_out,
    inventory_differs,
    payload_names,
    serving,
)
from vcops.workers_seal import unsealed

TASK = "vcops.snapshot_chunk"
#: What a server's folder holds at its top (see :mod:`vcops.snapshot.build`).
_TOP = frozenset({FILES_DIR, FILE_LIST, "state"})
_DEVICE_FILES = frozenset({RUNNING, STARTUP})


def _failed_row(name: str, error: str) -> dict[str, object]:
    row = HostTakeResult(name=name, kind="server", status="failed", via="worker", error=error)
    return {"snapshot": None, "row": row.model_dump(mode="json")}


def _entry(snap: HostSnapshot | None, row: HostTakeResult) -> dict[str, object]:
    return {
        "snapshot": snap.model_dump(mode="json") if snap is not None else None,
        "row": row.model_dump(mode="json"),
    }


def _quiet(_name: str) -> None:
    """No progress to show on a worker."""


def worker_key(ctx: WorkerContext, payload: dict[str, object]) -> tuple[bytes, str | None]:
    """This worker's masking key (read from its ``state_dir``, never made here), or why
    it must refuse the task: another inventory, no key, or not the controller's key
    (the payload's ``key`` is the controller key's public id)."""
    refused = inventory_differs(ctx, payload)
    key = b""
    state, repo = ctx.state_dir, ctx.snapshots_dir
    if refused is None and (state is None or repo is None):
        refused = f"worker {ctx.node}: no state directory to read the masking key from"
    elif refused is None and state is not None and repo is not None:
        try:
            key = load_or_create_key(state, repo, create=False)
        except StoreError as exc:
            refused = f"worker {ctx.node}: {exc}"
    if refused is None and payload.get("key") != key_id(key):
        refused = (
            f"worker {ctx.node}: its masking key differs from the controller's; copy the "
            "controller's snapshot-mask.key into the worker's state_dir"
        )
    if refused is None and (why := unsealed(payload, key)) is not None:
        refused = f"worker {ctx.node}: {why}"
    return key, refused


def snapshot_chunk(payload: dict[str, object]) -> dict[str, object]:
    """The worker task: collect and mask these servers and devices of this site (JSON
    per target)."""
    ctx = serving()
    names = payload_names(payload)
    key, refused = worker_key(ctx, payload)
    repo = ctx.snapshots_dir
    if refused is not None or repo is None:
        why = refused or "no snapshot directory"
        return {"worker": ctx.node, "results": {n: _failed_row(n, why) for n in names}}
    inv = ctx.inventory()
    results: dict[str, object] = {}
    targets, elsewhere = ctx.site_targets(names)
    results |= {name: _failed_row(name, why) for name, why in elsewhere.items()}
    with broker.host_locks(ctx.broker_url, [t.name for t in targets], ctx.lock_ttl) as (held, busy):
        for name in busy:
            results[name] = _failed_row(name, f"{name}: another worker is on it right now")
        snap_ctx = SnapshotContext(
            inventory=inv,
            repo=SnapshotRepo(repo),  # never written here: the controller commits
            key=key,
            max_parallel=max(1, ctx.max_parallel // max(1, ctx.concurrency)),
            actor=ctx.node,
        )
        scan = _ScanPart.of(payload)
        mine = [t for t in targets if isinstance(t, Server) and t.name in held]
        devices = [t for t in targets if isinstance(t, Device) and t.name in held]
        extra = scan.tasks if scan is not None else None
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(devices)))) as pool:
            fetches = pool.map(partial(collect_device, snap_ctx), devices)
            for server, coll in zip(
                mine, collect_servers(snap_ctx, mine, extra=extra), strict=True
            ):
                snap, row = server_snapshot(snap_ctx, server, coll, None)
                entry = _entry(snap, row)
                if scan is not None and coll.run is not None:
                    outcome, pending = server_outcome(
                        inv, server, coll.run, scan.now, scan.first_seen
                    )
                    entry["outcome"] = outcome.model_dump(mode="json")
                    entry["pending"] = [list(p) for p in pending]
                results[server.name] = entry
            for device, dcoll in zip(devices, fetches, strict=True):
                entry = _entry(*device_built(snap_ctx, device, dcoll))
                if scan is not None:  # the device's scan reads this same fetch
                    [outcome] = gather_devices(inv, [device], 1, _quiet, {device.name: dcoll})
                    entry["outcome"] = outcome.model_dump(mode="json")
                    entry["pending"] = []
                results[device.name] = entry
    return {"worker": ctx.node, "results": results}


@dataclass(frozen=True)
class _ScanPart:
    """``scan --snapshot``: the scan time and the sightings the controller knows; the
    facts task then runs in the same script as the collection."""

    now: datetime
    first_seen: FirstSeen

    @classmethod
    def of(cls, payload: dict[str, object]) -> _ScanPart | None:
        raw = payload.get("scan")
        if not isinstance(raw, dict):
            return None
        now = datetime.fromisoformat(str(raw["now"]))
        known = raw.get("sightings")
        sightings: dict[str, dict[str, int]] = known if isinstance(known, dict) else {}
        return cls(now=now, first_seen=first_seen_from(sightings, int(now.timestamp())))

    @staticmethod
    def tasks(server: Server) -> list[HostTask]:
        return facts_tasks(server, paths_for_roles(server.roles))


# -- the controller side ---------------------------------------------------------------


def _unreached(targets: list[Target], error: str) -> dict[str, Built]:
    return {
        t.name: (
            None,
            HostTakeResult(
                name=t.name, kind=t.kind, status="unreachable", via="worker", error=error
            ),
        )
        for t in targets
    }


def _read(target: Target, item: dict[str, object]) -> Built:
    """One target's answer, checked: it names this target, a row without a snapshot
    failed."""
    row = HostTakeResult.model_validate(item["row"])
    raw = item.get("snapshot")
    snap = HostSnapshot.model_validate(raw) if raw is not None else None
    if row.name != target.name:
        raise ValueError("the answer is for another host")
    row.kind = target.kind  # (a refusal may not know what the name is)
    if snap is None:
        if row.status not in {"failed", "unreachable"}:
            raise ValueError("no snapshot, yet not failed")
        return None, row
    row.status = "unchanged"  # new or changed is decided by the commit, here
    return read_snapshot(target, snap), row


def read_snapshot(target: Target, snap: HostSnapshot) -> HostSnapshot:
    """A snapshot from a worker, checked: of this target, and only paths inside its
    folder (a server's files, a device's two configs): what a worker says is data.

    Raises:
        ValueError: it is not.
    """
    if snap.name != target.name or snap.kind != target.kind:
        raise ValueError("the snapshot is of another host")
    for path in snap.files:
        parts = PurePosixPath(path).parts
        if snap.kind == "device":
            if path not in _DEVICE_FILES:
                raise ValueError("a device snapshot holds only its configs")
            continue
        if not parts or parts[0] not in _TOP or any(p in {"..", ".", ""} for p in parts):
            raise ValueError("a path outside the host folder")
    return snap


def remote_scan_snapshot(plan: SitePlan, key: bytes, store: Store | None) -> RemoteScanSnapshot:
    """The ``remote_snapshot`` hook of :func:`vcops.scan.run_scan` (``scan --snapshot``):
    each worker runs the facts task in the same script as the collection and answers
    with the host's masked snapshot AND its scan outcome."""

    def for_time(now: datetime) -> tuple[Remote, RemoteScan]:
        outcomes: Outcomes = {}

        def scanned(
            targets: Sequence[Target], _now: datetime, _advance: Callable[[str], None]
        ) -> Outcomes:
            return {t.name: outcomes[t.name] for t in targets if t.name in outcomes}

        def extra(chunk: list[Target]) -> dict[str, object]:
            names = [t.name for t in chunk if isinstance(t, Server)]
            known = known_sightings(store, names) if store is not None else {}
            sightings = {n: known.get(n, {}) for n in names}
            return {"scan": {"now": now.isoformat(), "sightings": sightings}}

        def read(server: Target, item: dict[str, object]) -> Built:
            built = _read(server, item)
            outcome = TargetOutcome.model_validate(item["outcome"])
            if outcome.target != server.name or outcome.kind != server.kind:
                raise ValueError("the outcome is of another host")
            raw = item.get("pending", [])
            pending = [(str(p[0]), str(p[1])) for p in raw][:10000] if isinstance(raw, list) else []
            outcomes[server.name] = (outcome, pending)
            return built

        def fail(targets: list[Target], error: str) -> dict[str, Built]:
            for t in targets:
                unknown = TargetOutcome(target=t.name, kind=t.kind, status="unknown", error=error)
                outcomes[t.name] = (unknown, [])
            return _unreached(targets, error)

        return remote_snapshot(plan, key, extra, read, fail), scanned

    return for_time


def remote_snapshot(
    plan: SitePlan,
    key: bytes,
    extra: Callable[[list[Target]], dict[str, object]] | None = None,
    read: Callable[[Target, dict[str, object]], Built] = _read,
    fail: Callable[[list[Target], str], dict[str, Built]] = _unreached,
) -> Remote:
    """The ``remote`` hook of :func:`vcops.snapshot.take.take_snapshots` for the sites
    with workers (``key``: the controller's masking key; only its id is sent)."""

    def take(servers: list[Target], on_result: Callable[[str], None] | None) -> dict[str, Built]:
        sealed = Sealer.of(plan, key)

        def payload(chunk: list[Target]) -> dict[str, object]:
            return sealed(chunk, **(extra(chunk) if extra is not None else {}))

        advance = on_result if on_result is not None else (lambda _n: None)
        try:
            return fan_out(plan, TASK, servers, payload, read, fail, advance)
        except VcopsError as exc:  # e.g. the distributed extra is not installed
            return fail(servers, str(exc))

    return Remote(routes=lambda s: s.site in plan.sites, take=take)
