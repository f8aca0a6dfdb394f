"""Counting SSH sessions on lab hosts from sshd's journal (one place for every test that
checks that work shares a session)."""

from __future__ import annotations

import shlex

from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory
from vcops.inventory.models import Server


def sshd_logins(lab: Inventory, host: Server, user: str) -> list[float]:
    """When ``user`` logged in over SSH on the host (epoch seconds, one per session, from
    sshd's journal), oldest first. Read through the lab inventory's own login (``vcops``,
    root through sudo), which is itself a session: count that login's sessions between
    two known moments, not in total."""
    pattern = shlex.quote(f"Accepted publickey for {user} ")
    out = run_one(
        SshTarget.from_inventory(lab, host),
        f"journalctl -q --no-pager -o short-unix _COMM=sshd | grep -F {pattern} || true\n",
        timeout=120,
    ).stdout
    return [float(line.split(" ", 1)[0]) for line in out.splitlines() if line.strip()]
