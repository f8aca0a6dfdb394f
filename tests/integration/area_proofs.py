"""What each hardening area must show on a host the apply modules harden.

``test_apply_pyinfra`` and ``test_apply_ansible`` harden stock hosts once per module
(their ``stock``/``hardened``/``second`` fixtures); each calls every proof here for one
of its hosts instead of a module per area hardening stock hosts again. A proof reads
the stock scan (the area's controls fail), the scan after the first apply (they pass,
the second apply changed nothing: the module's own test) and the host itself (files,
services, validators, the management login). Proofs that change the host put it back,
or change only what no other test reads.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.apply_helpers import host_status, run_vcops, ssh_as, target
from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.connectors.ssh import run_one
from vcops.facts.aptsources import OWN_FILE
from vcops.inventory import Inventory
from vcops.lab.aptrepo import REPO_URL

Results = dict[str, dict[str, str]]
# The lab's own repository (the inventory's mirror) moved out of sources.list.d.
SOURCES_OFF = "mv /etc/apt/sources.list.d/vcops-lab.list /etc/apt/vcops-lab.list.off\n"
SOURCES_REASON = f"apt sources lack bookworm-security, bookworm-updates and the mirror {REPO_URL}"


def results(scan: dict[str, object], host: str) -> Results:
    """One host's results by control id (the host must have been scanned)."""
    [outcome] = [o for o in scan["outcomes"] if o["target"] == host]  # type: ignore[attr-defined]
    assert outcome["status"] == "scanned", outcome
    return {r["control_id"]: r for r in outcome["results"]}


@dataclass
class Case:
    """One hardened host of an apply module and what the module saw of it."""

    lab: Inventory
    db: Path
    engine: str
    host: str
    stock: Results  # the stock scan
    sources: Results  # the scan just before the first apply, its apt sources moved away
    hardened: Results  # the scan after the first apply
    planned: set[str] = field(default_factory=set)  # pyinfra's check: changes it listed
    figures: dict[str, object] = field(default_factory=dict)

    def address(self) -> str:
        return next(s.address for s in self.lab.servers if s.name == self.host)

    def run(self, command: str, timeout: float = 120) -> str:
        return run_one(target(self.lab, self.host), command, timeout=timeout).stdout

    def ssh(self, command: str, *options: str) -> subprocess.CompletedProcess[str]:
        """SSH as the management login with its key only, strict against the pin."""
        key_only = ("-o", "PreferredAuthentications=publickey")
        return ssh_as(self.lab.root, self.address(), "vcops", command, *key_only, *options)


def _statuses(got: Results, controls: list[str] | set[str]) -> dict[str, str]:
    return {c: got[c]["status"] for c in controls}


# -- kernel: sysctl sets, module blacklist, core dumps, process accounting ----------------

KERNEL = ["VC-KRN-004", "VC-KRN-005", "VC-KRN-006", "VC-MOD-001", "VC-CORE-001",
          "VC-CORE-002", "VC-ACCT-001"]  # fmt: skip
KERNEL_PROOF = (
    "cat /proc/sys/net/ipv4/conf/all/arp_ignore /proc/sys/net/ipv6/conf/all/autoconf; "
    "grep -c '^install .* /bin/false$' /etc/modprobe.d/vcops-blacklist.conf; "
    "grep -c '^blacklist sctp$' /etc/modprobe.d/vcops-blacklist.conf; "
    "grep -c '^root  hard  core  0$' /etc/security/limits.d/90-vcops-coredump.conf; "
    "systemctl is-enabled acct sysstat; systemctl is-active sysstat; "
    "sed -n 's/^ENABLED=//p' /etc/default/sysstat\n"
)


def kernel(case: Case) -> None:
    assert _statuses(case.stock, KERNEL) == dict.fromkeys(KERNEL, "fail")
    assert _statuses(case.hardened, KERNEL) == {
        **dict.fromkeys(KERNEL, "pass"),
        "VC-KRN-006": "not_applicable",  # the file is right; live is the container host's
    }
    assert "container" in case.hardened["VC-KRN-006"]["detail"]
    out = case.run(KERNEL_PROOF).split()
    assert out == ["1", "0", "14", "1", "1", "enabled", "enabled", "active", '"true"'], out


# -- access: host keys, session limits, banners, fail2ban escalation -----------------------

ACCESS = ["VC-SSH-009", "VC-SSH-010", "VC-SSH-011", "VC-SSH-012", "VC-SSH-013", "VC-SSH-015",
          "VC-F2B-002"]  # fmt: skip


def access(case: Case) -> None:
    assert _statuses(case.stock, ACCESS) == dict.fromkeys(ACCESS, "fail")
    assert case.stock["VC-SSH-014"]["status"] == "pass"  # OpenSSH 9.2 offers sntrup761 first
    mine = [*ACCESS, "VC-SSH-014"]
    assert _statuses(case.hardened, mine) == dict.fromkeys(mine, "pass")
    login = case.ssh("sudo -n true")  # management SSH through sudo, strict host key
    assert login.returncode == 0, login.stderr
    # sshd no longer offers ECDSA at all (before, only the ed25519 pin stopped it)
    ecdsa = case.ssh("sudo -n true", "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256")
    assert ecdsa.returncode == 255 and "no matching host key type" in ecdsa.stderr, ecdsa.stderr
    out = case.run(
        "/usr/sbin/sshd -t && echo sshd-t-clean; cat /etc/issue.net; "
        "fail2ban-client get sshd bantime.increment\n"
    )
    assert out.splitlines() == ["sshd-t-clean", DEFAULT_SETTINGS.banner_text, "True"], out


# -- accounts: PAM, login.defs, root's age, TMOUT, sudo Defaults, cron/at ------------------

ACCOUNT_PREFIXES = ("VC-PAM-", "VC-ACC-", "VC-SUDO-", "VC-CRON-")
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


def accounts(case: Case) -> None:
    """Every accounts control fails stock and passes hardened; the PAM stack came from
    pam-auth-update, sudoers parse; and failed passwords never lock out the key.

    The lockout proof: more failed passwords than ``deny`` for the management login
    (``su vcops`` from an unprivileged user, through the common-auth stack pam_faillock
    guards) lock its passwords, yet SSH with its key and sudo still work (sshd never runs
    the auth stack for a public key). The key login resets the tally again."""
    mine = {c for c in case.stock if c.startswith(ACCOUNT_PREFIXES)}
    assert len(mine) == 14
    assert _statuses(case.stock, mine) == dict.fromkeys(mine, "fail")
    assert _statuses(case.hardened, mine) == dict.fromkeys(mine, "pass")
    stack = case.ssh("sudo -n cat /etc/pam.d/common-auth; sudo -n visudo -c")
    assert stack.returncode == 0, stack.stderr
    assert "pam-auth-update" in stack.stdout  # the header pam-auth-update writes
    assert "pam_faillock.so authfail deny=5" in stack.stdout
    assert "/etc/sudoers.d/vcops-defaults: parsed OK" in stack.stdout
    assert "/etc/sudoers.d/vcops: parsed OK" in stack.stdout  # the ssh area's drop-in

    # One sudo for the failures and the read-back: sudo runs the account stack for vcops,
    # whose pam_faillock rule resets vcops's records (as a key login does).
    deny = DEFAULT_SETTINGS.faillock_deny
    inner = (
        f"runuser -u nobody -- python3 -c {shlex.quote(SU_FAIL)} vcops {deny + 1}; "
        "faillock --user vcops"
    )
    fail = case.ssh(f"sudo -n sh -c {shlex.quote(inner)}")
    assert fail.returncode == 0, fail.stderr
    assert fail.stdout.startswith("[1, 1"), (fail.stdout, fail.stderr)  # every su failed
    records = [ln for ln in fail.stdout.splitlines() if ln.rstrip().endswith(" V")]
    assert len(records) >= deny, (fail.stdout, fail.stderr)
    # the last su was refused before its password: the passwords are locked now
    assert f"locked due to {deny} failed logins" in fail.stderr, fail.stderr
    again = case.ssh("sudo -n true && echo key-login-ok")
    assert again.returncode == 0 and "key-login-ok" in again.stdout, again.stderr


# -- integrity and logging: AIDE, debsums, rsyslog, journald, audit rule groups ------------

INTEGRITY = ["VC-AUD-003", "VC-AIDE-001", "VC-AIDE-002", "VC-AIDE-003", "VC-LOG-001",
             "VC-LOG-002", "VC-LOG-003"]  # fmt: skip
# What one AIDE run costs on the host: wall seconds, CPU seconds (user + sys of the child).
MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'rc': p.returncode, 'wall': round(time.monotonic() - t, 2),\n"
    "    'cpu': round(u.ru_utime + u.ru_stime, 2), 'out': p.stdout[:1500]}))\n"
)


def _measure(case: Case, *argv: str) -> dict[str, object]:
    out = case.run(f"sudo -n {shlex.join(['python3', '-c', MEASURE, *argv])}\n", timeout=600)
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def integrity(case: Case) -> None:
    """The area's controls fail stock and pass hardened; the daily AIDE check then runs
    clean, rsyslog accepts its config, the journal is on disk; what ``aide --init`` and
    ``--check`` cost (printed). With pyinfra, its dry run listed the database build, and
    an apply that changes the host logs what the rebuild takes in before absorbing it."""
    assert _statuses(case.stock, INTEGRITY) == dict.fromkeys(INTEGRITY, "fail")
    assert _statuses(case.hardened, INTEGRITY) == dict.fromkeys(INTEGRITY, "pass")
    assert "first check is due" in case.hardened["VC-AIDE-003"]["actual"]
    if case.engine == "pyinfra":
        assert "integrity: build the AIDE database" in case.planned, case.planned
    proof = case.run(
        "sudo -n systemctl start vcops-aide-check.service; echo $?; "
        "sudo -n sed -n 2p /var/log/aide/vcops-check.log; "
        "sudo -n rsyslogd -N1 >/dev/null 2>&1; echo $?; "
        "test -d /var/log/journal && echo persistent; "
        "systemctl is-enabled vcops-aide-check.timer rsyslog\n",
        timeout=600,
    )
    lines = proof.splitlines()
    assert lines[0] == "0" and "found NO differences" in lines[1], proof
    assert lines[2:] == ["0", "persistent", "enabled", "enabled"], proof
    scan = run_vcops(case.lab, case.db, "scan", "--limit", case.host)
    report = results(scan.data, case.host)["VC-AIDE-003"]
    assert report["status"] == "pass" and "no changes" in report["actual"], report

    init = _measure(case, "aide", "--config=/etc/aide/vcops.conf", "--init")
    check = _measure(case, "aide", "--config=/etc/aide/vcops.conf", "--check")
    assert init["rc"] == 0 and check["rc"] == 0, (init, check)
    case.run("sudo -n rm -f /var/lib/aide/vcops.db.new\n")
    entries = [ln for ln in str(check["out"]).splitlines() if "entries" in ln][:1]
    case.figures |= {"aide --init": init["wall"], "aide --check": check["wall"], "n": entries}
    if case.engine == "pyinfra":
        # What the rebuild takes in (a file nobody manages, beside the banner vcops puts
        # back) is kept in the rebuild log first, never silently absorbed.
        case.run(
            "sudo -n sh -c 'echo probe | tee /etc/probe-written-by-hand /etc/vcops-by-hand "
            "/etc/vcops/by-hand >/dev/null; echo edited >> /etc/issue.net'\n"
        )
        apply = run_vcops(case.lab, case.db, "apply", "--engine", "pyinfra", "--limit", case.host)
        assert apply.code == 0, apply.err[-2000:]
        assert host_status(apply.data)[case.host]["status"] == "changed"
        log = case.run(
            "sudo -n cat /var/log/aide/vcops-rebuilds.log; "
            "sudo -n rm -f /etc/probe-written-by-hand /etc/vcops-by-hand /etc/vcops/by-hand\n"
        )
        assert "rebuild (" in log and "/etc/probe-written-by-hand" in log, log[-3000:]
        # /etc/vcops's contents are never watched; a name beside it is
        assert "/etc/vcops-by-hand" in log and "/etc/vcops/by-hand" not in log, log[-3000:]
    print(f"\n{case.engine} on {case.host}, AIDE: {case.figures}")


# -- 3.2.2 patch sources ---------------------------------------------------------------------


def patch_sources(case: Case) -> None:
    """With the lab's repository (the inventory's mirror) moved out of sources.list.d,
    VC-PATCH-002/005 fail with the reason; the apply added the security suite before any
    install, and every patch control passes."""
    for control in ("VC-PATCH-002", "VC-PATCH-005"):
        assert case.sources[control]["status"] == "fail", case.sources[control]
        assert SOURCES_REASON in case.sources[control]["actual"], case.sources[control]
    assert case.sources["VC-PATCH-007"]["status"] == "fail"  # needrestart not installed yet
    patch = ["VC-PATCH-001", "VC-PATCH-002", "VC-PATCH-005", "VC-PATCH-006", "VC-PATCH-007",
             "VC-PATCH-008"]  # fmt: skip
    assert _statuses(case.hardened, patch) == dict.fromkeys(patch, "pass")
    sources = case.run(f"cat {OWN_FILE}\n")
    assert f"URIs: {REPO_URL}\nSuites: ./\nTrusted: yes\n" in sources, sources


AREAS: list[Callable[[Case], None]] = [kernel, access, accounts, integrity, patch_sources]
