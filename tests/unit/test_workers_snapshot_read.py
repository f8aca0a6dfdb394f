"""What a site worker answers for a snapshot is data: the controller checks it names the
host it was asked about and only paths inside that host's folder (pure)."""

from __future__ import annotations

import pytest

from vcops.inventory.models import Server
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
