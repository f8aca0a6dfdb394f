"""Network device controls, table-driven from running-config fixtures.

Each ``tests/fixtures/configs/<platform>/<case>.*`` has a ``<case>.expected.json``
({control_id: status}). The cases: hardened (every control passes), stock
(non-compliant), truncated/partial/error_output (cut-off or no config: *unknown*), and
``ios/fake_switches.cfg``, captured from the fake-switches simulator (cisco_generic)
with Netmiko ``show running-config``.
"""

from __future__ import annotations

import doctest
import json
import re
import subprocess
import sys
from collections import defaultdict
from ipaddress import ip_network
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vcops.baseline import netparse, network
from vcops.baseline.context import DeviceContext
from vcops.baseline.model import CheckResult
from vcops.baseline.netparse import PLATFORMS, DeviceFacts, SnmpCommunity
from vcops.baseline.network import (
    NETWORK_CONTROLS,
    compare_versions,
    parse_device_config,
    version_key,
)
from vcops.baseline.settings import BaselineSettings

CONFIGS = FIXTURES / "configs"
CASES = sorted(p for p in CONFIGS.glob("*/*") if not p.name.endswith(".expected.json"))
DEFAULTS = BaselineSettings()
#: Every secret planted in the fixtures looks like this (community strings, hashes, keys).
CANARY = re.compile(r"canary-[a-z]+(?:-[a-z]+)*-\d{4}")


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _facts(path: Path) -> DeviceFacts:
    return parse_device_config(path.parent.name, path.read_text())


def _expected(path: Path) -> dict[str, str]:
    stem = path.name.rsplit(".", 1)[0]
    data: dict[str, str] = json.loads((path.parent / f"{stem}.expected.json").read_text())
    return data


#: The management network of every hardened fixture.
MGMT = (ip_network("198.51.100.0/24"),)


def _ctx(settings: BaselineSettings = DEFAULTS) -> DeviceContext:
    return DeviceContext(settings, MGMT)


def _run(facts: DeviceFacts, settings: BaselineSettings = DEFAULTS) -> dict[str, CheckResult]:
    return {c.id: c.check(facts, _ctx(settings)) for c in NETWORK_CONTROLS}


def _fixture(name: str) -> Path:
    return CONFIGS / name


# --- the fixture table -------------------------------------------------------------------


@pytest.mark.parametrize("path", CASES, ids=_case_id)
def test_each_fixture_gives_its_expected_statuses(path: Path) -> None:
    got = {cid: r.status for cid, r in _run(_facts(path)).items()}
    assert got == _expected(path)


def test_every_control_is_seen_compliant_non_compliant_and_unknown() -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for path in CASES:
        for cid, status in _expected(path).items():
            seen[cid].add(status)
    for control in NETWORK_CONTROLS:
        assert {"pass", "fail", "unknown"} <= seen[control.id], control.id


def test_every_platform_has_a_hardened_a_stock_and_a_cut_off_case() -> None:
    by_platform: dict[str, set[str]] = defaultdict(set)
    for path in CASES:
        by_platform[path.parent.name].add(path.name.rsplit(".", 1)[0])
    assert set(by_platform) == PLATFORMS
    for platform, cases in by_platform.items():
        assert {"hardened", "stock"} <= cases, platform
        assert cases & {"truncated", "partial", "error_output"}, platform


@pytest.mark.parametrize("path", CASES, ids=_case_id)
def test_not_applicable_exactly_where_the_control_does_not_apply(path: Path) -> None:
    facts = _facts(path)
    for control in NETWORK_CONTROLS:
        result = control.check(facts, _ctx())
        # Off its platforms, and SSH v2-only (VC-NET-001) on a device offering no SSH.
        expected_na = not control.applies({facts.platform}) or (
            control.id == "VC-NET-001" and facts.ssh_offered is False
        )
        assert (result.status == "not_applicable") == expected_na
        if result.status in ("not_applicable", "unknown"):
            assert result.detail, (control.id, "says why")


# --- secrets -----------------------------------------------------------------------------


def test_the_fixtures_plant_every_kind_of_secret() -> None:
    planted = {m for p in CASES for m in CANARY.findall(p.read_text())}
    kinds = {re.sub(r"-\d{4}$", "", c) for c in planted}
    assert "canary-community-7781" in planted
    assert {
        "canary-community",
        "canary-enable",
        "canary-enable-pw",
        "canary-user",
        "canary-ntp-key",
        "canary-tacacs-key",
        "canary-snmp-auth",
        "canary-snmp-priv",
        "canary-root",
        "canary-line-pw",
    } <= kinds


SETTINGS_VARIANTS = [
    DEFAULTS,
    BaselineSettings(
        device_syslog_servers=["192.0.2.50", "192.0.2.99"],
        device_ntp_servers=["192.0.2.123", "192.0.2.200"],
        device_banner_required=False,
        device_min_versions={"ios": "15.2(4)M7", "junos": "21.4R3-S3"},
    ),
]


@pytest.mark.parametrize("path", CASES, ids=_case_id)
def test_no_secret_leaves_the_running_config(path: Path) -> None:
    text = path.read_text()
    facts = parse_device_config(path.parent.name, text)
    dumped = facts.model_dump()
    assert dumped.pop("running_config") == text
    surfaces = [json.dumps(dumped), repr(facts), str(facts)]
    for settings in SETTINGS_VARIANTS:
        for control in NETWORK_CONTROLS:
            r = control.check(facts, _ctx(settings))
            surfaces += [r.expected, r.actual, r.detail, control.expected(_ctx(settings))]
    blob = "\n".join(surfaces)
    planted = set(CANARY.findall(text))
    assert not {c for c in planted if c in blob}
    assert "canary" not in blob


def test_communities_are_kept_as_access_modes_only() -> None:
    stock = _facts(_fixture("ios/stock.cfg"))
    assert stock.snmp_communities == (
        SnmpCommunity(access="read-write", restricted=False),
        SnmpCommunity(access="read-only", restricted=True),
    )
    result = _run(stock)["VC-NET-008"]
    assert result.actual == "2 v1/v2c communities (1 read-write, 1 without an ACL)"
    # NX-OS writes `use-acl` on a line of its own: three lines, two communities.
    nxos = _facts(_fixture("nxos_ssh/stock.cfg"))
    assert nxos.snmp_communities == (
        SnmpCommunity(access="read-write", restricted=True),
        SnmpCommunity(access="read-only", restricted=False),
    )


# --- settings change the verdict ---------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "overrides", "control_id", "status", "text"),
    [
        ("ios/hardened.cfg", {"device_syslog_servers": ["192.0.2.50"]}, "VC-NET-010", "pass", ""),
        (
            "ios/hardened.cfg",
            {"device_syslog_servers": ["192.0.2.50", "192.0.2.99"]},
            "VC-NET-010",
            "fail",
            "missing 192.0.2.99",
        ),
        (
            "junos/partial.set",
            {"device_syslog_servers": ["192.0.2.99"]},
            "VC-NET-010",
            "unknown",
            "192.0.2.99",
        ),
        ("ios/hardened.cfg", {"device_ntp_servers": ["192.0.2.124"]}, "VC-NET-009", "pass", ""),
        (
            "eos/hardened.cfg",
            {"device_ntp_servers": ["192.0.2.200"]},
            "VC-NET-009",
            "fail",
            "missing 192.0.2.200",
        ),
        ("eos/truncated.cfg", {"device_ntp_servers": ["192.0.2.200"]}, "VC-NET-009", "unknown", ""),
        ("ios/stock.cfg", {"device_banner_required": False}, "VC-NET-011", "pass", ""),
        ("ios/stock.cfg", {"device_min_versions": {"ios": "12.4"}}, "VC-NET-013", "pass", ""),
        (
            "ios/hardened.cfg",
            {"device_min_versions": {"ios": "15.2(4)M7"}},
            "VC-NET-013",
            "unknown",
            "full release",
        ),
        ("ios/hardened.cfg", {"device_min_versions": {"ios": "15.3"}}, "VC-NET-013", "fail", ""),
        (
            "junos/hardened.set",
            {"device_min_versions": {"junos": "21.4R3-S3"}},
            "VC-NET-013",
            "fail",
            "21.4R3-S2.4",
        ),
        (
            "junos/hardened.set",
            {"device_min_versions": {"junos": "21.4R3-S2"}},
            "VC-NET-013",
            "pass",
            "",
        ),
        (
            "eos/hardened.cfg",
            {"device_min_versions": {"ios": "15.2"}},
            "VC-NET-013",
            "unknown",
            "baseline_device_min_versions",
        ),
    ],
)
def test_settings_drive_the_verdict(
    case: str, overrides: dict[str, object], control_id: str, status: str, text: str
) -> None:
    settings = BaselineSettings.model_validate({**DEFAULTS.model_dump(), **overrides})
    result = _run(_facts(_fixture(case)), settings)[control_id]
    assert result.status == status, result
    assert text in f"{result.expected} {result.actual} {result.detail}"


def test_md5_enable_secret_says_to_use_type_8_or_9() -> None:
    result = _run(_facts(_fixture("ios/half_done.cfg")))["VC-NET-006"]
    assert (result.status, result.actual, result.detail) == ("fail", "MD5", "MD5, use type 8 or 9")


# --- parsing -----------------------------------------------------------------------------


def test_junos_display_set_and_brace_forms_give_the_same_facts() -> None:
    from_set = _facts(_fixture("junos/hardened.set")).model_dump(exclude={"running_config"})
    from_braces = _facts(_fixture("junos/hardened.conf")).model_dump(exclude={"running_config"})
    assert from_set == from_braces
    assert from_set["ntp_servers"] == ("192.0.2.123",)
    assert from_set["aaa_login"] == "server"


def test_fake_switches_capture_is_read_and_its_defaults_applied() -> None:
    facts = _facts(_fixture("ios/fake_switches.cfg"))
    assert facts.complete
    assert facts.os_version == "12.1"
    assert facts.vty_lines == ()
    # Absent from a whole IOS running config = the IOS default.
    assert facts.ssh_version == 1
    on = {s.name for s in facts.legacy_services if s.enabled}
    assert on == {"ip bootp server", "cdp run", "ip source-route", "service pad"}
    assert facts.aaa_new_model is False
    assert facts.enable_secret_type == "none"


def test_a_cut_off_config_keeps_what_it_shows_and_infers_no_default() -> None:
    facts = _facts(_fixture("ios/truncated.cfg"))
    assert not facts.complete
    assert facts.os_version == "15.2"
    assert facts.password_encryption is True
    assert facts.snmp_communities == (SnmpCommunity(access="read-only", restricted=False),)
    assert facts.ssh_version is None
    assert {s.name: s.enabled for s in facts.legacy_services}["service pad"] is False
    assert {s.name: s.enabled for s in facts.legacy_services}["cdp run"] is None


def test_ios_vty_lines_are_read_per_line() -> None:
    facts = _facts(_fixture("ios/half_done.cfg"))
    assert [(v.name, v.access_class_in, v.transport_input) for v in facts.vty_lines] == [
        ("vty 0 4", True, ("ssh",)),
        ("vty 5 15", False, None),
    ]
    results = _run(facts)
    assert results["VC-NET-004"].actual == "no access-class on vty 5 15"
    assert "vty 5 15" in results["VC-NET-002"].detail


def test_a_cut_off_ios_config_with_clean_vty_lines_is_not_a_pass() -> None:
    # The first vty block is clean but later ones may be lost: neither "off" nor "restricted".
    text = _fixture("ios/hardened.cfg").read_text()
    cut = text[: text.index("line vty 5 15")]
    facts = parse_device_config("ios", cut)
    assert (facts.telnet_enabled, facts.vty_access_class) == (None, None)


def test_eos_banner_body_is_not_read_as_commands() -> None:
    text = (
        "! device: sw (vEOS, EOS-4.30.1F)\n"
        "banner login\n"
        "ntp server 203.0.113.9\n"
        "management telnet\n"
        "   no shutdown\n"
        "EOF\n"
        "ntp server 192.0.2.123\n"
        "end\n"
    )
    facts = parse_device_config("eos", text)
    assert facts.login_banner is True
    assert facts.ntp_servers == ("192.0.2.123",)
    assert facts.telnet_enabled is False
    assert facts.os_version == "4.30.1F"


def test_junos_inactive_deactivated_and_group_statements() -> None:
    braces = (
        "version 21.4R3.5;\n"
        "groups {\n"
        "    common {\n"
        "        system {\n"
        "            syslog {\n"
        "                host 192.0.2.50 {\n"
        "                    any notice;\n"
        "                }\n"
        "            }\n"
        "        }\n"
        "    }\n"
        "}\n"
        "apply-groups common;\n"
        "system {\n"
        "    root-authentication {\n"
        '        encrypted-password "canary-root-hash-2222";\n'
        "    }\n"
        "    inactive: services {\n"
        "        telnet;\n"
        "    }\n"
        "}\n"
    )
    facts = parse_device_config("junos", braces)
    assert facts.syslog_hosts == ("192.0.2.50",)
    assert facts.telnet_enabled is False
    display_set = (
        "set version 21.4R3.5\n"
        "set system root-authentication encrypted-password canary-root-hash-1111\n"
        "set system services telnet\n"
        "deactivate system services telnet\n"
        "set system services web-management https interface fxp0.0\n"
    )
    facts = parse_device_config("junos", display_set)
    assert (facts.telnet_enabled, facts.http_server_enabled) == (False, True)


def test_a_brace_config_cut_mid_block_is_read_but_not_complete() -> None:
    facts = _facts(_fixture("junos/truncated.conf"))
    assert facts.os_version == "22.2R3.15"
    assert not facts.complete
    assert facts.telnet_enabled is True
    assert facts.syslog_hosts == ("192.0.2.50",)
    assert facts.snmp_communities is None


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "% Invalid input detected at '^' marker.",
        "}\n}\n",
        "system {\n services {\n",
        'set system login message "unbalanced',
        "banner motd ^C\nno end in sight",
        "\x00\x01{[;",
    ],
)
def test_odd_output_is_read_without_errors_and_never_complete(platform: str, text: str) -> None:
    facts = parse_device_config(platform, text)
    assert not facts.complete
    assert facts.os_version is None
    statuses = {cid: r.status for cid, r in _run(facts).items()}
    assert statuses["VC-NET-013"] == "unknown"
    if not text.strip():
        assert set(statuses.values()) <= {"unknown", "not_applicable"}


@pytest.mark.parametrize(
    ("platform", "lines", "kind"),
    [
        ("ios", ["enable secret 9 $9$x", "enable password 7 0822455D0A16"], "type7"),
        ("ios", ["enable secret level 15 8 $8$x"], "pbkdf2"),
        ("ios", ["enable secret 4 Tnhtc92DXBhelxjYk8LWJrPV36S2i4ntXrpb4RFmfqY"], "sha256-unsalted"),
        ("ios", ["enable secret 6 unknown-type"], None),
        ("ios", [], "none"),
        ("eos", ["enable password sha512 $6$x"], "sha512-crypt"),
        ("eos", ["enable secret 5 $1$x"], "md5"),
        ("eos", ["enable password 0 plain"], "cleartext"),
    ],
)
def test_enable_secret_types(platform: str, lines: list[str], kind: str | None) -> None:
    facts = parse_device_config(platform, "\n".join(["hostname r1", *lines, "end"]))
    assert facts.enable_secret_type == kind


def test_an_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown platform 'iosxr'"):
        parse_device_config("iosxr", "end")


@pytest.mark.parametrize(
    ("platform", "version", "key"),
    [
        ("ios", "15.2(4)M7", (15, 2, 4, 7)),
        ("ios", "15.2(4)M10", (15, 2, 4, 10)),
        ("ios", "17.09.04a", (17, 9, 4)),
        ("eos", "4.28.3M", (4, 28, 3)),
        ("eos", "4.28.3.1F", (4, 28, 3, 1)),
        ("junos", "21.4R3-S2", (21, 4, 3, 2)),
        ("junos", "21.4R3-S2.4", (21, 4, 3, 2)),
        ("junos", "21.4R3.5", (21, 4, 3, 0)),
        ("junos", "21.4", (21, 4, 0, 0)),
        ("junos", "15.1X49-D200.5", (15, 1, 49, 200)),
        ("nxos_ssh", "9.3(8)", (9, 3, 8)),
        ("nxos_ssh", "7.0(3)I7(9)", (7, 0, 3, 7, 9)),
        ("ios", "unknown", None),
    ],
)
def test_version_keys(platform: str, version: str, key: tuple[int, ...] | None) -> None:
    assert version_key(platform, version) == key


@pytest.mark.parametrize(
    ("actual", "minimum", "verdict"),
    [
        ("15.2(4)M10", "15.2(4)M7", "ok"),
        ("15.2(4)M7", "15.2(4)M10", "older"),
        ("15.2", "15.2", "ok"),
        ("15.2", "15.2.0", "ok"),
        ("15.2", "15.2(4)M7", "imprecise"),
        ("15.3", "15.2(4)M7", "ok"),
        ("12.4", "15.2", "older"),
    ],
)
def test_compare_versions_numerically(actual: str, minimum: str, verdict: str) -> None:
    have, want = version_key("ios", actual), version_key("ios", minimum)
    assert have is not None
    assert want is not None
    assert compare_versions(have, want) == verdict


def test_junos_service_release_sorts_after_the_plain_release() -> None:
    newer, older = version_key("junos", "21.4R3-S2.4"), version_key("junos", "21.4R3.5")
    assert newer is not None
    assert older is not None
    assert compare_versions(older, newer) == "older"


# --- the control list --------------------------------------------------------------------


def test_controls_are_numbered_typed_and_explained() -> None:
    assert [c.id for c in NETWORK_CONTROLS] == [f"VC-NET-{n:03d}" for n in range(1, 14)]
    for control in NETWORK_CONTROLS:
        assert control.kind == "device"
        assert control.applies_to <= PLATFORMS
        assert control.clause == ("3.2.2" if control.id == "VC-NET-013" else "3.2.1")
        assert control.title.endswith(".")
        assert control.title.count(". ") == 0
        assert re.search(r"VoIP|call|SIP", control.rationale), control.id
        assert 0 < len(control.expected(_ctx())) <= 100
    severities = {c.id: c.severity for c in NETWORK_CONTROLS}
    assert severities["VC-NET-002"] == severities["VC-NET-008"] == "high"
    assert severities["VC-NET-006"] == "high"
    assert severities["VC-NET-011"] == "low"


def test_platform_limited_controls() -> None:
    applies = {c.id: c.applies_to for c in NETWORK_CONTROLS}
    assert applies["VC-NET-006"] == {"ios", "eos", "junos"}
    assert applies["VC-NET-007"] == {"ios", "nxos_ssh"}
    assert applies["VC-NET-012"] == {"ios", "nxos_ssh"}


def test_facts_are_frozen_and_hide_the_config_from_repr() -> None:
    facts = _facts(_fixture("ios/hardened.cfg"))
    assert "running_config" not in repr(facts)
    with pytest.raises(ValueError, match="frozen"):
        facts.os_version = "99.9"  # type: ignore[misc]


@pytest.mark.parametrize("module", [netparse, network], ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: object) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert tried > 0
    assert failures == 0


def test_ciscoconfparse2_tracebacks_stay_off_the_terminal() -> None:
    # A child process: loguru keeps the stderr it found at import, out of pytest's reach.
    code = (
        "from vcops.baseline.netparse import parse_device_config as p\n"
        "for t in ('version 1;\\nsystem {\\n \\x01;\\n}\\n', 'system {\\n a\\ufeff b;\\n}\\n'):\n"
        "    assert not p('junos', t).complete\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # ciscoconfparse2's loguru sink writes to stdout or stderr depending on the terminal.
    assert (done.stdout, done.stderr) == ("", "")


def test_a_stray_brace_ends_what_counts_instead_of_moving_stanzas() -> None:
    hardened = _facts(_fixture("junos/hardened.conf"))
    stray = _facts(_fixture("junos/stray_brace.conf"))
    assert hardened.complete and hardened.snmp_v3 and hardened.mgmt_acls == ("PROTECT-RE",)
    # What came before the stray `}` is read; what follows it is not guessed at.
    assert not stray.complete
    assert stray.syslog_hosts == hardened.syslog_hosts
    assert stray.snmp_v3 is None and stray.vty_access_class is None


def test_acl_sources_are_read_from_the_entries() -> None:
    cases = {
        "ios/hardened.cfg": ("198.51.100.0/24",),
        "ios/acl_permit_any.cfg": ("0.0.0.0/0",),
        "ios/acl_extended_outside.cfg": ("198.51.100.0/24", "203.0.113.9/32"),
        "eos/hardened.cfg": ("198.51.100.0/24",),
        "nxos_ssh/acl_any.cfg": ("0.0.0.0/0",),
        "junos/prefix_list.set": ("198.51.100.0/25", "198.51.100.128/25"),
        "junos/filter_any.set": ("0.0.0.0/0",),
    }
    for name, sources in cases.items():
        assert _facts(_fixture(name)).mgmt_acl_sources == sources, name


def test_an_acl_without_management_networks_fails_only_on_any() -> None:
    bare = DeviceContext(DEFAULTS, ())
    check = next(c for c in NETWORK_CONTROLS if c.id == "VC-NET-004").check
    assert check(_facts(_fixture("ios/acl_permit_any.cfg")), bare).status == "fail"
    result = check(_facts(_fixture("ios/hardened.cfg")), bare)
    assert result.status == "unknown"
    assert "no management_networks" in result.detail
