"""The control catalog: every control vcops checks, by id, in a stable order."""

from __future__ import annotations

from collections.abc import Iterable

from vcops.baseline.context import DeviceContext, ServerContext
from vcops.baseline.model import Control
from vcops.baseline.network import NETWORK_CONTROLS, DeviceFacts
from vcops.baseline.server_catalog import SERVER_CONTROLS
from vcops.baseline.voip_catalog import VOIP_CONTROLS
from vcops.errors import VcopsError
from vcops.facts.server import ServerFacts

ServerControl = Control[ServerFacts, ServerContext]
DeviceControl = Control[DeviceFacts, DeviceContext]
AnyControl = ServerControl | DeviceControl

SERVER_CATALOG: list[ServerControl] = [*SERVER_CONTROLS, *VOIP_CONTROLS]
DEVICE_CATALOG: list[DeviceControl] = list(NETWORK_CONTROLS)


class UnknownControl(VcopsError):
    """No control has that id."""


def all_controls() -> list[AnyControl]:
    return [*SERVER_CATALOG, *DEVICE_CATALOG]


def get_control(control_id: str) -> AnyControl:
    """The control with this id (case-insensitive).

    Raises:
        UnknownControl: with the closest ids as a hint.
    """
    wanted = control_id.strip().upper()
    for control in all_controls():
        if control.id == wanted:
            return control
    import difflib

    close = difflib.get_close_matches(wanted, [c.id for c in all_controls()], n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see `vcops baseline list`"
    raise UnknownControl(f"no control {control_id!r}; {hint}")


def controls_for(labels: Iterable[str], catalog: list[ServerControl]) -> list[ServerControl]:
    """The server controls that apply to a host with these roles."""
    roles = set(labels)
    return [c for c in catalog if c.applies(roles)]


def check_catalog() -> None:
    """Ids are unique (a test calls this)."""
    ids = [c.id for c in all_controls()]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise AssertionError(f"duplicate control ids: {sorted(duplicates)}")
