"""Site workers for real: a redis-server on a random loopback port, `vcops worker`
subprocesses for two sites, PostgreSQL as the store, simulated SSH hosts on loopback
(asyncssh answering with recorded lab output; tests/simhosts.py)."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.integration.worker_helpers import (
    Fleet,
    fleet,
    redis_url,
    run_cli,
    run_killing,
    site_config,
    start_fleet,
    start_worker,
    stop_all,
    wait_workers,
)
from tests.pg_server import PgCluster
from tests.redis_server import free_port
from vcops.connectors import broker
from vcops.inventory import load_inventory
from vcops.workers import (
    SitePlan,
    WorkerContext,
    _Serving,
    inventory_fingerprint,
    remote_scan,
    scan_chunk,
)

__all__ = ["fleet", "redis_url"]  # fixtures the tests here take by name


def _config(path: Path, db: str, broker: str | None, **workers: object) -> Path:
    return site_config(path, broker, ("s1", "s2"), database=db, **workers)


def _findings(db: str) -> list[tuple[str, ...]]:
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT target, control_id, expected, actual FROM findings ORDER BY 1, 2")
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_a_scan_through_workers_stores_the_same_findings_as_in_process(
    fleet: Fleet, redis_url: str, postgres: PgCluster, tmp_path: Path
) -> None:
    inv = fleet.inventory()
    local_db = postgres.create_database("w_local")
    remote_db = postgres.create_database("w_remote")
    local = _config(tmp_path / "a" / "vcops.toml", local_db, None)
    remote = _config(tmp_path / "b" / "vcops.toml", remote_db, redis_url, chunk=3)
    workers = [start_worker(inv, remote, "s1"), start_worker(inv, remote, "s2")]
    try:
        wait_workers(inv, remote, {"s1": 1, "s2": 1})
        status = run_cli(inv, remote, "worker", "status")
        assert "s1@" in status.stdout and "s2@" in status.stdout and "alive" in status.stdout
        a = run_cli(inv, local, "scan", "--json")
        b = run_cli(inv, remote, "scan", "--json")
    finally:
        stop_all(*workers)
    # a worker that stopped cleanly is gone at once (its heartbeat would last 20 s)
    after = json.loads(run_cli(inv, remote, "worker", "status", "--json").stdout)["workers"]
    assert len(after) == 2 and not any(w["alive"] for w in after), after
    assert a.returncode == 1 and b.returncode == 1, (a.stderr, b.stderr, b.stdout[:1500])
    ra, rb = json.loads(a.stdout), json.loads(b.stdout)
    assert [o["status"] for o in rb["outcomes"]] == ["scanned"] * fleet.count
    assert _findings(local_db) == _findings(remote_db) and len(_findings(local_db)) > fleet.count
    assert (ra["passed"], ra["failed"], ra["score"]) == (rb["passed"], rb["failed"], rb["score"])
    # the findings differ between hosts (the simulated hosts vary their recorded output)
    per_host = {}
    for target, control, *_ in _findings(remote_db):
        per_host.setdefault(target, set()).add(control)
    assert len({frozenset(v) for v in per_host.values()}) > 1


def test_a_worker_killed_mid_scan_is_retried_or_unknown_and_nothing_doubles(
    redis_url: str, postgres: PgCluster, tmp_path: Path
) -> None:
    slow = start_fleet(tmp_path / "slow", 6, 3.0)
    inv = slow.inventory()
    db = postgres.create_database("w_killed")
    cfg = _config(
        tmp_path / "c" / "vcops.toml",
        db,
        redis_url,
        chunk=1,
        visibility_timeout=6,
        host_lock_seconds=5,
        result_timeout=60,
    )
    victim, spare, other = (
        start_worker(inv, cfg, "s1", 1),
        start_worker(inv, cfg, "s1", 1),
        start_worker(inv, cfg, "s2", 3),
    )
    try:
        wait_workers(inv, cfg, {"s1": 2, "s2": 1})
        _code, out, err = run_killing(inv, cfg, ["scan", "--json"], victim)
    finally:
        stop_all(victim, spare, other)
        slow.proc.kill()
        slow.proc.wait()
    report = json.loads(out)
    statuses = {o["target"]: o["status"] for o in report["outcomes"]}
    assert sorted(statuses) == [f"h{i:02d}" for i in range(6)], err
    assert set(statuses.values()) <= {"scanned", "unknown"}
    # the killed worker's host went to the spare worker after the visibility timeout
    assert all(s == "scanned" for s in statuses.values()), [
        (o["target"], o["error"]) for o in report["outcomes"]
    ]
    findings = _findings(db)
    assert len(findings) == len({(t, c) for t, c, *_ in findings})  # nothing duplicated
    engine = create_engine(db)
    with engine.connect() as conn:
        scans = conn.execute(text("SELECT count(*) FROM scans")).scalar()
        audits = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'scan'")).scalar()
    engine.dispose()
    assert scans == 1 and audits == 1


def test_a_broker_that_is_down_makes_those_targets_unknown_fast(
    fleet: Fleet, tmp_path: Path
) -> None:
    inv = fleet.inventory()
    cfg = _config(
        tmp_path / "vcops.toml",
        f"sqlite:///{tmp_path / 'v.db'}",
        f"redis://127.0.0.1:{free_port()}/0",
    )
    started = time.monotonic()
    out = run_cli(inv, cfg, "scan", timeout=60)
    assert time.monotonic() - started < 30
    assert out.returncode == 3 and "Traceback" not in out.stderr + out.stdout
    assert "is not answering" in out.stdout
    status = run_cli(inv, cfg, "worker", "status")
    assert status.returncode == 3 and status.stderr.count("\n") == 1
    assert "vcops: error: broker redis://127.0.0.1" in status.stderr
    worker = run_cli(inv, cfg, "worker", "--site", "s1", timeout=60)
    assert worker.returncode == 3 and "Traceback" not in worker.stderr
    assert worker.stderr.splitlines()[-1].startswith("vcops: error: broker redis://127.0.0.1")


def test_a_host_held_by_one_worker_is_refused_to_another(redis_url: str) -> None:
    """The per-host lock that keeps a redelivered task off a host still being scanned."""
    with broker.host_locks(redis_url, ["a"], 30) as (held, busy):
        assert (held, busy) == (["a"], [])
        with broker.host_locks(redis_url, ["a", "b"], 30) as (held2, busy2):
            assert (held2, busy2) == (["b"], ["a"])
    with broker.host_locks(redis_url, ["a"], 30) as (held, busy):  # released on exit
        assert held == ["a"]


def test_a_worker_with_another_inventory_refuses_the_chunk(fleet: Fleet, tmp_path: Path) -> None:
    inv = fleet.inventory()
    ctx = WorkerContext(site="s1", inventory_root=inv, broker_url="redis://127.0.0.1:1/0", node="n")
    _Serving.context = ctx
    try:
        answer = scan_chunk(
            {"targets": ["h00"], "now": "2026-11-30T10:00:00+00:00", "inventory": "0" * 64}
        )
    finally:
        _Serving.context = None
    outcome = answer["results"]["h00"]["outcome"]  # type: ignore[index]
    assert outcome["status"] == "unknown" and "inventory differs" in outcome["error"]
    assert inventory_fingerprint(inv) != "0" * 64


def test_a_renewed_host_lock_outlasts_its_ttl(redis_url: str) -> None:
    """An apply may take longer than host_lock_seconds: its lock is renewed while it
    runs; one that is not renewed expires after its ttl."""
    with broker.host_locks(redis_url, ["long"], 2, renew=True) as (held, _):
        assert held == ["long"]
        time.sleep(3.5)
        with broker.host_locks(redis_url, ["long"], 2) as (_, busy):
            assert busy == ["long"]
    with broker.host_locks(redis_url, ["short"], 2) as (held, _):
        assert held == ["short"]
        time.sleep(3.5)
        with broker.host_locks(redis_url, ["short"], 2) as (again, _):
            assert again == ["short"]  # expired: another attempt may take it
    with broker.host_locks(redis_url, ["long"], 2) as (held, _):  # released on exit
        assert held == ["long"]


def test_a_controller_sending_many_tasks_from_many_threads_keeps_its_descriptors(
    fleet: Fleet, redis_url: str, tmp_path: Path
) -> None:
    """A window run sends a task per host step from each host's thread, and a schedule
    daemon one scan after another: 80 scans of one host each, from 4 threads at once,
    all answered, and the controller's open files do not grow with them (an app per
    call kept about one descriptor per task)."""
    inv = fleet.inventory()
    cfg = _config(tmp_path / "w" / "vcops.toml", f"sqlite:///{tmp_path / 'w.db'}", redis_url)
    worker = start_worker(inv, cfg, "s1", 4)
    try:
        wait_workers(inv, cfg, {"s1": 1})
        plan = SitePlan(broker_url=redis_url, sites=["s1"], inventory_root=inv, chunk=1)
        scan = remote_scan(plan, None)
        hosts = [s for s in load_inventory(inv).servers if s.site == "s1"]
        now = datetime.now(UTC)

        def one(i: int) -> str:
            host = hosts[i % len(hosts)]
            [(outcome, _pending)] = scan([host], now, lambda _n: None).values()
            return outcome.status

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(one, range(8)))  # the connections a run keeps, opened
            before = len(os.listdir("/proc/self/fd"))
            statuses = list(pool.map(one, range(80)))
            after = len(os.listdir("/proc/self/fd"))
    finally:
        stop_all(worker)
    assert statuses == ["scanned"] * 80
    assert after - before < 10, (before, after)
