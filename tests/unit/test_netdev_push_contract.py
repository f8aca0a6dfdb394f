"""Contract of the device merge with commit-confirm (:func:`merge_with_confirm`).

By default against NAPALM's own replay driver (``mock``), fed from
``tests/fixtures/netdev_push/napalm/<scenario>/``: load, compare, commit with
``revert_in``, confirm only after the verify passed, rollback when it failed, discard
when there is nothing to change. Set ``VCOPS_NAPALM_CONTRACT_DEVICE=<inventory
dir>:<device name>`` to run the non-destructive part against a real eos or junos
device: an empty merge (no difference) must commit nothing. The lab's IOS simulator
has no commit-confirm: its Netmiko path is tested on the lab
(tests/integration/test_apply_devices_lab.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from napalm import get_network_driver
from napalm.base.exceptions import CommitError

from tests.conftest import FIXTURES
from vcops.enforce.netdev_push import REVERT_IN, merge_with_confirm

REPLAY = FIXTURES / "netdev_push" / "napalm"
LINES = "ip ssh version 2\nno ip http server\n"


def replay(scenario: str) -> tuple[Callable[[], Any], list[Any]]:
    mock = get_network_driver("mock")
    made: list[Any] = []

    def factory() -> Any:
        driver = mock("r1", "admin", "unused", optional_args={"path": str(REPLAY / scenario)})
        made.append(driver)
        return driver

    return factory, made


class Commits:
    """Records what the session looked like when verify ran."""

    def __init__(self, made: list[Any], answer: str | None) -> None:
        self.made, self.answer, self.pending_at_verify = made, answer, None

    def __call__(self) -> str | None:
        self.pending_at_verify = self.made[0].has_pending_commit()
        return self.answer


def test_commit_with_revert_in_then_confirm_after_verify() -> None:
    factory, made = replay("commit-confirm")
    verify = Commits(made, None)
    outcome = merge_with_confirm(factory, LINES, verify)
    assert outcome.pushed and outcome.verified and not outcome.rolled_back
    session = made[0]
    assert session.calls == {
        "load_merge_candidate": 1,
        "compare_config": 1,
        "commit_config": 1,
        "confirm_commit": 1,
    }
    assert verify.pending_at_verify is True  # verified while the timer still ran
    assert not session.has_pending_commit() and not session.opened


def test_a_failed_verify_rolls_back_and_never_confirms() -> None:
    factory, made = replay("verify-fails")
    outcome = merge_with_confirm(factory, LINES, lambda: "VC-NET-001 fail")
    assert outcome.pushed and outcome.rolled_back and not outcome.verified
    assert outcome.error == "VC-NET-001 fail"
    session = made[0]
    assert "confirm_commit" not in session.calls
    assert not session.has_pending_commit()  # rollback() cleared the pending commit
    assert outcome.notes == ["rolled back the unconfirmed commit"]


def test_nothing_to_merge_discards_and_commits_nothing() -> None:
    factory, made = replay("no-diff")
    outcome = merge_with_confirm(factory, LINES, lambda: None)
    assert not outcome.pushed and outcome.verified
    assert made[0].calls == {"load_merge_candidate": 1, "compare_config": 1, "discard_config": 1}


def test_a_refused_commit_raises_for_the_caller_to_report() -> None:
    factory, made = replay("commit-refused")
    with pytest.raises(CommitError):
        merge_with_confirm(factory, LINES, lambda: None)
    assert "confirm_commit" not in made[0].calls and not made[0].opened


def test_the_timer_is_the_default_revert() -> None:
    assert REVERT_IN == 300


REAL = os.environ.get("VCOPS_NAPALM_CONTRACT_DEVICE")


@pytest.mark.skipif(not REAL, reason="set VCOPS_NAPALM_CONTRACT_DEVICE=<inventory>:<device>")
def test_real_device_empty_merge_commits_nothing() -> None:
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
    outcome = merge_with_confirm(lambda: napalm_driver(target), "", lambda: None)
    assert not outcome.pushed
