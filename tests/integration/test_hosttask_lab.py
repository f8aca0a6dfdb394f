"""The host-task layer and sudo on the lab: an unprivileged login with a NOPASSWD sudo
rule on every host but one; ping, `scan --snapshot` (one SSH session per host, counted
in each host's sshd journal) and snapshot take/restore run through sudo; the host whose
login has no sudo rule fails with the sudoers fix and the others go on.

The users and rules are made through the lab inventory's own login (run_one: vcops,
root through sudo) and removed at the end."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.ssh_helpers import sshd_logins
from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory, load_inventory, render_export
from vcops.inventory.models import Server

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
BIN = Path(sys.executable).parent
USER = "vcopst"
RULE = "/etc/sudoers.d/vcops-test"
SUDOERS_FIX = f"{USER} ALL=(root) NOPASSWD: ALL"


@dataclass
class World:
    lab: Inventory
    inv: Path
    env: dict[str, str]
    no_sudo: Server

    def vcops(self, *args: str) -> tuple[int, object]:
        proc = subprocess.run(
            [str(BIN / "vcops"), "-i", str(self.inv), *args, "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=self.env,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout, proc.stderr
        return proc.returncode, json.loads(proc.stdout)

    def root(self, host: Server, script: str) -> str:
        return run_one(SshTarget.from_inventory(self.lab, host), script, timeout=120).stdout

    def logins(self, host: Server) -> int:
        """How many SSH sessions the test user opened on the host (sshd's journal)."""
        return len(sshd_logins(self.lab, host, USER))


@pytest.fixture(scope="module")
def world(lab: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("hosttask")
    inv = home / "inventory"
    shutil.copytree(lab.root, inv)
    for path in inv.glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "settings" in data:
            data["settings"]["ssh"]["user"] = USER  # become: sudo by default
            for server in data.get("servers", []):
                server.pop("user", None)  # the lab pins root per host
            path.write_text(yaml.safe_dump(data, sort_keys=False))
    state = home / "state"
    (home / "vcops.toml").write_text(f'[store]\nstate_dir = "{state}"\n')
    env = {
        **os.environ,
        "VCOPS_CONFIG": str(home / "vcops.toml"),
        "VCOPS_DATABASE_URL": f"sqlite:///{state / 'vcops.db'}",
    }
    no_sudo = next(s for s in lab.servers if "generic" in s.roles)
    w = World(lab=lab, inv=inv, env=env, no_sudo=no_sudo)
    key = (lab.root / "lab_key.pub").read_text().strip()
    for server in lab.servers:
        rule = (
            ""
            if server is no_sudo
            else f"printf '%s\\n' {shlex.quote(SUDOERS_FIX)} > {RULE}.new && "
            f"visudo -cf {RULE}.new && chmod 0440 {RULE}.new && mv {RULE}.new {RULE}\n"
        )
        w.root(
            server,
            f"id {USER} >/dev/null 2>&1 || useradd -m -s /bin/sh {USER}\n"
            f"install -d -m 0700 -o {USER} -g {USER} /home/{USER}/.ssh\n"
            f"printf '%s\\n' {shlex.quote(key)} > /home/{USER}/.ssh/authorized_keys\n"
            f"chown {USER}:{USER} /home/{USER}/.ssh/authorized_keys\n" + rule,
        )
    try:
        yield w
    finally:
        for server in lab.servers:
            w.root(server, f"rm -f {RULE}; userdel -r {USER} 2>/dev/null; true\n")


def test_ping_runs_as_root_through_sudo_and_names_the_fix_where_it_cannot(world: World) -> None:
    code, rows = world.vcops("inventory", "ping", "--limit", "kind:server")
    assert isinstance(rows, list)
    by_name = {r["name"]: r for r in rows}
    bad = by_name.pop(world.no_sudo.name)
    assert bad["status"] == "failed"
    assert bad["detail"].startswith(f"{world.no_sudo.name}: sudo -n as {USER} -> root refused")
    assert SUDOERS_FIX in bad["detail"] and "/etc/sudoers.d/vcops" in bad["detail"]
    assert "become_password_env" in bad["detail"]
    for row in by_name.values():
        assert row["status"] == "ok", row
        assert row["facts"]["runs_as"] == "root"
    assert code == 1  # a host failed; none unreachable


def test_scan_with_snapshot_is_one_session_per_host_through_sudo(world: World) -> None:
    hosts = [s for s in world.lab.servers if s is not world.no_sudo]
    before = {s.name: world.logins(s) for s in [*hosts, world.no_sudo]}
    started = time.monotonic()
    code, report = world.vcops("scan", "--snapshot", "--limit", "kind:server")
    seconds = time.monotonic() - started
    assert isinstance(report, dict)
    assert code == 3  # the host without sudo is unknown
    unknown = {o["target"]: o["error"] for o in report["outcomes"] if o["status"] == "unknown"}
    assert list(unknown) == [world.no_sudo.name]
    assert SUDOERS_FIX in unknown[world.no_sudo.name]
    scanned = {o["target"] for o in report["outcomes"] if o["status"] == "scanned"}
    assert scanned == {s.name for s in hosts}
    # findings that need root: sshd -T, nft and /etc/shadow were read through sudo
    found = {(f["target"], f["control_id"]) for f in report["open"]}
    for server in hosts:
        assert (server.name, "VC-SSH-001") in found  # stock sshd: password login on
    kam = next(s for s in hosts if "kamailio" in s.roles)
    assert (kam.name, "VC-KAM-001") in found  # read from the snapshot's /etc/kamailio tar
    # the snapshot of the same session: one commit, every sudo host in it
    snap = report["snapshot"]
    assert snap["commit"] and report["scan_id"]
    rows = {h["name"]: h for h in snap["hosts"]}
    assert rows[world.no_sudo.name]["status"] == "failed", rows[world.no_sudo.name]
    assert SUDOERS_FIX in rows[world.no_sudo.name]["error"]
    for server in hosts:
        assert rows[server.name]["status"] in {"new", "changed", "unchanged"}, rows[server.name]
    # one SSH session per host for facts AND snapshot (sshd logs each login)
    time.sleep(1)
    after = {s.name: world.logins(s) for s in [*hosts, world.no_sudo]}
    assert {n: after[n] - before[n] for n in after} == {n: 1 for n in after}, (before, after)
    # the scan stored both: its findings and the snapshot commit
    code, audit = world.vcops("audit", "log", "--action", "scan")
    assert isinstance(audit, list)
    assert audit[-1]["detail"]["snapshot_commit"] == snap["commit"]
    state = Path(world.env["VCOPS_CONFIG"]).parent / "state"
    effective = subprocess.run(
        [
            "git",
            "-C",
            str(state / "snapshots"),
            "show",
            f"{snap['commit']}:{kam.name}/state/sshd-effective.txt",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert effective.count("\n") > 20 and "failed" not in effective.splitlines()[0]
    print(f"scan --snapshot of {len(hosts) + 1} hosts through sudo: {seconds:.1f}s")


def test_snapshot_take_and_restore_through_sudo(world: World) -> None:
    kam = next(s for s in world.lab.servers if "kamailio" in s.roles)
    code, taken = world.vcops("snapshot", "take", "--limit", "kind:server", "--reason", "sudo test")
    assert isinstance(taken, dict)
    rows = {h["name"]: h for h in taken["hosts"]}
    assert rows[world.no_sudo.name]["status"] == "failed", rows[world.no_sudo.name]
    assert SUDOERS_FIX in rows[world.no_sudo.name]["error"]
    assert all(r["status"] != "failed" for n, r in rows.items() if n != world.no_sudo.name)
    assert code == 1  # failed, none unreachable
    # a root-only change, put back by restore through sudo
    path = "/etc/kamailio/kamailio.cfg"
    original = world.root(kam, f"sha256sum {path}\n")
    world.root(kam, f"printf '# vcops sudo test\\n' >> {path}\n")
    code, listed = world.vcops("snapshot", "list", kam.name)
    assert isinstance(listed, list) and listed
    rev = listed[0]["commit"]
    code, restored = world.vcops("snapshot", "restore", kam.name, rev)
    assert code == 0, restored
    assert world.root(kam, f"sha256sum {path}\n") == original


def test_both_engines_gain_root_through_sudo_from_the_same_settings(
    world: World, tmp_path: Path
) -> None:
    """pyinfra (``_sudo`` in the exported inventory) and Ansible (``ansible_become``)
    write into /root, which only root can, on every host with a sudo rule."""
    inv = load_inventory(world.inv)
    hosts = [s for s in world.lab.servers if s is not world.no_sudo]
    module = tmp_path / "inventory.py"
    module.write_text(render_export(inv, "pyinfra"))
    marker = f"/root/vcops-sudo-{time.time_ns()}"
    proc = subprocess.run(
        [str(BIN / "pyinfra"), "-y", "--exclude", world.no_sudo.name, str(module), "exec", "--",
         "touch", f"{marker}-pyinfra"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    exported = tmp_path / "hosts.yml"
    exported.write_text(render_export(inv, "ansible"))
    env = {
        **world.env,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
    }
    proc = subprocess.run(
        [str(BIN / "ansible"), "-i", str(exported), f"servers:!{world.no_sudo.name}", "-o", "-m",
         "ansible.builtin.command", "-a", f"touch {marker}-ansible"],
        capture_output=True, text=True, env=env, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for server in hosts:
        owners = world.root(
            server, f"stat -c %U {marker}-pyinfra {marker}-ansible; rm -f {marker}-*\n"
        )
        assert owners.split() == ["root", "root"], server.name


def test_a_window_plans_installs_reboots_and_gates_through_sudo(
    world: World, tmp_path: Path
) -> None:
    """A real window as the sudo user on the freeswitch host (the hosts the other window
    tests use are left alone): plan (apt-get update), precheck and before-snapshot in
    one session, drain, install of the approved version, reboot, gate, after-snapshot.
    A window naming the host whose login has no sudo rule is refused at planning."""
    from tests.integration.test_window_run_lab import build_deb
    from vcops.lab.aptrepo import add_debs

    host = next(s for s in world.lab.servers if "freeswitch" in s.roles)
    package = "vcops-sudopkg"
    add_debs([build_deb(tmp_path, package, "1.0", service=False)])
    world.root(
        host,
        "export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null && "
        f"apt-get install -y -q {package}=1.0 >/dev/null\n",
    )
    add_debs([build_deb(tmp_path, package, "1.1", service=False)])
    boot = "cat /proc/sys/kernel/random/boot_id\n"
    before = world.root(host, boot)

    def create(targets: str, start: datetime) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "vcops"), "-i", str(world.inv), "window", "create", "--targets", targets,
             "--start", start.isoformat(), "--duration", "2h", "--cutoff", "30m",
             "--max-concurrency", "1", "--max-errors", "1", "--actions", "all-updates",
             "--reboot", "always", "--change-id", "CHG-SUDO", "--title", "through sudo",
             "--key", str(world.inv / "lab_key"), "--json"],
            capture_output=True, text=True, timeout=300, check=False, env=world.env,
        )  # fmt: skip

    def soon() -> datetime:  # time for one create (a plan over SSH) and the approval,
        # also on a machine busy with other test lanes (12 s was too little there)
        return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)

    refused = create(world.no_sudo.name, soon())
    assert refused.returncode != 0 and SUDOERS_FIX in refused.stderr, refused.stderr
    start = soon()
    made = create(host.name, start)
    assert made.returncode == 0, made.stderr
    window = json.loads(made.stdout)
    planned = {p["package"]: p["target"] for p in window["plan"]["hosts"][0]["packages"]}
    assert planned.get(package) == "1.1", planned
    approve = subprocess.run(
        [str(BIN / "vcops"), "-i", str(world.inv), "window", "approve", window["id"],
         "--key", str(world.inv / "board" / "alice")],
        capture_output=True, text=True, timeout=120, check=False, env=world.env,
    )  # fmt: skip
    assert approve.returncode == 0, approve.stderr
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.5))
    code, report = world.vcops("window", "run", window["id"])
    assert isinstance(report, dict)
    hosts = {h["target"]: h for h in report["hosts"]}
    done = hosts[host.name]
    assert code == 0 and done["state"] == "done", done
    assert done["installed"].get(package) == "1.1" and done["rebooted"] is True
    assert done["before_rev"] and done["after_rev"]
    assert world.root(host, f"dpkg-query -W -f='${{Version}}' {package}\n") == "1.1"
    assert world.root(host, boot) != before  # really rebooted, by root through sudo
    world.root(host, f"apt-get remove -y -q {package} >/dev/null 2>&1; true\n")
