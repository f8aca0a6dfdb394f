"""The lab IOS simulator's grammar (vcops.lab.ios_grammar): every line the ios templates
push and its rollback are accepted, anything else is refused, and rollback from a stock
switch leaves nothing behind."""

from __future__ import annotations

import doctest
import json

import pytest

from tests.conftest import FIXTURES
from vcops.lab import ios_grammar
from vcops.lab.ios_grammar import HardeningStore, grammar_summary

PLANS = FIXTURES / "netdev_plans"


def feed(store: HardeningStore, lines: list[str]) -> list[str]:
    """Apply lines as the simulator's config mode does; return the refused ones."""
    refused = []
    section: str | None = None
    for line in lines:
        if store.in_banner:
            store.feed_banner(line)
            continue
        if line.startswith(" ") and section:
            result = store.apply_child(section, line.strip())
            if result.ok:
                continue
        result = store.apply(line.strip())
        section = result.section
        if not result.ok:
            refused.append(line)
    return refused


@pytest.mark.parametrize("case", ["ios__fake_switches.json", "ios__stock.json"])
def test_every_template_line_and_its_rollback_is_accepted(case: str) -> None:
    plan = json.loads((PLANS / case).read_text())
    store = HardeningStore()
    assert feed(store, plan["remediation"]) == []
    shown = store.running_lines()
    assert "ip ssh version 2" in shown and " transport input ssh" in shown
    assert not any(line.startswith("snmp-server user") for line in shown)  # as IOS hides them
    assert feed(store, plan["rollback"]) == []


def test_rollback_from_a_stock_switch_leaves_it_stock() -> None:
    plan = json.loads((PLANS / "ios__fake_switches.json").read_text())
    store = HardeningStore()
    feed(store, plan["remediation"])
    feed(store, plan["rollback"])
    assert store.running_lines() == []


@pytest.mark.parametrize(
    "line",
    [
        "ip ssh version 3",
        "logging host 10.0.0.1 vrf MGMT",
        "snmp-server community public RO extra words",
        "router bgp 65000",
        "transport input ssh",  # a line command outside its line block
    ],
)
def test_anything_else_is_invalid_input(line: str) -> None:
    assert not HardeningStore().apply(line).ok


def test_on_by_default_services_show_only_when_off() -> None:
    store = HardeningStore()
    assert store.apply("no cdp run").ok and store.running_lines() == ["no cdp run"]
    assert store.apply("cdp run").ok and store.running_lines() == []
    assert store.apply("service password-encryption").ok
    assert store.apply("no service password-encryption").ok and store.running_lines() == []


def test_enable_secret_is_shown_hashed() -> None:
    store = HardeningStore()
    assert store.apply("enable algorithm-type scrypt secret canary-enable-4242").ok
    (line,) = store.running_lines()
    assert line.startswith("enable secret 9 $9$") and "canary" not in line


def test_the_grammar_lists_itself_and_its_examples_hold() -> None:
    assert any("ip ssh version" in p for p in grammar_summary())
    assert doctest.testmod(ios_grammar).failed == 0
