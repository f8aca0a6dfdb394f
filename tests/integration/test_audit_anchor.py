"""The signed audit anchor on real SQLite, real ssh-keygen and a real syslog socket: a
forged head (rewritten chain, rolled-back database, rows appended behind the
controller's back) is refused by the next append and the anchor never follows it; a
missing anchor fails verification until an operator re-anchors with a recorded reason;
an unreadable row is named, never an internal error."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from vcops.audit import GENESIS, entry_hash, time_text
from vcops.cli import main
from vcops.store import open_store


@pytest.fixture
def syslog(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A real syslog datagram socket (what journald listens on at /dev/log)."""
    directory = tempfile.mkdtemp(prefix="vcops-log-", dir="/tmp")
    path = Path(directory) / "log"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("VCOPS_SYSLOG_SOCKET", str(path))
    yield sock
    sock.close()
    shutil.rmtree(directory)


def received(sock: socket.socket) -> list[str]:
    lines = []
    while True:
        try:
            lines.append(sock.recv(65536).decode())
        except BlockingIOError:
            return lines


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syslog: socket.socket) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("VCOPS_DATABASE_URL", "VCOPS_CONFIG", "VCOPS_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    store = open_store(f"sqlite:///{tmp_path / '.vcops' / 'vcops.db'}", tmp_path / ".vcops")
    for i in range(5):
        store.audit("test.step", f"host-{i}", {"i": i})
    received(syslog)
    return tmp_path / ".vcops"


def anchor_file(state: Path) -> Path:
    """This database's anchor (one file per database in the state directory)."""
    found = open_store(f"sqlite:///{state / 'vcops.db'}", state).anchor_file
    assert found is not None
    return found


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def append_through_the_cli(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """One ordinary audited command (a scheduled run records its start first)."""
    code, _out, err = run(capsys, "schedule", "run", "probe", "--", "--version")
    return code, err


def rewrite_chain(db: Path, from_id: int, actor: str) -> None:
    """What an attacker with the database does: edit rows and recompute every hash
    (over each time's one hashed text form, the public :func:`time_text`)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, ts, actor, action, target, detail FROM audit_log ORDER BY id"
        ).fetchall()
        prev = GENESIS
        for id_, ts, old_actor, action, target, detail in rows:
            who = actor if id_ >= from_id else old_actor
            hashed = time_text(datetime.fromisoformat(ts))
            digest = entry_hash(id_, hashed, who, action, target, json.loads(detail), prev)
            conn.execute(
                "UPDATE audit_log SET actor=?, prev_hash=?, hash=? WHERE id=?",
                (who, prev, digest, id_),
            )
            prev = digest


def test_a_rewritten_chain_is_refused_and_the_anchor_never_follows(
    state: Path, capsys: pytest.CaptureFixture[str], syslog: socket.socket
) -> None:
    before = anchor_file(state).read_text()
    rewrite_chain(state / "vcops.db", 3, "mallory")
    code, err = append_through_the_cli(capsys)
    assert code == 1
    assert "audit append refused (schedule.start)" in err
    assert "entry 5 is not the one this controller wrote" in err
    assert "Traceback" not in err and "internal error" not in err
    assert any("REFUSED" in line and "entry 5" in line for line in received(syslog))
    assert anchor_file(state).read_text() == before
    with sqlite3.connect(state / "vcops.db") as conn:
        assert conn.execute("SELECT max(id) FROM audit_log").fetchone() == (5,)
    # a second try, and a direct append, are refused too: the anchor never moves
    assert append_through_the_cli(capsys)[0] == 1
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 1 and "entry 5 is not the one this controller wrote" in out


def test_a_database_rolled_back_to_an_older_copy_is_refused(
    state: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = state / "vcops.db"
    with sqlite3.connect(db) as conn:  # fold the WAL in, then keep a copy with 5 entries
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(db, tmp_path / "old.db")
    store = open_store(f"sqlite:///{db}", state)
    store.audit("test.step", "host-5", {"i": 5})
    store.audit("test.step", "host-6", {"i": 6})
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(tmp_path / "old.db", db)
    code, err = append_through_the_cli(capsys)
    assert code == 1 and "ends at entry 5 but this controller wrote entry 7" in err
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 1 and "entries 6 to 7 were deleted" in out


def test_rows_appended_behind_the_controllers_back_are_refused(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(state / "vcops.db") as conn:
        prev = conn.execute("SELECT hash FROM audit_log WHERE id=5").fetchone()[0]
        ts = "2026-11-30T10:00:00+00:00"
        digest = entry_hash(6, ts, "ops", "window.approve", "W-1", {}, prev)
        conn.execute(
            "INSERT INTO audit_log VALUES (6, ?, 'ops', 'window.approve', 'W-1', '{}', ?, ?)",
            (ts, prev, digest),
        )
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 1 and "written behind its back" in out
    assert append_through_the_cli(capsys)[0] == 1


def test_a_missing_anchor_fails_until_reanchored_with_a_reason(
    state: Path, capsys: pytest.CaptureFixture[str], syslog: socket.socket
) -> None:
    anchor_file(state).unlink()
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 1 and "holds no anchor" in out and "vcops audit reanchor" in out
    code, err = append_through_the_cli(capsys)
    assert code == 1 and "holds no anchor" in err
    code, _out, err = run(capsys, "audit", "reanchor")
    assert code == 2 and "--reason" in err
    code, out, _ = run(capsys, "audit", "reanchor", "--reason", "anchor lost in a disk swap")
    assert code == 0, out
    assert any("head" in line and "id=6" in line for line in received(syslog))
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "6 entries" in out and "anchor signature verified" in out
    code, out, _ = run(capsys, "audit", "log", "--json", "--action", "audit.*")
    (entry,) = json.loads(out)
    assert entry["detail"]["reason"] == "anchor lost in a disk swap"
    assert entry["detail"]["previous_anchor"] is None
    assert entry["detail"]["head"]["id"] == 5
    assert append_through_the_cli(capsys)[0] == 0


def test_reanchoring_a_broken_chain_is_refused(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(state / "vcops.db") as conn:
        conn.execute("UPDATE audit_log SET actor='mallory' WHERE id=2")
    code, _out, err = run(capsys, "audit", "reanchor", "--reason", "trust me")
    assert code == 1 and "entry 2 was edited" in err


def test_the_anchor_is_signed_with_a_key_outside_the_database(
    state: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = state / "audit_key"
    assert key.stat().st_mode & 0o777 == 0o600
    code, out, _ = run(capsys, "audit", "key")
    assert code == 0 and out.startswith("ssh-ed25519 ")
    pinned = tmp_path / "pinned.pub"
    pinned.write_text(out)
    assert run(capsys, "audit", "verify", "--pubkey", str(pinned))[0] == 0

    # an attacker with the database and write access to the anchor (not the key):
    rewrite_chain(state / "vcops.db", 2, "mallory")
    with sqlite3.connect(state / "vcops.db") as conn:
        head = conn.execute("SELECT id, hash FROM audit_log WHERE id=5").fetchone()
    forged = json.loads(anchor_file(state).read_text())
    forged.update(id=head[0], hash=head[1])
    anchor_file(state).write_text(json.dumps(forged))
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 1 and "signature does not verify" in out
    assert append_through_the_cli(capsys)[0] == 1

    # ... who also replaces the controller's key and signs the forged anchor with it:
    key.unlink()
    (state / "audit_key.pub").unlink()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    from vcops.audit import Anchor

    store = open_store(f"sqlite:///{state / 'vcops.db'}", state)
    store._write_anchor(Anchor(id=head[0], hash=head[1]))
    assert run(capsys, "audit", "verify")[0] == 0  # the state dir alone is fooled ...
    code, out, _ = run(capsys, "audit", "verify", "--pubkey", str(pinned))
    assert code == 1 and "signature does not verify" in out  # ... the pinned key is not


def test_an_anchor_copied_from_another_database_does_not_verify(
    state: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}", state)
    other.audit("test.other", "x", {})
    assert other.anchor_file is not None and other.anchor_file != anchor_file(state)
    # the same rows and the same signed anchor, under this database's name
    for suffix in ("", "-wal", "-shm"):
        (state / f"vcops.db{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(tmp_path / "other.db", state / "vcops.db")
    shutil.copy(other.anchor_file, anchor_file(state))
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 1 and "copied from another database" in out


def test_each_new_head_goes_to_syslog(state: Path, syslog: socket.socket) -> None:
    store = open_store(f"sqlite:///{state / 'vcops.db'}", state)
    entry = store.audit("test.step", "host-9", {})
    lines = received(syslog)
    assert len(lines) == 1 and lines[0].startswith("<86>vcops-audit[")
    assert f"id={entry.id} sha256={entry.hash}" in lines[0]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("detail", "{not json", "entry 3 is unreadable: its detail is not valid JSON"),
        ("detail", "[1, 2]", "entry 3 is unreadable: its detail is not a JSON object"),
        ("ts", "2026-13-45T99:00:00+00:00", "entry 3 is unreadable: its time"),
        ("ts", 1764500000, "entry 3 is unreadable: its time '1764500000' is impossible"),
    ],
)
def test_an_unreadable_row_is_named_never_an_internal_error(
    state: Path, capsys: pytest.CaptureFixture[str], column: str, value: object, reason: str
) -> None:
    with sqlite3.connect(state / "vcops.db") as conn:
        conn.execute(f"UPDATE audit_log SET {column}=? WHERE id=3", (value,))
    code, out, err = run(capsys, "audit", "verify")
    assert code == 1 and reason in out, out + err
    code, out, err = run(capsys, "audit", "log")
    assert code == 0 and "UNREADABLE" in out and "internal error" not in err
    code, out, err = run(capsys, "audit", "log", "--json")
    assert code == 0 and json.loads(out)[2]["problem"]


def test_first_use_of_the_key_by_racing_processes_is_safe(tmp_path: Path) -> None:
    """Several databases under one state directory (lab tests, a scan and a window
    runner at once): the controller key is created once, and every anchor verifies."""
    code = (
        "import sys; from pathlib import Path; from vcops.store import open_store\n"
        "s = open_store(sys.argv[1], Path(sys.argv[2]))\n"
        "for i in range(3): s.audit('race', 'x', {'i': i})\n"
    )
    state = tmp_path / "state"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"sqlite:///{tmp_path / f'db{n}.db'}", str(state)]
        )
        for n in range(5)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 5
    for n in range(5):
        store = open_store(f"sqlite:///{tmp_path / f'db{n}.db'}", state)
        anchor = store.read_anchor()
        assert anchor is not None and anchor.id == 3 and store.anchor_problem(anchor) is None
