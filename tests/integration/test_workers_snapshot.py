"""`vcops snapshot take` through site workers, for real: a redis-server on a random
loopback port, `vcops worker` subprocesses for two sites with their own state
directory (a copy of the controller's masking key), real git, simulated SSH hosts on
loopback answering the collection task with captures from lab hosts
(tests/simhosts.py, tests/fixtures/snapshot/collect)."""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.worker_helpers import (
    Fleet,
    copy_key,
    redis_monitor,
    redis_url,
    run_cli,
    run_killing,
    site_config,
    start_fleet,
    start_worker,
    stop_all,
    wait_workers,
)
from tests.redis_server import free_port
from vcops.connectors import broker
from vcops.snapshot.keys import KEY_FILE, key_id
from vcops.workers import WorkerContext, _Serving, inventory_fingerprint
from vcops.workers_seal import seal
from vcops.workers_snapshot import snapshot_chunk

__all__ = ["redis_url"]  # the module fixture (tests/integration/worker_helpers.py)

SECRET = "PLANTED-s3cret-4711"
PLANTED = f"/etc/apt/auth.conf\nmachine repo.example.net login vcops password {SECRET}\n"


@pytest.fixture
def planted_fleet(tmp_path: Path) -> Iterator[Fleet]:
    root = tmp_path / "fleet"
    root.mkdir()
    (root / "planted").write_text(PLANTED)
    f = start_fleet(root, 6, 0.0)
    yield f
    f.proc.kill()
    f.proc.wait()


def _config(
    path: Path, broker_url: str | None = None, sites: tuple[str, ...] = (), **workers: object
) -> Path:
    return site_config(path, broker_url, sites, **({"chunk": 2} | workers))


def _git(cfg: Path, *args: str) -> str:
    repo = cfg.parent / "state" / "snapshots"
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def _audits(cfg: Path) -> list[dict[str, object]]:
    with sqlite3.connect(cfg.parent / "vcops.db") as db:
        rows = db.execute(
            "SELECT detail FROM audit_log WHERE action = 'snapshot.take' ORDER BY id"
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


def test_a_snapshot_through_workers_commits_the_same_masked_trees_and_no_secret_crosses(
    planted_fleet: Fleet, redis_url: str, tmp_path: Path
) -> None:
    inv = planted_fleet.inventory()
    local = _config(tmp_path / "local" / "vcops.toml")
    remote = _config(tmp_path / "ctl" / "vcops.toml", redis_url, ("s1", "s2"))
    site = _config(tmp_path / "site" / "vcops.toml", redis_url, ("s1", "s2"))
    started = time.monotonic()
    a = run_cli(inv, local, "snapshot", "take", "-r", "weekly", "--json")
    in_process = time.monotonic() - started
    assert a.returncode == 0, (a.stderr, a.stdout[-2000:])
    copy_key(local.parent, remote.parent)  # one operator's key, as on one controller
    copy_key(local.parent, site.parent)  # copied by hand to the site's worker machine
    key = (local.parent / "state" / KEY_FILE).read_text().strip()
    workers = [start_worker(inv, site, "s1"), start_worker(inv, site, "s2")]
    try:
        with redis_monitor(redis_url, tmp_path / "monitor.log") as monitor_log:
            wait_workers(inv, site, {"s1": 1, "s2": 1})
            started = time.monotonic()
            b = run_cli(inv, remote, "snapshot", "take", "-r", "weekly", "--json")
            through_workers = time.monotonic() - started
    finally:
        stop_all(*workers)
    print(f"6 hosts: in-process {in_process:.1f}s, through 2 workers {through_workers:.1f}s")
    assert b.returncode == 0, (b.stderr, b.stdout[-2000:])
    ra, rb = json.loads(a.stdout), json.loads(b.stdout)
    assert [h["status"] for h in rb["hosts"]] == ["new"] * planted_fleet.count
    assert [(h["name"], h["files"], h["masked"]) for h in ra["hosts"]] == [
        (h["name"], h["files"], h["masked"]) for h in rb["hosts"]
    ]
    # the same tree, byte for byte, and the same commit message
    assert _git(local, "rev-parse", "HEAD^{tree}") == _git(remote, "rev-parse", "HEAD^{tree}")
    assert _git(local, "log", "-1", "--format=%B") == _git(remote, "log", "-1", "--format=%B")
    assert _git(remote, "log", "--format=%s") == _git(local, "log", "--format=%s")  # one take
    # the same audit entry (but the commit id, which has the time in it)
    [da], [db] = _audits(local), _audits(remote)
    assert da.pop("commit") != db.pop("commit") and da == db
    # the planted secret is masked in the commit ...
    stored = _git(remote, "show", "HEAD:h00/files/etc/apt/auth.conf")
    assert "password <vcops:masked:hmac-sha256:" in stored and SECRET not in stored
    assert SECRET not in _git(remote, "log", "-p", "--all")
    # ... and never crossed Redis: neither it nor the key, while the masked trees did
    crossed = monitor_log.read_text(errors="replace")
    assert "vcops.snapshot_chunk" in crossed and "vcops:masked:hmac-sha256" in crossed
    assert "password <vcops:masked:hmac-sha256:" in crossed
    assert SECRET not in crossed and key not in crossed
    left = subprocess.run(
        ["redis-cli", "-u", redis_url, "--scan"], capture_output=True, text=True, check=True
    ).stdout.split()
    for name in left:
        dump = subprocess.run(
            ["redis-cli", "-u", redis_url, "--no-raw", "DUMP", name],
            capture_output=True,
            check=False,
        ).stdout
        assert SECRET.encode() not in dump


def test_a_broker_that_is_down_leaves_its_sites_hosts_unreachable_and_commits_the_rest(
    planted_fleet: Fleet, tmp_path: Path
) -> None:
    inv = planted_fleet.inventory()
    cfg = _config(tmp_path / "ctl" / "vcops.toml", f"redis://127.0.0.1:{free_port()}/0", ("s1",))
    started = time.monotonic()
    out = run_cli(inv, cfg, "snapshot", "take", "--json", timeout=60)
    took = time.monotonic() - started
    print(f"broker down: {took:.1f}s for 6 hosts (3 through the broker)")
    assert out.returncode == 3 and "Traceback" not in out.stdout + out.stderr, out.stderr
    rows = {h["name"]: h for h in json.loads(out.stdout)["hosts"]}
    s1 = [f"h{i:02d}" for i in (0, 2, 4)]
    for name in s1:
        assert rows[name]["status"] == "unreachable"
        assert "is not answering" in rows[name]["error"]
        assert "\n" not in rows[name]["error"]
    assert all(rows[f"h{i:02d}"]["status"] == "new" for i in (1, 3, 5))
    hosts = [n for n in _git(cfg, "ls-tree", "--name-only", "HEAD").split() if n[0] == "h"]
    assert sorted(hosts) == ["h01", "h03", "h05"]
    message = _git(cfg, "log", "-1", "--format=%B")
    assert "Hosts-failed: h00 (unreachable), h02 (unreachable), h04 (unreachable)" in message
    table = run_cli(inv, cfg, "snapshot", "take", timeout=60)
    assert table.returncode == 3 and "is not answering" in table.stdout


def test_a_worker_refuses_without_the_controllers_key_and_skips_a_locked_host(
    planted_fleet: Fleet, redis_url: str, tmp_path: Path
) -> None:
    """The worker task itself (in this process, over real SSH and Redis)."""
    inv = planted_fleet.inventory()
    state = tmp_path / "site" / "state"
    ctx = WorkerContext(
        site="s1",
        inventory_root=inv,
        broker_url=redis_url,
        node="n1",
        state_dir=state,
        snapshots_dir=state / "snapshots",
    )
    base = {"targets": ["h00", "h02", "h01"], "inventory": inventory_fingerprint(inv)}
    _Serving.context = ctx
    try:
        missing = snapshot_chunk(base | {"key": "0" * 16})
        state.mkdir(parents=True, mode=0o700)
        key = bytes(range(32))
        (state / KEY_FILE).write_text(key.hex() + "\n")
        (state / KEY_FILE).chmod(0o600)
        other = snapshot_chunk(base | {"key": "0" * 16})
        # the right key id alone (anyone who reads the broker sees it) is not enough
        forged = snapshot_chunk(base | {"key": key_id(key)})
        with broker.host_locks(redis_url, ["h02"], 30):  # a first attempt is still on h02
            answer = snapshot_chunk(seal(base | {"key": key_id(key)}, key, 60))
    finally:
        _Serving.context = None
    rows = missing["results"]  # type: ignore[index]
    assert "no masking key here" in rows["h00"]["row"]["error"]
    assert "masking key differs" in other["results"]["h00"]["row"]["error"]  # type: ignore[index]
    refused = forged["results"]["h00"]["row"]  # type: ignore[index]
    assert refused["status"] == "failed" and "seal does not verify" in refused["error"]
    got = answer["results"]  # type: ignore[index]
    assert got["h00"]["row"]["status"] == "unchanged" and got["h00"]["snapshot"]["files"]
    assert got["h02"]["snapshot"] is None and "another worker" in got["h02"]["row"]["error"]
    assert (
        got["h01"]["snapshot"] is None and "not a target of site s1" in got["h01"]["row"]["error"]
    )
    text = json.dumps(answer)
    assert SECRET not in text and "<vcops:masked:hmac-sha256:" in text
    assert not (state / "snapshots").exists()  # the worker never writes a repository


def test_a_site_with_no_live_worker_leaves_its_hosts_unreachable_and_commits_the_rest(
    planted_fleet: Fleet, redis_url: str, tmp_path: Path
) -> None:
    inv = planted_fleet.inventory()
    # a database of its own: a worker stopped by another test beats on for 20 s
    cfg = _config(tmp_path / "ctl" / "vcops.toml", redis_url.rsplit("/", 1)[0] + "/3", ("s2",))
    out = run_cli(inv, cfg, "snapshot", "take", "--json", timeout=60)
    assert out.returncode == 3, out.stderr
    rows = {h["name"]: h for h in json.loads(out.stdout)["hosts"]}
    assert {n for n, h in rows.items() if h["status"] == "unreachable"} == {"h01", "h03", "h05"}
    assert "no live worker for site s2" in rows["h01"]["error"]
    assert {n for n, h in rows.items() if h["status"] == "new"} == {"h00", "h02", "h04"}


def _findings(cfg: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(cfg.parent / "vcops.db") as db:
        rows = db.execute(
            "SELECT target, control_id, expected, actual FROM findings ORDER BY 1, 2"
        ).fetchall()
    return [tuple(r) for r in rows]


def test_scan_with_snapshot_through_workers_stores_the_same_findings_and_trees(
    planted_fleet: Fleet, redis_url: str, tmp_path: Path
) -> None:
    """``scan --snapshot``: facts and collection in one worker session per host."""
    inv = planted_fleet.inventory()
    local = _config(tmp_path / "local" / "vcops.toml")
    remote = _config(tmp_path / "ctl" / "vcops.toml", redis_url, ("s1", "s2"))
    site = _config(tmp_path / "site" / "vcops.toml", redis_url, ("s1", "s2"))
    a = run_cli(inv, local, "scan", "--snapshot", "--json")
    assert a.returncode == 1, (a.stderr, a.stdout[-2000:])
    copy_key(local.parent, remote.parent)
    copy_key(local.parent, site.parent)
    workers = [start_worker(inv, site, "s1"), start_worker(inv, site, "s2")]
    try:
        with redis_monitor(redis_url, tmp_path / "monitor.log") as monitor_log:
            wait_workers(inv, site, {"s1": 1, "s2": 1})
            b = run_cli(inv, remote, "scan", "--snapshot", "--json")
    finally:
        stop_all(*workers)
    assert b.returncode == 1, (b.stderr, b.stdout[-2000:])
    ra, rb = json.loads(a.stdout), json.loads(b.stdout)
    assert [o["status"] for o in rb["outcomes"]] == ["scanned"] * planted_fleet.count
    assert [h["status"] for h in rb["snapshot"]["hosts"]] == ["new"] * planted_fleet.count
    assert _findings(local) == _findings(remote) and len(_findings(remote)) > planted_fleet.count
    assert (ra["passed"], ra["failed"], ra["score"]) == (rb["passed"], rb["failed"], rb["score"])
    assert _git(local, "rev-parse", "HEAD^{tree}") == _git(remote, "rev-parse", "HEAD^{tree}")
    assert SECRET not in _git(remote, "log", "-p", "--all")
    # the workers did the host work: snapshot tasks carrying the scan went out, and
    # outcomes came back with the masked trees; no scan task of its own
    crossed = monitor_log.read_text(errors="replace")
    assert "vcops.snapshot_chunk" in crossed and "vcops.scan_chunk" not in crossed
    assert '\\"outcome\\"' in crossed and "vcops:masked:hmac-sha256" in crossed
    assert SECRET not in crossed


def test_a_worker_killed_mid_snapshot_is_retried_and_the_take_commits_once(
    redis_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "slow"
    root.mkdir()
    (root / "planted").write_text(PLANTED)
    slow = start_fleet(root, 6, 3.0)
    inv = slow.inventory()
    knobs = {"chunk": 1, "visibility_timeout": 6, "host_lock_seconds": 5, "result_timeout": 60}
    ctl = _config(tmp_path / "ctl" / "vcops.toml", redis_url, ("s1", "s2"), **knobs)
    site = _config(tmp_path / "site" / "vcops.toml", redis_url, ("s1", "s2"), **knobs)
    (ctl.parent / "state").mkdir(mode=0o700)
    (ctl.parent / "state" / KEY_FILE).write_text(secrets.token_hex(32) + "\n")
    (ctl.parent / "state" / KEY_FILE).chmod(0o600)
    copy_key(ctl.parent, site.parent)
    victim, spare, other = (
        start_worker(inv, site, "s1", 1),
        start_worker(inv, site, "s1", 1),
        start_worker(inv, site, "s2", 3),
    )
    try:
        wait_workers(inv, site, {"s1": 2, "s2": 1})
        code, out, err = run_killing(inv, ctl, ["snapshot", "take", "--json"], victim)
    finally:
        stop_all(victim, spare, other)
        slow.proc.kill()
        slow.proc.wait()
    rows = {h["name"]: h for h in json.loads(out)["hosts"]}
    assert sorted(rows) == [f"h{i:02d}" for i in range(6)], err
    # the killed worker's host went to the spare worker after the visibility timeout
    assert all(h["status"] == "new" for h in rows.values()), [
        (h["name"], h["error"]) for h in rows.values()
    ]
    assert code == 0
    assert _git(ctl, "log", "--format=%s").splitlines() == [
        "snapshot: on demand (6 of 6 hosts changed)",
        "vcops snapshot store created",
    ]
    assert len(_audits(ctl)) == 1
