"""`vcops apply` through site workers on real lab hosts: a redis-server on a random
loopback port, a copy of the lab inventory with two sites (lab-kamailio-01 at s1,
lab-asterisk-01 at s2, the rest at `lab`), and a `vcops worker --site` process for
each, with its own state directory holding a copy of the controller's masking key.

The module hardens lab-kamailio-01 with pyinfra and lab-asterisk-01 with Ansible, each
through its site's worker, and gives them back stock afterwards. The checks are module
fixtures that run before the applies, so the tests pass in any order.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.integration.apply_helpers import failing
from tests.integration.conftest import reset_lab_hosts
from tests.integration.worker_helpers import (
    copy_key,
    redis_monitor,
    redis_url,
    run_cli,
    site_config,
    start_worker,
    stop_all,
    wait_workers,
)
from tests.pg_server import PgCluster
from tests.redis_server import free_port
from vcops.inventory import Inventory
from vcops.snapshot.keys import KEY_FILE, key_id, load_or_create_key
from vcops.workers import WorkerContext, _Serving, inventory_fingerprint
from vcops.workers_apply import apply_chunk

__all__ = ["redis_url"]  # the module fixture (tests/integration/worker_helpers.py)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
KAM, AST = "lab-kamailio-01", "lab-asterisk-01"
BOTH = f"{KAM},{AST}"
_TMP = re.compile(r"^\+\+\+ after: /tmp/\S+$", re.MULTILINE)


@dataclass
class Sites:
    inv: Path
    local: Path  # vcops.toml without workers: everything in-process
    ctl: Path  # vcops.toml with [workers] sites s1 and s2
    monitor: Path  # what crossed Redis (redis-cli MONITOR) while the workers ran


def _config(path: Path, broker_url: str | None = None, sites: tuple[str, ...] = ()) -> Path:
    return site_config(path, broker_url, sites, chunk=2, result_timeout=600)


def _two_sites(lab: Inventory, root: Path) -> Path:
    inv = root / "inventory"
    shutil.copytree(lab.root, inv)
    doc = yaml.safe_load((inv / "lab.yml").read_text())
    doc["sites"] += [{"name": "s1", "timezone": "UTC"}, {"name": "s2", "timezone": "UTC"}]
    for server in doc["servers"]:
        server["site"] = {KAM: "s1", AST: "s2"}.get(server["name"], server["site"])
    (inv / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return inv


def _run(inv: Path, cfg: Path, *args: str) -> tuple[int, dict[str, object], str, float]:
    started = time.monotonic()
    out = run_cli(inv, cfg, *args, "--json", timeout=600)
    took = round(time.monotonic() - started, 1)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}, out.stderr, took


def _hosts(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {h["name"]: h for h in report["hosts"]}  # type: ignore[index, union-attr]


def _same(host: dict[str, object]) -> tuple[object, ...]:
    """What must match between an in-process run and one through a worker (Ansible
    names its rendered template's temporary file in a diff: not compared)."""
    files = [
        (f["path"], _TMP.sub("+++ after: (rendered template)", f["diff"]))
        for f in host["files"]  # type: ignore[attr-defined]
    ]
    return host["status"], host["changes"], files, host["packages"]


@pytest.fixture(scope="module")
def sites(
    lab: Inventory, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sites]:
    root = tmp_path_factory.mktemp("workers-apply")
    inv = _two_sites(lab, root)
    local = _config(root / "local" / "vcops.toml")
    ctl = _config(root / "ctl" / "vcops.toml", redis_url, ("s1", "s2"))
    site = _config(root / "site" / "vcops.toml", redis_url, ("s1", "s2"))
    # the controller's masking key (what `vcops apply` makes on first use)
    load_or_create_key(root / "local" / "state", root / "local" / "state" / "snapshots")
    copy_key(root / "local", root / "ctl")  # one operator's key
    copy_key(root / "local", root / "site")  # copied by hand to the sites' worker machine
    workers = [start_worker(inv, site, "s1"), start_worker(inv, site, "s2")]
    try:
        with redis_monitor(redis_url, root / "monitor.log") as monitor_log:
            wait_workers(inv, site, {"s1": 1, "s2": 1})
            yield Sites(inv, local, ctl, monitor_log)
    finally:
        stop_all(*workers)
        reset_lab_hosts([KAM, AST])


@pytest.fixture(scope="module")
def checked(sites: Sites) -> dict[str, tuple[int, dict[str, object], str, float]]:
    """``apply --check`` of the two stock hosts in-process and through their workers."""
    return {
        "local": _run(sites.inv, sites.local, "apply", "--check", "--limit", BOTH),
        "workers": _run(sites.inv, sites.ctl, "apply", "--check", "--limit", BOTH),
    }


@pytest.fixture(scope="module")
def scanned(
    sites: Sites, redis_url: str, postgres: PgCluster, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[str, str]]]:
    """The open findings (target, control) of a scan of both stock hosts in-process and
    one through their workers, each into a PostgreSQL database of its own."""
    root = tmp_path_factory.mktemp("lab-scan")
    found: dict[str, list[tuple[str, str]]] = {}
    for mode, broker_url, names in (("local", None, ()), ("sites", redis_url, ("s1", "s2"))):
        url = postgres.create_database(f"lab_scan_{mode}")
        cfg = site_config(root / mode / "vcops.toml", broker_url, names, database=url)
        code, report, err, _took = _run(sites.inv, cfg, "scan", "--limit", BOTH)
        assert code == 1, (mode, err[-2000:])
        assert "outcomes" in report, (mode, err[-3000:])  # no report: say why
        assert {o["status"] for o in report["outcomes"]} == {"scanned"}, (mode, report)  # type: ignore[union-attr]
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT target, control_id FROM findings WHERE resolved_at IS NULL")
            ).all()
        engine.dispose()
        found[mode] = sorted((str(t), str(c)) for t, c in rows)
    return found


@pytest.fixture(scope="module")
def applied(
    sites: Sites, checked: dict[str, object], scanned: dict[str, object]
) -> dict[str, tuple[int, dict[str, object], str, float]]:
    """lab-kamailio-01 hardened through the s1 worker, applied again, then scanned."""
    first = _run(sites.inv, sites.ctl, "apply", "--engine", "pyinfra", "--limit", KAM)
    second = _run(sites.inv, sites.ctl, "apply", "--engine", "pyinfra", "--limit", KAM)
    scan = _run(sites.inv, sites.ctl, "scan", "--limit", KAM)
    return {"first": first, "second": second, "scan": scan}


def test_a_check_through_workers_shows_what_an_in_process_check_shows(
    sites: Sites, checked: dict[str, tuple[int, dict[str, object], str, float]]
) -> None:
    code_a, a, err_a, took_a = checked["local"]
    code_b, b, err_b, took_b = checked["workers"]
    print(f"\napply --check of 2 hosts: in-process {took_a} s, through 2 workers {took_b} s")
    assert code_a == 0 and code_b == 0, (err_a[-2000:], err_b[-2000:], b)
    ha, hb = _hosts(a), _hosts(b)
    assert list(ha) == list(hb) == [KAM, AST]
    assert {h["status"] for h in hb.values()} == {"changed"}  # stock hosts
    for name in (KAM, AST):
        assert _same(hb[name]) == _same(ha[name]), name
    kam = {f["path"]: f["diff"] for f in hb[KAM]["files"]}  # type: ignore[attr-defined, index]
    assert "+PasswordAuthentication no\n" in kam["/etc/ssh/sshd_config"]
    crossed = sites.monitor.read_text(errors="replace")
    assert "vcops.apply_chunk" in crossed and "PasswordAuthentication no" in crossed
    key = (sites.ctl.parent / "state" / KEY_FILE).read_text().strip()
    assert key not in crossed  # only the key's id travels


def test_an_apply_through_a_worker_hardens_once_is_audited_and_snapshotted(
    sites: Sites, applied: dict[str, tuple[int, dict[str, object], str, float]]
) -> None:
    code, first, err, took = applied["first"]
    assert code == 0, (err[-3000:], first)
    assert _hosts(first)[KAM]["status"] == "changed"
    code2, second, err2, took2 = applied["second"]
    assert code2 == 0 and _hosts(second)[KAM]["status"] == "unchanged", (err2, second)
    print(f"\npyinfra apply of {KAM} through its worker: first {took} s, second {took2} s")
    scan_code, scan, scan_err, _ = applied["scan"]
    assert scan_code == 0 and failing(scan) == [], (scan_err, failing(scan))
    # the controller kept the audit entries and the snapshots (taken by the worker)
    with sqlite3.connect(sites.ctl.parent / "vcops.db") as db:
        rows = db.execute(
            "SELECT action, target, detail FROM audit_log WHERE action LIKE 'apply.%' "
            "AND target = ? ORDER BY id",
            (KAM,),
        ).fetchall()
    actions = [(a, t) for a, t, _ in rows]
    assert actions == [("apply.start", KAM), ("apply.host", KAM), ("apply.end", KAM)] * 2
    end = json.loads(rows[2][2])
    assert end["snapshot_before"] == first["snapshot_before"]
    assert end["snapshot_after"] == first["snapshot_after"]
    before, after = first["snapshot_before"], first["snapshot_after"]
    assert isinstance(before, str) and isinstance(after, str) and before != after
    assert second["snapshot_after"] is None  # nothing changed the second time
    repo = sites.ctl.parent / "state" / "snapshots"
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%H %s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert after in log and before in log
    diff = subprocess.run(
        ["git", "-C", str(repo), "diff", before, after, "--", f"{KAM}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "+PasswordAuthentication no" in diff
    crossed = sites.monitor.read_text(errors="replace")
    assert "vcops.snapshot_chunk" in crossed  # the snapshots too went through the worker


@pytest.fixture(scope="module")
def ansible(
    sites: Sites, checked: dict[str, object], scanned: dict[str, object]
) -> dict[str, tuple[int, dict[str, object], str, float]]:
    """lab-asterisk-01 with the Ansible engine: ``--check`` in-process and through its
    worker (counting the apply tasks that crossed Redis), then a real apply through
    the worker and a scan (after the stock checks and scans)."""
    args = ("apply", "--engine", "ansible", "--check", "--limit", AST)
    local = _run(sites.inv, sites.local, *args)
    sent = sites.monitor.read_text(errors="replace").count("vcops.apply_chunk")
    workers = _run(sites.inv, sites.ctl, *args)
    crossed = sites.monitor.read_text(errors="replace").count("vcops.apply_chunk") - sent
    apply = _run(sites.inv, sites.ctl, "apply", "--engine", "ansible", "--limit", AST)
    scan = _run(sites.inv, sites.ctl, "scan", "--limit", AST)
    return {
        "local": local,
        "workers": workers,
        "apply": apply,
        "scan": scan,
        "crossed": (crossed, {}, "", 0.0),
    }


def test_an_ansible_check_through_a_worker_matches_in_process(
    ansible: dict[str, tuple[int, dict[str, object], str, float]],
) -> None:
    code_a, a, err_a, took_a = ansible["local"]
    code_b, b, err_b, took_b = ansible["workers"]
    print(f"\nansible --check of {AST}: in-process {took_a} s, through its worker {took_b} s")
    assert code_a == 0 and code_b == 0, (err_a[-2000:], err_b[-2000:], b)
    assert _hosts(b)[AST]["status"] == "changed"
    assert _same(_hosts(b)[AST]) == _same(_hosts(a)[AST])
    assert ansible["crossed"][0] > 0  # it went through the broker


def test_an_ansible_apply_through_a_worker_hardens_the_host(
    sites: Sites, ansible: dict[str, tuple[int, dict[str, object], str, float]]
) -> None:
    code, report, err, took = ansible["apply"]
    print(f"\nansible apply of {AST} through its worker: {took} s")
    assert code == 0, (err[-3000:], report)
    assert _hosts(report)[AST]["status"] == "changed"
    assert isinstance(report["snapshot_after"], str)
    scan_code, scan, scan_err, _ = ansible["scan"]
    assert scan_code == 0 and failing(scan) == [], (scan_err, failing(scan))
    with sqlite3.connect(sites.ctl.parent / "vcops.db") as db:
        rows = db.execute(
            "SELECT action FROM audit_log WHERE action LIKE 'apply.%' AND target = ? ORDER BY id",
            (AST,),
        ).fetchall()
    assert [r[0] for r in rows] == ["apply.start", "apply.host", "apply.end"]


def test_a_worker_refuses_an_apply_without_the_controllers_key(
    sites: Sites, redis_url: str
) -> None:
    """The worker task itself, in this process: no key in its state directory, a key
    that is not the controller's, then the right key's id on a payload the controller did
    not seal (a task written to the broker by someone else); nothing runs on the host."""
    state = sites.ctl.parent.parent / "lone" / "state"
    ctx = WorkerContext(
        site="s1",
        inventory_root=sites.inv,
        broker_url=redis_url,
        node="n1",
        state_dir=state,
        snapshots_dir=state / "snapshots",
    )
    base = {"targets": [KAM], "inventory": inventory_fingerprint(sites.inv), "engine": "pyinfra"}
    _Serving.context = ctx
    try:
        missing = apply_chunk(base | {"key": "0" * 16, "check": True})
        other = load_or_create_key(state, state / "snapshots")  # a key of its own
        wrong = apply_chunk(base | {"key": "0" * 16, "check": True})
        forged = apply_chunk(base | {"key": key_id(other), "check": False})
    finally:
        _Serving.context = None
    for answer, why in (
        (missing, "no masking key here"),
        (wrong, "masking key differs"),
        (forged, "seal does not verify"),
    ):
        outcome = answer["results"][KAM]["outcome"]  # type: ignore[index]
        assert outcome["status"] == "failed" and why in outcome["reason"], outcome
    assert other  # made here, so not the controller's


def test_a_broker_that_is_down_leaves_its_hosts_unreachable_and_applies_the_rest(
    sites: Sites, applied: dict[str, object], tmp_path: Path
) -> None:
    cfg = _config(tmp_path / "down" / "vcops.toml", f"redis://127.0.0.1:{free_port()}/0", ("s2",))
    code, report, err, took = _run(sites.inv, cfg, "apply", "--limit", BOTH)
    print(f"\nbroker down: apply of {BOTH} (one through the broker) took {took} s")
    assert code == 3, (err[-2000:], report)
    hosts = _hosts(report)
    assert hosts[AST]["status"] == "unreachable"
    reason = str(hosts[AST]["reason"])
    assert "is not answering" in reason and "\n" not in reason
    assert hosts[KAM]["status"] == "unchanged", hosts[KAM]  # applied here, hardened already


def test_a_scan_of_lab_hosts_through_two_workers_stores_what_an_in_process_scan_stores(
    sites: Sites, scanned: dict[str, list[tuple[str, str]]]
) -> None:
    """Both stock lab hosts, one at each site, scanned in-process and through their two
    workers, back to back into two PostgreSQL databases: the same open findings (the
    measured values of a few controls, such as an age in seconds, may move between the
    two scans; which controls fail may not)."""
    assert scanned["sites"] == scanned["local"]
    assert {t for t, _c in scanned["local"]} == {KAM, AST}  # stock hosts: both drift
    assert "vcops.scan_chunk" in sites.monitor.read_text(errors="replace")
