"""Ansible inventory plugin: read a vcops inventory directory with vcops's own loader.

Ansible then sees exactly the hosts, groups and variables that vcops and pyinfra see,
with the same validation (an invalid inventory fails with every problem listed), plus
every server's ``vcops_<area>_*`` role variables (vcops.enforce.vars.role_vars, as
``vcops apply --engine ansible`` passes them), so ``ansible-playbook deploys/site.yml``
by hand enforces the same values.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

DOCUMENTATION = r"""
name: vcops
short_description: the vcops inventory (inventory/*.yml) as an Ansible inventory
description:
  - Loads a vcops inventory directory through vcops.inventory and exposes its servers and
    devices with the groups vcops derives (role_*, site_*, env_*, rg_*, patch_*, platform_*,
    and the inventory's own groups) and the same resolved variables as the pyinfra export.
options:
  plugin:
    description: Must be C(vcops).
    required: true
    choices: [vcops]
  inventory_dir:
    description:
      - The vcops inventory directory, relative to this configuration file.
      - C(VCOPS_INVENTORY) overrides it.
    type: str
    default: ../inventory
    env:
      - name: VCOPS_INVENTORY
"""

EXAMPLES = r"""
# deploys/inventory.vcops.yml
plugin: vcops
inventory_dir: ../inventory
"""


class InventoryModule(BaseInventoryPlugin):  # type: ignore[misc]
    """The ``vcops`` inventory plugin."""

    NAME = "vcops"

    def verify_file(self, path: str) -> bool:
        return bool(super().verify_file(path)) and path.endswith(("vcops.yml", "vcops.yaml"))

    def parse(self, inventory: object, loader: object, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        directory = os.environ.get("VCOPS_INVENTORY") or self.get_option("inventory_dir")
        if not os.path.isabs(directory):
            directory = os.path.join(os.path.dirname(os.path.abspath(path)), directory)
        try:
            from pathlib import Path

            from vcops.enforce.ansible import ansible_role_vars
            from vcops.errors import InventoryError
            from vcops.inventory import load_inventory, to_ansible_json
        except ImportError as exc:
            raise AnsibleParserError(
                f"vcops is not importable from Ansible's Python ({exc}); "
                "run ansible from the vcops virtualenv"
            ) from exc
        try:
            loaded = load_inventory(Path(directory))
            data = to_ansible_json(loaded)
            # the baseline's vcops_<area>_* role variables, as `vcops apply` passes them
            role_vars = {s.name: ansible_role_vars(loaded, s) for s in loaded.servers}
        except InventoryError as exc:
            problems = "\n".join(f"  {p}" for p in exc.problems)
            raise AnsibleParserError(
                f"vcops inventory {directory} is invalid:\n{problems}"
            ) from exc
        for group, body in data.items():
            if group in {"_meta", "all", "ungrouped"} or not isinstance(body, dict):
                continue
            self.inventory.add_group(group)
            for host in body.get("hosts", []):
                self.inventory.add_host(host, group=group)
        hostvars = data["_meta"]["hostvars"]  # type: ignore[index, call-overload]
        for host, variables in hostvars.items():
            self.inventory.add_host(host)
            for key, value in {**variables, **role_vars.get(host, {})}.items():
                self.inventory.set_variable(host, key, value)
