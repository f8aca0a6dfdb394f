"""Site workers: the servers and devices of a site listed in ``[workers] sites`` are
scanned by ``vcops worker --site NAME`` processes inside that site, over Celery on
Redis.

The controller plans (which targets, the scan time, the package sightings it already
knows), sends *chunks of target names* to the site's queue, and stores and reports what
comes back. A worker reads the same inventory (its fingerprint travels with each task
and a worker with a different inventory refuses), runs the same fact script over SSH
with its own key and known_hosts (a device: reads its running config), evaluates the
same controls with the same pure code (:func:`vcops.scan.server_outcome`,
:func:`vcops.scan.gather_devices`) and returns the
:class:`~vcops.findings.TargetOutcome` of each target: findings, never raw facts or
config files, so no secret crosses the broker.

Failure is data: a broker that is down, a site with no live worker, or results that do
not come back in ``result_timeout`` make those targets *unknown* (exit 3), never a hang.

Example task payload (JSON)::

    {"targets": ["kam-fra1-01", "ast-fra1-02"], "now": "2026-11-30T10:00:00+00:00",
     "inventory": "5f0c9a1b...", "sightings": {"kam-fra1-01": {"openssl=3.0.15": 1764400000}}}
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from vcops.connectors import broker
from vcops.errors import BrokerError
from vcops.findings import TargetOutcome
from vcops.findings_store import known_sightings
from vcops.inventory.load import load_inventory
from vcops.inventory.models import Device, Inventory, Server, Target
from vcops.scan import RemoteScan, first_seen_from, gather_devices, gather_servers
from vcops.snapshot.keys import key_id
from vcops.store import Store
from vcops.workers_seal import once_ttl, seal

TASK = "vcops.scan_chunk"
R = TypeVar("R")
#: A task's targets: servers, or servers and devices.
T = TypeVar("T", Server, Target)
Outcomes = dict[str, tuple[TargetOutcome, list[tuple[str, str]]]]


def inventory_fingerprint(root: Path) -> str:
    """SHA-256 over the inventory's YAML files (name and content), sorted."""
    digest = hashlib.sha256()
    for path in sorted([*root.glob("*.yml"), *root.glob("*.yaml")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# -- the worker side -------------------------------------------------------------------


@dataclass
class WorkerContext:
    """What a worker process serves with: its site, its inventory, its broker."""

    site: str
    inventory_root: Path
    broker_url: str
    node: str
    max_parallel: int = 50
    concurrency: int = 1
    lock_ttl: int = 240
    #: Where the masking key lives (``[store] state_dir``; snapshots are masked here).
    state_dir: Path | None = None
    snapshots_dir: Path | None = None
    _inventory: Inventory | None = None

    def inventory(self) -> Inventory:
        if self._inventory is None:
            self._inventory = load_inventory(self.inventory_root)
        return self._inventory

    def site_targets(self, names: list[str]) -> tuple[list[Target], dict[str, str]]:
        """The servers and devices of this worker's site among ``names``; the other
        names with why this worker will not touch them (each task answers them in its
        own shape)."""
        inv, targets, refused = self.inventory(), [], {}
        for name in names:
            target = inv.target(name)
            if target is not None and target.site == self.site:
                targets.append(target)
            else:
                refused[name] = f"worker {self.node}: not a target of site {self.site}"
        return targets, refused

    def site_servers(self, names: list[str]) -> tuple[list[Server], dict[str, str]]:
        """:meth:`site_targets`, servers only (a window step or a rollback)."""
        targets, refused = self.site_targets(names)
        for device in [t for t in targets if not isinstance(t, Server)]:
            refused[device.name] = f"worker {self.node}: {device.name} is not a server"
        return [t for t in targets if isinstance(t, Server)], refused


class _Serving:
    """The context of the worker this process runs (set once by :func:`serve`)."""

    context: WorkerContext | None = None


def serving() -> WorkerContext:
    """The context of this worker process (a task runs only under ``vcops worker``)."""
    ctx = _Serving.context
    if ctx is None:
        raise RuntimeError("vcops.workers: no worker context (start with `vcops worker`)")
    return ctx


def payload_names(payload: dict[str, object]) -> list[str]:
    """The target names of a task (at most 1,000 strings)."""
    raw = payload.get("targets")
    return [n for n in raw if isinstance(n, str)][:1000] if isinstance(raw, list) else []


def inventory_differs(ctx: WorkerContext, payload: dict[str, object]) -> str | None:
    """Why this worker must refuse the task (its inventory is not the controller's)."""
    if payload.get("inventory") != inventory_fingerprint(ctx.inventory_root):
        return f"worker {ctx.node}: its inventory differs from the controller's; sync it"
    return None


def _unknown(name: str, error: str) -> dict[str, object]:
    outcome = TargetOutcome(target=name, kind="server", status="unknown", error=error)
    return {"outcome": outcome.model_dump(mode="json"), "pending": []}


def scan_chunk(payload: dict[str, object]) -> dict[str, object]:
    """The worker task: scan these servers of this site; findings per host (JSON)."""
    ctx = serving()
    names = payload_names(payload)
    results: dict[str, object] = {}
    refused = inventory_differs(ctx, payload)
    if refused is not None:
        for name in names:
            results[name] = _unknown(name, refused)
        return {"worker": ctx.node, "results": results}
    inv = ctx.inventory()
    now = datetime.fromisoformat(str(payload["now"]))
    raw_known = payload.get("sightings")
    known: dict[str, dict[str, int]] = raw_known if isinstance(raw_known, dict) else {}
    first_seen = first_seen_from(known, int(now.timestamp()))

    targets, elsewhere = ctx.site_targets(names)
    results |= {name: _unknown(name, why) for name, why in elsewhere.items()}
    with broker.host_locks(ctx.broker_url, [t.name for t in targets], ctx.lock_ttl) as (held, busy):
        for name in busy:
            results[name] = _unknown(name, f"{name}: another worker is on it right now; rescan")
        servers = [t for t in targets if isinstance(t, Server) and t.name in held]
        devices = [t for t in targets if isinstance(t, Device) and t.name in held]
        # [run] max_parallel bounds this machine's SSH sessions: shared by the task threads
        parallel = max(1, ctx.max_parallel // max(1, ctx.concurrency))
        outcomes = gather_servers(inv, servers, now, parallel, lambda _n: None, first_seen)
        outcomes += [(o, []) for o in gather_devices(inv, devices, parallel, lambda _n: None)]
        for outcome, pending in outcomes:
            results[outcome.target] = {
                "outcome": outcome.model_dump(mode="json"),
                "pending": [list(p) for p in pending],
            }
    return {"worker": ctx.node, "results": results}


# -- the controller side ---------------------------------------------------------------


@dataclass
class SitePlan:
    broker_url: str
    sites: list[str]
    inventory_root: Path
    chunk: int = 25
    result_timeout: float = 900.0
    visibility_timeout: int = 1200


@dataclass(frozen=True)
class Sealer:
    """The sealed payloads of one run's tasks (:mod:`vcops.workers_seal`): the target
    names, the inventory's fingerprint, the masking key's public id and the task's own
    fields, with an expiry and an HMAC under a key derived from the masking key.
    ``once``: a task that must never run twice (a window step, a rollback, a device
    push) expires before the broker would hand a dead worker's copy to another worker."""

    plan: SitePlan
    key: bytes
    fingerprint: str
    once: bool = False

    @classmethod
    def of(cls, plan: SitePlan, key: bytes, *, once: bool = False) -> Sealer:
        return cls(plan, key, inventory_fingerprint(plan.inventory_root), once)

    def __call__(self, targets: Sequence[Target], **fields: object) -> dict[str, object]:
        body: dict[str, object] = {
            "targets": [t.name for t in targets],
            "inventory": self.fingerprint,
            "key": key_id(self.key),
            **fields,
        }
        plan = self.plan
        ttl = once_ttl(plan.result_timeout, plan.visibility_timeout) if self.once else None
        return seal(body, self.key, ttl if ttl is not None else plan.result_timeout)


def remote_scan(plan: SitePlan, store: Store | None) -> RemoteScan:
    """The ``remote`` hook of :func:`vcops.scan.run_scan` for the sites with workers."""

    def run(targets: Sequence[Target], now: datetime, advance: Callable[[str], None]) -> Outcomes:
        routed = [t for t in targets if t.site in plan.sites]
        if not routed:
            return {}
        return dispatch(plan, routed, now, advance, store)

    return run


def _unknowns(targets: list[Target], error: str) -> Outcomes:
    return {
        t.name: (TargetOutcome(target=t.name, kind=t.kind, status="unknown", error=error), [])
        for t in targets
    }


def dispatch(
    plan: SitePlan,
    targets: list[Target],
    now: datetime,
    advance: Callable[[str], None],
    store: Store | None,
) -> Outcomes:
    """Send the targets to their sites' workers in chunks; gather the outcomes."""
    servers = [t.name for t in targets if isinstance(t, Server)]
    known = known_sightings(store, servers) if store is not None else {}
    fingerprint = inventory_fingerprint(plan.inventory_root)

    def payload(chunk: list[Target]) -> dict[str, object]:
        return {
            "targets": [s.name for s in chunk],
            "now": now.isoformat(),
            "inventory": fingerprint,
            "sightings": {s.name: known.get(s.name, {}) for s in chunk},
        }

    def read(
        target: Target, item: dict[str, object]
    ) -> tuple[TargetOutcome, list[tuple[str, str]]]:
        outcome = TargetOutcome.model_validate(item["outcome"])
        if outcome.target != target.name or outcome.kind != target.kind:
            raise ValueError("the outcome is of another target")
        raw = item.get("pending", [])
        pending = [(str(p[0]), str(p[1])) for p in raw][:10000] if isinstance(raw, list) else []
        return outcome, pending

    return fan_out(plan, TASK, targets, payload, read, _unknowns, advance)


def fan_out(
    plan: SitePlan,
    task: str,
    servers: list[T],
    payload: Callable[[list[T]], dict[str, object]],
    read: Callable[[T, dict[str, object]], R],
    fail: Callable[[list[T], str], dict[str, R]],
    advance: Callable[[str], None],
) -> dict[str, R]:
    """Send ``task`` for the servers to their sites' queues in chunks and read each
    host's answer with ``read``; ``fail`` makes the result of the servers that get
    none (broker down, no live worker for the site, timeout, a bad answer)."""
    try:
        broker.check_broker(plan.broker_url)
        beats = broker.worker_beats(plan.broker_url)
    except BrokerError as exc:
        return fail(servers, str(exc))
    live = {b.site for b in beats if b.alive}
    out: dict[str, R] = {}
    idle = [s for s in servers if s.site not in live]
    for site in sorted({s.site for s in idle}):
        out |= fail(
            [s for s in idle if s.site == site],
            f"no live worker for site {site}; start `vcops worker --site {site}`",
        )
    busy = [s for s in servers if s.site in live]
    if not busy:
        return out
    app = broker.shared_app(plan.broker_url, visibility_timeout=plan.visibility_timeout)
    sent: list[tuple[list[T], object]] = []
    for site in sorted({s.site for s in busy}):
        members = [s for s in busy if s.site == site]
        for i in range(0, len(members), plan.chunk):
            chunk = members[i : i + plan.chunk]
            try:
                result = app.send_task(task, args=[payload(chunk)], queue=broker.site_queue(site))
            except Exception as exc:  # the broker went away between the ping and now
                out |= fail(chunk, f"broker {broker.redact(plan.broker_url)}: {exc}")
                continue
            sent.append((chunk, result))
    deadline = time.monotonic() + plan.result_timeout
    for chunk, result in sent:
        out |= _collect(chunk, result, deadline, plan, read, fail, advance)
    return out


def _collect(
    chunk: list[T],
    result: object,
    deadline: float,
    plan: SitePlan,
    read: Callable[[T, dict[str, object]], R],
    fail: Callable[[list[T], str], dict[str, R]],
    advance: Callable[[str], None],
) -> dict[str, R]:
    from celery import states
    from celery.result import AsyncResult

    assert isinstance(result, AsyncResult)
    site = chunk[0].site
    try:
        # the result key, read with a plain GET until it is final: safe from the many
        # threads of a window run on one shared app, unlike AsyncResult.get's pubsub
        while (meta := result.backend.get_task_meta(result.id))["status"] not in (
            states.READY_STATES
        ):
            if time.monotonic() >= deadline:
                return fail(
                    chunk,
                    f"no result from site {site}'s workers within {plan.result_timeout:g}s "
                    "(worker lost or overloaded); try again",
                )
            time.sleep(0.1)
    except Exception as exc:  # the backend (Redis) went away while we waited
        return fail(chunk, f"broker {broker.redact(plan.broker_url)}: {exc}")
    value, ok = meta.get("result"), meta["status"] == states.SUCCESS
    with contextlib.suppress(Exception):
        result.forget()
    if not ok or not isinstance(value, dict):
        return fail(chunk, f"site {site} worker failed: {str(value)[:300]}")
    out: dict[str, R] = {}
    results = value.get("results", {})
    for server in chunk:
        item = results.get(server.name) if isinstance(results, dict) else None
        if not isinstance(item, dict):
            out |= fail([server], f"site {site} worker returned nothing for it")
            continue
        try:
            out[server.name] = read(server, item)
        except (ValueError, KeyError, TypeError, IndexError):  # pydantic's errors are ValueErrors
            out |= fail([server], f"site {site} worker returned an unreadable answer")
            continue
        advance(server.name)
    return out
