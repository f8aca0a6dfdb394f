"""An SSH round to every lab host, Netmiko and NAPALM to every switch, mail to the lab SMTP
server, and both engines reaching every host through the exported inventory."""

from __future__ import annotations

import email
import json
import mailbox
import os
import shlex
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from vcops.connectors.hosttask import HostRun, ScriptTask, run_tasks
from vcops.connectors.netdev import DeviceTarget, fetch_running_config
from vcops.connectors.ssh import SshTarget
from vcops.errors import HostKeyError
from vcops.inventory import Device, Inventory, render_export
from vcops.lab.layout import SUBNET

pytestmark = pytest.mark.lab
BIN = Path(sys.executable).parent


def _vcops(inv: Inventory, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "vcops"), "-i", str(inv.root), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "VCOPS_DATABASE_URL": f"sqlite:///{inv.root / 'test.db'}"},
    )


def run_on_hosts(targets: list[SshTarget], script: str) -> list[HostRun]:
    """``script`` as one host task on every target (its output is record ``out``)."""
    task = ScriptTask(name="t", script=f"section out sh -c {shlex.quote(script)}\n")
    return run_tasks(targets, [task])


def stdout(run: HostRun) -> str:
    record = run.output("t").get("out")
    assert record is not None, run.error
    return record.text


def test_ssh_round_to_every_host(lab: Inventory) -> None:
    targets = [SshTarget.from_inventory(lab, s) for s in lab.servers]
    script = (
        "set -e; cat /etc/machine-id; hostname; systemctl is-active ssh; id -un; "
        "echo ${SUDO_USER:-none}\n"
    )
    results = run_on_hosts(targets, script)
    assert [r.status for r in results] == ["ok"] * len(lab.servers), [r.error for r in results]
    machine_ids = set()
    for server, result in zip(lab.servers, results, strict=True):
        machine_id, hostname, ssh_state, user, login = stdout(result).split()
        # root for the script, reached from the vcops login through sudo
        assert (hostname, ssh_state, user, login) == (server.name, "active", "root", "vcops")
        machine_ids.add(machine_id)
    assert len(machine_ids) == len(lab.servers)  # every host has its own machine-id


def test_ping_command_reports_every_target(lab: Inventory) -> None:
    proc = _vcops(lab, "inventory", "ping", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["name"] for r in rows} == {t.name for t in lab.targets}
    assert all(r["status"] == "ok" for r in rows), rows
    assert all("Debian GNU/Linux 12" in r["facts"]["os"] for r in rows if r["via"] == "ssh")


def test_kamailio_runs_on_the_hosts_whose_role_runs_it_only(lab: Inventory) -> None:
    """kamailio and sbc hosts (the registry says an sbc runs Kamailio), no others."""
    targets = [SshTarget.from_inventory(lab, s) for s in lab.servers]
    results = run_on_hosts(targets, "systemctl is-active kamailio || true\n")
    running = {s.name for s in lab.servers if {"kamailio", "sbc"} & set(s.roles)}
    assert running == {"lab-kamailio-01", "lab-sbc-01"}
    for server, result in zip(lab.servers, results, strict=True):
        expected = "active" if server.name in running else "inactive"
        assert stdout(result).strip() == expected, server.name


def test_a_wrong_host_key_is_refused_and_reported_unreachable(
    lab: Inventory, tmp_path: Path
) -> None:
    server = lab.servers[0]
    other = lab.servers[1]
    known = (lab.root / "known_hosts").read_text().splitlines()
    # Pin the first host's address to the second host's key: a man in the middle.
    forged_key = next(line.split(None, 1)[1] for line in known if line.split()[0] == other.address)
    (tmp_path / "known_hosts").write_text(f"{server.address} {forged_key}\n")
    target = SshTarget.from_inventory(lab, server)
    forged = SshTarget(**{**target.__dict__, "known_hosts": tmp_path / "known_hosts"})
    [result] = run_on_hosts([forged], "true\n")
    assert result.status == "unreachable"
    assert result.error is not None and "host key not verified" in result.error
    with pytest.raises(HostKeyError):
        import asyncio

        from vcops.connectors.ssh import run_script

        asyncio.run(run_script(forged, "true\n"))


def test_an_unreachable_address_exits_3_and_is_never_ok(lab: Inventory, tmp_path: Path) -> None:
    inv_dir = tmp_path / "inv"
    inv_dir.mkdir()
    data = yaml.safe_load((lab.root / "lab.yml").read_text())
    # A host in the lab's own subnet with nothing behind it.
    ghost = {"name": "ghost-01", "address": str(SUBNET[250]), "roles": ["generic"]}
    data["servers"].insert(0, {**ghost, "site": "lab", "environment": "lab"})
    (inv_dir / "lab.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    for name in ("lab_key", "known_hosts"):
        (inv_dir / name).write_bytes((lab.root / name).read_bytes())
        (inv_dir / name).chmod(0o600)
    (inv_dir / "secrets").symlink_to(lab.root / "secrets")
    proc = subprocess.run(
        [
            str(BIN / "vcops"),
            "-i",
            str(inv_dir),
            "inventory",
            "ping",
            "--json",
            "--limit",
            "ghost-01,role:kamailio",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "VCOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
    )
    assert proc.returncode == 3, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["ghost-01"]["status"] == "unreachable"
    assert rows["lab-kamailio-01"]["status"] == "ok"


@pytest.mark.parametrize("transport", ["netmiko", "napalm"])
def test_running_config_from_every_switch(lab: Inventory, transport: str) -> None:
    switches = [d for d in lab.devices if isinstance(d, Device)]
    assert switches
    for device in switches:
        target = DeviceTarget.from_inventory(lab, device)
        forced = DeviceTarget(**{**target.__dict__, "transport": transport})
        config = fetch_running_config(forced)
        assert "hostname" in config or "version" in config, config[:200]
        password = (lab.root / "secrets" / f"{device.name}.password").read_text().strip()
        assert password not in config


def test_mail_reaches_the_lab_smtp_server(lab: Inventory) -> None:
    import tomllib

    cfg = tomllib.loads((lab.root / "vcops.toml").read_text())
    marker = f"vcops-lab-test-{time.time_ns()}"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "vcops@lab.invalid", "ops@lab.invalid", marker
    msg.set_content("hello from the integration tests")
    with smtplib.SMTP(cfg["smtp"]["host"], cfg["smtp"]["port"], timeout=10) as smtp:
        smtp.send_message(msg)
    box = mailbox.Maildir(cfg["lab"]["maildir"], create=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        subjects = [email.message_from_bytes(m.as_bytes())["Subject"] for m in box]
        if marker in subjects:
            break
        time.sleep(0.2)
    assert marker in subjects


def test_ansible_reaches_every_host_through_the_plugin_and_the_export(
    lab: Inventory, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "VCOPS_INVENTORY": str(lab.root),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    }
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(REPO / "deploys/inventory.vcops.yml"), "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    assert set(hostvars) == {t.name for t in lab.targets}
    exported = tmp_path / "hosts.yml"
    exported.write_text(render_export(lab, "ansible"))
    for source in (str(REPO / "deploys/inventory.vcops.yml"), str(exported)):
        proc = subprocess.run(
            [str(BIN / "ansible"), "-i", source, "servers", "-m", "ansible.builtin.ping", "-o"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("SUCCESS") == len(lab.servers)
    assert not (Path.home() / ".ssh" / "known_hosts").exists() or all(
        s.address not in (Path.home() / ".ssh" / "known_hosts").read_text() for s in lab.servers
    )


def test_pyinfra_reaches_every_host_through_the_export(lab: Inventory, tmp_path: Path) -> None:
    module = tmp_path / "lab_inventory.py"
    module.write_text(render_export(lab, "pyinfra"))
    marker = f"/tmp/vcops-pyinfra-{time.time_ns()}"
    proc = subprocess.run(
        [str(BIN / "pyinfra"), "-y", str(module), "exec", "--", "touch", marker],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # pyinfra really ran the command on every host: check with our own SSH connector.
    targets = [SshTarget.from_inventory(lab, s) for s in lab.servers]
    results = run_on_hosts(targets, f"test -f {marker} && rm -f {marker}\n")
    assert [r.output("t").ok_text("out") for r in results] == [""] * len(lab.servers)
