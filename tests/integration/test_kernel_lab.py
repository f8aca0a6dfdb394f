"""The kernel area on real lab hosts, one host per engine: a stock host fails every new
kernel control (sysctl sets, module blacklist, core dumps, process accounting); one
apply clears them; a second apply changes nothing; the host shows it (the sysctls it
may set live, the modprobe and limits files, acct and sysstat enabled) and Kamailio
still answers SIP OPTIONS. Each test starts from and leaves a stock host."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.apply_helpers import host_status, target, vcops
from tests.integration.conftest import reset_lab_hosts
from vcops.connectors.ssh import run_one
from vcops.inventory import Inventory
from vcops.lab.probe import sip_options

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
NEW = {"VC-KRN-004", "VC-KRN-005", "VC-KRN-006", "VC-MOD-001", "VC-CORE-001", "VC-CORE-002"}
NEW |= {"VC-ACCT-001"}
ENGINES = [("pyinfra", "lab-kamailio-01"), ("ansible", "lab-generic-01")]
PROOF = (
    "cat /proc/sys/net/ipv4/conf/all/arp_ignore /proc/sys/net/ipv6/conf/all/autoconf; "
    "grep -c '^install .* /bin/false$' /etc/modprobe.d/vcops-blacklist.conf; "
    "grep -c '^blacklist sctp$' /etc/modprobe.d/vcops-blacklist.conf; "
    "grep -c '^root  hard  core  0$' /etc/security/limits.d/90-vcops-coredump.conf; "
    "systemctl is-enabled acct sysstat; systemctl is-active sysstat; "
    "sed -n 's/^ENABLED=//p' /etc/default/sysstat\n"
)


@pytest.fixture
def stock(lab: Inventory, request: pytest.FixtureRequest) -> Iterator[str]:
    host: str = request.param
    reset_lab_hosts([host])
    yield host
    reset_lab_hosts([host])


def _results(scan: dict[str, object], host: str) -> dict[str, dict[str, str]]:
    outcome = next(o for o in scan["outcomes"] if o["target"] == host)  # type: ignore[union-attr, index]
    return {r["control_id"]: r for r in outcome["results"]}  # type: ignore[index]


@pytest.mark.parametrize(
    ("engine", "stock"), ENGINES, indirect=["stock"], ids=[e for e, _ in ENGINES]
)
def test_kernel_controls_stock_fail_apply_clears_second_apply_unchanged(
    lab: Inventory, tmp_path: Path, engine: str, stock: str
) -> None:
    db = tmp_path / "vcops.db"
    host = stock
    _, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    before = _results(scan, host)
    assert {c: before[c]["status"] for c in NEW} == dict.fromkeys(NEW, "fail"), err[-2000:]

    started = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    first = round(time.monotonic() - started, 1)
    assert code == 0, (report, err[-3000:])
    assert host_status(report)[host]["status"] == "changed"

    _, scan, err = vcops(lab.root, db, "scan", "--limit", host)
    after = _results(scan, host)
    drift = {c: (r["status"], r["actual"]) for c, r in after.items() if r["status"] == "fail"}
    assert drift == {}, drift
    assert {c: after[c]["status"] for c in NEW} == {
        **dict.fromkeys(NEW, "pass"),
        "VC-KRN-006": "not_applicable",  # the file is right; live is the container host's
    }
    assert "container" in after["VC-KRN-006"]["detail"]

    started = time.monotonic()
    code, report, err = vcops(lab.root, db, "apply", "--engine", engine, "--limit", host)
    second = round(time.monotonic() - started, 1)
    assert code == 0, err[-3000:]
    assert host_status(report)[host]["status"] == "unchanged", report

    out = run_one(target(lab, host), PROOF).stdout.split()
    assert out == ["1", "0", "14", "1", "1", "enabled", "enabled", "active", '"true"'], out
    if host == "lab-kamailio-01":
        answer = sip_options("10.213.0.11", timeout=2.0)
        assert answer is not None and answer.startswith("SIP/2.0 200"), answer
    print(f"\n{engine} on {host}: first apply {first} s, second {second} s")
