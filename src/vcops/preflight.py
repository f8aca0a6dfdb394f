"""What ``vcops inventory check`` verifies beyond the loader, so that ``ping``, ``scan``
and ``apply`` meet no problem the check could have named.

- the files the inventory names: ``key_file``, ``known_hosts_file`` and every device's
  ``password_file`` exist and are readable (problems), and secrets are not group- or
  world-readable (warnings);
- every server's ``window_*`` and every target's ``baseline_*`` variables, validated as
  the window runner and the baseline validate them (types, ranges, unit names);
- a target without any management network (a warning: the firewall baseline then
  allows SSH from nowhere but the controller).

Example::

    problems, warnings = preflight(inventory)
    # problems: [Problem("inventory/settings.yml", "settings.ssh.key_file",
    #             "~/.ssh/vcops_ed25519 does not exist", "create it or fix the path ...")]
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from vcops.baseline.settings import settings_for
from vcops.errors import InventoryError, Problem
from vcops.inventory.models import Device, Inventory, Server
from vcops.window.remote import host_settings


def preflight(inventory: Inventory) -> tuple[list[Problem], list[Problem]]:
    """Every problem (exit 2) and every warning in a loaded inventory (reads files only)."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    where = str(inventory.root)
    ssh = inventory.settings.ssh
    if ssh.key_file:
        _check_file(inventory, ssh.key_file, "settings.ssh.key_file", problems, warnings)
    if ssh.known_hosts_file:
        _check_file(
            inventory, ssh.known_hosts_file, "settings.ssh.known_hosts_file", problems, None
        )
    elif inventory.servers or inventory.devices:
        warnings.append(
            Problem(
                where,
                "settings.ssh.known_hosts_file",
                "not set: host keys are checked against ~/.ssh/known_hosts",
                "pin the fleet's host keys in a file of the inventory (known_hosts_file: known_hosts)",
            )
        )
    for device in inventory.devices:
        if device.credentials.password_file:
            _check_file(
                inventory,
                device.credentials.password_file,
                f"device {device.name}: credentials.password_file",
                problems,
                warnings,
            )
    for target in inventory.targets:
        problems += _check_vars(inventory, target)
        if not inventory.management_networks(target):
            warnings.append(
                Problem(
                    where,
                    f"{target.kind} {target.name}",
                    "no management network declared (settings.management_networks "
                    f"or site {target.site})",
                    "declare the networks SSH may come from; the firewall baseline allows "
                    "SSH only from them",
                )
            )
    return problems, warnings


def _check_file(
    inventory: Inventory,
    value: str,
    entry: str,
    problems: list[Problem],
    warnings: list[Problem] | None,
) -> None:
    """``value`` (relative to the inventory directory) exists and is readable; a secret
    (``warnings`` given) is readable by its owner only."""
    path = inventory.resolve_path(value)
    where = str(inventory.root)
    shown = f"{value}" if str(path) == value else f"{value} ({path})"
    if not path.exists():
        problems.append(
            Problem(
                where,
                entry,
                f"{shown} does not exist",
                "create it or fix the path (relative paths start at the inventory directory)",
            )
        )
        return
    if not path.is_file() or not os.access(path, os.R_OK):
        problems.append(
            Problem(where, entry, f"{shown} is not a readable file", f"chmod u+r {path}")
        )
        return
    if warnings is not None:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                Problem(
                    where,
                    entry,
                    f"{shown} is readable by others (mode {mode:04o})",
                    f"chmod 600 {path}",
                )
            )


def _check_vars(inventory: Inventory, target: Server | Device) -> list[Problem]:
    """The target's ``baseline_*`` (and, for a server, ``window_*``) variables."""
    found: list[Problem] = []
    host_vars = inventory.host_vars(target)
    label = f"{target.kind} {target.name}"
    checks: list[Callable[[], object]] = [
        lambda: settings_for(host_vars, where=str(inventory.root))
    ]
    if isinstance(target, Server):
        server = target
        checks.append(lambda: host_settings(server, host_vars))
    for check in checks:
        try:
            check()
        except InventoryError as exc:
            for problem in exc.problems:
                entry = "" if problem.entry == target.name else problem.entry
                if not entry.startswith(label):
                    entry = f"{label}: {entry}" if entry else label
                found.append(Problem(str(inventory.root), entry, problem.message, problem.fix))
    return found
