"""The lab's whole lifecycle on this machine: real containers, real sshd, real switches.

Needs root and systemd-nspawn (skipped otherwise). The first run builds the cached
image (about a minute); later runs take well under a minute.

Leftovers are checked here independently of vcops.lab's own scanning code, straight
from /run/netns, /sys/class/net, mountinfo, the cgroup trees and /proc.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import smtplib
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import machine_lab_lock
from vcops.errors import LabError
from vcops.lab import LabStatus, lab_down, lab_status, lab_up, read_mail
from vcops.lab.probe import sip_options

# This process's lab instance ($VCOPS_LAB_INSTANCE), spelled out here rather than read
# from vcops.lab.layout, so the leftover checks stay independent of the code they check.
INSTANCE = int(os.environ.get("VCOPS_LAB_INSTANCE") or "0")
TAG = str(INSTANCE) if INSTANCE else ""
STATE_DIR = Path("/var/lib/vcops-lab" + (f"-{INSTANCE}" if INSTANCE else ""))
STATE_FILE = STATE_DIR / "state.json"
SUBNET_PREFIX = f"10.213.{INSTANCE}."
SMTP_PORT = 2525 + INSTANCE

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(900),
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (sudo)"),
    pytest.mark.skipif(
        shutil.which("systemd-nspawn") is None or shutil.which("debootstrap") is None,
        reason="needs systemd-nspawn, debootstrap: apt-get install debootstrap systemd-container",
    ),
]


# --- independent leftover checks -------------------------------------------------


def _running(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2] not in "ZX"


def lab_leftovers(pids: list[int] | None = None) -> list[str]:
    """Every vcops lab resource still on the machine, one line each."""
    found = []
    ours = f"vcops{TAG}-"  # another instance's lab (vcops1-*, vcopsbr1) is not ours
    inside = f"{STATE_DIR}/"
    if Path("/run/netns").is_dir():
        found += [f"netns {n}" for n in os.listdir("/run/netns") if n.startswith(ours)]
    found += [
        f"link {n}"
        for n in os.listdir("/sys/class/net")
        if n.startswith(ours) or n == f"vcopsbr{INSTANCE}"
    ]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4]
        if target == str(STATE_DIR) or target.startswith(inside):
            found.append(f"mount {target}")
    for hierarchy in [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()]:
        if hierarchy.is_dir():
            found += [f"cgroup {c}" for c in hierarchy.glob(f"{ours}*")]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _running(int(entry.name)):
            try:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if inside in argv and "pytest" not in argv:
                found.append(f"process {entry.name}: {argv[:80]}")
    found += [f"process {pid} (from state)" for pid in pids or [] if _running(pid)]
    if STATE_DIR.exists():
        found.append(f"directory {STATE_DIR}")
    return found


def state_pids() -> list[int]:
    """Pids the lab recorded (read before teardown, checked after)."""
    state = json.loads(STATE_FILE.read_text())
    return [int(p["pid"]) for p in state["processes"]]


# --- helpers ------------------------------------------------------------------


def ssh(
    inventory: Path, address: str, *command: str, known_hosts: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command on a lab host as root, verifying its host key strictly: logged in
    as the inventory's ``vcops``, through its sudo rule (``sudo -n``: never a prompt)."""
    remote = f"sudo -n -- sh -c {shlex.quote(' '.join(command))}"
    return subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(inventory / "lab_key"),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts or inventory / 'known_hosts'}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            f"vcops@{address}",
            remote,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def skip_if_a_lab_exists() -> None:
    """Never touch a lab this module did not start (another fixture's, a user's)."""
    if STATE_DIR.exists() or lab_leftovers():
        pytest.skip("a lab (or leftovers of one) is already on this machine; run `vcops lab down`")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabStatus, Path]]:
    """A lab of 2 hosts and 1 switch for the whole module; always torn down."""
    with machine_lab_lock():
        skip_if_a_lab_exists()
        inventory = tmp_path_factory.mktemp("inventory") / "lab"
        try:
            status = lab_up(inventory, hosts=2, switches=1)
            yield status, inventory
        finally:
            lab_down()


# --- a running lab ----------------------------------------------------------------


def test_status_shows_every_node_running_and_reachable(lab: tuple[LabStatus, Path]) -> None:
    returned, inventory = lab
    status = lab_status()
    assert status == returned
    assert status.up and status.healthy
    assert [(h.name, h.address, h.roles) for h in status.hosts] == [
        ("lab-kamailio-01", f"{SUBNET_PREFIX}11", ["kamailio"]),
        ("lab-asterisk-01", f"{SUBNET_PREFIX}12", ["asterisk"]),
    ]
    assert all(h.running and h.ssh_reachable for h in status.hosts)
    assert [(s.name, s.address, s.platform, s.transport) for s in status.switches] == [
        ("lab-sw-01", f"{SUBNET_PREFIX}101", "ios", "napalm")
    ]
    assert all(s.running and s.ssh_reachable for s in status.switches)
    assert status.smtp is not None and status.smtp.running and status.smtp.port == SMTP_PORT
    assert status.inventory_dir == inventory.resolve()
    assert status.image is not None and (status.image / "rootfs/etc/os-release").is_file()


def test_hosts_boot_systemd_and_verify_against_pinned_host_keys(
    lab: tuple[LabStatus, Path],
) -> None:
    status, inventory = lab
    for host in status.hosts:
        done = ssh(inventory, host.address, "systemctl", "is-system-running", "--wait")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "running"


def test_a_wrong_host_key_is_refused(lab: tuple[LabStatus, Path], tmp_path: Path) -> None:
    status, inventory = lab
    lines = (inventory / "known_hosts").read_text().splitlines()
    first, second = status.hosts[0].address, status.hosts[1].address
    second_key = next(line.split(" ", 1)[1] for line in lines if line.startswith(second + " "))
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{first} {second_key}\n")
    done = ssh(inventory, first, "true", known_hosts=wrong)
    assert done.returncode != 0
    assert "host key" in done.stderr.lower()


def test_every_host_has_its_own_machine_id_and_hostname(lab: tuple[LabStatus, Path]) -> None:
    status, inventory = lab
    ids = {}
    for host in status.hosts:
        done = ssh(inventory, host.address, "cat /etc/machine-id; hostname")
        machine_id, hostname = done.stdout.split()
        assert hostname == host.name
        assert len(machine_id) == 32 and int(machine_id, 16) >= 0
        ids[host.name] = machine_id
    assert len(set(ids.values())) == len(ids)


def test_kamailio_answers_sip_only_on_the_kamailio_host(lab: tuple[LabStatus, Path]) -> None:
    status, inventory = lab
    kamailio, asterisk = status.hosts
    answer = sip_options(kamailio.address, timeout=2.0)
    assert answer is not None and answer.startswith("SIP/2.0 200")
    assert sip_options(asterisk.address, timeout=1.0) is None
    done = ssh(inventory, asterisk.address, "systemctl is-enabled kamailio; ls /etc/asterisk")
    assert done.stdout.split()[0] == "disabled"
    assert "manager.conf" in done.stdout.split()


def test_hosts_have_no_route_out(lab: tuple[LabStatus, Path]) -> None:
    status, inventory = lab
    done = ssh(inventory, status.hosts[0].address, "ip -4 route show; cat /etc/resolv.conf")
    assert "default" not in done.stdout
    assert f"{SUBNET_PREFIX}0/24 dev eth0" in done.stdout
    assert "nameserver 127.0.0.1" in done.stdout


def test_switch_serves_its_config_to_netmiko_and_napalm(lab: tuple[LabStatus, Path]) -> None:
    from napalm import get_network_driver
    from netmiko import ConnectHandler

    status, inventory = lab
    switch = status.switches[0]
    password = (inventory / "secrets" / f"{switch.name}.password").read_text().strip()
    strict = {
        "ssh_strict": True,
        "system_host_keys": False,
        "alt_host_keys": True,
        "alt_key_file": str(inventory / "known_hosts"),
    }
    conn = ConnectHandler(
        device_type="cisco_ios",
        host=switch.address,
        username="admin",
        password=password,
        secret=password,
        **strict,
    )
    try:
        conn.enable()
        running = conn.send_command("show running-config")
    finally:
        conn.disconnect()
    assert f"hostname {switch.name}" in running

    driver = get_network_driver("ios")(
        switch.address, "admin", password, optional_args={"secret": password, **strict}
    )
    driver.open()
    try:
        config = driver.get_config(retrieve="running")
    finally:
        driver.close()
    assert f"hostname {switch.name}" in config["running"]


def test_smtp_server_stores_mail_in_the_maildir(lab: tuple[LabStatus, Path]) -> None:
    message = EmailMessage()
    message["From"] = "vcops@lab.invalid"
    message["To"] = "alice@lab.invalid"
    message["Subject"] = "lab lifecycle test"
    message.set_content("hello")
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=10) as smtp:
        smtp.send_message(message)
    assert "lab lifecycle test" in [m["Subject"] for m in read_mail()]


def test_inventory_is_written_with_private_files_private(lab: tuple[LabStatus, Path]) -> None:
    _status, inventory = lab
    document = yaml.safe_load((inventory / "lab.yml").read_text())
    assert document["settings"]["ssh"] == {
        "user": "vcops",  # managed as a real fleet: an unprivileged login with sudo
        "port": 22,
        "key_file": "lab_key",
        "known_hosts_file": "known_hosts",
        "connect_timeout": 10,
    }
    assert [s["name"] for s in document["servers"]] == ["lab-kamailio-01", "lab-asterisk-01"]
    assert [g["name"] for g in document["redundancy_groups"]] == [
        "lab-kamailio",
        "lab-asterisk",
        "lab-switches",  # the switches' group: a window never takes both at once
    ]
    assert document["devices"][0]["credentials"] == {
        "username": "admin",
        "password_file": "secrets/lab-sw-01.password",
    }
    assert [m["name"] for m in document["change_board"]["members"]] == ["alice", "bob", "carol"]
    toml = tomllib.loads((inventory / "vcops.toml").read_text())
    assert toml["smtp"] == {
        "host": "127.0.0.1",
        "port": SMTP_PORT,
        "security": "none",
        "from": "vcops@lab.invalid",
    }
    known = (inventory / "known_hosts").read_text().splitlines()
    assert [line.split()[0] for line in known] == [
        f"{SUBNET_PREFIX}11",
        f"{SUBNET_PREFIX}12",
        f"{SUBNET_PREFIX}101",
    ]
    for private in ["lab_key", "secrets/lab-sw-01.password", "board/alice", "board/bob"]:
        assert stat.S_IMODE((inventory / private).stat().st_mode) == 0o600, private


def test_up_again_is_refused(lab: tuple[LabStatus, Path], tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"already up \(2 hosts, 1 switches\)"):
        lab_up(tmp_path / "other", hosts=2, switches=1)
    assert lab_status().healthy


def test_down_removes_everything_and_is_idempotent(lab: tuple[LabStatus, Path]) -> None:
    pids = state_pids()
    removed = lab_down()
    assert any("stopped host lab-kamailio-01" in line for line in removed)
    assert lab_leftovers(pids) == []
    assert lab_down() == []
    assert not lab_status().up


# --- crashes and failures -------------------------------------------------------


def test_down_cleans_up_after_a_crash_without_state(tmp_path: Path) -> None:
    with machine_lab_lock():
        skip_if_a_lab_exists()
        lab_up(tmp_path / "lab", hosts=1, switches=1)
        try:
            pids = state_pids()
            STATE_FILE.unlink()
            removed = lab_down()
            assert any("host lab-kamailio-01" in line for line in removed)
            assert any("switch simulator" in line for line in removed)
            assert lab_leftovers(pids) == []
        finally:
            lab_down()


def test_a_failed_up_removes_what_it_created(tmp_path: Path) -> None:
    with machine_lab_lock():
        skip_if_a_lab_exists()
        inventory = tmp_path / "lab"
        (inventory / "lab.yml").mkdir(parents=True)  # the very last write of up will fail
        try:
            with pytest.raises(LabError, match=r"lab\.yml"):
                lab_up(inventory, hosts=1, switches=1)
            assert lab_leftovers() == []
        finally:
            lab_down()
