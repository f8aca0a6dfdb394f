"""What a site worker answers for a snapshot (or an apply) is data: the controller checks
it names the target it was asked about, of its kind, and only paths inside that
target's folder (pure)."""

from __future__ import annotations

import pytest

from vcops.inventory.models import Device, Server
from vcops.workers_apply import _read as apply_read
from vcops.workers_snapshot import _read

SERVER = Server(name="h00", address="127.0.0.1", roles=["kamailio"], site="s1", environment="lab")


def _answer(name: str = "h00", files: dict[str, str] | None = None) -> dict[str, object]:
    snap = {
        "name": name,
        "kind": "server",
        "via": "ssh",
        "files": files if files is not None else {"files/etc/ssh/sshd_config": "Port 22\n"},
    }
    row = {"name": "h00", "kind": "server", "status": "unchanged", "via": "ssh", "files": 1}
    return {"snapshot": snap, "row": row}


def test_a_sane_answer_is_read() -> None:
    snap, row = _read(SERVER, _answer())
    assert snap is not None and snap.files == {"files/etc/ssh/sshd_config": "Port 22\n"}
    assert row.status == "unchanged"


@pytest.mark.parametrize(
    "answer",
    [
        _answer(name="h01"),
        _answer(files={"../h01/files/etc/passwd": "x"}),
        _answer(files={".git/config": "x"}),
        _answer(files={"files/../../x": "x"}),
        _answer(files={"/etc/passwd": "x"}),
        {"snapshot": None, "row": {"name": "h00", "kind": "server", "status": "unchanged"}},
        {"snapshot": None, "row": {"name": "h01", "kind": "server", "status": "failed"}},
    ],
)
def test_an_answer_about_another_host_or_outside_its_folder_is_refused(
    answer: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        _read(SERVER, answer)


def test_a_failed_host_comes_back_failed() -> None:
    row = {"name": "h00", "kind": "server", "status": "unreachable", "error": "refused"}
    snap, got = _read(SERVER, {"snapshot": None, "row": row})
    assert snap is None and got.status == "unreachable" and got.error == "refused"


SWITCH = Device.model_validate(
    {
        "name": "sw00",
        "address": "127.0.0.1",
        "platform": "ios",
        "transport": "netmiko",
        "site": "s1",
        "environment": "lab",
        "credentials": {"username": "vcops", "password_env": "SW_PASSWORD"},
    }
)


def _device_answer(files: dict[str, str], kind: str = "device") -> dict[str, object]:
    snap = {"name": "sw00", "kind": kind, "via": "netmiko", "files": files}
    row = {"name": "sw00", "kind": "device", "status": "unchanged", "via": "netmiko", "files": 1}
    return {"snapshot": snap, "row": row}


def test_a_devices_answer_holds_only_its_two_configs() -> None:
    snap, row = _read(SWITCH, _device_answer({"running-config.txt": "hostname sw00\n"}))
    assert snap is not None and row.kind == "device"
    for bad in (
        _device_answer({"files/etc/passwd": "x"}),
        _device_answer({"../h00/running-config.txt": "x"}),
        _device_answer({"running-config.txt": "x"}, kind="server"),
    ):
        with pytest.raises(ValueError):
            _read(SWITCH, bad)
    # a refusal that did not know the name was a device still reads as the device's
    failed = {"name": "sw00", "kind": "server", "status": "failed", "error": "no key"}
    none, got = _read(SWITCH, {"snapshot": None, "row": failed})
    assert none is None and got.kind == "device" and got.status == "failed"


def test_a_devices_apply_answer_is_of_its_kind() -> None:
    ok = apply_read(SWITCH, {"outcome": {"name": "sw00", "kind": "device", "status": "changed"}})
    assert ok.kind == "device"
    refused = apply_read(SWITCH, {"outcome": {"name": "sw00", "status": "failed", "reason": "x"}})
    assert refused.kind == "device" and refused.reason == "x"
    claimed = {"name": "sw00", "kind": "server", "status": "changed", "changes": ["x"]}
    with pytest.raises(ValueError):
        apply_read(SWITCH, {"outcome": claimed})
    with pytest.raises(ValueError):
        apply_read(SERVER, {"outcome": {"name": "sw00", "kind": "device", "status": "changed"}})
