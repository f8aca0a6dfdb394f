"""Network devices through a site worker, on the lab's two IOS simulators (one read
through NAPALM, one through Netmiko) moved to site s1, with a redis-server on a random
loopback port and one `vcops worker --site s1` holding a copy of the controller's
masking key.

A scan, a snapshot and `apply --check` of the switches through the worker give what
the same commands give in-process (same statuses, same masked trees, same remediation
and rollback lines), and no device secret crosses Redis; `apply` pushes and verifies
through the worker; a `baseline` window planned and run through the worker pushes the
approved lines. Every switch is restarted to its stock config before and after each
test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.test_apply_devices_lab import NOT_ENFORCEABLE, lab_secrets, running
from tests.integration.worker_helpers import (
    VCOPS,
    copy_key,
    env,
    redis_monitor,
    redis_url,
    stop_all,
    task_bodies,
    wait_workers,
)
from vcops.inventory import Inventory
from vcops.lab.switches import restart_switch
from vcops.snapshot.keys import load_or_create_key

__all__ = ["redis_url"]  # the module fixture (tests/integration/worker_helpers.py)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]


@dataclass
class Site:
    lab: Inventory
    inv: Path
    root: Path
    monitor: Path
    names: list[str]

    def vcops(self, mode: str, *args: str) -> tuple[int, dict[str, object], str]:
        """``vcops ARGS --json`` on the controller through the worker (``mode``
        ``workers``) or in-process (``local``: its own state, no [workers])."""
        state = self.root / mode
        out = subprocess.run(
            [*VCOPS, "-i", str(self.inv), *args, "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={
                **env(),
                "VCOPS_CONFIG": str(state / "vcops.toml"),
                "VCOPS_DATABASE_URL": f"sqlite:///{state / 'vcops.db'}",
                "VCOPS_STATE_DIR": str(state / "state"),
                "VCOPS_ACTOR": "ops-oncall",
            },
        )
        assert "Traceback" not in out.stderr, out.stderr[-3000:]
        data = json.loads(out.stdout) if out.stdout.strip() else {}
        return out.returncode, data, out.stdout + out.stderr


def _hosts(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {h["name"]: h for h in report["hosts"]}  # type: ignore[union-attr, index]


def _statuses(report: dict[str, object]) -> dict[str, dict[str, str]]:
    return {
        o["target"]: {r["control_id"]: r["status"] for r in o["results"]}  # type: ignore[index]
        for o in report["outcomes"]  # type: ignore[union-attr]
    }


@pytest.fixture(scope="module")
def site(
    lab: Inventory, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("workers-devices")
    inv = root / "inventory"
    shutil.copytree(lab.root, inv)
    doc = yaml.safe_load((inv / "lab.yml").read_text())
    doc["sites"] += [{"name": "s1", "timezone": "UTC"}]
    for device in doc["devices"]:
        device["site"] = "s1"
    (inv / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    stock_toml = (inv / "vcops.toml").read_text()
    for mode in ("local", "workers", "worker"):
        (root / mode).mkdir()
        workers = f'\n[workers]\nbroker_url = "{redis_url}"\nsites = ["s1"]\n'
        (root / mode / "vcops.toml").write_text(stock_toml + (workers if mode != "local" else ""))
    load_or_create_key(root / "local" / "state", root / "local" / "state" / "snapshots")
    copy_key(root / "local", root / "workers")  # one operator's key
    copy_key(root / "local", root / "worker")  # copied by hand to the site's worker machine
    worker = subprocess.Popen(
        [*VCOPS, "-i", str(inv), "worker", "--site", "s1", "--concurrency", "2"],
        env={
            **env(),
            "VCOPS_CONFIG": str(root / "worker" / "vcops.toml"),
            "VCOPS_STATE_DIR": str(root / "worker" / "state"),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    names = sorted(d.name for d in lab.devices)
    try:
        with redis_monitor(redis_url, root / "monitor.log") as monitor:
            wait_workers(inv, root / "workers" / "vcops.toml", {"s1": 1})
            yield Site(lab, inv, root, monitor, names)
    finally:
        stop_all(worker)


@pytest.fixture
def stock(site: Site) -> Iterator[Site]:
    for name in site.names:
        restart_switch(name)
    yield site
    for name in site.names:
        restart_switch(name)


def test_scan_snapshot_and_check_through_the_worker_match_in_process(stock: Site) -> None:
    results: dict[str, dict[str, object]] = {}
    for mode in ("local", "workers"):
        code, scan, out = stock.vcops(mode, "scan", "--limit", "kind:device")
        assert code == 1, out[-3000:]  # stock switches drift
        snap_code, taken, out = stock.vcops(mode, "snapshot", "take", "--limit", "kind:device")
        assert snap_code == 0 and taken["commit"], out[-3000:]
        check_code, check, out = stock.vcops(mode, "apply", "--check", "--limit", "kind:device")
        assert check_code == 0, out[-3000:]
        results[mode] = {"scan": scan, "check": check}
    local, remote = results["local"], results["workers"]
    assert _statuses(remote["scan"]) == _statuses(local["scan"])  # type: ignore[arg-type]
    for name in stock.names:
        assert {"VC-NET-001", "VC-NET-005"} <= {
            c
            for c, s in _statuses(remote["scan"])[name].items()  # type: ignore[arg-type]
            if s == "fail"
        }
        a, b = _hosts(local["check"])[name], _hosts(remote["check"])[name]  # type: ignore[arg-type]
        assert b["kind"] == "device" and b["status"] == "changed"
        assert (b["changes"], b["rollback"], b["controls"]) == (
            a["changes"],
            a["rollback"],
            a["controls"],
        )
        assert "ip ssh version 2" in b["changes"]  # type: ignore[operator]
        trees = [
            subprocess.run(
                ["git", "-C", str(stock.root / mode / "state" / "snapshots"), "show",
                 f"HEAD:{name}/running-config.txt"],
                capture_output=True, text=True, check=True,
            ).stdout
            for mode in ("local", "workers")
        ]  # fmt: skip
        assert trees[0] == trees[1] and f"hostname {name}" in trees[1]
    crossed = stock.monitor.read_text(errors="replace")
    for task in ("vcops.scan_chunk", "vcops.snapshot_chunk", "vcops.apply_chunk"):
        assert task in crossed, task


def test_apply_through_the_worker_pushes_verifies_and_then_changes_nothing(stock: Site) -> None:
    code, applied, out = stock.vcops("workers", "apply", "--limit", "kind:device")
    assert code == 0, out[-3000:]
    for name in stock.names:
        host = _hosts(applied)[name]
        assert host["status"] == "changed" and "verified from a fresh login" in str(host["reason"])
        assert "ip ssh version 2" in running(stock.lab, name)
    after = applied["snapshot_after"]  # (the one before may be an earlier test's: unchanged)
    assert isinstance(after, str) and after
    said = [out]
    code, rescan, out = stock.vcops("workers", "scan", "--snapshot", "--limit", "kind:device")
    said.append(out)
    for name, found in _statuses(rescan).items():
        left = {c: s for c, s in found.items() if s != "pass"}
        assert set(left) <= NOT_ENFORCEABLE, (name, left)
    code, again, out = stock.vcops("workers", "apply", "--limit", "kind:device")
    said.append(out)
    assert code == 0 and {h["status"] for h in _hosts(again).values()} == {"unchanged"}, out
    tree = subprocess.run(
        ["git", "-C", str(stock.root / "workers" / "state" / "snapshots"), "show",
         f"{after}:{stock.names[0]}/running-config.txt"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "ip ssh version 2" in tree and "<vcops:masked:" in tree  # masked on the worker
    # the hardened configs hold the lab's device secrets: none crossed Redis or was printed
    crossed = stock.monitor.read_text(errors="replace") + task_bodies(stock.monitor)
    for value in lab_secrets(stock.lab):
        assert value not in crossed and not any(value in s for s in said)


def test_a_baseline_window_plans_and_pushes_a_switch_through_the_worker(stock: Site) -> None:
    name = stock.names[0]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=40)
    code, window, out = stock.vcops(
        "workers", "window", "create", "--targets", name, "--start", start.isoformat(),
        "--actions", "baseline", "--change-id", "CHG-LAB-SW", "--title", "switch via s1",
        "--key", str(stock.inv / "lab_key"),
    )  # fmt: skip
    assert code == 0, out[-3000:]
    [planned] = window["plan"]["hosts"]  # type: ignore[index]
    assert "ip ssh version 2" in planned["baseline_changes"], planned
    code, _d, out = stock.vcops(
        "workers", "window", "approve", str(window["id"]), "--key",
        str(stock.inv / "board" / "alice"),
    )  # fmt: skip
    assert code == 0, out[-3000:]
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.5))
    code, report, out = stock.vcops("workers", "window", "run", str(window["id"]))
    assert code == 0, out[-3000:]
    [host] = report["hosts"]  # type: ignore[index]
    assert host["state"] == "done" and "verified from a fresh login" in host["summary"], host
    assert host["before_rev"] and host["after_rev"] and host["before_rev"] != host["after_rev"]
    assert "ip ssh version 2" in running(stock.lab, name)
    bodies = task_bodies(stock.monitor)
    assert '"approved"' in bodies and "ip ssh version 2" in bodies  # the board's lines
