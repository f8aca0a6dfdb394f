"""A stock lab host managed as the unprivileged ``vcops`` user with sudo, as a real fleet
would be: the scan finds drift (root login still allowed), the pyinfra apply fixes it
(PermitRootLogin no, the sudoers drop-in validated with visudo), root's own SSH login is
then refused, and scan, snapshot and a second apply with the other engine still work
through sudo; Kamailio still answers SIP OPTIONS. The host is reset to stock afterwards.
A sudo rule that asks for the password: the Ansible engine gains root with the password
from ``become_password_env`` and never prints it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.apply_helpers import ssh_as
from tests.integration.conftest import reset_lab_hosts
from tests.integration.ssh_helpers import sudo_other_commands
from vcops.inventory import Inventory, load_inventory
from vcops.lab.probe import sip_options

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
BIN = Path(sys.executable).parent
HOST = "lab-kamailio-01"


@pytest.fixture(scope="module")
def fleet(lab: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the lab inventory that logs in as vcops (become defaults to sudo)."""
    root = tmp_path_factory.mktemp("sudo-fleet") / "inventory"
    shutil.copytree(lab.root, root)
    doc = yaml.safe_load((root / "lab.yml").read_text())
    doc["settings"]["ssh"]["user"] = "vcops"  # the lab host's own login (lab up made it)
    for server in doc["servers"]:
        server.pop("user", None)  # the lab pins root per host
    (root / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        yield root
    finally:
        reset_lab_hosts([HOST])


def vcops(root: Path, *args: str) -> tuple[int, dict[str, object], str]:
    state = root.parent / "state"
    proc = subprocess.run(
        [str(BIN / "vcops"), "-i", str(root), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "VCOPS_CONFIG": "", "VCOPS_STATE_DIR": str(state),
             "VCOPS_DATABASE_URL": f"sqlite:///{state / 'vcops.db'}"},
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}, proc.stderr


def address(root: Path) -> str:
    servers = yaml.safe_load((root / "lab.yml").read_text())["servers"]
    return str(next(s for s in servers if s["name"] == HOST)["address"])


def ssh(root: Path, user: str, command: str) -> subprocess.CompletedProcess[str]:
    return ssh_as(root, address(root), user, command)


def _results(scan: dict[str, object]) -> dict[str, dict[str, object]]:
    [outcome] = scan["outcomes"]  # type: ignore[misc]
    assert outcome["status"] == "scanned", outcome
    return {r["control_id"]: r for r in outcome["results"]}


def test_a_stock_host_managed_through_sudo_is_hardened_and_refuses_root(fleet: Path) -> None:
    code, scan, err = vcops(fleet, "scan", "--limit", HOST)
    assert code == 1, err  # drift, found through sudo (sshd -T, nft, shadow modes need root)
    before = _results(scan)
    assert before["VC-SSH-002"]["status"] == "fail"  # root login allowed; vcops needs none
    assert before["VC-SSH-002"]["expected"] == "permitrootlogin no"
    assert before["VC-FILE-001"]["status"] != "unknown"  # /etc/shadow read as root

    code, report, err = vcops(fleet, "apply", "--engine", "pyinfra", "--limit", HOST)
    assert code == 0, (report, err)
    [host] = report["hosts"]  # type: ignore[misc]
    assert host["status"] == "changed", host
    drop_in = ssh(
        fleet, "vcops", "sudo -n cat /etc/sudoers.d/vcops; sudo -n stat -c %a /etc/sudoers.d/vcops"
    )
    assert "vcops ALL=(root) NOPASSWD: ALL" in drop_in.stdout and "440" in drop_in.stdout

    refused = ssh(fleet, "root", "true")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
    assert ssh(fleet, "vcops", "sudo -n true").returncode == 0

    code, scan, err = vcops(fleet, "scan", "--limit", HOST)
    failing = [(c, r["actual"]) for c, r in _results(scan).items() if r["status"] == "fail"]
    assert code == 0 and failing == [], (failing, err)

    code, _, err = vcops(fleet, "snapshot", "take", "--limit", HOST, "--reason", "sudo")
    assert code == 0, err

    started = time.time()
    code, report, err = vcops(fleet, "apply", "--engine", "ansible", "--limit", HOST)
    ended = time.time()
    assert code == 0, (report, err)
    [host] = report["hosts"]  # type: ignore[misc]
    assert host["status"] == "unchanged", host.get("changes")  # the other engine agrees (become)
    # Mitogen (settings.ansible.strategy's default) gains root once for the whole play:
    # one sudo to one Python interpreter, where Ansible's linear strategy runs one sudo
    # per task (over 100 here). vcops's own snapshot scripts are not counted.
    inventory = load_inventory(fleet)
    server = next(s for s in inventory.servers if s.name == HOST)
    engine = [t for t in sudo_other_commands(inventory, server, "vcops") if started <= t <= ended]
    assert len(engine) == 1, engine

    answer = sip_options(address(fleet), timeout=2.0)
    assert answer is not None and answer.startswith("SIP/2.0 200"), answer


def test_the_ansible_engine_gains_root_with_a_sudo_password_it_never_prints(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host whose sudo rule asks for the login's password: the Ansible engine (Mitogen's
    one sudo) gains root with the password named by become_password_env, restores the
    baseline's NOPASSWD drop-in, and the password is in no output. The host is given
    back stock afterwards, so this test and the one above run in either order."""
    try:
        _password_rule_applied(fleet, tmp_path, monkeypatch)
    finally:
        reset_lab_hosts([HOST])


def _password_rule_applied(fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = "Lab-Sudo-Passw0rd-" + os.urandom(4).hex()
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True,
        text=True, check=True,
    ).stdout.strip()  # fmt: skip
    rule = (
        f"sudo -n usermod -p '{hashed}' vcops && echo 'vcops ALL=(root) ALL' | "
        "sudo -n tee /etc/sudoers.d/vcops.new >/dev/null && "
        "sudo -n chmod 0440 /etc/sudoers.d/vcops.new && "
        "sudo -n visudo -qcf /etc/sudoers.d/vcops.new && "
        "sudo -n mv /etc/sudoers.d/vcops.new /etc/sudoers.d/vcops && sudo -k"
    )
    assert ssh(fleet, "vcops", rule).returncode == 0
    assert ssh(fleet, "vcops", "sudo -n true").returncode != 0  # a password is required now
    root = tmp_path / "inventory"
    shutil.copytree(fleet, root)
    doc = yaml.safe_load((root / "lab.yml").read_text())
    doc["settings"]["ssh"]["become_password_env"] = "LAB_SUDO_PASSWORD"
    (root / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("LAB_SUDO_PASSWORD", password)  # vcops() passes os.environ on
    code, report, err = vcops(root, "apply", "--engine", "ansible", "--limit", HOST)
    assert code == 0, (report, err)
    [host] = report["hosts"]  # type: ignore[misc]
    assert any("sudoers drop-in" in c for c in host["changes"]), host  # type: ignore[index]
    assert password not in json.dumps(report) and password not in err
    assert ssh(fleet, "vcops", "sudo -n true").returncode == 0  # NOPASSWD is back
