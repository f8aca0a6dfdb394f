"""`vcops apply --engine pyinfra` on real lab hosts.

It hardens the kamailio, asterisk and freeswitch hosts and gives them back stock
afterwards (``vcops lab reset``: the other modules expect stock hosts, e.g. VC-SSH-001
open everywhere), so it runs in any order. Within the module the stock checks, the first
apply and the second are module fixtures (each depending on the one before), so its
tests pass in any order too; the tests that change a host's state more run after them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.apply_helpers import (
    Hardened,
    Run,
    Stock,
    failing,
    host_status,
    inventory_copy,
    known_hosts_digest,
    run_vcops,
    target,
    vcops,
)
from tests.integration.area_proofs import AREAS, SOURCES_OFF, Case, results
from tests.integration.conftest import reset_lab_hosts
from vcops.connectors.hosttask import run_tasks
from vcops.connectors.ssh import SshTarget, run_one
from vcops.enforce.pyinfra_run import CONDITIONAL
from vcops.facts.server import FactsTask, ServerFacts, parse_facts
from vcops.inventory import Inventory
from vcops.lab.aptrepo import REPO_URL
from vcops.lab.layout import SUBNET
from vcops.lab.probe import sip_options, ssh_ready
from vcops.store import open_store

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
BIN = Path(sys.executable).parent
HOSTS = "lab-kamailio-01,lab-asterisk-01,lab-freeswitch-01"
ROOT_KNOWN_HOSTS = Path("~/.ssh/known_hosts").expanduser()
SYSCTLS = "kernel: apply sysctls"
SERVICES = ("firewall: enable nftables", "fail2ban: running")
PROOF_HOST = "lab-asterisk-01"  # the area proofs' host: no other test here changes it


@pytest.fixture(scope="module", autouse=True)
def _stock_afterwards(lab: Inventory) -> Iterator[None]:
    yield
    reset_lab_hosts(HOSTS.split(","))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("apply") / "vcops.db"


def test_lab_hosts_install_packages_from_the_local_repository(lab: Inventory) -> None:
    """On a host of the Ansible module, given back stock at once (that module's stock
    scan must not see fail2ban, whichever module runs first)."""
    try:
        sources = run_one(target(lab, "lab-generic-01"), "cat /etc/apt/sources.list.d/*.list\n")
        assert f"deb [trusted=yes] {REPO_URL} ./" in sources.stdout
        out = run_one(
            target(lab, "lab-generic-01"),
            "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "
            "-q --no-install-recommends fail2ban >/dev/null && "
            "dpkg-query -W -f '${Status}' fail2ban\n",
            timeout=300,
        )
        assert out.stdout == "install ok installed"
    finally:
        reset_lab_hosts(["lab-generic-01"])


@pytest.fixture(scope="module")
def stock(lab: Inventory, db: Path) -> Stock:
    """The stock hosts: a scan, ``apply --check``, and sshd_config's hash around it.
    The proof host's apt sources lack the security suite and the mirror."""
    sshd = "sha256sum /etc/ssh/sshd_config\n"
    before = run_one(target(lab, "lab-kamailio-01"), sshd).stdout
    run_one(target(lab, PROOF_HOST), SOURCES_OFF)  # the patch-sources proof's set-up
    scan = run_vcops(lab, db, "scan", "--limit", HOSTS)
    check = run_vcops(lab, db, "apply", "--check", "--limit", HOSTS)
    after = run_one(target(lab, "lab-kamailio-01"), sshd).stdout
    return Stock(scan, check, (before, after))


@pytest.fixture(scope="module")
def hardened(lab: Inventory, db: Path, stock: Stock) -> Hardened:
    """The first apply (after the stock checks), then a scan; root's known_hosts around it."""
    known_before = known_hosts_digest()
    apply = run_vcops(lab, db, "apply", "--engine", "pyinfra", "--limit", HOSTS)
    known_after = known_hosts_digest()
    scan = run_vcops(lab, db, "scan", "--limit", HOSTS)
    return Hardened(apply, scan, (known_before, known_after), stock.scan)


@pytest.fixture(scope="module")
def second(lab: Inventory, db: Path, hardened: Hardened) -> dict[str, Run]:
    """A second apply on the hardened hosts, then ``apply --check``."""
    return {
        "apply": run_vcops(lab, db, "apply", "--limit", HOSTS),
        "check": run_vcops(lab, db, "apply", "--check", "--limit", HOSTS),
    }


def test_stock_hosts_show_drift_and_check_shows_diffs(stock: Stock) -> None:
    scan, check = stock.scan, stock.check
    assert scan.code == 1, scan.err
    assert {"VC-SSH-001", "VC-NFT-001", "VC-F2B-001", "VC-KAM-001", "VC-FS-002"} <= {
        f["control_id"]
        for f in scan.data["open"]  # type: ignore[attr-defined]
    }
    assert check.code == 0, check.err
    hosts = host_status(check.data)
    assert all(h["status"] == "changed" for h in hosts.values())
    kam = hosts["lab-kamailio-01"]
    diffs = {f["path"]: f["diff"] for f in kam["files"]}  # type: ignore[union-attr, index]
    assert "+PasswordAuthentication no\n" in diffs["/etc/ssh/sshd_config"]
    assert "/etc/kamailio/kamailio-local.cfg" in diffs and "fail2ban" in kam["packages"]  # type: ignore[operator]
    fs = hosts["lab-freeswitch-01"]
    es = next(f["diff"] for f in fs["files"] if f["path"].endswith("event_socket.conf.xml"))  # type: ignore[union-attr, index]
    # the live default password shows as its snapshot marker, nowhere as itself
    assert '-    <param name="password" value="<vcops:masked:hmac-sha256:' in es
    assert "ClueCon" not in json.dumps(check.data) + check.err
    assert '+    <param name="password" value="@@vcops-secret:freeswitch_event_socket@@"/>' in es
    # the check is pyinfra's own dry run: live sysctls and services, not only files
    assert SYSCTLS in kam["changes"] and set(SERVICES) & set(kam["changes"]), kam["changes"]  # type: ignore[operator, arg-type]
    before, after = stock.sshd
    assert after == before  # --check changed nothing


def test_apply_hardens_and_a_scan_is_clean(
    lab: Inventory, db: Path, stock: Stock, hardened: Hardened
) -> None:
    apply, scan, check = hardened.apply, hardened.scan, stock.check
    report = apply.data
    assert apply.code == 0, (report, apply.err)
    assert all(h["status"] == "changed" for h in host_status(report).values())
    checked = {
        name: {str(c).removesuffix(CONDITIONAL) for c in h["changes"]}  # type: ignore[attr-defined]
        for name, h in host_status(check.data).items()
    }
    for name, h in host_status(report).items():  # the check before listed every change
        assert [c for c in h["changes"] if c not in checked[name]] == [], name  # type: ignore[attr-defined]
    kam = host_status(report)["lab-kamailio-01"]["changes"]
    assert SYSCTLS in kam and set(SERVICES) & set(kam), kam  # type: ignore[operator, arg-type]
    known_before, known_after = hardened.known
    assert known_after == known_before  # root's own known_hosts untouched
    assert failing(scan.data) == []
    assert scan.code == 0, scan.data["open"]
    audit = open_store(f"sqlite:///{db}").audit_entries(action="apply.*")
    first = [e for e in audit if e.detail.get("engine") == "pyinfra"]
    assert first[0].action == "apply.start" and first[-1].action == "apply.end"
    assert {e.target for e in audit if e.action == "apply.host"} >= set(HOSTS.split(","))
    # A snapshot before and after, and the hardening shows in the snapshot diff.
    before, after = report["snapshot_before"], report["snapshot_after"]
    assert isinstance(before, str) and isinstance(after, str) and before != after
    assert after in {e.detail.get("snapshot_after") for e in audit if e.action == "apply.end"}
    code, diff, err = vcops(lab.root, db, "snapshot", "diff", "lab-kamailio-01")
    assert code == 0, err
    assert "PasswordAuthentication no" in json.dumps(diff)
    print(f"\nfirst pyinfra apply on 3 hosts: {apply.seconds} s")


def test_a_second_apply_changes_nothing(second: dict[str, Run]) -> None:
    apply, check = second["apply"], second["check"]
    assert apply.code == 0, apply.err
    assert {h["status"] for h in host_status(apply.data).values()} == {"unchanged"}
    assert {h["status"] for h in host_status(check.data).values()} == {"unchanged"}
    print(f"\nsecond pyinfra apply on 3 hosts: {apply.seconds} s")


KAMAILIO = str(SUBNET[11])
"""lab-kamailio-01's address."""


def test_kamailio_and_ssh_still_answer_after_hardening(lab: Inventory, hardened: Hardened) -> None:
    answer = sip_options(KAMAILIO, timeout=2.0)
    assert answer is not None and answer.startswith("SIP/2.0 200"), answer
    assert ssh_ready(KAMAILIO)
    out = run_one(
        target(lab, "lab-kamailio-01"),
        "systemctl is-active kamailio fail2ban; ss -Htln 'sport = :5061' | wc -l; "
        "fail2ban-client status | sed -n 's/.*Jail list:[[:space:]]*//p'\n",
    )
    assert out.stdout.split() == ["active", "active", "2", "kamailio,", "sshd"]
    secrets = run_one(target(lab, "lab-freeswitch-01"), "stat -c '%a %U' /etc/vcops/secrets/*\n")
    assert set(secrets.stdout.split("\n")[:-1]) == {"600 root"}


def _judged(run: Run) -> dict[str, list[tuple[str, str]]]:
    outcomes = run.data["outcomes"]
    return {
        o["target"]: sorted((r["control_id"], r["status"]) for r in o["results"])
        for o in outcomes  # type: ignore[attr-defined]
    }


def _needrestart(run: Run) -> dict[str, object]:
    return {o["target"]: o["needrestart"] for o in run.data["outcomes"]}  # type: ignore[attr-defined]


def test_a_repeated_scan_of_hardened_hosts_skips_needrestart_until_a_mapped_file_changes(
    lab: Inventory, db: Path, hardened: Hardened
) -> None:
    """needrestart (the baseline installs it) runs once after the apply; while nothing it
    reads changes, the next scans skip it with the same results. On the Kamailio host a
    new process, then the file that process maps replaced under it, each make it run
    again (a process outside any service: still no service to restart)."""
    names = HOSTS.split(",")
    kam = target(lab, "lab-kamailio-01")
    once = run_vcops(lab, db, "scan", "--limit", HOSTS)
    twice = run_vcops(lab, db, "scan", "--limit", HOSTS)
    assert once.code == twice.code == 0, (once.err, twice.err)
    assert _needrestart(twice) == dict.fromkeys(names, "cached"), _needrestart(once)
    assert _judged(twice) == _judged(once) == _judged(hardened.scan)
    copy = "/usr/local/sbin/nrsleeper"
    try:
        run_one(kam, f"cp /bin/sleep {copy} && (setsid {copy} 900 </dev/null >/dev/null 2>&1 &)\n")
        started = run_vcops(lab, db, "scan", "--limit", HOSTS)
        assert _needrestart(started)["lab-kamailio-01"] == "computed"
        assert _needrestart(run_vcops(lab, db, "scan", "--limit", HOSTS))["lab-kamailio-01"] == (
            "cached"
        )
        run_one(kam, f"cp {copy} {copy}.new && mv {copy}.new {copy}\n")  # a new inode
        maps = run_one(kam, f"grep -h '{copy} (deleted)' /proc/[0-9]*/maps | head -1\n").stdout
        assert maps, "the sleeper should map its replaced file"
        replaced = run_vcops(lab, db, "scan", "--limit", HOSTS)
        assert _needrestart(replaced)["lab-kamailio-01"] == "computed"
        assert _judged(replaced) == _judged(once)
    finally:
        run_one(kam, f"pkill -x nrsleeper; rm -f {copy}\n")


def _fail2ban_read(kam: SshTarget) -> tuple[str, ServerFacts]:
    """The ``fail2ban`` section's last line (the path taken) and the parsed facts."""
    run = run_tasks([kam], [FactsTask()])[0]
    assert run.status == "ok", run.error
    out = run.output("facts")
    record = out.get("fail2ban")
    assert record is not None and record.rc == 0, record
    return record.data.decode().splitlines()[-1], parse_facts(out)


def test_fail2ban_is_asked_over_its_socket_with_the_same_answers_as_fail2ban_client(
    lab: Inventory, hardened: Hardened
) -> None:
    """On a hardened host one run of fail2ban's own client classes answers `status` and
    the increments; a config naming the socket another way (the same socket, through
    /run) sends the scan back to fail2ban-client, with the same jails and answers."""
    kam = target(lab, "lab-kamailio-01")
    via, fast = _fail2ban_read(kam)
    assert via == "via socket"
    assert fast.fail2ban_jails and set(fast.fail2ban_jails) >= {"sshd", "kamailio"}
    assert fast.fail2ban_increment == dict.fromkeys(fast.fail2ban_jails, "True")
    local = "/etc/fail2ban/fail2ban.d/zz-vcops-test.local"
    try:
        run_one(kam, f"printf '[Definition]\\nsocket = /run/fail2ban/fail2ban.sock\\n' >{local}\n")
        via, slow = _fail2ban_read(kam)
        assert via == "via fail2ban-client"
        assert (slow.fail2ban_jails, slow.fail2ban_increment) == (
            fast.fail2ban_jails,
            fast.fail2ban_increment,
        )
    finally:
        run_one(kam, f"rm -f {local}\n")


def test_a_config_failing_validation_is_not_installed(
    lab: Inventory, db: Path, tmp_path: Path, second: dict[str, Run]
) -> None:
    broken = inventory_copy(
        lab, tmp_path, "lab-kamailio-01", {"vars": {"baseline_ssh_ciphers": ["not-a-cipher"]}}
    )
    before = run_one(target(lab, "lab-kamailio-01"), "sha256sum /etc/ssh/sshd_config\n").stdout
    code, report, err = vcops(broken, db, "apply", "--limit", "lab-kamailio-01")
    assert code == 1, err
    host = host_status(report)["lab-kamailio-01"]
    assert host["status"] == "failed"
    assert "/etc/ssh/sshd_config" in str(host["reason"])
    assert "failed validation, not installed" in str(host["reason"])
    after = run_one(
        target(lab, "lab-kamailio-01"),
        "sha256sum /etc/ssh/sshd_config; ls -a /etc/ssh | grep -c vcops-tmp; systemctl is-active ssh\n",
    )
    lines = after.stdout.splitlines()
    assert lines[0] == before.strip() and lines[1:] == ["0", "active"]
    assert ssh_ready(KAMAILIO)
    assert (sip_options(KAMAILIO, timeout=2.0) or "").startswith("SIP/2.0 200")


def test_production_is_refused_without_an_emergency_reason(
    lab: Inventory, db: Path, tmp_path: Path, second: dict[str, Run]
) -> None:
    prod = inventory_copy(lab, tmp_path, "lab-kamailio-01", {"environment": "production"})
    code, _report, err = vcops(prod, db, "apply", "--limit", "lab-kamailio-01")
    assert (
        code == 1
        and "production is changed only by an approved patch window" in err
        and "--emergency" in err
    )
    code, report, err = vcops(
        prod, db, "apply", "--limit", "lab-kamailio-01", "--emergency", "INC-42 SIP flood"
    )
    assert code == 0, err
    assert report["emergency"] == "INC-42 SIP flood"
    start = open_store(f"sqlite:///{db}").audit_entries(action="apply.start")[-1]
    assert start.detail["emergency"] == "INC-42 SIP flood"


@pytest.fixture(scope="module")
def case(
    lab: Inventory, db: Path, stock: Stock, hardened: Hardened, second: dict[str, Run]
) -> Case:
    planned = host_status(stock.check.data)[PROOF_HOST]["changes"]
    return Case(
        lab, db, "pyinfra", PROOF_HOST,
        stock=results(stock.scan.data, PROOF_HOST),
        sources=results(stock.scan.data, PROOF_HOST),
        hardened=results(hardened.scan.data, PROOF_HOST),
        planned={str(c).removesuffix(CONDITIONAL) for c in planned},  # type: ignore[attr-defined]
    )  # fmt: skip


@pytest.mark.parametrize("area", AREAS, ids=[a.__name__ for a in AREAS])
def test_each_area_fails_stock_and_holds_on_the_hardened_host(
    case: Case, area: Callable[[Case], None]
) -> None:
    """tests/integration/area_proofs.py: each area's controls, files, services and logins."""
    area(case)
