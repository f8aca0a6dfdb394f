"""The inventory ansible-playbook is handed, the playbook's syntax, and the strategy
(Mitogen by default) it runs with."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import vcops.enforce.ansible as ansible_module
from vcops.enforce.ansible import (
    ANSIBLE_CFG,
    ansible_env,
    render_ansible_inventory,
    strategy_env,
)
from vcops.errors import CommandError, InventoryError
from vcops.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]


def test_the_inventory_pins_known_hosts_and_carries_the_role_vars() -> None:
    inventory = load_inventory(REPO / "inventory")
    servers = list(inventory.servers)[:2]
    data = render_ansible_inventory(inventory, servers)
    hosts = data["all"]["children"]["servers"]["hosts"]  # type: ignore[index, call-overload]
    for server in servers:
        entry = hosts[server.name]
        assert "StrictHostKeyChecking=yes" in entry["ansible_ssh_common_args"]
        if inventory.settings.ssh.known_hosts_file:
            assert "UserKnownHostsFile=" in entry["ansible_ssh_common_args"]
        assert entry["vcops_roles"] == list(server.roles)
        assert entry["vcops_ssh_max_auth_tries"] >= 1
        assert "inventory_hostname" not in entry
        assert isinstance(entry["vcops_firewall_ssh_sources_v4"], list)


def test_the_playbook_passes_syntax_check_with_a_vcops_inventory(tmp_path: Path) -> None:
    inventory = load_inventory(REPO / "inventory")
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(render_ansible_inventory(inventory, list(inventory.servers))))
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--syntax-check",
            "-i",
            str(inv),
            str(REPO / "deploys" / "site.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_CFG)},
        cwd=str(REPO),
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_mitogen_is_the_default_strategy_and_points_at_the_shipped_plugin(tmp_path: Path) -> None:
    """The engine and Molecule's scenario load ``mitogen_linear`` from the same file."""
    inventory = load_inventory(REPO / "inventory")
    assert inventory.settings.ansible.strategy == "mitogen"
    env = ansible_env(tmp_path, "mitogen")
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    plugins = Path(env["ANSIBLE_STRATEGY_PLUGINS"])
    assert plugins.resolve() == (REPO / "plugins" / "strategy").resolve()
    assert (plugins / "mitogen_linear.py").is_file()
    molecule = yaml.safe_load((REPO / "molecule" / "default" / "molecule.yml").read_text())
    defaults = molecule["provisioner"]["config_options"]["defaults"]
    assert defaults["strategy"] == env["ANSIBLE_STRATEGY"]
    assert defaults["strategy_plugins"] == "${MOLECULE_PROJECT_DIRECTORY}/plugins/strategy"
    linear = ansible_env(tmp_path / "l", "linear")
    assert "ANSIBLE_STRATEGY" not in linear and "ANSIBLE_STRATEGY_PLUGINS" not in linear
    assert strategy_env("linear") == {}


def test_a_missing_mitogen_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ansible_module, "find_spec", lambda _name: None)
    with pytest.raises(CommandError, match="strategy: linear"):
        strategy_env("mitogen")


def test_the_strategy_setting_takes_linear_and_refuses_anything_else(tmp_path: Path) -> None:
    root = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory", root)
    main = next(p for p in root.glob("*.yml") if "settings" in yaml.safe_load(p.read_text()))
    doc = yaml.safe_load(main.read_text())
    doc["settings"]["ansible"] = {"strategy": "linear"}
    main.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert load_inventory(root).settings.ansible.strategy == "linear"
    doc["settings"]["ansible"] = {"strategy": "free"}
    main.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(InventoryError, match="strategy"):
        load_inventory(root)


def test_a_play_runs_with_the_real_mitogen_strategy(tmp_path: Path) -> None:
    """The contract with Mitogen itself: this ansible-core loads mitogen_linear from the
    plugins strategy_env names and runs a task with it (on the controller, local): the
    task's parent is Mitogen's named interpreter, not an AnsiballZ module file."""
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.shell: ps -o args= -p $PPID\n      register: out\n"
        "    - ansible.builtin.debug: {var: out.stdout}\n"
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c",
         "local", "-e", f"ansible_python_interpreter={sys.executable}", str(play)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **strategy_env("mitogen"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "t"),
             "ANSIBLE_REMOTE_TEMP": str(tmp_path / "r"), "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    parent = next(line for line in done.stdout.splitlines() if '"out.stdout"' in line)
    assert "(mitogen:" in parent and "AnsiballZ" not in parent, parent
