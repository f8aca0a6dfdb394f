"""Running patch windows on the lab with real packages and real apt.

Test packages are built here with ``dpkg-deb`` and published in the lab's local apt
repository, so every upgrade is a real ``apt-get`` run with no internet. Each test
publishes a newer version of ``vcops-testpkg`` (it ships a running systemd unit the
runner must restart) and creates, approves and runs its own window over two
redundancy groups of two hosts: kamailio + asterisk and sbc + rtpengine (the sbc runs
Kamailio, so it is drained on its call count and gated on Kamailio like a kamailio host).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import pytest

from tests.integration.ssh_helpers import sshd_logins, sudo_scripts
from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory, load_inventory
from vcops.inventory.models import Server
from vcops.lab.aptrepo import add_debs
from vcops.lab.layout import SUBNET
from vcops.lab.mail import read_mail
from vcops.lab.probe import sip_options

pytestmark = pytest.mark.lab
BIN = Path(sys.executable).parent
TARGETS = "lab-kamailio-01,lab-asterisk-01,lab-sbc-01,lab-rtpengine-01"
PAIRS = {
    "lab-kamailio-01": "lab-kamailio",
    "lab-asterisk-01": "lab-kamailio",
    "lab-sbc-01": "lab-sbc",
    "lab-rtpengine-01": "lab-sbc",
}
KAMAILIO_CFG = "/etc/kamailio/kamailio.cfg"

POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemctl daemon-reload || true
  systemctl enable vcops-testpkg.service >/dev/null 2>&1 || true
  systemctl start vcops-testpkg.service || true
  if [ -f /etc/vcops-test/slow ]; then sleep 4; fi
  if [ -f /etc/vcops-test/break-kamailio ]; then
    echo 'this line is not kamailio configuration' >> /etc/kamailio/kamailio.cfg
    systemctl restart kamailio || true
  fi
fi
exit 0
"""
UNIT = """[Unit]
Description=vcops test service (restarted when its package is upgraded)

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""


def build_deb(
    work: Path, package: str, version: str, *, service: bool, postinst: str | None = None
) -> Path:
    """A real .deb built with dpkg-deb (arch all, no dependencies); ``service``: it
    ships vcops-testpkg.service and :data:`POSTINST`; else ``postinst`` if given."""
    root = work / f"{package}_{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: vcops tests <tests@lab.invalid>\nSection: misc\nPriority: optional\n"
        f"Description: vcops window test package {version}\n"
    )
    share = root / "usr" / "share" / package
    share.mkdir(parents=True)
    (share / "version").write_text(version + "\n")
    if service:
        unit = root / "lib" / "systemd" / "system"
        unit.mkdir(parents=True)
        (unit / "vcops-testpkg.service").write_text(UNIT)
    if service or postinst:
        (root / "DEBIAN" / "postinst").write_text(POSTINST if service else str(postinst))
        (root / "DEBIAN" / "postinst").chmod(0o755)
    out = work / f"{package}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


@dataclass
class Site:
    inv: Inventory
    root: Path
    db: Path
    work: Path
    outputs: list[str]
    published: dict[str, int] = field(default_factory=dict)
    #: Seconds each window create + approve took (:meth:`open_window` sizes its lead).
    approval_seconds: list[float] = field(default_factory=list)

    @property
    def hosts(self) -> list[Server]:
        return [s for s in self.inv.servers if s.name in PAIRS]

    def host(self, name: str) -> Server:
        return next(s for s in self.inv.servers if s.name == name)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VCOPS_DATABASE_URL": f"sqlite:///{self.db}",
            "VCOPS_CONFIG": str(self.root / "vcops.toml"),
            "VCOPS_STATE_DIR": str(self.root / ".vcops"),
            "VCOPS_ACTOR": "ops-oncall",
        }

    def vcops(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "vcops"), "-i", str(self.root), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env(),
        )
        self.outputs += [proc.stdout, proc.stderr]
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def sh(self, host: Server, script: str) -> str:
        return run_one(SshTarget.from_inventory(self.inv, host), script, timeout=300).stdout

    def version(self, host: Server, package: str) -> str:
        return self.sh(host, f"dpkg-query -W -f='${{Version}}' {shlex.quote(package)}\n")

    def publish(self, package: str, version: str, *, service: bool = True) -> None:
        add_debs([build_deb(self.work, package, version, service=service)])

    def publish_newer(self, package: str, *, service: bool = True) -> str:
        """Publish a version of ``package`` newer than any this module published (1.1,
        1.2, ...), so each test upgrades whatever ran before it, in any order."""
        n = self.published.get(package, 0) + 1
        self.published[package] = n
        version = f"1.{n}"
        self.publish(package, version, service=service)
        return version

    def open_window(
        self,
        title: str,
        *,
        concurrency: str,
        targets: str = TARGETS,
        reboot: str = "if-needed",
    ) -> str:
        """Create and approve a window, then wait for it to open. Approvals must come
        before the start, so the lead covers the create and approve commands: three times
        the slowest pair so far in this module (at least 10 s; 30 s for the first). On a
        machine so loaded that the approval comes too late, a new window with a 60 s lead."""
        first = max(10.0, 3 * max(self.approval_seconds)) if self.approval_seconds else 30.0
        for lead in (first, 60.0):
            began = time.monotonic()
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
            proc = self.vcops(
                "window", "create", "--targets", targets, "--start", start.isoformat(),
                "--duration", "2h", "--cutoff", "30m", "--max-concurrency", concurrency,
                "--max-errors", "1", "--actions", "all-updates", "--reboot", reboot,
                "--change-id", "CHG-LAB-RUN",
                "--title", title, "--key", str(self.root / "lab_key"), "--json",
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            window_id = str(json.loads(proc.stdout)["id"])
            approve = self.vcops(
                "window", "approve", window_id, "--key", str(self.root / "board" / "alice")
            )
            self.approval_seconds.append(time.monotonic() - began)
            if approve.returncode == 0:
                break
            assert "decisions must come before the start" in approve.stderr, approve.stderr
        assert approve.returncode == 0, approve.stderr
        time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.5))
        return window_id

    def report(self, window_id: str) -> dict[str, object]:
        proc = self.vcops("window", "report", window_id, "--json")
        assert proc.returncode == 0, proc.stderr
        data: dict[str, object] = json.loads(proc.stdout)
        return data

    def audit_times(self, action: str, target: str, window_id: str) -> list[float]:
        """When a host's audit entries of one window were written (epoch seconds)."""
        with sqlite3.connect(self.db) as db:
            rows = db.execute(
                "SELECT ts FROM audit_log WHERE action = ? AND target = ? "
                "AND json_extract(detail, '$.window') = ? ORDER BY id",
                (action, target, window_id),
            ).fetchall()
        return [datetime.fromisoformat(r[0]).timestamp() for r in rows]

    def audit(self, action: str, target: str, window_id: str) -> int:
        """Audit entries of one window (the window itself, or one of its hosts)."""
        with sqlite3.connect(self.db) as db:
            row = db.execute(
                "SELECT count(*) FROM audit_log WHERE action = ? AND target = ? "
                "AND (target = ? OR json_extract(detail, '$.window') = ?)",
                (action, target, window_id, window_id),
            ).fetchone()
        return int(row[0])


def host_vars(text: str, name: str, value: str) -> str:
    """Set one server's ``vars`` in the lab inventory YAML."""
    at = text.index(f"  - name: {name}\n")
    end = text.index("    vars: {}\n", at)
    return text[:end] + f"    vars: {value}\n" + text[end + len("    vars: {}\n") :]


def texts(message: Message) -> str:
    """Every text part of a message, decoded (what a reader sees)."""
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(parts)


def hosts_of(report: dict[str, object]) -> dict[str, dict[str, object]]:
    hosts = report["hosts"]
    assert isinstance(hosts, list)
    return {str(h["target"]): h for h in hosts}


@pytest.fixture(scope="module")
def site(lab: Inventory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A copy of the lab inventory with two redundancy pairs, quick drains and gates, and
    the lab's SMTP server for notices; vcops-testpkg 1.0 installed on the four hosts."""
    import shutil

    tmp = tmp_path_factory.mktemp("window-run")
    root = tmp / "inventory"
    shutil.copytree(lab.root, root)
    text = (root / "lab.yml").read_text()
    text = text.replace("redundancy_group: lab-asterisk", "redundancy_group: lab-kamailio")
    text = text.replace("redundancy_group: lab-rtpengine", "redundancy_group: lab-sbc")
    text = text.replace(
        "description: lab hosts with a VoIP role\n    vars: {}",
        "description: lab hosts with a VoIP role\n    vars: "
        "{window_drain_timeout: 20, window_drain_poll: 1, window_gate_wait: 10, "
        "customer_facing: true}",
    )
    text = host_vars(text, "lab-kamailio-01", "{window_drain_timeout: 3}")
    (root / "lab.yml").write_text(text)
    with (root / "vcops.toml").open("a") as toml:
        toml.write(
            '\n[recipients]\nops = ["noc@lab.invalid"]\ncustomers = ["customers@lab.invalid"]\n'
            '\n[customer_notice]\noperator = "Lab Telecom"\ntimezone = "Europe/London"\n'
            'contact = "support@lab.invalid"\nmin_notice_hours = 0\n'
        )
    inv = load_inventory(root)
    s = Site(inv=inv, root=root, db=tmp / "vcops.db", work=tmp / "debs", outputs=[])
    s.work.mkdir()
    s.publish("vcops-testpkg", "1.0")
    s.publish("vcops-testextra", "1.0", service=False)
    for host in s.hosts:
        s.sh(
            host,
            "export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null && "
            "apt-get install -y -q vcops-testpkg=1.0 vcops-testextra=1.0 >/dev/null && "
            "mkdir -p /etc/vcops-test\n",
        )
    yield s
    for host in s.hosts:
        s.sh(host, "rm -rf /etc/vcops-test\n")


def test_happy_path_two_pairs_never_in_one_batch(site: Site) -> None:
    current = {h.name: site.version(h, "vcops-testpkg") for h in site.hosts}
    new = site.publish_newer("vcops-testpkg")
    window_id = site.open_window("happy path", concurrency="2")
    extra = site.version(site.hosts[0], "vcops-testextra")
    pending = site.publish_newer("vcops-testextra", service=False)  # never approved
    shown = json.loads(site.vcops("window", "show", window_id, "--json").stdout)
    for host in shown["plan"]["hosts"]:
        wanted = {"package": "vcops-testpkg", "current": current[host["target"]], "target": new}
        assert (
            wanted.items()
            <= next(p for p in host["packages"] if p["package"] == "vcops-testpkg").items()
        )

    run = site.vcops("window", "run", "--due", "--json")
    assert run.returncode == 0, run.stderr
    ran = json.loads(run.stdout)["ran"]
    assert [r["window"] for r in ran] == [window_id] and ran[0]["state"] == "finished"

    report = site.report(window_id)
    hosts = hosts_of(report)
    assert report["state"] == "finished" and report["counts"]["done"] == 4  # type: ignore[index]
    batches: dict[int, list[str]] = {}
    for name, h in hosts.items():
        assert h["state"] == "done", h
        batches.setdefault(int(h["batch"]), []).append(name)  # type: ignore[call-overload]
        assert h["installed"]["vcops-testpkg"] == new  # type: ignore[index]
        assert h["not_approved"] == {"vcops-testextra": pending}, h
        assert "vcops-testpkg.service" in h["restarted"]  # type: ignore[operator]
        assert h["before_rev"] and h["after_rev"] and h["before_rev"] != h["after_rev"]
        assert any("passed" in g for g in h["gate"])  # type: ignore[union-attr]
    assert len(batches) == 2 and all(len(b) == 2 for b in batches.values())
    for members in batches.values():
        assert len({PAIRS[m] for m in members}) == len(members), batches
    for host in site.hosts:
        assert site.version(host, "vcops-testpkg") == new
        assert site.version(host, "vcops-testextra") == extra  # not approved: not installed
    assert (sip_options(site.host("lab-kamailio-01").address, timeout=2.0) or "").startswith(
        "SIP/2.0"
    )
    for name in ("lab-kamailio-01", "lab-sbc-01"):  # an sbc runs Kamailio: gated on it
        gate = " ".join(hosts[name]["gate"])  # type: ignore[arg-type]
        assert "kamailio.service running" in gate and "SIP OPTIONS" in gate, (name, gate)
    assert "no calls in progress" in str(hosts["lab-sbc-01"]["drain"])
    for step in ("start", "snapshot", "drain", "install", "restart", "gate", "done"):
        assert site.audit(f"window.host.{step}", "lab-sbc-01", window_id) >= 1, step
    subjects = [str(m["Subject"]) for m in read_mail() if window_id in str(m["Subject"])]
    assert any("started" in s for s in subjects) and any("finished" in s for s in subjects)
    assert any("approval needed" in s for s in subjects), subjects
    notices = [texts(m) for m in read_mail() if "customers@lab.invalid" in str(m["To"])]
    notice = next((n for n in reversed(notices) if "CHG-LAB-RUN" in n), "")
    assert "SIP signalling" in notice and "Europe/London" in notice, notices[-1:]
    assert "lab-kamailio-01" not in notice and str(SUBNET[0]).rsplit(".", 1)[0] + "." not in notice
    assert "vcops-testpkg" not in notice


def test_a_failed_gate_rolls_back_and_max_errors_halts(site: Site) -> None:
    kam = site.host("lab-kamailio-01")
    good_cfg = site.sh(kam, f"cat {KAMAILIO_CFG}\n")
    asterisk_version = site.version(site.host("lab-asterisk-01"), "vcops-testpkg")
    site.publish_newer("vcops-testpkg")
    site.sh(kam, "touch /etc/vcops-test/break-kamailio\n")
    try:
        window_id = site.open_window("breaks kamailio", concurrency="2")
        run = site.vcops("window", "run", window_id, "--json")
    finally:
        site.sh(kam, "rm -f /etc/vcops-test/break-kamailio\n")
    assert run.returncode == 1, run.stderr
    assert json.loads(run.stdout)["state"] == "halted"
    report = site.report(window_id)
    hosts = hosts_of(report)
    assert report["state"] == "halted" and "max errors" in str(report["halt_reason"])
    failed = hosts["lab-kamailio-01"]
    assert failed["state"] == "failed"
    assert "kamailio.service is not running" in str(failed["summary"])
    assert "configs restored" in str(failed["rollback"]) and "healthy again" in str(
        failed["rollback"]
    )
    assert report["rolled_back"] == ["lab-kamailio-01"]
    # its batch partner (other pair) finished; the second batch never started
    assert hosts["lab-sbc-01"]["state"] == "done"
    assert hosts["lab-asterisk-01"]["state"] == "pending"
    assert hosts["lab-rtpengine-01"]["state"] == "pending"
    assert site.version(site.host("lab-asterisk-01"), "vcops-testpkg") == asterisk_version
    # the rollback put kamailio.cfg back and kamailio runs again
    assert site.sh(kam, f"cat {KAMAILIO_CFG}\n") == good_cfg
    assert site.sh(kam, "systemctl is-active kamailio || true\n").strip() == "active"
    assert (sip_options(kam.address, timeout=2.0) or "").startswith("SIP/2.0")
    assert site.audit("window.host.rollback", "lab-kamailio-01", window_id) == 1
    again = site.vcops("window", "run", window_id)
    assert again.returncode == 1 and "is halted" in again.stderr


def test_kill_9_then_resume_does_not_redo_finished_hosts(site: Site) -> None:
    new = site.publish_newer("vcops-testpkg")
    for host in site.hosts:
        site.sh(host, "touch /etc/vcops-test/slow\n")
    try:
        window_id = site.open_window("killed and resumed", concurrency="1")
        runner = subprocess.Popen(
            [str(BIN / "vcops"), "-i", str(site.root), "window", "run", window_id],
            env=site.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        done: list[str] = []
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                with sqlite3.connect(site.db) as db:
                    rows = db.execute(
                        "SELECT target, state, json_extract(detail, '$.step') FROM window_hosts "
                        "WHERE window_id = ?",
                        (window_id,),
                    ).fetchall()
                done = [t for t, s, _step in rows if s == "done"]
                # the second host drained and is installing (its postinst sleeps 4 s)
                if done and any(s == "running" and step == "drain" for _t, s, step in rows):
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"the runner never reached a second host: {rows}")
            second = site.vcops("window", "run", window_id)
            assert second.returncode == 1 and "another window runner is running" in second.stderr
        finally:
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait(timeout=30)
        assert runner.returncode == -signal.SIGKILL
        resumed = site.vcops("window", "run", window_id, "--json")
        assert resumed.returncode == 0, resumed.stderr + resumed.stdout[-2000:]
    finally:
        for host in site.hosts:
            site.sh(host, "rm -f /etc/vcops-test/slow\n")
    hosts = hosts_of(site.report(window_id))
    assert all(h["state"] == "done" for h in hosts.values()), hosts
    for name in done:
        assert hosts[name]["attempts"] == 1, name
        assert site.audit("window.host.install", name, window_id) == 1
    [redone] = [n for n, h in hosts.items() if h["attempts"] == 2]
    # judged on resume against its health before the window, taken once
    assert hosts[redone]["health_before"] is not None
    assert site.audit("window.host.precheck", redone, window_id) == 1
    assert site.audit("window.run.resume", window_id, window_id) == 1
    for host in site.hosts:
        assert site.version(host, "vcops-testpkg") == new


def test_reboot_always_brings_the_hosts_back_before_the_gate(site: Site) -> None:
    names = ["lab-asterisk-01", "lab-rtpengine-01"]
    boot = "cat /proc/sys/kernel/random/boot_id\n"
    before = {n: site.sh(site.host(n), boot) for n in names}
    new = site.publish_newer("vcops-testpkg")
    window_id = site.open_window(
        "reboot always", concurrency="2", targets=",".join(names), reboot="always"
    )
    # on a terminal (a pty from script(1)): a progress bar counts the hosts as they end
    command = shlex.join([str(BIN / "vcops"), "-i", str(site.root), "window", "run", window_id])
    run = subprocess.run(
        ["script", "-qefc", command, "/dev/null"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**site.env(), "TERM": "xterm-256color"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Traceback" not in run.stdout
    assert re.search(rf"window {window_id}.*2/2", run.stdout), run.stdout[-3000:]
    hosts = hosts_of(site.report(window_id))
    for name in names:
        h = hosts[name]
        assert h["state"] == "done" and h["rebooted"] is True and h["batch"] == 1, h
        assert "rebooted" in str(h["summary"])
        host = site.host(name)
        assert site.sh(host, boot) != before[name]  # a new boot, really
        assert site.version(host, "vcops-testpkg") == new
        assert (
            site.sh(host, "systemctl is-active vcops-testpkg.service || true\n").strip() == "active"
        )
    assert site.audit("window.host.reboot", "lab-rtpengine-01", window_id) == 1


def test_a_member_never_starts_while_its_peer_is_unhealthy(site: Site) -> None:
    sbc, rtp = site.host("lab-sbc-01"), site.host("lab-rtpengine-01")
    lab_yml = site.root / "lab.yml"
    plain = lab_yml.read_text()
    lab_yml.write_text(
        host_vars(plain, "lab-sbc-01", "{window_health_units: [vcops-peer.service]}")
    )
    site.sh(
        sbc,
        "printf '[Service]\\nExecStart=/bin/false\\n' > /etc/systemd/system/vcops-peer.service\n"
        "systemctl daemon-reload; systemctl start vcops-peer.service || true\n",
    )
    try:
        assert site.sh(sbc, "systemctl is-failed vcops-peer.service || true\n").strip() == "failed"
        version = site.version(rtp, "vcops-testpkg")
        site.publish_newer("vcops-testpkg")
        window_id = site.open_window("peer down", concurrency="1", targets="lab-rtpengine-01")
        run = site.vcops("window", "run", window_id)
    finally:
        lab_yml.write_text(plain)
        site.sh(
            sbc,
            "systemctl reset-failed vcops-peer.service || true\n"
            "rm -f /etc/systemd/system/vcops-peer.service; systemctl daemon-reload\n",
        )
    assert run.returncode == 1, run.stderr
    assert "lab-sbc-01 (lab-sbc) is unhealthy: vcops-peer.service failed" in run.stderr
    report = site.report(window_id)
    assert report["state"] == "halted" and "unhealthy peer in lab-sbc" in str(report["halt_reason"])
    assert hosts_of(report)["lab-rtpengine-01"]["state"] == "skipped"
    assert site.version(rtp, "vcops-testpkg") == version  # never touched
    assert site.audit("window.peer.unhealthy", "lab-sbc-01", window_id) == 1
    assert site.audit("window.host.start", "lab-rtpengine-01", window_id) == 0


def test_a_host_still_carrying_calls_is_skipped_unchanged(site: Site) -> None:
    kam = site.host("lab-kamailio-01")
    # stands in for a Kamailio with two dialogs up (the lab places no calls)
    site.sh(
        kam,
        "printf '#!/bin/sh\\necho \"{ starting: 0 ongoing: 2 all: 2 }\"\\n' > /usr/local/bin/kamcmd\n"
        "chmod 755 /usr/local/bin/kamcmd\n",
    )
    try:
        version = site.version(kam, "vcops-testpkg")
        site.publish_newer("vcops-testpkg")
        window_id = site.open_window("busy", concurrency="1", targets="lab-kamailio-01")
        run = site.vcops("window", "run", window_id)
    finally:
        site.sh(kam, "rm -f /usr/local/bin/kamcmd\n")
    assert run.returncode == 1, run.stderr
    report = site.report(window_id)
    h = hosts_of(report)["lab-kamailio-01"]
    assert report["state"] == "finished" and h["state"] == "skipped"
    assert "still 2 kamailio call(s) after the 3 s drain limit" in str(h["summary"])
    assert site.version(kam, "vcops-testpkg") == version  # nothing changed
    assert site.audit("window.host.install", "lab-kamailio-01", window_id) == 0


def test_an_sbc_is_drained_on_its_kamailio_call_count_and_gated_on_kamailio(site: Site) -> None:
    sbc = site.host("lab-sbc-01")
    good_cfg = site.sh(sbc, f"cat {KAMAILIO_CFG}\n")
    assert site.sh(sbc, "systemctl is-active kamailio || true\n").strip() == "active"
    # stands in for Kamailio's dialog counter: 2 calls, then 1, then none (the lab places
    # no calls); the postinst then breaks Kamailio's config, so the gate must catch it
    site.sh(
        sbc,
        "echo 2 > /run/vcops-calls\n"
        'printf \'#!/bin/sh\\nn=$(cat /run/vcops-calls)\\necho "{ all: $n }"\\n'
        '[ "$n" -gt 0 ] && echo $((n - 1)) > /run/vcops-calls\\nexit 0\\n\' '
        "> /usr/local/bin/kamcmd\nchmod 755 /usr/local/bin/kamcmd\n"
        "touch /etc/vcops-test/break-kamailio\n",
    )
    try:
        site.publish_newer("vcops-testpkg")
        window_id = site.open_window(
            "sbc pair", concurrency="1", targets="lab-sbc-01,lab-rtpengine-01"
        )
        run = site.vcops("window", "run", window_id, "--json")
        calls_left = site.sh(sbc, "cat /run/vcops-calls\n").strip()
    finally:
        site.sh(
            sbc,
            "rm -f /usr/local/bin/kamcmd /run/vcops-calls /etc/vcops-test/break-kamailio\n",
        )
    assert run.returncode == 1, run.stderr
    h = hosts_of(site.report(window_id))["lab-sbc-01"]
    assert calls_left == "0"  # the drain read the count until no call was left
    assert "no calls in progress after" in str(h["drain"]), h
    assert h["state"] == "failed", h
    assert "kamailio.service is not running" in str(h["summary"]), h
    assert "no answer to SIP OPTIONS" in str(h["summary"]), h
    assert "configs restored" in str(h["rollback"]) and "healthy again" in str(h["rollback"])
    assert site.sh(sbc, f"cat {KAMAILIO_CFG}\n") == good_cfg
    assert site.sh(sbc, "systemctl is-active kamailio || true\n").strip() == "active"
    assert (sip_options(sbc.address, timeout=2.0) or "").startswith("SIP/2.0")


def test_one_connection_per_host_and_one_session_for_the_snapshot_and_precheck(site: Site) -> None:
    """Counted in each host's journal: one SSH login for the whole run (the peers'
    health, snapshots, precheck, drain, install and gate share the connection);
    between a host's start and its precheck (its before-snapshot in between), exactly
    one host script; and the after-snapshot, taken against the before-snapshot's
    checksums, still records the upgrade."""
    names = ["lab-asterisk-01", "lab-rtpengine-01"]
    hosts = [site.host(n) for n in names]
    site.publish("vcops-testsession", "1.0", service=False)
    for host in hosts:
        site.sh(
            host,
            "export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null && "
            "apt-get install -y -q vcops-testsession=1.0 >/dev/null\n",
        )
    site.publish("vcops-testsession", "1.1", service=False)
    window_id = site.open_window("one session", concurrency="2", targets=",".join(names))
    run = site.vcops("window", "run", window_id, "--json")
    assert run.returncode == 0, run.stderr + run.stdout[-2000:]
    time.sleep(1)  # the journal has the last logins
    report = hosts_of(site.report(window_id))
    [run_start] = site.audit_times("window.run.start", window_id, window_id)
    [run_end] = site.audit_times("window.run.finish", window_id, window_id)
    snapshots = json.loads(site.vcops("info", "--json").stdout)["snapshots"]
    for host in hosts:
        [started] = site.audit_times("window.host.start", host.name, window_id)
        [prechecked] = site.audit_times("window.host.precheck", host.name, window_id)
        [before] = site.audit_times("window.host.snapshot", host.name, window_id)[:1]
        assert started < before < prechecked
        login = site.inv.ssh_user(host)  # the window's own login: vcops, root through sudo
        scripts = [t for t in sudo_scripts(site.inv, host, login) if started <= t <= prechecked]
        assert len(scripts) == 1, (host.name, scripts)
        logins = [t for t in sshd_logins(site.inv, host, login) if run_start <= t <= run_end]
        assert len(logins) == 1, (host.name, logins)
        h = report[host.name]
        assert h["state"] == "done" and h["batch"] == 1, h
        assert h["installed"]["vcops-testsession"] == "1.1"  # type: ignore[index]
        packages = subprocess.run(
            ["git", "-C", snapshots, "show",
             f"{h['after_rev']}:{host.name}/state/packages.txt"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "vcops-testsession\t1.1" in packages
        assert site.version(host, "vcops-testsession") == "1.1"
