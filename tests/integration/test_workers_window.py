"""`vcops window run` through a site worker on real lab hosts: a redis-server on a
random loopback port, a copy of the lab inventory with lab-kamailio-01 and
lab-asterisk-01 at site s1, and one `vcops worker --site s1` process with its own state
directory holding a copy of the controller's masking key.

A window upgrades a package built here (``vcops-sitepkg``, published in the lab's apt
repository) on both hosts, one at a time. The runner is killed with SIGKILL while the
second host's install runs on the worker, and run again: it resumes from its saved
progress on the controller, the host steps still running on the worker.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.test_window_run_lab import build_deb
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
from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory
from vcops.lab.aptrepo import add_debs
from vcops.snapshot.keys import KEY_FILE, load_or_create_key

__all__ = ["redis_url"]  # the module fixture (tests/integration/worker_helpers.py)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
KAM, AST = "lab-kamailio-01", "lab-asterisk-01"
PACKAGE = "vcops-sitepkg"
KAMAILIO_CFG = "/etc/kamailio/kamailio.cfg"
#: Its upgrade breaks Kamailio's configuration on a host flagged for it (a failed gate).
POSTINST = f"""#!/bin/sh
set -e
if [ "$1" = configure ] && [ -f /etc/vcops-site/break-kamailio ]; then
  echo 'this line is not kamailio configuration' >> {KAMAILIO_CFG}
  systemctl restart kamailio || true
fi
exit 0
"""


@dataclass
class Site:
    lab: Inventory
    inv: Path
    ctl: Path  # the controller's state (database, snapshots, masking key)
    worker_state: Path
    monitor: Path
    work: Path
    node: str = ""
    published: int = 0

    def publish_newer(self) -> str:
        """A version newer than any this module published (tests run in any order)."""
        self.published += 1
        version = f"1.{self.published}"
        add_debs([build_deb(self.work, PACKAGE, version, service=False, postinst=POSTINST)])
        return version

    def env(self, state: Path | None = None) -> dict[str, str]:
        return {
            **env(),
            "VCOPS_CONFIG": str(self.inv / "vcops.toml"),
            "VCOPS_DATABASE_URL": f"sqlite:///{self.ctl / 'vcops.db'}",
            "VCOPS_STATE_DIR": str(state or self.ctl / "state"),
            "VCOPS_ACTOR": "ops-oncall",
        }

    def vcops(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*VCOPS, "-i", str(self.inv), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        assert "Traceback" not in out.stderr, out.stderr[-3000:]
        return out

    def sh(self, name: str, script: str) -> str:
        server = next(s for s in self.lab.servers if s.name == name)
        return run_one(SshTarget.from_inventory(self.lab, server), script, timeout=300).stdout

    def version(self, name: str) -> str:
        return self.sh(name, f"dpkg-query -W -f='${{Version}}' {shlex.quote(PACKAGE)} || true\n")

    def audit(self, window_id: str) -> list[tuple[str, str, dict[str, object]]]:
        with sqlite3.connect(self.ctl / "vcops.db") as db:
            rows = db.execute(
                "SELECT action, target, detail FROM audit_log WHERE action LIKE 'window.%' "
                "AND json_extract(detail, '$.window') = ? ORDER BY id",
                (window_id,),
            ).fetchall()
        return [(a, t, json.loads(d)) for a, t, d in rows]


@pytest.fixture(scope="module")
def site(
    lab: Inventory, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("workers-window")
    inv = root / "inventory"
    shutil.copytree(lab.root, inv)
    doc = yaml.safe_load((inv / "lab.yml").read_text())
    doc["sites"] += [{"name": "s1", "timezone": "UTC"}]
    for server in doc["servers"]:
        if server["name"] in (KAM, AST):
            server["site"] = "s1"
    for group in doc.get("groups", []):
        if group.get("description", "").startswith("lab hosts with a VoIP role"):
            group["vars"] = {"window_drain_timeout": 20, "window_drain_poll": 1,
                             "window_gate_wait": 10}  # fmt: skip
    (inv / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with (inv / "vcops.toml").open("a") as toml:
        toml.write(
            f'\n[workers]\nbroker_url = "{redis_url}"\nsites = ["s1"]\nresult_timeout = 600\n'
        )
    ctl, worker_state = root / "ctl", root / "worker"
    load_or_create_key(ctl / "state", ctl / "state" / "snapshots")  # the controller's key
    copy_key(ctl, worker_state)  # copied by hand to the site's worker machine
    work = root / "debs"
    work.mkdir()
    s = Site(lab, inv, ctl, worker_state / "state", root / "monitor.log", work)
    add_debs([build_deb(work, PACKAGE, "1.0", service=False)])
    for name in (KAM, AST):
        s.sh(
            name,
            "export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null && "
            f"apt-get install -y -q {PACKAGE}=1.0 >/dev/null\n",
        )
    worker = subprocess.Popen(
        [*VCOPS, "-i", str(inv), "worker", "--site", "s1", "--concurrency", "2"],
        env=s.env(s.worker_state),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with redis_monitor(redis_url, s.monitor):
            wait_workers(inv, inv / "vcops.toml", {"s1": 1})
            status = json.loads(s.vcops("worker", "status", "--json").stdout)
            s.node = next(w["node"] for w in status["workers"] if w["site"] == "s1")
            yield s
    finally:
        stop_all(worker)
        for name in (KAM, AST):
            s.sh(
                name, f"rm -rf /etc/vcops-site; apt-get purge -y -q {PACKAGE} >/dev/null || true\n"
            )


def _open_window(site: Site, targets: str, lead: float = 40.0) -> str:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
    created = site.vcops(
        "window", "create", "--targets", targets, "--start", start.isoformat(),
        "--duration", "2h", "--cutoff", "30m", "--max-concurrency", "1", "--max-errors", "1",
        "--actions", "all-updates", "--reboot", "never", "--change-id", "CHG-LAB-SITE",
        "--title", "through the s1 worker", "--key", str(site.inv / "lab_key"), "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    window_id = str(json.loads(created.stdout)["id"])
    approve = site.vcops("window", "approve", window_id, "--key", str(site.inv / "board" / "alice"))
    assert approve.returncode == 0, approve.stderr
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.5))
    return window_id


def _rows(site: Site, window_id: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(site.ctl / "vcops.db") as db:
        return db.execute(
            "SELECT target, state, json_extract(detail, '$.step') FROM window_hosts "
            "WHERE window_id = ?",
            (window_id,),
        ).fetchall()


def test_a_window_runs_its_host_steps_on_the_worker_and_resumes_after_its_runner_is_killed(
    site: Site,
) -> None:
    new = site.publish_newer()
    window_id = _open_window(site, f"{KAM},{AST}")
    runner = subprocess.Popen(
        [*VCOPS, "-i", str(site.inv), "window", "run", window_id],
        env=site.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, rows = time.monotonic() + 300, []
        while time.monotonic() < deadline:
            rows = _rows(site, window_id)
            # the first host is done and the second drained: its install is on the worker
            if any(s == "done" for _t, s, _p in rows) and any(
                s == "running" and step == "drain" for _t, s, step in rows
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the runner never reached a second host: {rows}")
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    [first] = [t for t, s, _p in rows if s == "done"]
    [second] = [t for t, s, _p in rows if s == "running"]
    resumed = site.vcops("window", "run", window_id, "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:] + resumed.stdout[-3000:]

    report = json.loads(site.vcops("window", "report", window_id, "--json").stdout)
    hosts = {h["target"]: h for h in report["hosts"]}
    assert report["state"] == "finished" and report["counts"]["done"] == 2, report
    assert hosts[first]["attempts"] == 1 and hosts[second]["attempts"] == 2
    for name in (KAM, AST):
        assert site.version(name) == new, name
        assert hosts[name]["before_rev"] and hosts[name]["after_rev"], hosts[name]
    assert hosts[first]["installed"] == {PACKAGE: new}
    kam_gate = " ".join(hosts[KAM]["gate"])
    assert "kamailio.service running" in kam_gate and "SIP OPTIONS answered" in kam_gate

    entries = site.audit(window_id)
    steps = [(a, t, d) for a, t, d in entries if a.startswith("window.host.")]
    # every host step of both hosts was reached by the s1 worker, none by the controller
    reached = [(a, t) for a, t, d in steps if a in {"window.host.precheck",
               "window.host.drain", "window.host.install", "window.host.gate"}]  # fmt: skip
    assert {t for _a, t in reached} == {KAM, AST}
    for action, target, detail in steps:
        if action in {"window.host.precheck", "window.host.drain", "window.host.install"}:
            assert detail.get("via") == site.node, (action, target, detail)
    assert sum(a == "window.host.install" and t == first for a, t, _d in steps) == 1
    assert sum(a == "window.host.precheck" and t == second for a, t, _d in steps) == 1
    assert [a for a, _t, _d in entries].count("window.run.resume") == 1
    crossed = site.monitor.read_text(errors="replace")
    assert "vcops.window_steps" in crossed and "vcops.snapshot_chunk" in crossed
    payloads = task_bodies(site.monitor)
    key = (site.ctl / "state" / KEY_FILE).read_text().strip()
    assert key not in crossed and key not in payloads  # only the key's id travels
    # the steps travel as data (window create's plan too): names and versions, no shell
    for kind in ("plan", "precheck", "install", "gate"):  # (no calls: no drain step)
        assert f'"kind": "{kind}"' in payloads, kind
    assert f'"package": "{PACKAGE}"' in payloads and f'"target": "{new}"' in payloads
    assert "apt-get" not in payloads and "systemctl" not in payloads


def test_a_failed_gate_on_a_workers_host_is_rolled_back_by_the_worker(site: Site) -> None:
    good_cfg = site.sh(KAM, f"cat {KAMAILIO_CFG}\n")
    new = site.publish_newer()
    site.sh(KAM, "mkdir -p /etc/vcops-site && touch /etc/vcops-site/break-kamailio\n")
    try:
        window_id = _open_window(site, KAM)
        run = site.vcops("window", "run", window_id, "--json")
    finally:
        site.sh(KAM, "rm -rf /etc/vcops-site\n")
    assert run.returncode == 1, run.stderr[-3000:]
    report = json.loads(site.vcops("window", "report", window_id, "--json").stdout)
    [host] = report["hosts"]
    assert host["state"] == "failed" and "kamailio.service is not running" in host["summary"]
    rollback = str(host["rollback"])
    assert "configs restored" in rollback and "healthy again" in rollback, rollback
    assert site.sh(KAM, f"cat {KAMAILIO_CFG}\n") == good_cfg
    assert site.sh(KAM, "systemctl is-active kamailio || true\n").strip() == "active"
    assert site.version(KAM) == new  # packages stay upgraded; the rollback says how back
    entries = site.audit(window_id)
    [restore] = [d for a, _t, d in entries if a == "window.host.rollback"]
    assert restore.get("via") == site.node, restore
    with sqlite3.connect(site.ctl / "vcops.db") as db:
        [(detail,)] = db.execute(
            "SELECT detail FROM audit_log WHERE action = 'snapshot.restore' AND target = ? "
            "AND json_extract(detail, '$.window') = ?",
            (KAM, window_id),
        ).fetchall()
    restored = json.loads(detail)
    assert restored["status"] == "restored" and KAMAILIO_CFG in restored["files"], restored
    assert restored["before"] and restored["after"], restored  # committed on the controller
    log = subprocess.run(
        ["git", "-C", str(site.ctl / "state" / "snapshots"), "log", "--format=%H %s"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert restored["before"] in log and f"{restored['after']} snapshot: after restore" in log
    assert "vcops.window_restore" in site.monitor.read_text(errors="replace")
