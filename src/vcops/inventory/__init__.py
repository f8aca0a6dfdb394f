"""The inventory: models, loading with full error reports, ``--limit`` selection, exports."""

from __future__ import annotations

from vcops.inventory.export import (
    render_export,
    to_ansible_dict,
    to_ansible_json,
    to_pyinfra_module,
)
from vcops.inventory.load import load_inventory
from vcops.inventory.models import (
    ROLES,
    BoardMember,
    Device,
    Inventory,
    Server,
    Target,
)
from vcops.inventory.select import select_targets

__all__ = [
    "ROLES",
    "BoardMember",
    "Device",
    "Inventory",
    "Server",
    "Target",
    "load_inventory",
    "render_export",
    "select_targets",
    "to_ansible_dict",
    "to_ansible_json",
    "to_pyinfra_module",
]
