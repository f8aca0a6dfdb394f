"""Devices in windows: baseline windows only, redundancy groups batch them apart, and a
device names only redundancy groups the inventory defines."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from vcops.errors import InventoryError, WindowError
from vcops.inventory import load_inventory
from vcops.store import open_store
from vcops.window.model import HostPlan
from vcops.window.plan import build_plan
from vcops.window.rules import plan_batches


def test_devices_take_baseline_windows_only(tmp_path: Path) -> None:
    inventory = load_inventory(REPO / "inventory")
    store = open_store(f"sqlite:///{tmp_path / 'vcops.db'}", tmp_path)
    for actions in ("security-updates", "all-updates"):
        with pytest.raises(WindowError, match="baseline windows only"):
            build_plan(inventory, list(inventory.devices), actions, store, mask_key=b"k" * 32)
    with pytest.raises(WindowError, match="baseline windows only"):  # no key: no masked plan
        build_plan(inventory, list(inventory.devices), "baseline", store)


def test_two_switches_of_one_redundancy_group_go_in_separate_batches() -> None:
    hosts = [
        HostPlan(target="sw1", environment="lab", redundancy_group="core"),
        HostPlan(target="sw2", environment="lab", redundancy_group="core"),
        HostPlan(target="rtr", environment="lab", redundancy_group=None),
    ]
    assert plan_batches(hosts, 3) == [["sw1", "rtr"], ["sw2"]]


def test_a_device_redundancy_group_must_exist(tmp_path: Path) -> None:
    root = tmp_path / "inventory"
    root.mkdir()
    (root / "inv.yml").write_text(
        "sites: [{name: s1}]\n"
        "devices:\n"
        "  - {name: sw1, address: 192.0.2.1, platform: ios, site: s1, environment: lab,\n"
        "     redundancy_group: core, credentials: {username: u, password_env: P}}\n"
    )
    with pytest.raises(InventoryError, match="redundancy group"):
        load_inventory(root)
