"""The drift scan on the lab: stock hosts drift, a fix by hand resolves its finding, an
unreachable host is unknown (exit 3), switches are scanned through NAPALM and Netmiko,
waivers mark findings without hiding them. Every change made here is undone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vcops.connectors.ssh import SshTarget, run_one
from vcops.findings import Waiver
from vcops.findings_store import add_waiver
from vcops.inventory import Inventory
from vcops.lab.layout import NETNS_PREFIX, SWITCHES_DIR
from vcops.store import open_store

pytestmark = pytest.mark.lab
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scan") / "vcops.db"


def vcops(lab: Inventory, db: Path, *args: str) -> tuple[int, dict[str, object] | list[object]]:
    proc = subprocess.run(
        [str(BIN / "vcops"), "-i", str(lab.root), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "VCOPS_DATABASE_URL": f"sqlite:///{db}", "VCOPS_CONFIG": ""},
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def findings_of(report: dict[str, object], target: str) -> dict[str, dict[str, object]]:
    return {f["control_id"]: f for f in report["open"] if f["target"] == target}  # type: ignore[index, union-attr]


def test_stock_hosts_show_the_expected_drift(lab: Inventory, db: Path) -> None:
    code, report = vcops(lab, db, "scan")
    assert isinstance(report, dict)
    assert code == 1
    assert report["scan_id"] == 1 and not [
        o for o in report["outcomes"] if o["status"] == "unknown"
    ]  # type: ignore[union-attr, index]
    for server in lab.servers:
        found = findings_of(report, server.name)
        assert {"VC-SSH-001", "VC-NFT-001", "VC-F2B-001", "VC-PATCH-001"} <= set(found), server.name
        assert found["VC-SSH-001"]["actual"] == "passwordauthentication yes"
    assert {"VC-AST-001", "VC-AST-005"} <= set(findings_of(report, "lab-asterisk-01"))
    assert {"VC-FS-001", "VC-FS-002"} <= set(findings_of(report, "lab-freeswitch-01"))
    assert {"VC-KAM-001", "VC-KAM-002"} <= set(findings_of(report, "lab-kamailio-01"))
    assert "VC-KAM-003" not in findings_of(
        report, "lab-kamailio-01"
    )  # stock 5.6 config refuses to relay
    # Container limits are stated, never passed.
    kam = next(o for o in report["outcomes"] if o["target"] == "lab-kamailio-01")  # type: ignore[union-attr]
    statuses = {r["control_id"]: r for r in kam["results"]}  # type: ignore[index]
    assert statuses["VC-AUD-001"]["status"] == "fail"  # auditd not even installed
    assert statuses["VC-KRN-003"]["status"] == "not_applicable"
    assert "container" in statuses["VC-KRN-003"]["detail"]
    assert report["new"] and report["resolved"] == []


def test_switches_are_scanned_through_napalm_and_netmiko(lab: Inventory, db: Path) -> None:
    transports = {d.name: d.transport for d in lab.devices}
    assert set(transports.values()) == {"napalm", "netmiko"}
    code, report = vcops(lab, db, "scan", "--limit", "kind:device")
    assert isinstance(report, dict) and code == 1
    for outcome in report["outcomes"]:  # type: ignore[union-attr]
        assert outcome["status"] == "scanned", outcome  # type: ignore[index]
        ids = {r["control_id"]: r["status"] for r in outcome["results"]}  # type: ignore[index]
        assert ids["VC-NET-001"] == "fail" and ids["VC-NET-013"] == "fail"


def _served(device: str) -> int:
    """How often the lab switch has printed its running config (its log says each)."""
    log = SWITCHES_DIR / device / "switch.log"
    return log.read_text().count("running config served")


def test_scan_with_snapshot_fetches_each_device_once(lab: Inventory, db: Path) -> None:
    before = {d.name: _served(d.name) for d in lab.devices}
    code, report = vcops(lab, db, "scan", "--snapshot", "--limit", "kind:device")
    assert isinstance(report, dict) and code == 1
    assert {o["status"] for o in report["outcomes"]} == {"scanned"}  # type: ignore[index, union-attr]
    assert {h["status"] for h in report["snapshot"]["hosts"]} <= {"new", "changed", "unchanged"}  # type: ignore[index, call-overload]
    # the findings come from the config the snapshot fetched: one show running-config
    assert {d.name: _served(d.name) - before[d.name] for d in lab.devices} == {
        d.name: 1 for d in lab.devices
    }


@pytest.fixture
def password_auth_off(lab: Inventory) -> Iterator[SshTarget]:
    server = next(s for s in lab.servers if "kamailio" in s.roles)
    target = SshTarget.from_inventory(lab, server)
    run_one(
        target,
        "printf 'PasswordAuthentication no\\nKbdInteractiveAuthentication no\\n' "
        "> /etc/ssh/sshd_config.d/50-vcops-test.conf && sshd -t && systemctl reload ssh\n",
    )
    yield target
    run_one(target, "rm -f /etc/ssh/sshd_config.d/50-vcops-test.conf && systemctl reload ssh\n")


def test_a_fix_by_hand_resolves_its_finding(
    lab: Inventory, db: Path, password_auth_off: SshTarget
) -> None:
    name = password_auth_off.name
    code, report = vcops(lab, db, "scan", "--limit", name)
    assert isinstance(report, dict) and code == 1
    resolved = {(f["target"], f["control_id"]) for f in report["resolved"]}  # type: ignore[union-attr, index]
    assert (name, "VC-SSH-001") in resolved
    assert "VC-SSH-001" not in findings_of(report, name)
    _, rows = vcops(
        lab, db, "findings", "--status", "resolved", "--host", name, "--control", "VC-SSH-001"
    )
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert isinstance(row, dict) and row["resolved_at"] and row["first_seen"] < row["resolved_at"]
    # Other hosts keep their VC-SSH-001 finding open: resolving is per host.
    _, open_rows = vcops(lab, db, "findings", "--status", "open", "--control", "VC-SSH-001")
    assert isinstance(open_rows, list) and len(open_rows) == len(lab.servers) - 1


@pytest.fixture
def generic_unreachable(lab: Inventory) -> Iterator[str]:
    server = next(s for s in lab.servers if "generic" in s.roles)
    netns = f"{NETNS_PREFIX}{server.name}"  # this lab instance's namespace
    rules = (
        "add table inet vcops_test_block\n"
        "add chain inet vcops_test_block in { type filter hook input priority -300; policy drop; }\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rules, text=True, check=True
    )
    yield server.name
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", "vcops_test_block"],
        check=True,
    )


def test_an_unreachable_host_is_unknown_and_keeps_its_findings(
    lab: Inventory, db: Path, generic_unreachable: str
) -> None:
    name = generic_unreachable
    code, report = vcops(lab, db, "scan", "--limit", f"{name},lab-sbc-01")
    assert isinstance(report, dict)
    assert code == 3
    unknown = [o for o in report["outcomes"] if o["status"] == "unknown"]  # type: ignore[union-attr, index]
    assert [o["target"] for o in unknown] == [name]  # type: ignore[index]
    assert unknown[0]["results"] == []  # type: ignore[index]
    # Its findings stay open: unknown is not compliant.
    assert "VC-SSH-001" in findings_of(report, name)
    assert not [f for f in report["resolved"] if f["target"] == name]  # type: ignore[union-attr, index]


def test_waivers_mark_findings_and_expire_loudly(lab: Inventory, db: Path) -> None:
    code, w = vcops(
        lab,
        db,
        "waiver",
        "add",
        "VC-SSH-007",
        "--hosts",
        "role:generic",
        "--reason",
        "central syslog not ready, INFO is enough until then",
        "--expires",
        (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d"),
        "--approved-by",
        "dana",
    )
    assert code == 0 and isinstance(w, dict)
    store = open_store(f"sqlite:///{db}")
    add_waiver(
        store,
        Waiver(
            id=0,
            control_id="VC-SSH-006",
            hosts="role:generic",
            reason="expired on purpose",
            approved_by="erik",
            expires_at=datetime.now(UTC) - timedelta(days=1),
            created_at=datetime.now(UTC) - timedelta(days=60),
            created_by="test",
        ),
    )
    code, report = vcops(lab, db, "scan", "--limit", "role:generic")
    assert isinstance(report, dict) and code == 1
    found = findings_of(report, "lab-generic-01")
    assert found["VC-SSH-007"]["status"] == "waived" and "dana" in str(
        found["VC-SSH-007"]["waiver"]
    )
    assert found["VC-SSH-006"]["status"] == "open" and "expired" in str(
        found["VC-SSH-006"]["waiver"]
    )
    _, waived = vcops(lab, db, "findings", "--status", "waived")
    assert isinstance(waived, list) and [f["control_id"] for f in waived] == ["VC-SSH-007"]  # type: ignore[index]
    _, entries = vcops(lab, db, "audit", "log")
    actions = [e["action"] for e in entries]  # type: ignore[index]
    assert "waiver.add" in actions and actions.count("scan") >= 4


def test_scan_emails_the_drift_report_to_the_lab_smtp_server(
    lab: Inventory, db: Path, tmp_path: Path
) -> None:
    import tomllib

    from vcops.lab import read_mail

    smtp = tomllib.loads((lab.root / "vcops.toml").read_text())["smtp"]
    (tmp_path / "vcops.toml").write_text(
        f'[store]\ndatabase_url = "sqlite:///{db}"\n'
        f'[smtp]\nhost = "{smtp["host"]}"\nport = {smtp["port"]}\nsecurity = "none"\nfrom = "vcops@lab.invalid"\n'
        '[recipients]\ndrift = ["secops@lab.invalid"]\n'
    )
    before = len(read_mail())
    # The database already holds this module's audit chain, anchored in the session's
    # state directory: the mail run must use that same state (a fresh one holds no anchor).
    env = {k: v for k, v in os.environ.items() if k != "VCOPS_DATABASE_URL"}
    proc = subprocess.run(
        [
            str(BIN / "vcops"),
            "-i",
            str(lab.root),
            "-c",
            str(tmp_path / "vcops.toml"),
            "scan",
            "--limit",
            "role:sbc",
            "--email",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr  # drift, and the mail went out
    assert "emailed the drift report" in proc.stderr
    mails = read_mail()
    assert len(mails) == before + 1
    assert str(mails[-1]["Subject"]).startswith("vcops drift: ")
