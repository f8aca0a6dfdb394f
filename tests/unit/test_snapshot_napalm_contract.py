"""Contract of the NAPALM replace path (:func:`vcops.snapshot.devices.replace_config`).

By default the suite runs against NAPALM's own replay driver (``mock``), fed from
``tests/fixtures/snapshot/napalm/<scenario>/``. Set
``VCOPS_NAPALM_CONTRACT_DEVICE=<inventory dir>:<device name>`` to run the
non-destructive part against a real device as well: a check (compare, then discard)
and a replace with the device's own running config, which must change nothing.
The lab's fake-switches cannot load a replace candidate at all; that contract (the
honest fallback to the Netmiko line merge) is tested on the lab in
tests/integration/test_snapshot_lab.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from napalm import get_network_driver

from tests.conftest import FIXTURES
from vcops.errors import CommandError
from vcops.snapshot.devices import ReplaceUnsupported, replace_config

REPLAY = FIXTURES / "snapshot" / "napalm"
CONFIG = (
    "hostname lab-sw-01\n!\ninterface Vlan213\n standby 1 authentication canary-after\n!\nend\n"
)


def replay(scenario: str, *, probe_fails: bool = False) -> tuple[Callable[[], Any], list[Any]]:
    """A driver factory over the replay data; the first driver is the session, later ones probes."""
    mock = get_network_driver("mock")
    made: list[Any] = []

    def factory() -> Any:
        options = {"path": str(REPLAY / scenario), "fail_on_open": probe_fails and bool(made)}
        driver = mock("lab-sw-01", "admin", "unused", optional_args=options)
        made.append(driver)
        return driver

    return factory, made


def test_replace_commits_with_commit_confirm_and_confirms_after_a_second_session() -> None:
    factory, made = replay("commit-confirm")
    outcome = replace_config(factory, CONFIG, check=False)
    assert outcome.committed and outcome.confirmed and outcome.notes == []
    assert "+hostname lab-sw-01" in outcome.diff
    session, probe = made
    assert session.calls == {
        "load_replace_candidate": 1,
        "compare_config": 1,
        "commit_config": 1,
        "confirm_commit": 1,
    }
    assert not session.has_pending_commit()
    assert probe.calls == {"get_config": 1}
    assert not session.opened and not probe.opened  # both sessions closed


def test_without_commit_confirm_it_commits_plainly_and_says_so() -> None:
    factory, made = replay("no-commit-confirm")
    outcome = replace_config(factory, CONFIG, check=False)
    assert outcome.committed and not outcome.confirmed
    assert "no commit-confirm" in outcome.notes[0]
    assert made[0].calls["commit_config"] == 2


def test_check_compares_then_discards() -> None:
    factory, made = replay("check")
    outcome = replace_config(factory, CONFIG, check=True)
    assert not outcome.committed and outcome.diff
    assert made[0].calls == {"load_replace_candidate": 1, "compare_config": 1, "discard_config": 1}


def test_no_difference_commits_nothing() -> None:
    factory, made = replay("no-diff")
    outcome = replace_config(factory, CONFIG, check=False)
    assert not outcome.committed and outcome.diff == ""
    assert "commit_config" not in made[0].calls


def test_a_driver_that_cannot_load_a_candidate_changes_nothing() -> None:
    factory, made = replay("unsupported")
    with pytest.raises(ReplaceUnsupported, match="ReplaceConfigException"):
        replace_config(factory, CONFIG, check=False)
    assert made[0].calls == {"load_replace_candidate": 1}


def test_a_device_silent_after_the_commit_is_rolled_back() -> None:
    factory, made = replay("probe-fails", probe_fails=True)
    with pytest.raises(CommandError, match="rolled back"):
        replace_config(factory, CONFIG, check=False)
    session = made[0]
    assert session.calls.get("confirm_commit") is None
    assert not session.has_pending_commit()  # rollback() cleared it


# -- the same contract against a real device, when one is named -----------------------

REAL = os.environ.get("VCOPS_NAPALM_CONTRACT_DEVICE")


@pytest.mark.skipif(not REAL, reason="set VCOPS_NAPALM_CONTRACT_DEVICE=<inventory>:<device>")
def test_real_device_check_and_a_no_op_replace() -> None:
    from vcops.connectors.netdev import DeviceTarget
    from vcops.inventory import load_inventory
    from vcops.inventory.models import Device
    from vcops.snapshot.devices import napalm_driver

    assert REAL is not None
    directory, _, name = REAL.rpartition(":")
    inventory = load_inventory(Path(directory))
    device = inventory.target(name)
    assert isinstance(device, Device)
    target = DeviceTarget.from_inventory(inventory, device)
    conn = napalm_driver(target)
    conn.open()
    try:
        running = conn.get_config(retrieve="running")["running"]
    finally:
        conn.close()
    try:
        outcome = replace_config(lambda: napalm_driver(target), running, check=True)
    except ReplaceUnsupported:
        pytest.skip(f"{name}: the driver cannot load a replace candidate on this device")
    assert not outcome.committed
    same = replace_config(lambda: napalm_driver(target), running, check=False)
    assert not same.committed, "replacing a config with itself must change nothing"
