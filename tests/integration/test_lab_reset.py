"""`vcops lab reset NAME`: a changed lab host comes back stock, same address and keys."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.integration.conftest import VCOPS, reset_lab_hosts
from vcops.connectors.ssh import SshTarget, run_one
from vcops.inventory import Inventory

pytestmark = pytest.mark.lab
HOST = "lab-generic-01"
STATE = (
    "cat /etc/machine-id; sha256sum /etc/ssh/sshd_config /etc/ssh/ssh_host_ed25519_key.pub; "
    "test -e /etc/vcops-canary && echo canary; "
    "echo martians=$(cat /proc/sys/net/ipv4/conf/all/log_martians); "
    "echo nft=$(nft list ruleset 2>/dev/null | grep -c vcopstest); "
    "cat /proc/sys/kernel/random/boot_id\n"
)


def _netns(lines: list[str]) -> dict[str, str]:
    """The namespace's state from STATE's output: log_martians and the test table."""
    pairs = (line.split("=", 1) for line in lines if line.startswith(("martians=", "nft=")))
    return dict(pairs)


def _flip(lines: list[str]) -> str:
    return "1" if _netns(lines)["martians"] == "0" else "0"


def test_reset_throws_away_changes_and_keeps_identity(lab: Inventory) -> None:
    target = SshTarget.from_inventory(lab, next(s for s in lab.servers if s.name == HOST))
    before = run_one(target, STATE).stdout.splitlines()
    assert "canary" not in before
    run_one(
        target,
        "echo x > /etc/vcops-canary && echo 'MaxAuthTries 2' >> /etc/ssh/sshd_config\n"
        # what hardening changes outside the file system: the namespace's firewall and
        # net.* sysctls (a reset that kept them left "stock" hosts with a drop policy)
        "echo $((1 - $(cat /proc/sys/net/ipv4/conf/all/log_martians)))"
        " > /proc/sys/net/ipv4/conf/all/log_martians\n"
        "nft add table inet vcopstest\n",
    )
    changed = run_one(target, STATE).stdout.splitlines()
    assert "canary" in changed and changed[1] != before[1]
    assert _netns(changed) == {"martians": _flip(before), "nft": "1"}, changed
    started = time.monotonic()
    reset_lab_hosts([HOST])
    seconds = time.monotonic() - started
    # the pinned known_hosts still verify it (run_one refuses an unknown host key)
    after = run_one(target, STATE).stdout.splitlines()
    assert "canary" not in after
    assert after[:3] == before[:3]  # machine-id, stock sshd_config, the same host key
    assert _netns(after) == _netns(before) == {"martians": _flip(changed), "nft": "0"}
    assert after[-1] != before[-1]  # a new boot
    print(f"lab reset {HOST}: {seconds:.1f} s")


def test_reset_of_an_unknown_host_names_the_known_ones(lab: Inventory) -> None:
    proc = subprocess.run(
        [*VCOPS, "lab", "reset", "no-such-host"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "no lab host named no-such-host" in proc.stderr and HOST in proc.stderr
