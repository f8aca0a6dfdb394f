"""A patch window restarts the services needrestart names as running outdated
libraries, even when their own package did not change, then gates them; the scan lists
them before (VC-PATCH-008) and not after.

Real packages built with ``dpkg-deb`` and published in the lab's apt repository:
``vcops-testlib`` ships a shared library (a copy of the controller's libz under its own
name) and ``vcops-testsvc`` a systemd service whose python3 process ``dlopen``s it. An
upgrade of the library alone replaces the file the running service still maps; only
needrestart can tell the service must restart. The host is given back stock afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import reset_lab_hosts
from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory, load_inventory
from vcops.lab.aptrepo import add_debs

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
BIN = Path(sys.executable).parent
HOST = "lab-generic-01"
LIB = "/usr/lib/vcops-testlib/libvcopstest.so.1"
SERVICE = "vcops-testsvc.service"
UNIT = f"""[Unit]
Description=vcops test service that maps {LIB}

[Service]
ExecStart=/usr/bin/python3 -c "import ctypes, time; ctypes.CDLL('{LIB}'); time.sleep(10**9)"

[Install]
WantedBy=multi-user.target
"""
POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemctl daemon-reload || true
  systemctl enable vcops-testsvc.service >/dev/null 2>&1 || true
  systemctl start vcops-testsvc.service || true
fi
exit 0
"""


def build_deb(work: Path, package: str, version: str) -> Path:
    root = work / f"{package}_{version}"
    (root / "DEBIAN").mkdir(parents=True)
    depends = "Depends: vcops-testlib\n" if package == "vcops-testsvc" else ""
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\n{depends}"
        "Maintainer: vcops tests <tests@lab.invalid>\nSection: misc\nPriority: optional\n"
        f"Description: vcops needrestart test package {version}\n"
    )
    if package == "vcops-testlib":
        lib = root / LIB.lstrip("/")
        lib.parent.mkdir(parents=True)
        shutil.copy("/usr/lib/x86_64-linux-gnu/libz.so.1", lib)
        (lib.parent / "version").write_text(version + "\n")
    else:
        unit = root / "lib" / "systemd" / "system"
        unit.mkdir(parents=True)
        (unit / SERVICE).write_text(UNIT)
        (root / "DEBIAN" / "postinst").write_text(POSTINST)
        (root / "DEBIAN" / "postinst").chmod(0o755)
    out = work / f"{package}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


class Env:
    def __init__(self, inv: Inventory, root: Path, db: Path, work: Path) -> None:
        self.inv, self.root, self.db, self.work = inv, root, db, work

    def vcops(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "vcops"), "-i", str(self.root), *args],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={
                **os.environ,
                "VCOPS_DATABASE_URL": f"sqlite:///{self.db}",
                "VCOPS_CONFIG": str(self.root / "vcops.toml"),
                "VCOPS_STATE_DIR": str(self.root / ".vcops"),
                "VCOPS_ACTOR": "ops-oncall",
            },
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def sh(self, script: str) -> str:
        server = next(s for s in self.inv.servers if s.name == HOST)
        return run_one(SshTarget.from_inventory(self.inv, server), script, timeout=300).stdout

    def publish(self, package: str, version: str) -> None:
        add_debs([build_deb(self.work, package, version)])

    def scan_result(self, control: str) -> dict[str, str]:
        proc = self.vcops("scan", "--limit", HOST, "--json")
        outcome = json.loads(proc.stdout)["outcomes"][0]
        return next(r for r in outcome["results"] if r["control_id"] == control)

    def main_pid(self) -> str:
        return self.sh(f"systemctl show -p MainPID --value {SERVICE}\n").strip()


@pytest.fixture(scope="module")
def env(lab: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("window-needrestart")
    root = tmp / "inventory"
    shutil.copytree(lab.root, root)
    text = (root / "lab.yml").read_text()
    at = text.index(f"  - name: {HOST}\n")
    end = text.index("    vars: {}\n", at)
    text = (
        text[:end]
        + "    vars: {window_gate_wait: 10, window_drain_timeout: 5}\n"
        + text[end + len("    vars: {}\n") :]
    )
    (root / "lab.yml").write_text(text)
    e = Env(load_inventory(root), root, tmp / "vcops.db", tmp / "debs")
    e.work.mkdir()
    e.publish("vcops-testlib", "1.0")
    e.publish("vcops-testsvc", "1.0")
    e.sh(
        "export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null && "
        "apt-get install -y -q --no-install-recommends needrestart vcops-testlib=1.0 "
        "vcops-testsvc=1.0 >/dev/null && mkdir -p /etc/needrestart/conf.d && "
        "echo \"\\$nrconf{restart} = 'l';\" >/etc/needrestart/conf.d/vcops.conf\n"
    )
    yield e
    reset_lab_hosts([HOST])


def test_a_window_restarts_what_needrestart_names_and_gates_it(env: Env) -> None:
    assert env.sh(f"systemctl is-active {SERVICE}\n").strip() == "active"
    # the library upgraded behind the service's back: the scan names the service
    env.publish("vcops-testlib", "1.1")
    env.sh(
        "export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null && "
        "apt-get install -y -q vcops-testlib=1.1 >/dev/null\n"
    )
    result = env.scan_result("VC-PATCH-008")
    assert result["status"] == "fail" and SERVICE in result["actual"], result

    env.publish("vcops-testlib", "1.2")
    pid_before = env.main_pid()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    proc = env.vcops(
        "window", "create", "--targets", HOST, "--start", start.isoformat(),
        "--duration", "2h", "--cutoff", "30m", "--max-concurrency", "1",
        "--max-errors", "1", "--actions", "all-updates", "--reboot", "never",
        "--change-id", "CHG-LAB-NEEDRESTART", "--title", "needrestart",
        "--key", str(env.root / "lab_key"), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    window_id = str(json.loads(proc.stdout)["id"])
    approve = env.vcops("window", "approve", window_id, "--key", str(env.root / "board" / "alice"))
    assert approve.returncode == 0, approve.stderr
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.5))
    started = time.monotonic()
    run = env.vcops("window", "run", window_id, "--json")
    seconds = time.monotonic() - started
    assert run.returncode == 0, (run.stdout, run.stderr)

    report = json.loads(env.vcops("window", "report", window_id, "--json").stdout)
    host = next(h for h in report["hosts"] if h["target"] == HOST)
    assert host["state"] == "done", host
    assert host["installed"] == {"vcops-testlib": "1.2"}  # vcops-testsvc did not change
    assert SERVICE in host["restarted"], host
    assert any("passed" in g for g in host["gate"]), host["gate"]
    pid_after = env.main_pid()
    assert pid_after not in {pid_before, "", "0"}
    assert env.sh(f"grep -c '(deleted)' /proc/{pid_after}/maps || true\n").strip() == "0"
    assert env.scan_result("VC-PATCH-008")["status"] == "pass"
    took = env.sh(
        "s=$(date +%s%N); needrestart -b -r l >/dev/null; echo $(( $(date +%s%N) - s ))\n"
    )
    print(
        f"\nneedrestart window run: {seconds:.1f} s; needrestart -b on the host: "
        f"{int(took) / 1e9:.2f} s"
    )
