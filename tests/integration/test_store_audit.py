"""The audit log on real SQLite: tampering is caught, concurrent writers keep one chain."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from vcops.audit import Anchor
from vcops.cli import main
from vcops.store import open_store


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VCOPS_DATABASE_URL", raising=False)
    monkeypatch.delenv("VCOPS_CONFIG", raising=False)
    store = open_store(f"sqlite:///{tmp_path / '.vcops' / 'vcops.db'}", tmp_path / ".vcops")
    for i in range(5):
        store.audit("test.step", f"host-{i}", {"i": i})
    return tmp_path / ".vcops"


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify"])
    return code, capsys.readouterr().out


def test_intact_log_verifies_and_lists(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(capsys)
    assert code == 0 and "audit log intact: 5 entries" in out
    assert main(["audit", "log", "--json", "--last", "2"]) == 0
    assert '"target": "host-4"' in capsys.readouterr().out


def test_an_edited_row_is_named(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(state / "vcops.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 3")
    code, out = _verify(capsys)
    assert code == 1 and "entry 3 was edited" in out


def test_a_deleted_row_is_named(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(state / "vcops.db") as db:
        db.execute("DELETE FROM audit_log WHERE id = 2")
    code, out = _verify(capsys)
    assert code == 1 and "entry 2 is missing" in out


def test_a_deleted_tail_is_caught_by_the_anchor(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(state / "vcops.db") as db:
        db.execute("DELETE FROM audit_log WHERE id >= 4")
    code, out = _verify(capsys)
    assert code == 1 and "entries 4 to 5 were deleted" in out


def test_concurrent_writers_keep_one_chain(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = (
        "import sys; from pathlib import Path; from vcops.store import open_store\n"
        "s = open_store(sys.argv[1], Path(sys.argv[2]))\n"
        "for i in range(40): s.audit('race', sys.argv[3], {'i': i})\n"
    )
    url = f"sqlite:///{state / 'vcops.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url, str(state), f"w{n}"]) for n in range(6)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    rc, out = _verify(capsys)
    assert rc == 0 and "245 entries" in out


def test_the_database_url_password_is_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "VCOPS_DATABASE_URL", "postgresql+psycopg://vcops:s3cr3t-canary@127.0.0.1:1/vcops"
    )
    code = main(["audit", "log"])
    _, err = capsys.readouterr()
    assert code in {1, 2} and "s3cr3t-canary" not in err and "vcops: error: database" in err


def test_anchor_writers_racing_never_fail_and_never_move_it_back(state: Path) -> None:
    """Several processes append at once (a timer's scan, a window runner, an operator):
    each moves the anchor, none may trip over another's temporary file."""
    store = open_store(f"sqlite:///{state / 'vcops.db'}", state)
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, 1200, 4):
                store._write_anchor(Anchor(id=i, hash=f"{i:064x}"))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    anchor = store.read_anchor()
    assert anchor is not None and anchor.id == 1199
