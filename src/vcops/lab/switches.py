"""Network-switch simulators: fake-switches (Cisco IOS flavour) speaking SSH.

Each switch runs :mod:`vcops.lab.switch_server` inside its own network namespace
(``vcops-sw-NN``), listening on port 22 of its lab address. Its files live under
``/var/lib/vcops-lab/switches/<name>/``: ``switch.json`` (no secret in it: it names the
password file), its own RSA host key and ``switch.log``.

Clients log in as ``admin`` with the password from ``secrets/<name>.password``; the
enable secret is the same password (an empty one is accepted too, as fake-switches
does).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

from vcops.errors import LabError
from vcops.lab.layout import SSH_PORT, SWITCHES_DIR
from vcops.lab.plan import SwitchSpec
from vcops.lab.state import SwitchState
from vcops.lab.system import ProcessRef, run, spawn_detached, tail, write_file

SERVER_SCRIPT = Path(__file__).with_name("switch_server.py")
"""Run as a script with ``python -P`` (the script's directory must not shadow modules)."""
FAKE_SWITCHES_FIX = (
    "pip install 'vcops[lab]' && pip install --no-deps 'fake-switches==1.5.0' "
    "(or lab up --switches 0)"
)


def fake_switches_available() -> bool:
    """Whether the fake-switches package can be imported by this Python."""
    return importlib.util.find_spec("fake_switches") is not None


def new_switch_state(spec: SwitchSpec) -> SwitchState:
    """Where ``spec``'s files go; nothing is created yet."""
    return SwitchState(
        name=spec.name,
        address=str(spec.address),
        platform=spec.platform,
        transport=spec.transport,
        netns=spec.netns,
        veth=spec.veth,
        log=SWITCHES_DIR / spec.name / "switch.log",
    )


def switch_dir(switch: SwitchState) -> Path:
    """The switch's own directory under the lab state."""
    return SWITCHES_DIR / switch.name


def generate_switch_key(switch: SwitchState) -> None:
    """Generate the switch's own RSA host key (fake-switches serves ``ssh-rsa`` only).

    Raises:
        LabError: ssh-keygen failed.
    """
    directory = switch_dir(switch)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    host_key = directory / "ssh_host_rsa_key"
    for old in (host_key, host_key.with_name(host_key.name + ".pub")):
        old.unlink(missing_ok=True)
    run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-m",
            "PEM",
            "-N",
            "",
            "-C",
            f"admin@{switch.name}",
            "-f",
            str(host_key),
        ],
        what=f"generate the SSH host key of {switch.name}",
        fix="apt-get install openssh-client",
    )


def start_switch(switch: SwitchState, spec: SwitchSpec, password_file: Path) -> ProcessRef:
    """Write the switch's config, then start it detached in its namespace.

    Its host key must exist (:func:`generate_switch_key`).

    Raises:
        LabError: the process cannot start.
    """
    directory = switch_dir(switch)
    config = {
        "hostname": switch.name,
        "model": spec.model,
        "username": spec.username,
        "password_file": str(password_file),
        "host_key": str(directory / "ssh_host_rsa_key"),
        "listen_host": "0.0.0.0",  # noqa: S104 - inside the switch's own namespace
        "port": SSH_PORT,
    }
    config_file = directory / "switch.json"
    write_file(config_file, json.dumps(config, indent=2) + "\n", 0o600)
    return spawn_detached(_argv(switch), log=switch.log)


def _argv(switch: SwitchState) -> list[str]:
    return [
        "ip",
        "netns",
        "exec",
        switch.netns,
        sys.executable,
        "-P",
        str(SERVER_SCRIPT),
        "--config",
        str(switch_dir(switch) / "switch.json"),
    ]


def restart_switch(name: str, timeout: float = 30.0) -> None:
    """Restart one running switch of the lab, back to its stock config (the hardening a
    test pushed lives in the simulator's memory only); the lab state follows.

    Raises:
        LabError: no lab, no such switch, or it does not come back.
    """
    from vcops.lab.probe import ssh_ready
    from vcops.lab.state import load_state, save_state
    from vcops.lab.system import is_same_process

    state = load_state()
    switch = next((s for s in state.switches if s.name == name), None) if state else None
    if state is None or switch is None:
        raise LabError(f"no running lab switch named {name}")
    old = switch.process
    if old is not None and is_same_process(old):
        os.kill(old.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_same_process(old) and time.monotonic() < deadline:
            time.sleep(0.1)
    switch.process = spawn_detached(_argv(switch), log=switch.log)
    save_state(state)
    deadline = time.monotonic() + timeout
    while not ssh_ready(switch.address, timeout=1.0):
        if time.monotonic() > deadline:
            raise LabError(f"switch {name} did not come back; its last output:\n{tail(switch.log)}")
        time.sleep(0.2)


def host_key_of(switch: SwitchState) -> str:
    """The switch's public host key as generated (``ssh-rsa AAAA...``)."""
    pub = switch_dir(switch) / "ssh_host_rsa_key.pub"
    return " ".join(pub.read_text().split()[:2])


def scan_host_key(switch: SwitchState) -> str:
    """Fetch the host key the running switch presents, from inside its namespace.

    Returns:
        ``ssh-rsa AAAA...`` as offered over SSH.

    Raises:
        LabError: ssh-keyscan got no key, or a key other than the one generated for it.
    """
    out = run(
        [
            "ip",
            "netns",
            "exec",
            switch.netns,
            "ssh-keyscan",
            "-T",
            "5",
            "-t",
            "rsa",
            "-p",
            str(SSH_PORT),
            "127.0.0.1",
        ],
        what=f"read the SSH host key of switch {switch.name}",
        fix="apt-get install openssh-client",
    )
    keys = [
        " ".join(line.split()[1:3])
        for line in out.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if not keys:
        raise LabError(
            f"switch {switch.name} offered no SSH host key; its last output:\n{tail(switch.log)}"
        )
    if keys[0] != host_key_of(switch):
        raise LabError(
            f"switch {switch.name} offers a host key other than the one generated for it; "
            "is another SSH server answering on its address?"
        )
    return keys[0]
