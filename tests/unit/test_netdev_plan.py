"""Intended device config, remediation and rollback per platform: recorded running configs
in, expected command lists out (``tests/fixtures/netdev_plans/<platform>__<case>.json``,
shown with secrets masked; regenerate with ``VCOPS_REGEN_PLANS=1`` and review the diff).
"""

from __future__ import annotations

import json
import os
import re
from ipaddress import ip_network
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vcops.baseline.context import DeviceContext
from vcops.baseline.network import NETWORK_CONTROLS, parse_device_config
from vcops.baseline.settings import BaselineSettings
from vcops.enforce.netdev_intent import intent_vars, render_intended, resolve_secrets
from vcops.enforce.netdev_plan import DevicePlan, mask_line, plan_device
from vcops.enforce.netdev_scope import NOT_ENFORCEABLE, enforceable
from vcops.errors import InventoryError

PLANS = FIXTURES / "netdev_plans"
CASES = [
    "ios/stock.cfg",
    "ios/fake_switches.cfg",
    "ios/hardened.cfg",
    "ios/acl_permit_any.cfg",
    "eos/stock.cfg",
    "eos/hardened.cfg",
    "nxos_ssh/stock.cfg",
    "nxos_ssh/hardened.cfg",
    "junos/stock.conf",
    "junos/hardened.set",
    "junos/filter_any.set",
]
SETTINGS = BaselineSettings.model_validate(
    {
        "device_ntp_servers": ["192.0.2.123"],
        "device_syslog_servers": ["192.0.2.50"],
        "device_ntp_key": {"env": "T_NTP", "id": 1},
        "device_aaa_servers": [{"address": "192.0.2.20", "key": {"env": "T_AAA"}}],
        "device_snmpv3_users": [
            {"name": "nms", "auth": {"env": "T_AUTH"}, "priv": {"file": "snmp-priv"}}
        ],
    }
)
CTX = DeviceContext(SETTINGS, (ip_network("198.51.100.0/24"),))
SECRETS = {
    "device_ntp_key": "canary-ntp-intent-1001",
    "device_aaa_servers[0].key": "canary-aaa-intent-1002",
    "device_snmpv3_users[0].auth": "canary-auth-intent-1003",
    "device_snmpv3_users[0].priv": "canary-priv-intent-1004",
}
KEY = bytes(range(32))
CANARY = re.compile(r"canary-[a-z]+(?:-[a-z]+)*-\d{4}")


def _plan(case: str) -> tuple[DevicePlan, set[str]]:
    platform = case.split("/", maxsplit=1)[0]
    text = (FIXTURES / "configs" / case).read_text()
    facts = parse_device_config(platform, text)
    todo = {
        c.id
        for c in NETWORK_CONTROLS
        if c.check(facts, CTX).status in ("fail", "unknown") and c.id in enforceable(platform)
    }
    intended = render_intended(
        platform, intent_vars(CTX, platform, facts.vty_lines, secrets=SECRETS)
    )
    plan = plan_device(platform, text, intended, todo, mask_key=KEY, secrets=SECRETS.values())
    return plan, todo


@pytest.mark.parametrize("case", CASES)
def test_remediation_and_rollback_per_platform(case: str) -> None:
    plan, _ = _plan(case)
    got = {
        "controls": list(plan.controls),
        "remediation": list(plan.shown_remediation),
        "rollback": list(plan.shown_rollback),
    }
    expected_file = PLANS / (case.replace("/", "__").rsplit(".", 1)[0] + ".json")
    if os.environ.get("VCOPS_REGEN_PLANS"):
        expected_file.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(expected_file.read_text())


@pytest.mark.parametrize("case", CASES)
def test_no_secret_in_what_is_shown(case: str) -> None:
    plan, _ = _plan(case)
    shown = "\n".join(plan.shown_remediation + plan.shown_rollback)
    assert not CANARY.search(shown), CANARY.findall(shown)
    assert not CANARY.search(repr(plan))
    # The real commands carry the real secrets (they are what gets pushed).
    if plan.remediation and "VC-NET-009" in plan.controls:
        assert "canary-ntp-intent-1001" in "\n".join(plan.remediation)


@pytest.mark.parametrize("case", CASES)
def test_nothing_outside_the_owned_sections_is_touched(case: str) -> None:
    plan, _ = _plan(case)
    for line in plan.remediation + plan.rollback:
        assert not re.match(r"\s*(no )?(hostname|interface|router|vlan|ip route|version)\b", line)
        assert not line.startswith(("delete interfaces ge-", "delete system host-name"))


def test_hardened_configs_need_nothing_for_their_passing_controls() -> None:
    for case in ("ios/hardened.cfg", "eos/hardened.cfg", "nxos_ssh/hardened.cfg"):
        plan, todo = _plan(case)
        assert set(plan.controls) <= todo
    plan, todo = _plan("junos/hardened.set")
    assert plan.empty and not todo


def test_the_acl_finding_is_closed_by_the_vcops_list_and_undone_by_rollback() -> None:
    plan, todo = _plan("ios/acl_permit_any.cfg")
    assert plan.controls == ("VC-NET-004",) and todo == {"VC-NET-004"}
    assert "  access-class VCOPS-MGMT in" in plan.remediation
    assert "  10 permit 198.51.100.0 0.0.0.255" in plan.remediation
    assert "  access-class 10 in" in plan.rollback


def test_unset_settings_leave_their_controls_alone() -> None:
    bare = DeviceContext(BaselineSettings(), ())
    text = (FIXTURES / "configs" / "ios" / "stock.cfg").read_text()
    facts = parse_device_config("ios", text)
    intended = render_intended("ios", intent_vars(bare, "ios", facts.vty_lines, secrets={}))
    plan = plan_device("ios", text, intended, enforceable("ios"), mask_key=KEY)
    # No AAA server, NTP server, syslog host, management network or enable secret is
    # configured: those findings stay open rather than losing the device's own lines.
    for control in ("VC-NET-004", "VC-NET-005", "VC-NET-006", "VC-NET-009", "VC-NET-010"):
        assert control not in plan.controls
    assert "VC-NET-008" in plan.controls  # communities go even with no SNMPv3 user set
    assert not any("enable" in line or "ntp" in line for line in plan.remediation)
    assert "VC-NET-013" in NOT_ENFORCEABLE and "VC-NET-013" not in enforceable("ios")


def test_masking_covers_no_and_delete_forms() -> None:
    key = bytes(32)
    for platform, line in [
        ("ios", "no snmp-server community canary-community-2001 RO"),
        ("ios", "  key 7 canary-tacacs-2002"),
        ("junos", "delete snmp community canary-community-2003 authorization read-only"),
        ("junos", 'set system root-authentication plain-text-password-value "canary-root-2004"'),
    ]:
        assert "canary" not in mask_line(platform, line, key), line


def test_secret_references_resolve_from_env_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_NTP", "n")
    monkeypatch.setenv("T_AAA", "a")
    monkeypatch.setenv("T_AUTH", "u")
    (tmp_path / "snmp-priv").write_text("p\n")
    values = resolve_secrets(SETTINGS, tmp_path, where="inventory: device r1")
    assert values == {
        "device_ntp_key": "n",
        "device_aaa_servers[0].key": "a",
        "device_snmpv3_users[0].auth": "u",
        "device_snmpv3_users[0].priv": "p",
    }
    monkeypatch.delenv("T_AAA")
    with pytest.raises(InventoryError, match=r"T_AAA is not set"):
        resolve_secrets(SETTINGS, tmp_path, where="inventory: device r1")
