"""The Ansible side of device enforcement: the vcops_netdev role, its module and the
inventory vcops writes for it (the lab test runs it against the switches)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO
from vcops.enforce.ansible import NETWORK_PLAYBOOK, render_device_inventory
from vcops.inventory import load_inventory

ROLE = REPO / "roles" / "vcops_netdev"


def test_devices_run_on_the_controller_with_vcops_python(tmp_path: Path) -> None:
    inventory = load_inventory(REPO / "inventory")
    doc = render_device_inventory(inventory, inventory.devices, tmp_path / "k")
    hosts = doc["all"]["children"]["devices"]["hosts"]  # type: ignore[index, call-overload]
    assert set(hosts) == {d.name for d in inventory.devices}
    for entry in hosts.values():
        assert entry["ansible_connection"] == "local"
        assert entry["ansible_python_interpreter"] == sys.executable
        assert entry["vcops_netdev_inventory_dir"] == str(inventory.root)
        assert not any("password" in key for key in entry)


def test_role_variables_match_argument_specs_and_the_module_is_check_mode_safe() -> None:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = set(specs["argument_specs"]["main"]["options"])
    defaults = set(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))
    assert options == defaults == {"vcops_netdev_inventory_dir", "vcops_netdev_mask_key_file"}
    tasks = (ROLE / "tasks" / "main.yml").read_text()
    assert all(f"{{{{ {name} }}}}" in tasks for name in options)
    module = (ROLE / "library" / "vcops_netdev.py").read_text()
    tree = ast.parse(module)
    assert "supports_check_mode=True" in module and "run_devices" in module
    assert {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} >= {"AnsibleModule"}
    play = yaml.safe_load(NETWORK_PLAYBOOK.read_text())[0]
    assert play["hosts"] == "devices" and play["connection"] == "local"
    assert play["roles"] == [{"role": "vcops_netdev"}]
