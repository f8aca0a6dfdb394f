"""Benchmark (not a test): the controller's cost per target at 200, 1,000 and 2,000 targets,
in-process vs through 2 site workers (Celery on Redis).

The targets are simulated SSH servers on loopback (``tests/simhosts.py``: asyncssh in
4 processes, each host answering vcops's fact script with a real capture from a lab
host, varied per host so findings differ), reached over real SSH with a pinned host
key. For each size and mode it runs ``vcops scan --json`` as a child process and
measures, from that process alone (``os.wait4``):

- wall time of the whole command;
- controller CPU seconds (user + system) and CPU ms per target;
- peak resident memory of the controller;
- the SQLite database's size after the scan, and the time the scan spent after its
  last host answered (storing findings, audit, report: ``store s``).

Through workers, the 2 workers (sites s1 and s2, ``--concurrency 4`` each) run as
separate processes on the same machine: their CPU is reported apart. Everything runs
on one machine (2 cores here, shared with the simulated hosts), so wall time through
workers shows the cost of the hop, not the gain of more machines.

Run from the repository: ``.venv/bin/python bench/bench_fleet.py [200 1000 2000]``.
It starts and stops its own redis-server and simulated hosts; loopback only.

``--lab N`` (as root) measures the same on a real lab of N Debian hosts instead
(``vcops lab up --hosts N``, under the machine-wide lab lock, taken down afterwards;
the inventory's servers split between sites s1 and s2). ``--store postgres`` keeps
both modes' findings in a throwaway PostgreSQL cluster (``tests/pg_server.py``: Unix
socket, password in a pgpass file) instead of SQLite; its size is
``pg_database_size``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.redis_server import start_redis  # noqa: E402
from tests.simhosts import free_range, known_hosts, make_keys  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
ENV.pop("VCOPS_DATABASE_URL", None)
ENV.pop("VCOPS_CONFIG", None)
VCOPS = [sys.executable, "-m", "vcops.cli"]
#: ``VCOPS_BENCH_PROFILE=DIR``: also write a cProfile of each measured scan into DIR.
PROFILE = os.environ.get("VCOPS_BENCH_PROFILE")
SIM_PROCESSES = 4
WORKERS = {"s1": 4, "s2": 4}


def start_hosts(root: Path, first: int, count: int) -> list[subprocess.Popen[str]]:
    make_keys(root)
    known_hosts(root, first, count)
    per = -(-count // SIM_PROCESSES)
    procs = []
    for start in range(first, first + count, per):
        n = min(per, first + count - start)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.simhosts", str(root), str(start), str(n)],
                stdout=subprocess.PIPE,
                text=True,
                env=ENV,
                cwd=REPO,
            )
        )
    for p in procs:
        if p.stdout is None or p.stdout.readline().strip() != "ready":
            for q in procs:
                q.kill()
                q.wait()
            raise SystemExit("a simulated host process did not start")
    return procs


def write_inventory(root: Path, first: int, count: int) -> Path:
    inv = root / "inventory"
    inv.mkdir(exist_ok=True)
    servers = [
        {
            "name": f"h{i:04d}",
            "address": "127.0.0.1",
            "port": first + i,
            "roles": ["asterisk" if (first + i) % 3 == 2 else "kamailio"],
            "site": "s1" if i % 2 == 0 else "s2",
            "environment": "lab",
        }
        for i in range(count)
    ]
    data = {
        "settings": {
            "ssh": {"key_file": str(root / "client"), "known_hosts_file": str(root / "known_hosts")}
        },
        "sites": [{"name": "s1", "timezone": "UTC"}, {"name": "s2", "timezone": "UTC"}],
        "servers": servers,
    }
    (inv / "fleet.yml").write_text(json.dumps(data))
    return inv


def lab_inventory(lab: Path, root: Path) -> Path:
    """A copy of a lab's inventory with its servers split between sites s1 and s2."""
    import yaml

    inv = root / "inventory"
    shutil.copytree(lab, inv)
    doc = yaml.safe_load((inv / "lab.yml").read_text())
    doc["sites"] = [*doc.get("sites", []), *({"name": s, "timezone": "UTC"} for s in WORKERS)]
    for i, server in enumerate(doc["servers"]):
        server["site"] = "s1" if i % 2 == 0 else "s2"
    (inv / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return inv


class Store:
    """Where a mode's findings go: SQLite in its state directory, or a fresh database
    of a throwaway PostgreSQL cluster."""

    def __init__(self, kind: str) -> None:
        self.cluster = None
        if kind == "postgres":
            from tests.pg_server import start_cluster

            self.cluster = start_cluster()
            ENV["PGPASSFILE"] = str(self.cluster.passfile)

    def url(self, name: str) -> str | None:
        return self.cluster.create_database(name) if self.cluster else None

    def size_mb(self, url: str | None, state: Path) -> float:
        if self.cluster is None or url is None:
            return sum(p.stat().st_size for p in state.glob("vcops.db*")) / 1e6
        import psycopg

        name = url.split("?")[0].rsplit("/", 1)[-1]
        with psycopg.connect(self.cluster.conninfo(name)) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return float(row[0]) / 1e6 if row else 0.0

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def write_config(path: Path, broker: str | None, database: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[store]", f'state_dir = "{path.parent / "state"}"']
    if database:
        lines.append(f'database_url = "{database}"')
    lines += ["[run]", "max_parallel = 50"]
    if broker:
        lines += ["[workers]", f'broker_url = "{broker}"', 'sites = ["s1", "s2"]', "chunk = 25"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_scan(inv: Path, cfg: Path, store: Store, database: str | None) -> dict[str, float]:
    out_file, err_file = cfg.parent / "scan.json", cfg.parent / "scan.err"
    started = time.monotonic()
    with out_file.open("wb") as out, err_file.open("wb") as err:
        proc = subprocess.Popen(
            [*VCOPS, "--inventory", str(inv), "--config", str(cfg), "scan", "--json"],
            stdout=out,
            stderr=err,
            env=ENV,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this process's own rusage
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in {0, 1, 3}:
        raise SystemExit(f"scan failed ({proc.returncode}): {err_file.read_text()[-2000:]}")
    report = json.loads(out_file.read_text())
    reasons = Counter(
        o["error"].split(": ", 1)[-1][:80] for o in report["outcomes"] if o["status"] == "unknown"
    )
    unknown = sum(reasons.values())
    for reason, n in reasons.most_common(3):
        print(f"    unknown x{n}: {reason}", flush=True)
    gathered = datetime.fromisoformat(report["finished_at"])
    store_s = wall - (gathered - datetime.fromisoformat(report["started_at"])).total_seconds()
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "db_mb": store.size_mb(database, cfg.parent / "state"),
        "store_s": store_s,
        "unknown": unknown,
        "findings": len(report["open"]),
    }


def bench(
    count: int, work: Path, broker: str, store: Store, lab: Path | None = None
) -> dict[str, dict[str, float]]:
    root = work / f"fleet{count}"
    root.mkdir()
    if lab is None:
        first = free_range(count)
        hosts = start_hosts(root, first, count)
        inv = write_inventory(root, first, count)
    else:
        hosts, inv = [], lab_inventory(lab, root)
    results: dict[str, dict[str, float]] = {}
    try:
        local = store.url(f"local{count}")
        results["in-process"] = run_scan(
            inv, write_config(root / "local" / "vcops.toml", None, local), store, local
        )
        remote = store.url(f"remote{count}")
        cfg = write_config(root / "remote" / "vcops.toml", broker, remote)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers = [
            subprocess.Popen(
                [
                    *VCOPS,
                    "--inventory",
                    str(inv),
                    "--config",
                    str(cfg),
                    "worker",
                    "--site",
                    site,
                    "--concurrency",
                    str(n),
                ],
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for site, n in WORKERS.items()
        ]
        time.sleep(6)  # first heartbeats
        results["2 workers"] = run_scan(inv, cfg, store, remote)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        results["2 workers"]["worker_cpu"] = (
            after.ru_utime
            + after.ru_stime
            - before.ru_utime
            - before.ru_stime
            - results["2 workers"]["cpu"]
        )
    finally:
        for h in hosts:
            h.kill()
            h.wait()
    return results


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "sizes", nargs="*", type=int, default=[200, 1000, 2000], help="fleet sizes to measure"
    )
    parser.add_argument("--lab", type=int, metavar="N", help="a real lab of N hosts instead")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    sizes = [args.lab] if args.lab else args.sizes
    if not shutil.which("redis-server"):
        raise SystemExit("apt-get install redis-server")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    store = Store(args.store)
    work = Path(tempfile.mkdtemp(prefix="vcops-fleet-"))
    redis, broker = start_redis(work)
    table: dict[int, dict[str, dict[str, float]]] = {}
    try:
        for n in sizes:
            if args.lab:
                sys.path.insert(0, str(REPO / "bench"))
                from bench_scan import lab

                with lab(n) as lab_work:
                    table[n] = bench(n, work, broker, store, lab_work / "lab")
            else:
                table[n] = bench(n, work, broker, store)
            for mode, r in table[n].items():
                print(
                    f"{n:>5} {mode:<10} wall {r['wall']:7.1f}s  controller CPU {r['cpu']:6.1f}s "
                    f"({1000 * r['cpu'] / n:5.1f} ms/target)  peak {r['rss_mb']:6.0f} MB  "
                    f"db {r['db_mb']:5.1f} MB  store {r['store_s']:5.1f}s  "
                    f"unknown {r['unknown']:.0f}  open findings {r['findings']:.0f}"
                    + (f"  workers CPU {r['worker_cpu']:.1f}s" if "worker_cpu" in r else ""),
                    flush=True,
                )
    finally:
        redis.terminate()
        redis.wait()
        store.stop()
        shutil.rmtree(work, ignore_errors=True)
    base = sizes[0]
    print("\nratios (vs the smallest size; targets ratio first):")
    for n in sizes[1:]:
        for mode in ("in-process", "2 workers"):
            w = table[n][mode]["wall"] / table[base][mode]["wall"]
            print(f"  {mode:<10} {n}/{base} targets = {n / base:.1f}x -> wall {w:.2f}x")
    for n in sizes:
        ratio = table[n]["2 workers"]["cpu"] / table[n]["in-process"]["cpu"]
        print(f"  {n}: controller CPU through workers / in-process = {ratio:.2f}")


if __name__ == "__main__":
    main()
