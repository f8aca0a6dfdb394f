"""The audit log on real SQLite and real PostgreSQL: tampering is caught, concurrent writers
keep one chain, the database password is never printed."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.pg_server import PgCluster
from vcops.cli import main
from vcops.errors import StoreError
from vcops.store import open_store


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VCOPS_DATABASE_URL", database_url)
    monkeypatch.delenv("VCOPS_CONFIG", raising=False)
    store = open_store(database_url, tmp_path / ".vcops")
    for i in range(5):
        store.audit("test.step", f"host-{i}", {"i": i})
    return tmp_path / ".vcops"


def _tamper(database_url: str, statement: str) -> None:
    """What an intruder with database access does, behind vcops's back."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify"])
    return code, capsys.readouterr().out


def test_intact_log_verifies_and_lists(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(capsys)
    assert code == 0 and "audit log intact: 5 entries" in out
    assert main(["audit", "log", "--json", "--last", "2"]) == 0
    assert '"target": "host-4"' in capsys.readouterr().out


def test_an_edited_row_is_named(
    state: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(database_url, "UPDATE audit_log SET actor = 'mallory' WHERE id = 3")
    code, out = _verify(capsys)
    assert code == 1 and "entry 3 was edited" in out


def test_a_deleted_row_is_named(
    state: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(database_url, "DELETE FROM audit_log WHERE id = 2")
    code, out = _verify(capsys)
    assert code == 1 and "entry 2 is missing" in out


def test_a_deleted_tail_is_caught_by_the_anchor(
    state: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(database_url, "DELETE FROM audit_log WHERE id >= 4")
    code, out = _verify(capsys)
    assert code == 1 and "entries 4 to 5 were deleted" in out


def test_concurrent_writers_keep_one_chain(
    state: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = (
        "import sys; from pathlib import Path; from vcops.store import open_store\n"
        "s = open_store(sys.argv[1], Path(sys.argv[2]))\n"
        "for i in range(40): s.audit('race', sys.argv[3], {'i': i})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, database_url, str(state), f"w{n}"])
        for n in range(6)
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


def test_anchor_writers_racing_never_fail_and_never_move_it_back(
    state: Path, database_url: str
) -> None:
    """Several writers append at once (a timer's scan, a window runner, an operator):
    each moves the signed anchor, none trips over another's temporary file or refuses
    another's head, and the anchor ends at the newest entry."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        store = open_store(database_url, state)
        try:
            for i in range(15):
                store.audit("race", f"t{n}", {"i": i})
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_store(database_url, state)
    anchor = store.read_anchor()
    assert anchor is not None and anchor.id == 65 and anchor.pending_id is None
    assert anchor.hash == store.audit_entries(limit=1)[0].hash


def test_a_wrong_password_on_a_real_server_is_one_line_without_the_password(
    postgres: PgCluster,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VCOPS_CONFIG", raising=False)
    url = postgres.create_database("pw_wrong").replace("vcops@", "vcops:n0t-th3-pa55word@")
    monkeypatch.setenv("VCOPS_DATABASE_URL", url)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    assert main(["audit", "log"]) == 1
    err = capsys.readouterr().err
    assert "n0t-th3-pa55word" not in err and "password authentication failed" in err
    assert err.count("\n") == 1 and "***" in err


def test_the_password_comes_from_the_environment_or_a_pgpass_file(
    postgres: PgCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = postgres.create_database("pw_sources")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    open_store(url, tmp_path / "a").audit("from.env")
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"*:*:*:vcops:{postgres.password}\n")
    pgpass.chmod(0o600)
    store = open_store(url, tmp_path / "a", pgpass_file=pgpass)  # same controller
    store.audit("from.file")
    assert [e.action for e in store.audit_entries()] == ["from.env", "from.file"]
    with pytest.raises(StoreError, match="password"):
        open_store(url, tmp_path / "c")  # neither: refused, not hanging on a prompt


def test_a_password_in_vcops_toml_is_refused_and_not_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VCOPS_DATABASE_URL", raising=False)
    (tmp_path / "vcops.toml").write_text(
        '[store]\ndatabase_url = "postgresql+psycopg://vcops:t0ml-canary@db/vcops"\n'
    )
    assert main(["audit", "log"]) == 2
    err = capsys.readouterr().err
    assert "t0ml-canary" not in err and "PGPASSWORD" in err


def test_info_never_prints_the_database_or_broker_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VCOPS_CONFIG", raising=False)
    monkeypatch.setenv("VCOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("VCOPS_DATABASE_URL", "postgresql+psycopg://vcops:db-canary-1@db/vcops")
    monkeypatch.setenv("VCOPS_BROKER_URL", "redis://:broker-canary-2@127.0.0.1:6379/0")
    for args in (["info"], ["info", "--json"]):
        assert main(args) == 0
        captured = capsys.readouterr()
        shown = captured.out + captured.err
        assert "db-canary-1" not in shown and "broker-canary-2" not in shown
        assert "vcops:***@db" in shown and "redis://:***@127.0.0.1" in shown
