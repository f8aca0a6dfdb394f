"""Counting SSH connections and host scripts on lab hosts from their journal (one place
for every test that checks that work shares a connection or a session)."""

from __future__ import annotations

import shlex

from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory
from vcops.inventory.models import Server


def _journal_lines(lab: Inventory, host: Server, match: str, text: str) -> list[str]:
    """The host's journal lines of ``match`` holding ``text`` (short-unix: each starts
    with its epoch seconds), oldest first."""
    out = run_one(
        SshTarget.from_inventory(lab, host),
        f"journalctl -q --no-pager -o short-unix {match} | grep -F {shlex.quote(text)} || true\n",
        timeout=120,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def _stamp(line: str) -> float:
    return float(line.split(" ", 1)[0])


def _journal_times(lab: Inventory, host: Server, match: str, *texts: str) -> list[float]:
    """When the host's journal lines of ``match`` holding every one of ``texts`` were
    written (epoch seconds), oldest first."""
    lines = _journal_lines(lab, host, match, texts[0])
    return [_stamp(line) for line in lines if all(t in line for t in texts)]


def sudo_scripts(lab: Inventory, host: Server, user: str) -> list[float]:
    """When ``user`` ran a host script as root through sudo (sudo's own log line of its
    command, ``/bin/sh -s``), oldest first; the reading itself is one more, afterwards."""
    return _journal_times(lab, host, "_COMM=sudo", f" {user} : ", "COMMAND=/bin/sh -s")


def sudo_other_commands(lab: Inventory, host: Server, user: str) -> list[float]:
    """When ``user`` ran, through sudo, anything but a vcops host script (``/bin/sh -s``):
    an engine's own commands, e.g. Ansible's per-task ``/bin/sh -c`` or Mitogen's one
    Python interpreter; oldest first."""
    lines = _journal_lines(lab, host, "_COMM=sudo", f" {user} : ")
    return [
        _stamp(line)
        for line in lines
        if " COMMAND=" in line and not line.rstrip().endswith("COMMAND=/bin/sh -s")
    ]


def sshd_logins(lab: Inventory, host: Server, user: str) -> list[float]:
    """When ``user`` logged in over SSH on the host (epoch seconds, one per session, from
    sshd's journal), oldest first. Read through the lab inventory's own login (``vcops``,
    root through sudo), which is itself a session: count that login's sessions between
    two known moments, not in total."""
    return _journal_times(lab, host, "_COMM=sshd", f"Accepted publickey for {user} ")
