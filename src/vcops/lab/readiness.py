"""Waiting until a freshly started lab answers: sshd, switch SSH, SMTP, Kamailio SIP.

Each wait is bounded and fails with a LabError naming the node, with the tail of its
console or log output (the lab's state directory is removed when ``up`` fails, so the
output is quoted rather than pointed at).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from vcops.errors import LabError
from vcops.lab.aptrepo import REPO_LOG, REPO_URL
from vcops.lab.probe import sip_options, smtp_ready, ssh_ready
from vcops.lab.state import HostState, SmtpState, SwitchState
from vcops.lab.system import is_same_process, tail

HOST_BOOT_TIMEOUT = 120.0
"""Seconds for every host to boot and start sshd (all hosts boot in parallel)."""
SWITCH_START_TIMEOUT = 60.0
SMTP_START_TIMEOUT = 30.0
SIP_TIMEOUT = 30.0
PROBE_WORKERS = 16

Step = Callable[[str], None]


def wait_for_hosts(hosts: list[HostState], step: Step) -> None:
    """Wait until every host's sshd greets; fail fast if a container exits."""
    deadline = time.monotonic() + HOST_BOOT_TIMEOUT
    pending = list(hosts)
    with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
        while pending:
            for host in pending:
                if host.process is None or not is_same_process(host.process):
                    raise LabError(
                        f"host {host.name} stopped while booting (systemd-nspawn exited); "
                        f"its last output:\n{tail(host.log)}"
                    )
            ready = list(pool.map(lambda h: ssh_ready(h.address, timeout=1.0), pending))
            for host, ok in zip(pending, ready, strict=True):
                if ok:
                    step(f"{host.name}: sshd is up")
            pending = [h for h, ok in zip(pending, ready, strict=True) if not ok]
            if pending and time.monotonic() > deadline:
                host = pending[0]
                raise LabError(
                    f"host {host.name} ({host.address}) did not start sshd within "
                    f"{HOST_BOOT_TIMEOUT:.0f} s; its last console output:\n{tail(host.log)}"
                )
            if pending:
                time.sleep(0.25)


def wait_for_switches(switches: list[SwitchState], step: Step) -> None:
    """Wait until every switch's SSH port greets."""
    deadline = time.monotonic() + SWITCH_START_TIMEOUT
    for switch in switches:
        while not ssh_ready(switch.address, timeout=1.0):
            if switch.process is None or not is_same_process(switch.process):
                raise LabError(
                    f"switch {switch.name} exited while starting; its last output:\n"
                    f"{tail(switch.log)}"
                )
            if time.monotonic() > deadline:
                raise LabError(
                    f"switch {switch.name} ({switch.address}) does not answer on SSH port 22 "
                    f"after {SWITCH_START_TIMEOUT:.0f} s; its last output:\n{tail(switch.log)}"
                )
            time.sleep(0.2)
        step(f"{switch.name}: SSH is up")


def wait_for_smtp(smtp: SmtpState) -> None:
    """Wait until the SMTP server greets."""
    deadline = time.monotonic() + SMTP_START_TIMEOUT
    while not smtp_ready(smtp.host, smtp.port, timeout=1.0):
        if smtp.process is None or not is_same_process(smtp.process):
            raise LabError(
                f"the SMTP server exited while starting; its last output:\n{tail(smtp.log)}"
            )
        if time.monotonic() > deadline:
            raise LabError(
                f"the SMTP server does not answer on {smtp.host}:{smtp.port} after "
                f"{SMTP_START_TIMEOUT:.0f} s; its last output:\n{tail(smtp.log)}"
            )
        time.sleep(0.2)


def wait_for_repo(timeout: float = SMTP_START_TIMEOUT) -> None:
    """Wait until the lab apt repository serves its ``Packages`` index."""
    url = REPO_URL + "Packages"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as answer:  # noqa: S310 - lab URL
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise LabError(
                f"the lab apt repository does not answer on {url} after {timeout:.0f} s; "
                f"its last output:\n{tail(REPO_LOG)}"
            )
        time.sleep(0.2)


def wait_for_kamailio(hosts: list[HostState], step: Step) -> None:
    """Wait until Kamailio on every kamailio host answers a SIP OPTIONS on UDP 5060."""
    deadline = time.monotonic() + SIP_TIMEOUT
    for host in hosts:
        while True:
            answer = sip_options(host.address, timeout=1.0)
            if answer is not None and answer.startswith("SIP/2.0 "):
                step(f"{host.name}: Kamailio answers SIP OPTIONS ({answer})")
                break
            if time.monotonic() > deadline:
                raise LabError(
                    f"Kamailio on {host.name} ({host.address}) does not answer SIP OPTIONS on "
                    f"UDP 5060 after {SIP_TIMEOUT:.0f} s; check `systemctl status kamailio` "
                    "on the host"
                )
