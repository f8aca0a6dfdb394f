"""Snapshots on the lab: real sshd hosts, real fake-switches, real git, the real CLI.

Canary secrets are planted in lab host configs (an Asterisk AMI secret, a Kamailio
database URL and kamctlrc password) and in both switches (an HSRP authentication
string, which fake-switches keeps in its running config), then looked for everywhere
vcops writes or prints: every git object of the snapshot repository, the database
file, the state directory, every CLI output. The tests run in file order and share one
snapshot repository; every change made on a lab host or switch is put back at the end.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vcops.connectors.netdev import DeviceTarget
from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory
from vcops.inventory.models import Device, Server
from vcops.lab.layout import SWITCHES_DIR
from vcops.snapshot.devices import ReplaceUnsupported, napalm_driver, push_lines, replace_config

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
BIN = Path(sys.executable).parent
MANAGER = "/etc/asterisk/manager.conf"
KAMAILIO_CFG = "/etc/kamailio/kamailio.cfg"
KAMCTLRC = "/etc/kamailio/kamctlrc"
VLAN_LINES = ["interface vlan 213", " description vcops lab test"]


@dataclass
class World:
    """The lab, a private vcops state dir, the canaries, and everything vcops printed."""

    lab: Inventory
    state: Path
    env: dict[str, str]
    canaries: dict[str, str]
    originals: dict[tuple[str, str], str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    baseline: str = ""

    def vcops(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "vcops"), "-i", str(self.lab.root), *args],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=self.env,
        )
        self.outputs += [proc.stdout, proc.stderr]
        assert "Traceback" not in proc.stderr, proc.stderr
        if expect is not None:
            assert proc.returncode == expect, (
                f"{args}: exit {proc.returncode}\n{proc.stderr}\n{proc.stdout[-3000:]}"
            )
        return proc

    def json(self, *args: str, expect: int | None = 0) -> object:
        return json.loads(self.vcops(*args, "--json", expect=expect).stdout)

    def server(self, role: str) -> Server:
        return next(s for s in self.lab.servers if role in s.roles)

    def device(self, transport: str) -> Device:
        return next(d for d in self.lab.devices if d.transport == transport)

    def sh(self, host: Server, script: str) -> str:
        return run_one(SshTarget.from_inventory(self.lab, host), script, timeout=120).stdout

    def read(self, host: Server, path: str) -> str:
        return self.sh(host, f"cat {shlex.quote(path)}\n")

    def write(self, host: Server, path: str, text: str) -> None:
        """Replace a file's content in place (owner and mode kept)."""
        data = base64.b64encode(text.encode()).decode()
        self.sh(host, f"printf %s {data} | base64 -d > {shlex.quote(path)}\n")

    def keep(self, host: Server, path: str) -> str:
        key = (host.name, path)
        if key not in self.originals:
            self.originals[key] = self.read(host, path)
        return self.originals[key]

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.state / "snapshots"), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def push(self, device: Device, lines: list[str]) -> None:
        errors = push_lines(DeviceTarget.from_inventory(self.lab, device), lines, b"x" * 32)
        assert errors == [], errors


@pytest.fixture(scope="module")
def world(lab: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("snapshot")
    state = home / "state"
    (home / "vcops.toml").write_text(f'[store]\nstate_dir = "{state}"\n')
    env = {
        **os.environ,
        "VCOPS_CONFIG": str(home / "vcops.toml"),
        "VCOPS_DATABASE_URL": f"sqlite:///{state / 'vcops.db'}",
        "VCOPS_ACTOR": "lab-tester@ctl",
    }
    token = secrets.token_hex(4)
    canaries = {
        "asterisk": f"canary-ami-{token}",
        "asterisk-rotated": f"canary-ami-rotated-{token}",
        "kamailio-url": f"canary-dburl-{token}",
        "kamctlrc": f"canary-kamctl-{token}",
        "kamctlrc-rotated": f"canary-kamctl-rotated-{token}",
        "switch": f"canary-hsrp-{token}",
    }
    w = World(lab=lab, state=state, env=env, canaries=canaries)
    ast, kam = w.server("asterisk"), w.server("kamailio")
    try:
        w.write(
            ast,
            MANAGER,
            w.keep(ast, MANAGER) + f"\n[vcops-test]\nsecret = {canaries['asterisk']}\n",
        )
        url = f'#!define VCOPS_TEST_DBURL "mysql://kamailio:{canaries["kamailio-url"]}@localhost/kamailio"\n'
        first, rest = w.keep(kam, KAMAILIO_CFG).split("\n", 1)
        w.write(kam, KAMAILIO_CFG, f"{first}\n{url}{rest}")
        w.write(kam, KAMCTLRC, w.keep(kam, KAMCTLRC) + f'DBRWPW="{canaries["kamctlrc"]}"\n')
        w.sh(kam, "systemctl restart kamailio && systemctl is-active kamailio\n")
        for device in lab.devices:
            w.push(device, [*VLAN_LINES, f" standby 1 authentication {canaries['switch']}"])
        report = w.json("snapshot", "take", "--reason", "lab baseline", "--window", "LAB-1")
        assert isinstance(report, dict) and report["commit"], report
        w.baseline = report["commit"]
        yield w
    finally:
        for (name, path), text in w.originals.items():
            host = next(s for s in lab.servers if s.name == name)
            w.write(host, path, text)
        w.sh(kam, "systemctl restart kamailio\n")
        for device in lab.devices:
            w.push(
                device, ["no interface vlan 213", "interface FastEthernet0/2", " no description"]
            )


def test_take_snapshots_every_target_with_secrets_masked(world: World) -> None:
    body = world.git("log", "-1", "--format=%B", world.baseline)
    assert "Reason: lab baseline" in body and "Window: LAB-1" in body
    assert "Operator: lab-tester@ctl" in body
    assert set(world.git("ls-tree", "--name-only", world.baseline).split()) >= {
        t.name for t in world.lab.targets
    }
    ast, kam = world.server("asterisk").name, world.server("kamailio").name
    manager = world.git("show", f"{world.baseline}:{ast}/files{MANAGER}")
    assert "[vcops-test]\nsecret = <vcops:masked:hmac-sha256:" in manager
    kamailio = world.git("show", f"{world.baseline}:{kam}/files{KAMAILIO_CFG}")
    assert '"mysql://kamailio:<vcops:masked:hmac-sha256:' in kamailio
    state = world.git("show", f"{world.baseline}:{kam}/state/enabled-units.txt")
    assert "kamailio.service enabled" in state
    listing = world.git("show", f"{world.baseline}:{kam}/file-list.txt")
    assert "/etc/ssh/ssh_host_ed25519_key.pub" in listing
    assert "\t/etc/ssh/ssh_host_ed25519_key\n" not in listing  # private halves never travel
    for transport in ("napalm", "netmiko"):
        device = world.device(transport)
        running = world.git("show", f"{world.baseline}:{device.name}/running-config.txt")
        assert "standby 1 authentication <vcops:masked:hmac-sha256:" in running
        assert "Current configuration" not in running  # noise filtered


def test_switches_are_read_through_their_own_transport(world: World) -> None:
    report = world.json("snapshot", "take", "-l", "kind:device", "--reason", "devices")
    assert isinstance(report, dict)
    via = {h["name"]: h["via"] for h in report["hosts"]}
    assert via == {world.device("napalm").name: "napalm", world.device("netmiko").name: "netmiko"}


def test_an_unchanged_fleet_adds_no_commit(world: World) -> None:
    head = world.git("rev-parse", "HEAD")
    report = world.json("snapshot", "take", "--reason", "again")
    assert isinstance(report, dict) and report["commit"] is None
    assert {h["status"] for h in report["hosts"]} == {"unchanged"}
    assert world.git("rev-parse", "HEAD") == head
    assert (
        "no change: nothing committed"
        in world.vcops("snapshot", "take", "-l", "role:asterisk").stdout
    )


def test_a_rotated_secret_shows_in_diff_without_either_value(world: World) -> None:
    ast = world.server("asterisk")
    text = world.read(ast, MANAGER)
    world.write(
        ast, MANAGER, text.replace(world.canaries["asterisk"], world.canaries["asterisk-rotated"])
    )
    report = world.json("snapshot", "take", "-l", ast.name, "--reason", "rotated AMI secret")
    assert isinstance(report, dict) and report["hosts"][0]["status"] == "changed"
    out = world.vcops("snapshot", "diff", ast.name).stdout
    minus = [line for line in out.splitlines() if line.startswith("-secret = <vcops:masked:")]
    plus = [line for line in out.splitlines() if line.startswith("+secret = <vcops:masked:")]
    assert len(minus) == len(plus) == 1 and minus[0][1:] != plus[0][1:]
    payload = world.json("snapshot", "diff", ast.name)
    assert isinstance(payload, dict)
    assert [f["path"] for f in payload["files"]] == [f"files{MANAGER}"]


def test_a_hand_change_shows_in_diff_and_restore_brings_it_back_with_kamailio_running(
    world: World,
) -> None:
    kam = world.server("kamailio")
    original = world.read(kam, KAMAILIO_CFG)
    mode = world.sh(kam, f"stat -c %a {KAMAILIO_CFG}\n").strip()
    world.write(kam, KAMAILIO_CFG, original + "# changed by hand on the host\n")
    world.sh(kam, f"chmod 0600 {KAMAILIO_CFG}\n")
    world.vcops("snapshot", "take", "-l", kam.name, "--reason", "drift")
    diff = world.vcops("snapshot", "diff", kam.name).stdout
    assert "+# changed by hand on the host" in diff
    assert "file-list.txt" in diff  # the mode change is a change too
    plan = world.json("snapshot", "restore", kam.name, world.baseline, "--check")
    assert isinstance(plan, dict) and plan["status"] == "planned"
    assert [(f["path"], f["action"]) for f in plan["files"]] == [(KAMAILIO_CFG, "write")]
    assert world.read(kam, KAMAILIO_CFG).endswith("# changed by hand on the host\n")  # --check
    done = world.json("snapshot", "restore", kam.name, world.baseline)
    assert isinstance(done, dict) and done["status"] == "restored", done
    assert done["reloaded"] == {"kamailio": "exit 0, active"}
    assert done["before_commit"] and done["after_commit"]
    # The canary DB URL came back from the live file: the store never had it.
    assert world.read(kam, KAMAILIO_CFG) == original
    state = world.sh(kam, f"stat -c %a {KAMAILIO_CFG}; systemctl is-active kamailio\n").split()
    assert state == [mode, "active"]
    assert world.git("diff", world.baseline, "HEAD", "--", f"{kam.name}/") == ""
    entries = world.json("audit", "log", "--action", "snapshot.restore")
    assert isinstance(entries, list)
    assert any(e["target"] == kam.name and e["detail"]["status"] == "restored" for e in entries)


def test_a_file_whose_secret_changed_is_refused_or_skipped(world: World) -> None:
    kam = world.server("kamailio")
    text = world.read(kam, KAMCTLRC)
    world.write(
        kam,
        KAMCTLRC,
        text.replace(world.canaries["kamctlrc"], world.canaries["kamctlrc-rotated"])
        + "DBPORT=3307\n",
    )
    proc = world.vcops("snapshot", "restore", kam.name, world.baseline, "--check", expect=1)
    assert f"{KAMCTLRC}: the snapshot holds masked secrets" in proc.stderr
    assert "--skip-masked" in proc.stderr
    skipped = world.json(
        "snapshot", "restore", kam.name, world.baseline, "--check", "--skip-masked"
    )
    assert isinstance(skipped, dict) and skipped["status"] in {"nothing-to-do", "planned"}
    assert [f["action"] for f in skipped["files"] if f["path"] == KAMCTLRC] == ["skipped"]
    world.write(kam, KAMCTLRC, text)


def test_a_config_pushed_to_a_switch_shows_in_the_next_diff_and_restore_undoes_it(
    world: World,
) -> None:
    for device in world.lab.devices:
        world.push(device, ["interface FastEthernet0/2", " description pushed by the lab test"])
    world.vcops("snapshot", "take", "-l", "kind:device", "--reason", "pushed")
    for device in world.lab.devices:
        out = world.vcops("snapshot", "diff", device.name).stdout
        assert "+ description pushed by the lab test" in out
    napalm_sw, netmiko_sw = world.device("napalm"), world.device("netmiko")
    # fake-switches cannot load a NAPALM replace candidate: --method replace says so and
    # changes nothing; auto falls back to the Netmiko line merge and says that too.
    proc = world.vcops(
        "snapshot", "restore", napalm_sw.name, world.baseline, "--method", "replace", expect=1
    )
    assert "cannot load a replace candidate" in proc.stderr
    check = world.json("snapshot", "restore", napalm_sw.name, world.baseline, "--check")
    assert isinstance(check, dict) and check["method"] == "netmiko-merge"
    assert check["commands"] == [
        "interface FastEthernet0/2",
        " no description pushed by the lab test",
    ]
    assert any("used the Netmiko line merge instead" in n for n in check["notes"])
    for device in (napalm_sw, netmiko_sw):
        done = world.json("snapshot", "restore", device.name, world.baseline)
        assert isinstance(done, dict) and done["status"] == "restored", done
        assert world.git("diff", world.baseline, "HEAD", "--", f"{device.name}/") == ""


def test_fake_switches_napalm_replace_contract(world: World) -> None:
    """The lab's NAPALM driver cannot load a replace candidate on fake-switches."""
    target = DeviceTarget.from_inventory(world.lab, world.device("napalm"))
    with pytest.raises(ReplaceUnsupported):
        replace_config(lambda: napalm_driver(target), "hostname x\n", check=True)


def test_canaries_appear_nowhere(world: World) -> None:
    repo = world.state / "snapshots"
    objects = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    history = world.git("log", "-p", "--all")
    assert "<vcops:masked:hmac-sha256:" in history
    stored = [objects, history.encode()]
    for path in world.state.rglob("*"):
        if path.is_file() and path.name != "snapshot-mask.key" and ".git" not in path.parts:
            stored.append(path.read_bytes())  # the database, WAL, audit anchor
    stored += [text.encode() for text in world.outputs]
    audit = world.vcops("audit", "log", "--json").stdout
    assert '"snapshot.take"' in audit and '"snapshot.restore"' in audit
    stored.append(audit.encode())
    # Logs on this machine: the switch simulators' own logs (vcops itself writes none).
    stored += [log.read_bytes() for log in SWITCHES_DIR.glob("*/*.log")]
    assert len(world.outputs) > 20
    # Positive controls: the canaries are real, and the search finds what is there.
    ast = world.server("asterisk")
    assert world.canaries["asterisk-rotated"] in world.read(ast, MANAGER)
    assert b"<vcops:masked:hmac-sha256:" in objects
    for name, canary in world.canaries.items():
        for blob in stored:
            assert canary.encode() not in blob, f"canary {name} leaked"
