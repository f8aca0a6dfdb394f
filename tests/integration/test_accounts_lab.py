"""The accounts area (PAM, login.defs, root's age, TMOUT, sudo Defaults, cron/at) on real
lab hosts, one per engine: a stock host fails every accounts control, the baseline
(pyinfra on lab-generic-01, Ansible on lab-rtpengine-01) fixes them all, a second apply
changes nothing, ``visudo -c`` is clean, and the management login still works.

The lockout proof: after more failed passwords than ``deny`` for the management login
(``su vcops`` from an unprivileged user, through the common-auth stack that
pam_faillock guards), faillock holds the failures and the login's passwords are locked,
yet SSH with its key and sudo still work: sshd never runs the auth stack for a public
key. Both hosts are reset to stock afterwards.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.apply_helpers import host_status, vcops
from tests.integration.conftest import reset_lab_hosts
from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.inventory import Inventory

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1200)]
ENGINES = {"pyinfra": "lab-generic-01", "ansible": "lab-rtpengine-01"}
PREFIXES = ("VC-PAM-", "VC-ACC-", "VC-SUDO-", "VC-CRON-")
# Fails `su` as an unprivileged user in a pty, N times (the password is never right).
SU_FAIL = """
import os, pty, sys, time
def attempt(user):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv("/bin/su", ["su", user, "-c", "true"])
    seen, end = b"", time.time() + 20
    while b"assword" not in seen and b"ailure" not in seen and time.time() < end:
        try:
            seen += os.read(fd, 1024)
        except OSError:
            break
    if b"assword" in seen:
        os.write(fd, b"not-the-password\\n")
    while True:
        try:
            if not os.read(fd, 1024):
                break
        except OSError:
            break
    sys.stderr.write(repr(seen[-120:]) + "\\n")
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print([attempt(sys.argv[1]) for _ in range(int(sys.argv[2]))])
"""


@pytest.fixture(scope="module", autouse=True)
def _stock_afterwards(lab: Inventory) -> Iterator[None]:
    yield
    reset_lab_hosts(list(ENGINES.values()))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("accounts") / "vcops.db"


def _address(lab: Inventory, host: str) -> str:
    servers = yaml.safe_load((lab.root / "lab.yml").read_text())["servers"]
    return str(next(s for s in servers if s["name"] == host)["address"])


def ssh(lab: Inventory, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """SSH as the management login with its key only (what vcops itself does)."""
    return subprocess.run(
        ["ssh", "-i", str(lab.root / "lab_key"), "-o", f"UserKnownHostsFile={lab.root / 'known_hosts'}",
         "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "PreferredAuthentications=publickey", "-o", "ConnectTimeout=10",
         f"vcops@{_address(lab, host)}", command],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _accounts(scan: dict[str, object], host: str) -> dict[str, str]:
    [outcome] = [o for o in scan["outcomes"] if o["target"] == host]  # type: ignore[union-attr]
    assert outcome["status"] == "scanned", outcome
    return {
        r["control_id"]: r["status"]
        for r in outcome["results"]
        if r["control_id"].startswith(PREFIXES)
    }


@pytest.mark.parametrize("engine", list(ENGINES))
def test_stock_host_fails_apply_fixes_and_failed_passwords_never_lock_out_the_key(
    lab: Inventory, db: Path, engine: str
) -> None:
    host = ENGINES[engine]
    code, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    assert code == 1, err
    got = _accounts(scan, host)
    assert len(got) == 14 and set(got.values()) == {"fail"}, got

    start = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    first = time.monotonic() - start
    assert code == 0, (report, err)
    assert host_status(report)[host]["status"] == "changed"

    code, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    got = _accounts(scan, host)
    assert set(got.values()) == {"pass"}, (got, err)

    start = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    second = time.monotonic() - start
    assert code == 0, (report, err)
    assert host_status(report)[host]["status"] == "unchanged", host_status(report)[host]
    print(f"{engine}: first apply {first:.1f}s, second apply {second:.1f}s")

    # the PAM stack came from pam-auth-update, sudoers parse, and the management path works
    stack = ssh(lab, host, "sudo -n cat /etc/pam.d/common-auth; sudo -n visudo -c")
    assert stack.returncode == 0, stack.stderr
    assert "pam-auth-update" in stack.stdout  # the header pam-auth-update writes
    assert "pam_faillock.so authfail deny=5" in stack.stdout
    assert "/etc/sudoers.d/vcops-defaults: parsed OK" in stack.stdout
    assert "/etc/sudoers.d/vcops: parsed OK" in stack.stdout  # the ssh area's drop-in
    _prove_no_key_lockout(lab, host)


def _prove_no_key_lockout(lab: Inventory, host: str) -> None:
    """More failed passwords than ``deny`` for vcops, then its key still logs in.

    One sudo for the failures and the read-back: sudo runs the account stack for vcops,
    whose pam_faillock rule resets vcops's records (as a key login does), so a second
    sudo in between would read an empty tally."""
    deny = DEFAULT_SETTINGS.faillock_deny
    inner = (
        f"runuser -u nobody -- python3 -c {shlex.quote(SU_FAIL)} vcops {deny + 1}; "
        "faillock --user vcops"
    )
    fail = ssh(lab, host, f"sudo -n sh -c {shlex.quote(inner)}")
    assert fail.returncode == 0, fail.stderr
    assert fail.stdout.startswith("[1, 1"), (fail.stdout, fail.stderr)  # every su failed
    records = [ln for ln in fail.stdout.splitlines() if ln.rstrip().endswith(" V")]
    assert len(records) >= deny, (fail.stdout, fail.stderr)
    # the last su was refused before its password: the passwords are locked now
    assert f"locked due to {deny} failed logins" in fail.stderr, fail.stderr

    # a locked login's key still opens SSH and sudo still works
    again = ssh(lab, host, "sudo -n true && echo key-login-ok")
    assert again.returncode == 0 and "key-login-ok" in again.stdout, again.stderr
