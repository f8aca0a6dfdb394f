"""SSH host keys, session limits, banners and fail2ban escalation on real lab hosts, one
host per engine: a stock host fails VC-SSH-009..013/015 and VC-F2B-002, the apply fixes
them (sshd_config validated with ``sshd -t``), a second apply changes nothing, and vcops
still logs in as ``vcops`` through sudo with strict host-key checking against the
pinned ed25519 key, while the ECDSA key is no longer offered. Hosts are reset to stock.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.apply_helpers import host_status, inventory_copy, target, vcops
from tests.integration.conftest import reset_lab_hosts
from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.connectors.ssh import run_one
from vcops.inventory import Inventory

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
ENGINES = {"pyinfra": "lab-rtpengine-01", "ansible": "lab-generic-01"}
DRIFT = ["VC-SSH-009", "VC-SSH-010", "VC-SSH-011", "VC-SSH-012", "VC-SSH-013", "VC-SSH-015",
         "VC-F2B-002"]  # fmt: skip
GEX_HOST = "lab-sbc-01"
MINE = [*DRIFT, "VC-SSH-014"]  # OpenSSH 9.2 already offers sntrup761 first: passes stock


@pytest.fixture(scope="module", autouse=True)
def _stock_afterwards(lab: Inventory) -> Iterator[None]:
    yield
    reset_lab_hosts([*ENGINES.values(), GEX_HOST])


def _results(scan: dict[str, object], host: str) -> dict[str, dict[str, object]]:
    [outcome] = [o for o in scan["outcomes"] if o["target"] == host]  # type: ignore[attr-defined]
    assert outcome["status"] == "scanned", outcome
    return {r["control_id"]: r for r in outcome["results"]}


def _ssh(lab: Inventory, host: str, *options: str) -> subprocess.CompletedProcess[str]:
    """``ssh vcops@host sudo -n true`` with strict checking against the pinned keys."""
    address = next(s.address for s in lab.servers if s.name == host)
    return subprocess.run(
        ["ssh", "-i", str(lab.root / "lab_key"), "-o", f"UserKnownHostsFile={lab.root / 'known_hosts'}",
         "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=10", *options, f"vcops@{address}", "sudo -n true"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("engine", list(ENGINES))
def test_stock_host_fails_then_apply_fixes_and_vcops_still_gets_in(
    lab: Inventory, engine: str, tmp_path: Path
) -> None:
    host, db = ENGINES[engine], tmp_path / "vcops.db"
    code, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    before = _results(scan, host)
    assert {c: before[c]["status"] for c in DRIFT} == dict.fromkeys(DRIFT, "fail"), err
    assert before["VC-SSH-014"]["status"] == "pass"
    assert _ssh(lab, host, "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256").returncode != 0
    # (the pin is ed25519 only: an ECDSA key, even offered, cannot be verified)

    started = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    first = round(time.monotonic() - started, 1)
    assert code == 0, (report, err[-3000:])
    assert host_status(report)[host]["status"] == "changed"

    code, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    after = _results(scan, host)
    assert {c: after[c]["status"] for c in MINE} == dict.fromkeys(MINE, "pass"), {
        c: after[c]["actual"] for c in MINE
    }

    started = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    second = round(time.monotonic() - started, 1)
    assert code == 0, err
    assert host_status(report)[host]["status"] == "unchanged", report

    # management SSH through sudo, strict host-key checking against the pinned key
    login = _ssh(lab, host)
    assert login.returncode == 0, login.stderr
    # sshd no longer offers ECDSA at all (before, only the pin stopped it)
    ecdsa = _ssh(lab, host, "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256")
    assert ecdsa.returncode == 255 and "no matching host key type" in ecdsa.stderr, ecdsa.stderr
    out = run_one(
        target(lab, host),
        "/usr/sbin/sshd -t && echo sshd-t-clean; cat /etc/issue.net; "
        "fail2ban-client get sshd bantime.increment\n",
    )
    assert out.stdout.splitlines() == [
        "sshd-t-clean",
        DEFAULT_SETTINGS.banner_text,
        "True",
    ], out.stdout + out.stderr
    print(f"\n{engine} on {host}: first apply {first} s, second {second} s")


def test_group_exchange_kept_prunes_moduli_the_same_in_both_engines(
    lab: Inventory, tmp_path: Path
) -> None:
    """An inventory that keeps DH group exchange gets /etc/ssh/moduli pruned to >= 3072
    bits by Ansible, and pyinfra's check then finds nothing to change (same bytes)."""
    kex = ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
           "diffie-hellman-group-exchange-sha256"]  # fmt: skip
    inv = inventory_copy(lab, tmp_path, GEX_HOST, {"vars": {"baseline_ssh_kex_algorithms": kex}})
    db = tmp_path / "vcops.db"
    code, report, err = vcops(inv, db, "apply", "--engine", "ansible", "--limit", GEX_HOST)
    assert code == 0, (report, err[-3000:])
    code, scan, err = vcops(inv, db, "scan", "--limit", GEX_HOST)
    result = _results(scan, GEX_HOST)["VC-SSH-010"]
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
