#!/usr/bin/python
"""Ansible module: enforce the vcops VC-NET baseline on one network device.

It runs on the controller (``connection: local``) with the Python vcops is installed
in, and calls the same code as ``vcops apply`` (vcops.enforce.netdev_apply): the
device's running config judged by the VC-NET controls, the intended config rendered
from templates/netdev/<platform>/, remediation and rollback computed by hier-config,
pushed with commit-confirm (eos, junos on NAPALM) or Netmiko, verified from a fresh
login and rolled back on failure. Check mode computes the plan and returns it as the
diff; nothing is pushed. Every line returned is masked as vcops snapshots mask secrets.
"""

from __future__ import annotations

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: vcops_netdev
short_description: Enforce the vcops VC-NET baseline on a network device
description:
  - Plans remediation and rollback with hier-config from the device's running config
    and the vcops intended config, and pushes it with a safety net (commit-confirm or
    Netmiko, verify, rollback). Supports check mode (the remediation is the diff).
options:
  inventory_dir:
    description: The vcops inventory directory naming the device.
    type: path
    required: true
  device:
    description: The device's name in that inventory.
    type: str
    required: true
  mask_key_file:
    description: The vcops snapshot masking key (shown lines carry its markers).
    type: path
    required: true
author: vcops
"""

RETURN = r"""
remediation:
  description: The lines pushed (or that would be), secrets masked.
  type: list
  elements: str
  returned: always
rollback:
  description: The lines that undo them, secrets masked.
  type: list
  elements: str
  returned: always
controls:
  description: The VC-NET controls the plan closes.
  type: list
  elements: str
  returned: always
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "inventory_dir": {"type": "path", "required": True},
            "device": {"type": "str", "required": True},
            "mask_key_file": {"type": "path", "required": True, "no_log": False},
        },
        supports_check_mode=True,
    )
    try:
        from vcops.enforce.netdev_apply import run_devices
        from vcops.errors import VcopsError
        from vcops.inventory import load_inventory
        from vcops.inventory.models import Device
    except ImportError as exc:
        module.fail_json(msg=f"vcops is not importable by {module._name}'s Python: {exc}")
        return
    try:
        inventory = load_inventory(Path(module.params["inventory_dir"]))
        device = inventory.target(module.params["device"])
        key = Path(module.params["mask_key_file"]).read_bytes()
    except (VcopsError, OSError) as exc:
        module.fail_json(msg=str(exc).splitlines()[0])
        return
    if not isinstance(device, Device):
        module.fail_json(msg=f"{module.params['device']} is not a network device")
        return
    (outcome,) = run_devices(inventory, [device], key=key, check=module.check_mode)
    result = {
        "changed": outcome.status == "changed",
        "remediation": outcome.remediation,
        "rollback": outcome.rollback,
        "controls": outcome.controls,
        "notes": outcome.notes,
        "rolled_back": outcome.rolled_back,
        "msg": outcome.reason,
        "diff": {"before": "", "after": "\n".join(outcome.remediation) + "\n"}
        if outcome.remediation and outcome.status == "changed"
        else {},
    }
    if outcome.status in ("failed", "unreachable"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
