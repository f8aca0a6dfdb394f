"""Role variables come from the same BaselineSettings the scanner uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vcops.baseline.settings import DEFAULT_SETTINGS, BaselineSettings
from vcops.enforce.vars import areas_for, role_vars, secret_ref, vars_from_settings
from vcops.errors import InventoryError
from vcops.inventory import load_inventory


def test_defaults_flow_into_role_variables() -> None:
    v = vars_from_settings(DEFAULT_SETTINGS, ["kamailio"], ["10.0.0.0/8"], "10.1.2.3", "kam-01")
    assert v["vcops_ssh_max_auth_tries"] == DEFAULT_SETTINGS.ssh_max_auth_tries
    assert v["vcops_ssh_ciphers"] == DEFAULT_SETTINGS.ssh_ciphers
    assert v["vcops_kernel_net_sysctls"] == DEFAULT_SETTINGS.net_sysctls
    assert v["vcops_audit_watches"] == DEFAULT_SETTINGS.audit_watches
    assert v["vcops_time_ntp_servers"] == DEFAULT_SETTINGS.ntp_servers
    assert v["vcops_fail2ban_jails"] == ["sshd", "kamailio"]
    assert v["vcops_firewall_voip"] is True
    assert v["vcops_areas"][-2:] == ["kamailio", "integrity"]  # AIDE last
    # the controller is inside the management network: not listed twice
    assert v["vcops_firewall_ssh_sources_v4"] == ["10.0.0.0/8"]


def test_controller_outside_management_networks_is_always_allowed() -> None:
    v = vars_from_settings(DEFAULT_SETTINGS, ["generic"], ["10.0.0.0/8"], "192.0.2.7", "g")
    assert v["vcops_firewall_ssh_sources_v4"] == ["10.0.0.0/8", "192.0.2.7/32"]
    v6 = vars_from_settings(DEFAULT_SETTINGS, ["generic"], [], "2001:db8::5", "g")
    assert v6["vcops_firewall_ssh_sources_v6"] == ["2001:db8::5/128"]
    assert v["vcops_firewall_voip"] is False
    assert v["vcops_fail2ban_jails"] == ["sshd"]


@pytest.mark.parametrize(
    ("roles", "areas"),
    [
        (["generic"], []),
        (["sbc"], ["kamailio"]),
        (["asterisk", "generic"], ["asterisk"]),
        (["freeswitch", "kamailio"], ["freeswitch", "kamailio"]),
        (["rtpengine"], []),
    ],
)
def test_areas_by_role(roles: list[str], areas: list[str]) -> None:
    common = [
        "ssh",
        "firewall",
        "fail2ban",
        "kernel",
        "audit",
        "time",
        "updates",
        "logging",
        "accounts",
    ]
    assert areas_for(roles) == common + areas + ["integrity"]


def test_forwarding_only_for_documented_roles() -> None:
    sbc = vars_from_settings(DEFAULT_SETTINGS, ["sbc"], [], None, "s")
    kam = vars_from_settings(DEFAULT_SETTINGS, ["kamailio"], [], None, "k")
    assert sbc["vcops_kernel_forwarding"] is True and kam["vcops_kernel_forwarding"] is False


def test_secrets_are_references_never_values() -> None:
    v = vars_from_settings(DEFAULT_SETTINGS, ["asterisk", "freeswitch"], [], None, "x")
    assert v["vcops_asterisk_ami_secret"] == secret_ref("asterisk_ami")
    assert str(v["vcops_freeswitch_event_socket_password"]).startswith("@@vcops-secret:")
    assert "ClueCon" not in str(v) and "1234" not in str(v["vcops_freeswitch_default_password"])


def test_inventory_overrides_reach_the_variables(make_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(make_inventory())
    ast = next(s for s in inv.servers if s.name == "ast-01")
    kam = next(s for s in inv.servers if s.name == "kam-01")
    assert role_vars(inv, ast)["vcops_ssh_max_auth_tries"] == 2  # host var
    assert role_vars(inv, kam)["vcops_ssh_max_auth_tries"] == 4  # later group wins
    assert role_vars(inv, ast)["vcops_areas"][-2] == "asterisk"


def test_an_invalid_override_is_an_inventory_error(make_inventory: Callable[..., Path]) -> None:
    extra = (
        "servers:\n  - {name: bad-01, address: 192.0.2.99, roles: [generic], site: s1,"
        " environment: lab, vars: {baseline_ssh_max_auth_tries: 99}}\n"
    )
    inv = load_inventory(make_inventory(files={"extra.yml": extra}))
    bad = next(s for s in inv.servers if s.name == "bad-01")
    with pytest.raises(InventoryError, match="baseline_ssh_max_auth_tries"):
        role_vars(inv, bad)


def test_every_setting_used_by_a_control_has_a_variable() -> None:
    v = vars_from_settings(
        BaselineSettings(rtp_port_range="16384-32767"), ["asterisk"], [], None, "a"
    )
    assert v["vcops_firewall_rtp_port_range"] == "16384-32767"
    assert v["vcops_asterisk_unidentified_request_count"] == 5
