"""The inventory ansible-playbook is handed, and the playbook's syntax."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from vcops.enforce.ansible import (
    ANSIBLE_CFG,
    render_ansible_inventory,
)
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
