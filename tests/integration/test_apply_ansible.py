"""`vcops apply --engine ansible` (deploys/site.yml and the vcops_* roles) on real lab hosts.

It hardens lab-sbc-01 (common areas + Kamailio, as sbc) and lab-generic-01 (common
areas) and gives them back stock afterwards (``vcops lab reset``), so it runs in any
order with the modules that expect stock hosts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.apply_helpers import (
    Hardened,
    Run,
    Stock,
    failing,
    host_status,
    inventory_copy,
    known_hosts_digest,
    run_vcops,
    ssh_as,
    target,
    vcops,
)
from tests.integration.area_proofs import AREAS, SOURCES_OFF, Case, results
from tests.integration.conftest import reset_lab_hosts
from tests.integration.ssh_helpers import sshd_logins
from vcops.connectors.ssh import run_one
from vcops.inventory import Inventory
from vcops.lab.layout import SUBNET
from vcops.lab.probe import ssh_ready
from vcops.store import open_store

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1200)]
BIN = Path(sys.executable).parent
HOSTS = "lab-sbc-01,lab-generic-01"
ADDRESSES = {"lab-sbc-01": str(SUBNET[14]), "lab-generic-01": str(SUBNET[16])}
ROOT_KNOWN_HOSTS = Path("~/.ssh/known_hosts").expanduser()
PROOF_HOST = "lab-generic-01"  # the area proofs' host
GEX_HOST = "lab-sbc-01"


@pytest.fixture(scope="module", autouse=True)
def _stock_afterwards(lab: Inventory) -> Iterator[None]:
    yield
    reset_lab_hosts(HOSTS.split(","))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("apply-ansible") / "vcops.db"


@pytest.fixture(scope="module")
def stock(lab: Inventory, db: Path) -> Stock:
    """The stock hosts: a scan, ``apply --engine ansible --check`` and sshd_config's hash
    around it."""
    sshd = "sha256sum /etc/ssh/sshd_config\n"
    before = run_one(target(lab, "lab-generic-01"), sshd).stdout
    scan = run_vcops(lab, db, "scan", "--limit", HOSTS)
    check = run_vcops(lab, db, "apply", "--engine", "ansible", "--check", "--limit", HOSTS)
    after = run_one(target(lab, "lab-generic-01"), sshd).stdout
    return Stock(scan, check, (before, after))


@pytest.fixture(scope="module")
def hardened(lab: Inventory, db: Path, stock: Stock) -> Hardened:
    """The first Ansible apply (after the stock checks), then a scan. Before it, the
    proof host's apt sources lose the security suite and the mirror, and it is scanned
    (Ansible's check mode would refuse packages no source offers, so not before that)."""
    run_one(target(lab, PROOF_HOST), SOURCES_OFF)
    sources = run_vcops(lab, db, "scan", "--limit", PROOF_HOST)
    known_before = known_hosts_digest()
    apply = run_vcops(lab, db, "apply", "--engine", "ansible", "--limit", HOSTS)
    known_after = known_hosts_digest()
    scan = run_vcops(lab, db, "scan", "--limit", HOSTS)
    return Hardened(apply, scan, (known_before, known_after), sources)


@pytest.fixture(scope="module")
def second(lab: Inventory, db: Path, hardened: Hardened) -> dict[str, Run]:
    """A second Ansible apply on the hardened hosts, then the pyinfra engine's check."""
    return {
        "apply": run_vcops(lab, db, "apply", "--engine", "ansible", "--limit", HOSTS),
        "check": run_vcops(lab, db, "apply", "--check", "--limit", HOSTS),
    }


def test_stock_hosts_show_drift_and_ansible_check_changes_nothing(stock: Stock) -> None:
    assert stock.scan.code == 1, stock.scan.err
    assert {"VC-SSH-001", "VC-NFT-001", "VC-F2B-001", "VC-KAM-001"} <= {
        f["control_id"]
        for f in stock.scan.data["open"]  # type: ignore[attr-defined]
    }
    check = stock.check
    assert check.code == 0, (check.data, check.err)
    hosts = host_status(check.data)
    assert {h["status"] for h in hosts.values()} == {"changed"}
    generic = hosts["lab-generic-01"]
    diffs = {f["path"]: f["diff"] for f in generic["files"]}  # type: ignore[union-attr, index]
    sshd = next(d for task, d in diffs.items() if "sshd_config" in task)
    assert "+PasswordAuthentication no" in sshd
    before, after = stock.sshd
    assert after == before  # --check changed nothing


def test_ansible_apply_hardens_and_a_scan_is_clean(db: Path, hardened: Hardened) -> None:
    apply, scan = hardened.apply, hardened.scan
    assert apply.code == 0, (apply.data, apply.err[-3000:])
    assert {h["status"] for h in host_status(apply.data).values()} == {"changed"}
    known_before, known_after = hardened.known
    assert known_after == known_before  # root's own known_hosts untouched
    assert failing(scan.data) == []
    assert scan.code == 0, scan.data["open"]
    audit = open_store(f"sqlite:///{db}").audit_entries(action="apply.*")
    assert audit[0].action == "apply.start" and audit[0].detail["engine"] == "ansible"
    assert audit[-1].action == "apply.end"
    assert {e.target for e in audit if e.action == "apply.host"} >= set(HOSTS.split(","))
    print(f"\nfirst ansible apply on 2 hosts: {apply.seconds} s")


def test_a_second_ansible_apply_changes_nothing(second: dict[str, Run]) -> None:
    apply, check = second["apply"], second["check"]
    assert apply.code == 0, apply.err
    assert {h["status"] for h in host_status(apply.data).values()} == {"unchanged"}, apply.data
    # the other engine agrees: nothing left to change
    assert {h["status"] for h in host_status(check.data).values()} == {"unchanged"}, check.data
    print(f"\nsecond ansible apply on 2 hosts: {apply.seconds} s")


def test_ssh_and_the_services_still_work_after_hardening(
    lab: Inventory, hardened: Hardened
) -> None:
    for name, address in ADDRESSES.items():
        assert ssh_ready(address), name
        out = run_one(
            target(lab, name),
            "systemctl is-active ssh fail2ban; nft list tables | grep -c 'inet vcops'; "
            "fail2ban-client status | sed -n 's/.*Jail list:[[:space:]]*//p'\n",
        )
        jails = "kamailio, sshd" if name == "lab-sbc-01" else "sshd"
        assert out.stdout.splitlines() == ["active", "active", "1", jails], (name, out.stdout)


def test_after_the_baseline_root_is_refused_and_vcops_manages_through_sudo(
    lab: Inventory, hardened: Hardened
) -> None:
    """The lab logs in as vcops: the Ansible baseline alone turns root's SSH login off
    and keeps key login and sudo for the management user (the scan above ran through it)."""
    for name, address in ADDRESSES.items():
        refused = ssh_as(lab.root, address, "root", "true")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr, name
        managed = ssh_as(lab.root, address, "vcops", "sudo -n id -un")
        assert managed.returncode == 0 and managed.stdout.strip() == "root", (name, managed)


@pytest.mark.parametrize("strategy", ["mitogen", "linear"])
def test_a_forged_host_key_stops_the_ansible_engine_before_it_logs_in(
    lab: Inventory, db: Path, tmp_path: Path, second: dict[str, Run], strategy: str
) -> None:
    """A man in the middle: lab-generic-01's address pinned to lab-sbc-01's host key.
    With either strategy the engine refuses the host, never logs in to it and reports it
    unreachable (the play's controller-only first tasks do not count as reaching it)."""
    forged = inventory_copy(lab, tmp_path, "lab-generic-01", {})
    doc = yaml.safe_load((forged / "lab.yml").read_text())
    doc["settings"]["ansible"] = {"strategy": strategy}
    (forged / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    known = (forged / "known_hosts").read_text().splitlines()
    sbc_key = next(k.split(None, 1)[1] for k in known if k.split()[0] == ADDRESSES["lab-sbc-01"])
    kept = [k for k in known if k.split()[0] != ADDRESSES["lab-generic-01"]]
    (forged / "known_hosts").write_text(
        "\n".join([*kept, f"{ADDRESSES['lab-generic-01']} {sbc_key}"]) + "\n"
    )
    host = next(s for s in lab.servers if s.name == "lab-generic-01")
    started = time.time()
    code, report, err = vcops(
        forged, db, "apply", "--engine", "ansible", "--limit", "lab-generic-01"
    )
    assert code == 3, (report, err)  # unreachable, as a scan or the pyinfra engine says
    status = host_status(report)["lab-generic-01"]
    assert status["status"] == "unreachable", status
    assert "host key" in str(status["reason"]).lower() or "HOST IDENTIFICATION" in str(
        status["reason"]
    ), status
    user = target(lab, "lab-generic-01").user
    logins = [t for t in sshd_logins(lab, host, user) if t >= started]
    assert len(logins) == 1, logins  # only the reading of the journal itself


def test_a_config_failing_validation_is_not_installed(
    lab: Inventory, db: Path, tmp_path: Path, second: dict[str, Run]
) -> None:
    broken = inventory_copy(
        lab, tmp_path, "lab-generic-01", {"vars": {"baseline_ssh_ciphers": ["not-a-cipher"]}}
    )
    cmd = "sha256sum /etc/ssh/sshd_config\n"
    before = run_one(target(lab, "lab-generic-01"), cmd).stdout
    code, report, err = vcops(
        broken, db, "apply", "--engine", "ansible", "--limit", "lab-generic-01"
    )
    assert code == 1, err
    host = host_status(report)["lab-generic-01"]
    assert host["status"] == "failed"
    assert "sshd_config" in str(host["reason"]) and "validate" in str(host["reason"]).lower()
    after = run_one(target(lab, "lab-generic-01"), cmd + "systemctl is-active ssh\n")
    assert after.stdout.splitlines() == [before.strip(), "active"]
    assert ssh_ready(ADDRESSES["lab-generic-01"])


def test_production_is_refused_without_an_emergency_reason(
    lab: Inventory, db: Path, tmp_path: Path, second: dict[str, Run]
) -> None:
    prod = inventory_copy(lab, tmp_path, "lab-generic-01", {"environment": "production"})
    code, _report, err = vcops(
        prod, db, "apply", "--engine", "ansible", "--limit", "lab-generic-01"
    )
    assert code == 1 and "--emergency" in err and "\n" not in json.loads(err)["error"]
    code, report, err = vcops(
        prod, db, "apply", "--engine", "ansible", "--limit", "lab-generic-01",
        "--emergency", "INC-7 toll fraud",
    )  # fmt: skip
    assert code == 0, err
    assert host_status(report)["lab-generic-01"]["status"] == "unchanged"
    start = open_store(f"sqlite:///{db}").audit_entries(action="apply.start")[-1]
    assert start.detail == {
        "engine": "ansible",
        "hosts": ["lab-generic-01"],
        "emergency": "INC-7 toll fraud",
    }


def test_the_firewall_role_refuses_to_cut_the_management_path(
    lab: Inventory, tmp_path: Path, second: dict[str, Run]
) -> None:
    inv = tmp_path / "inventory.yml"
    subprocess.run(
        [sys.executable, "-m", "vcops.enforce.ansible", "inventory", str(lab.root), str(inv),
         "lab-generic-01"],
        check=True, timeout=60,
    )  # fmt: skip
    before = run_one(target(lab, "lab-generic-01"), "sha256sum /etc/nftables.conf\n").stdout
    wrong = (
        '{"vcops_firewall_ssh_sources_v4": ["192.0.2.0/24"], "vcops_firewall_ssh_sources_v6": []}'
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inv), str(repo / "deploys" / "site.yml"),
         "-e", wrong],
        capture_output=True, text=True, timeout=300, check=False, cwd=str(repo),
        env={**os.environ, "ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout[-2000:]
    assert "would cut this management path" in done.stdout
    after = run_one(target(lab, "lab-generic-01"), "sha256sum /etc/nftables.conf\n").stdout
    assert after == before and ssh_ready(ADDRESSES["lab-generic-01"])


@pytest.fixture(scope="module")
def case(
    lab: Inventory, db: Path, hardened: Hardened, stock: Stock, second: dict[str, Run]
) -> Case:
    return Case(
        lab, db, "ansible", PROOF_HOST,
        stock=results(stock.scan.data, PROOF_HOST),
        sources=results(hardened.sources.data, PROOF_HOST),
        hardened=results(hardened.scan.data, PROOF_HOST),
    )  # fmt: skip


@pytest.mark.parametrize("area", AREAS, ids=[a.__name__ for a in AREAS])
def test_each_area_fails_stock_and_holds_on_the_hardened_host(
    case: Case, area: Callable[[Case], None]
) -> None:
    """tests/integration/area_proofs.py: each area's controls, files, services and logins."""
    area(case)


def test_group_exchange_kept_prunes_moduli_the_same_in_both_engines(
    lab: Inventory, tmp_path: Path, second: dict[str, Run]
) -> None:
    """An inventory that keeps DH group exchange gets /etc/ssh/moduli pruned to >= 3072
    bits by Ansible, and pyinfra's check then finds nothing to change (same bytes)."""
    kex = ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
           "diffie-hellman-group-exchange-sha256"]  # fmt: skip
    inv = inventory_copy(lab, tmp_path, GEX_HOST, {"vars": {"baseline_ssh_kex_algorithms": kex}})
    db = tmp_path / "vcops.db"
    code, report, err = vcops(inv, db, "apply", "--engine", "ansible", "--limit", GEX_HOST)
    assert code == 0, (report, err[-3000:])
    assert host_status(report)[GEX_HOST]["status"] == "changed", report
    code, scan, err = vcops(inv, db, "scan", "--limit", GEX_HOST)
    result = results(scan, GEX_HOST)["VC-SSH-010"]
    assert result["status"] == "pass" and "3072" in str(result["actual"]), result
    out = run_one(
        target(lab, GEX_HOST),
        "/usr/sbin/sshd -T | grep -c group-exchange; "
        "awk '$1 !~ /^#/ && NF >= 7 {print $5}' /etc/ssh/moduli | sort -n | head -n 1\n",
    )
    assert out.stdout.split() == ["1", "3071"], out.stdout + out.stderr
    code, check, err = vcops(inv, db, "apply", "--check", "--limit", GEX_HOST)
    assert code == 0, err
    assert host_status(check)[GEX_HOST]["status"] == "unchanged", check
