"""Site workers: the servers of a site listed in ``[workers] sites`` are scanned by
``vcops worker --site NAME`` processes inside that site, over Celery on Redis.

The controller plans (which targets, the scan time, the package sightings it already
knows), sends *chunks of target names* to the site's queue, and stores and reports what
comes back. A worker reads the same inventory (its fingerprint travels with each task
and a worker with a different inventory refuses), runs the same fact script over SSH
with its own key and known_hosts, evaluates the same controls with the same pure code
(:func:`vcops.scan.server_outcome`) and returns the :class:`~vcops.findings.TargetOutcome`
of each host: findings, never raw facts or config files, so no secret crosses the broker.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from vcops.connectors import broker
from vcops.errors import BrokerError
from vcops.findings import TargetOutcome
from vcops.findings_store import known_sightings
from vcops.inventory.load import load_inventory
from vcops.inventory.models import Inventory, Server
from vcops.scan import RemoteScan, first_seen_from, gather_servers
from vcops.store import Store

if TYPE_CHECKING:
    from celery import Celery

TASK = "vcops.scan_chunk"
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
    _inventory: Inventory | None = None

    def inventory(self) -> Inventory:
        if self._inventory is None:
            self._inventory = load_inventory(self.inventory_root)
        return self._inventory


class _Serving:
    """The context of the worker this process runs (set once by :func:`serve`)."""

    context: WorkerContext | None = None


def _unknown(name: str, error: str) -> dict[str, object]:
    outcome = TargetOutcome(target=name, kind="server", status="unknown", error=error)
    return {"outcome": outcome.model_dump(mode="json"), "pending": []}


def scan_chunk(payload: dict[str, object]) -> dict[str, object]:
    """The worker task: scan these servers of this site; findings per host (JSON)."""
    ctx = _Serving.context
    if ctx is None:
        raise RuntimeError("vcops.workers: no worker context (start with `vcops worker`)")
    raw_names = payload.get("targets")
    names = (
        [n for n in raw_names if isinstance(n, str)][:1000] if isinstance(raw_names, list) else []
    )
    results: dict[str, object] = {}
    if payload.get("inventory") != inventory_fingerprint(ctx.inventory_root):
        for name in names:
            results[name] = _unknown(
                name, f"worker {ctx.node}: its inventory differs from the controller's; sync it"
            )
        return {"worker": ctx.node, "results": results}
    inv = ctx.inventory()
    now = datetime.fromisoformat(str(payload["now"]))
    raw_known = payload.get("sightings")
    known: dict[str, dict[str, int]] = raw_known if isinstance(raw_known, dict) else {}
    first_seen = first_seen_from(known, int(now.timestamp()))

    servers = []
    for name in names:
        target = inv.target(name)
        if isinstance(target, Server) and target.site == ctx.site:
            servers.append(target)
        else:
            results[name] = _unknown(name, f"worker {ctx.node}: not a server of site {ctx.site}")
    with broker.host_locks(ctx.broker_url, [s.name for s in servers], ctx.lock_ttl) as (held, busy):
        for name in busy:
            results[name] = _unknown(name, f"{name}: another worker is on it right now; rescan")
        mine = [s for s in servers if s.name in held]
        # [run] max_parallel bounds this machine's SSH sessions: shared by the task threads
        parallel = max(1, ctx.max_parallel // max(1, ctx.concurrency))
        outcomes = gather_servers(inv, mine, now, parallel, lambda _n: None, first_seen)
        for outcome, pending in outcomes:
            results[outcome.target] = {
                "outcome": outcome.model_dump(mode="json"),
                "pending": [list(p) for p in pending],
            }
    return {"worker": ctx.node, "results": results}


def register(app: Celery) -> None:
    """Register the worker task on ``app`` (idempotent: a redelivered chunk rescans
    read-only and its result replaces nothing on the controller)."""
    app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)(scan_chunk)


def serve(ctx: WorkerContext, concurrency: int, visibility_timeout: int) -> None:
    """Run a worker for ``ctx.site`` until it is stopped (the ``vcops worker`` command).

    Raises:
        BrokerError: the broker is down or the client libraries are missing.
    """
    broker.check_broker(ctx.broker_url)
    _Serving.context = ctx
    app = broker.make_app(ctx.broker_url, visibility_timeout=visibility_timeout)
    register(app)
    stop = broker.start_heartbeat(ctx.broker_url, ctx.site, ctx.node, concurrency)
    try:
        app.worker_main(
            [
                "worker",
                "--queues",
                broker.site_queue(ctx.site),
                "--concurrency",
                str(concurrency),
                "--pool",
                "threads",
                "--hostname",
                ctx.node,
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    except Exception as exc:  # kombu/redis errors when the broker goes away at start
        raise BrokerError(
            f"worker {ctx.node}: broker {broker.redact(ctx.broker_url)}: {exc}"
        ) from None
    finally:
        stop.set()


# -- the controller side ---------------------------------------------------------------


@dataclass
class SitePlan:
    broker_url: str
    sites: list[str]
    inventory_root: Path
    chunk: int = 25
    result_timeout: float = 900.0
    visibility_timeout: int = 1200


def remote_scan(plan: SitePlan, store: Store | None) -> RemoteScan:
    """The ``remote`` hook of :func:`vcops.scan.run_scan` for the sites with workers."""

    def run(servers: list[Server], now: datetime, advance: Callable[[str], None]) -> Outcomes:
        routed = [s for s in servers if s.site in plan.sites]
        if not routed:
            return {}
        return dispatch(plan, routed, now, advance, store)

    return run


def _unknowns(servers: list[Server], error: str) -> Outcomes:
    return {
        s.name: (TargetOutcome(target=s.name, kind="server", status="unknown", error=error), [])
        for s in servers
    }


def dispatch(
    plan: SitePlan,
    servers: list[Server],
    now: datetime,
    advance: Callable[[str], None],
    store: Store | None,
) -> Outcomes:
    """Send the servers to their sites' workers in chunks; gather the outcomes."""
    try:
        broker.check_broker(plan.broker_url)
        beats = broker.worker_beats(plan.broker_url)
    except BrokerError as exc:
        return _unknowns(servers, str(exc))
    live = {b.site for b in beats if b.alive}
    out: Outcomes = {}
    idle = [s for s in servers if s.site not in live]
    for site in sorted({s.site for s in idle}):
        out |= _unknowns(
            [s for s in idle if s.site == site],
            f"no live worker for site {site}; start `vcops worker --site {site}`",
        )
    busy = [s for s in servers if s.site in live]
    if not busy:
        return out
    known = known_sightings(store, [s.name for s in busy]) if store is not None else {}
    fingerprint = inventory_fingerprint(plan.inventory_root)
    app = broker.make_app(plan.broker_url, visibility_timeout=plan.visibility_timeout)
    sent: list[tuple[list[Server], object]] = []
    for site in sorted({s.site for s in busy}):
        members = [s for s in busy if s.site == site]
        for i in range(0, len(members), plan.chunk):
            chunk = members[i : i + plan.chunk]
            payload = {
                "targets": [s.name for s in chunk],
                "now": now.isoformat(),
                "inventory": fingerprint,
                "sightings": {s.name: known.get(s.name, {}) for s in chunk},
            }
            try:
                result = app.send_task(TASK, args=[payload], queue=broker.site_queue(site))
            except Exception as exc:  # the broker went away between the ping and now
                out |= _unknowns(chunk, f"broker {broker.redact(plan.broker_url)}: {exc}")
                continue
            sent.append((chunk, result))
    deadline = time.monotonic() + plan.result_timeout
    for chunk, result in sent:
        out |= _collect(chunk, result, deadline, plan, advance)
    return out


def _collect(
    chunk: list[Server],
    result: object,
    deadline: float,
    plan: SitePlan,
    advance: Callable[[str], None],
) -> Outcomes:
    from celery.exceptions import TimeoutError as CeleryTimeout
    from celery.result import AsyncResult

    assert isinstance(result, AsyncResult)
    site = chunk[0].site
    try:
        value = result.get(
            timeout=max(0.1, deadline - time.monotonic()), propagate=False, interval=0.2
        )
        ok = result.successful()
    except CeleryTimeout:
        return _unknowns(
            chunk,
            f"no result from site {site}'s workers within {plan.result_timeout:g}s "
            "(worker lost or overloaded); rescan",
        )
    except Exception as exc:  # the backend (Redis) went away while we waited
        return _unknowns(chunk, f"broker {broker.redact(plan.broker_url)}: {exc}")
    with contextlib.suppress(Exception):
        result.forget()
    if not ok or not isinstance(value, dict):
        return _unknowns(chunk, f"site {site} worker failed: {str(value)[:300]}")
    out: Outcomes = {}
    results = value.get("results", {})
    for server in chunk:
        item = results.get(server.name) if isinstance(results, dict) else None
        if not isinstance(item, dict):
            out |= _unknowns([server], f"site {site} worker returned nothing for it")
            continue
        outcome = TargetOutcome.model_validate(item["outcome"])
        pending = [(str(p[0]), str(p[1])) for p in item.get("pending", [])][:10000]
        out[server.name] = (outcome, pending)
        advance(server.name)
    return out
