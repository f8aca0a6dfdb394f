"""Gathering servers for a scan: the facts task per host (one SSH session each, with
the pending-upgrades and needrestart fingerprints stored at its last scan, see
:mod:`vcops.facts.upgrades`), each host's outcome read inside the per-host boundary,
package sightings and the upgrades cache stored in one transaction for the fleet. The
same :func:`server_outcome` runs on the controller and on a site worker."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from vcops.connectors.hosttask import (
    HostRun,
    HostTask,
    run_tasks,
    tar_members,
)
from vcops.connectors.ssh import SshTarget
from vcops.evaluate import contained, evaluate_server, server_context
from vcops.facts.sections import Section
from vcops.facts.server import CONF_TREES, FILE_SECTIONS, FactsTask, ServerFacts, parse_facts
from vcops.facts.upgrades import UpgradeCache, next_cache, read_needrestart, read_upgrades
from vcops.findings import (
    TargetOutcome,
)
from vcops.findings_store import (
    known_sightings,
    record_sightings,
    save_upgrade_cache,
)
from vcops.inventory.models import Inventory, Server, Target
from vcops.store import Store

SNAPSHOT_SECTIONS = ("sshd_t", "packages")
"""Generated sections a snapshot's script always has, which the facts task then skips."""


def facts_task(
    cached: UpgradeCache | None, now: datetime, shared: frozenset[str] = frozenset()
) -> FactsTask:
    """The facts task carrying the fingerprints stored for the host (``cached``)."""
    if cached is None:
        return FactsTask(shared=shared)
    return FactsTask(
        shared=shared,
        upgrades_since=cached.fingerprint,
        needrestart_since=cached.needrestart_since(now),
    )


def facts_tasks(
    server: Server,
    snapshot_roots: list[str] | None = None,
    cached: UpgradeCache | None = None,
    now: datetime | None = None,
) -> list[HostTask]:
    """The scan's host task for one server (with the fingerprints stored at its last
    scan, ``cached``, as of ``now``); beside a snapshot with these roots it leaves out
    what the snapshot reads (the VoIP config trees, the audit and chrony files,
    ``sshd -T``, the package list)."""
    shared: frozenset[str] = frozenset()
    if snapshot_roots is not None:
        trees = {tree for tree, root in CONF_TREES.items() if root in snapshot_roots}
        trees |= {name for name, (root, _f) in FILE_SECTIONS.items() if root in snapshot_roots}
        shared = frozenset({*trees, *SNAPSHOT_SECTIONS})
    return [facts_task(cached, now or datetime.now(UTC), shared)]


def server_facts(run: HostRun) -> ServerFacts:
    """The facts of one host's run, with the snapshot's files when it took one (pure)."""
    snap = run.output("snapshot")
    files = snap.get("files")
    shared = {
        name: Section(rc=record.rc, text=record.text)
        for name in SNAPSHOT_SECTIONS
        if (record := snap.get(name)) is not None
    }
    return parse_facts(
        run.output("facts"), tar_members(files.data) if files is not None else None, shared
    )


#: ``remote(targets, now, advance)``: outcomes of the targets (servers and devices)
#: whose site has workers (see :mod:`vcops.workers`), with the pending security updates
#: each server reported; the other targets are not in the answer.
RemoteScan = Callable[
    [Sequence[Target], datetime, Callable[[str], None]],
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
    cached: UpgradeCache | None = None,
    fresh: dict[str, UpgradeCache] | None = None,
) -> tuple[TargetOutcome, list[tuple[str, str]]]:
    """One server's outcome from its facts task (alone, or beside a snapshot in the same
    script), and its pending security updates (the same function runs on the controller
    and on a site worker). ``cached`` is the entry stored for it (the fingerprints its
    task carried, as of ``now``); a new one goes into ``fresh``."""
    if not host.framed.started:
        return _unknown(server, host.error or "no output", host.seconds), []
    pending: list[tuple[str, str]] = []
    state: list[UpgradeCache | None] = [None]
    sent = cached.needrestart_since(now) if cached is not None else ""

    def work() -> TargetOutcome:
        facts = server_facts(host)
        if facts.os_id is None and facts.sshd is None:
            why = host.error or "the fact script returned nothing usable"
            return _unknown(server, why, host.seconds)
        upgrades = read_upgrades(host.output("facts"), cached)
        facts.upgradable = upgrades.upgradable
        restart = read_needrestart(host.output("facts"), sent, facts.needrestart_services)
        if restart.state == "cached":  # still no service to restart
            facts.needrestart_services, facts.needrestart_error = [], None
        state[0] = next_cache(cached, upgrades.cache, restart, now)
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
            upgrades=upgrades.state,
            needrestart=restart.state,
        )

    outcome = contained(server.name, "server", host.seconds, work)
    if outcome.status != "scanned":
        return outcome, []
    if fresh is not None and state[0] is not None:
        fresh[server.name] = state[0]
    return outcome, pending


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
    cache: dict[str, UpgradeCache] | None = None,
    fresh: dict[str, UpgradeCache] | None = None,
) -> list[tuple[TargetOutcome, list[tuple[str, str]]]]:
    """Run the facts task on the servers from here, one SSH session each (or read the
    ``runs`` a snapshot already made with the facts task in the same script). ``cache``:
    the stored pending-upgrades entries (their fingerprints go to the hosts); fresh
    entries are put into ``fresh``."""
    cache = cache or {}
    if runs is None:
        targets = [SshTarget.from_inventory(inv, s) for s in servers]
        results = run_tasks(
            targets,
            lambda t: [facts_task(cache.get(t.name), now)],
            max_parallel=parallel,
            timeout=180,
            on_result=lambda r: advance(r.name),
        )
        runs = {r.name: r for r in results}
    missing = HostRun(name="?", status="unreachable", error="no output")
    return [
        server_outcome(
            inv,
            server,
            runs.get(server.name, missing),
            now,
            first_seen,
            cache.get(server.name),
            fresh,
        )
        for server in servers
    ]


def first_seen_from(known: dict[str, dict[str, int]], stamp: int) -> FirstSeen:
    """``first_seen`` from the sightings stored before this scan: a pending update not
    seen before is first seen now (pure; the controller and the workers both use it)."""

    def first_seen(target: str, pending: list[tuple[str, str]]) -> dict[str, int]:
        mine = known.get(target, {})
        return {f"{p}={v}": int(mine.get(f"{p}={v}", stamp)) for p, v in pending}

    return first_seen


def gather_fleet(
    inv: Inventory,
    servers: list[Server],
    store: Store | None,
    now: datetime,
    parallel: int,
    advance: Callable[[str], None],
    remote: RemoteScan | None = None,
    runs: dict[str, HostRun] | None = None,
    cache: dict[str, UpgradeCache] | None = None,
) -> list[TargetOutcome]:
    """Outcomes of every server: from site workers (``remote``), from ``runs`` (a
    snapshot already ran the facts task here in the same script; ``remote`` then gets
    only the servers without a run), or from here. The
    pending-upgrades entries computed here are stored for the next scan."""
    stamp = int(now.timestamp())
    first_seen = None
    if store is not None:
        first_seen = first_seen_from(known_sightings(store, [s.name for s in servers]), stamp)
    by_name: dict[str, TargetOutcome] = {}
    pending_by: dict[str, list[tuple[str, str]]] = {}
    # with ``runs`` (scan --snapshot), the servers a snapshot did not run here
    elsewhere = [s for s in servers if runs is None or s.name not in runs]
    if remote is not None and elsewhere:
        for name, (outcome, pending) in remote(elsewhere, now, advance).items():
            by_name[name] = outcome
            pending_by[name] = pending
    local = [s for s in servers if s.name not in by_name]
    fresh: dict[str, UpgradeCache] = {}
    if local:
        for outcome, pending in gather_servers(
            inv, local, now, parallel, advance, first_seen, runs, cache, fresh
        ):
            by_name[outcome.target] = outcome
            pending_by[outcome.target] = pending
    if store is not None:  # one transaction for the whole fleet
        scanned = {n: p for n, p in pending_by.items() if by_name[n].status == "scanned"}
        record_sightings(store, scanned, stamp)
        save_upgrade_cache(store, fresh, now)
    return [by_name[s.name] for s in servers]
