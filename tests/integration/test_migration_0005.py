"""Migration 0005 on real SQLite and real PostgreSQL: a database built at revision 0004
with rows as the old code wrote them (ISO 8601 text) is converted in place to real
DateTime columns; every value keeps its instant, the audit chain written with text
times still verifies against its signed anchor, and a row whose time cannot be read is
kept (audit log) or named before anything changes (the other tables)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from vcops.audit import GENESIS, Anchor, entry_hash
from vcops.cli import main
from vcops.errors import StoreError
from vcops.findings_store import (
    known_sightings,
    last_scans,
    list_findings,
    list_waivers,
    package_sightings,
)
from vcops.store import MIGRATIONS, Store, database_key, open_store
from vcops.tables import PackageSightingRow, UpgradeCacheRow, WindowHostRow, WindowRow
from vcops.window.store import approvals_of

#: Audit times as entries before 0005 held them: the usual form, a whole second (no
#: fraction), another offset, and "Z" (the last two are not today's one form).
OLD_AUDIT_TIMES = [
    "2026-11-28T06:00:00.123456+00:00",
    "2026-11-28T06:00:01+00:00",
    "2026-11-28T07:00:02.500000+01:00",
    "2026-11-28T06:00:03Z",
]
TIME_COLUMNS = {
    "scans": {"started_at", "finished_at"},
    "findings": {"first_seen", "last_seen", "resolved_at"},
    "waivers": {"expires_at", "created_at"},
    "windows": {"start"},
    "approvals": {"at"},
    "window_hosts": {"started_at", "finished_at"},
    "upgrade_cache": {"computed_at"},
    "package_sightings": {"first_seen", "last_seen"},
    "audit_log": {"ts"},
}


def _at_0004(database_url: str) -> Engine:
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.commit()
    return engine


def _old_rows(engine: Engine, audit_times: list[str], finding_seen: str) -> list[str]:
    """Rows in the old text form (as 0001-0004 stored them); returns the audit hashes."""
    with engine.begin() as conn:
        run = conn.execute
        run(
            text(
                "INSERT INTO scans (id, started_at, finished_at, actor, selection) VALUES "
                "(1, '2026-11-28T06:00:00.250000+00:00', '2026-11-28T06:01:00+00:00', 'ops', "
                "'all'), (2, '2026-11-29T06:00:00+00:00', '', 'ops', 'all')"
            )
        )
        run(
            text(
                "INSERT INTO scan_targets (scan_id, target, status) VALUES "
                "(1, 'sbc-01', 'scanned'), (1, 'sbc-02', 'unknown'), (2, 'sbc-01', 'scanned')"
            )
        )
        run(
            text(
                "INSERT INTO findings (id, target, control_id, clause, severity, title, "
                "expected, actual, first_seen, last_seen, resolved_at, first_scan_id, "
                "last_scan_id) VALUES "
                "(1, 'sbc-01', 'VC-SSH-001', '3.2.1', 'high', 't', 'x', 'y', :seen, "
                "'2026-11-28T06:01:00+00:00', NULL, 1, 1), "
                "(2, 'sbc-02', 'VC-SSH-006', '3.2.1', 'low', 't', 'x', 'y', "
                "'2026-11-27T06:01:00.000001+00:00', '2026-11-28T06:01:00+00:00', "
                "'2026-11-28T06:01:00+00:00', 1, 1)"
            ),
            {"seen": finding_seen},
        )
        run(
            text(
                "INSERT INTO waivers (control_id, hosts, reason, approved_by, expires_at, "
                "created_at, created_by) VALUES ('VC-SSH-001', 'sbc-*', 'r', 'cab', "
                "'2026-12-31T23:59:59+00:00', '2026-11-28T05:00:00.000042+00:00', 'ops')"
            )
        )
        run(
            text(
                "INSERT INTO windows (id, state, start, data) VALUES "
                "('W-2', 'approved', '2026-12-02T22:00:00+00:00', '{}'), "
                "('W-1', 'approved', '2026-12-01T22:00:00+00:00', '{}')"
            )
        )
        run(
            text(
                "INSERT INTO approvals (window_id, member, decision, at, signature, "
                "recorded_by) VALUES ('W-1', 'alice', 'approve', "
                "'2026-11-30T10:00:00.654321+00:00', 'sig', 'ops')"
            )
        )
        run(
            text(
                "INSERT INTO window_hosts (window_id, target, batch, state, started_at, "
                "finished_at) VALUES ('W-1', 'sbc-01', 0, 'done', '2026-12-01T22:00:05+00:00', "
                "'2026-12-01T22:04:00+00:00'), ('W-1', 'sbc-02', 1, 'pending', NULL, NULL)"
            )
        )
        run(
            text(
                "INSERT INTO upgrade_cache (target, fingerprint, upgradable, computed_at) "
                "VALUES ('sbc-01', 'f', '[]', '2026-11-28T06:00:30.5+00:00')"
            )
        )
        run(  # epoch seconds, not text
            text(
                "INSERT INTO package_sightings (target, package, version, first_seen, "
                "last_seen) VALUES ('sbc-01', 'openssl', '3.0.15', 1764300000, 1764386400)"
            )
        )
        hashes: list[str] = []
        prev = GENESIS
        for i, ts in enumerate(audit_times, start=1):
            detail = {"i": i}
            digest = entry_hash(i, ts, "ops@ctl", "test.step", f"host-{i}", detail, prev)
            run(
                text(
                    "INSERT INTO audit_log (id, ts, actor, action, target, detail, prev_hash, "
                    "hash) VALUES (:id, :ts, 'ops@ctl', 'test.step', :target, :detail, :prev, "
                    ":hash)"
                ),
                {
                    "id": i,
                    "ts": ts,
                    "target": f"host-{i}",
                    "detail": json.dumps(detail, sort_keys=True),
                    "prev": prev,
                    "hash": digest,
                },
            )
            hashes.append(digest)
            prev = digest
    return hashes


def _anchor(engine: Engine, database_url: str, state: Path, head_id: int, head: str) -> None:
    """The signed anchor the controller held for that log (the old code's own step)."""
    identity, key = database_key(database_url)
    state.mkdir(parents=True, exist_ok=True)
    old = Store(
        engine, state / f"audit-{key}.anchor", database=identity, key_file=state / "audit_key"
    )
    old._write_anchor(Anchor(id=head_id, hash=head))


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VCOPS_DATABASE_URL", database_url)
    monkeypatch.delenv("VCOPS_CONFIG", raising=False)
    return tmp_path / ".vcops"


def _column_types(store: Store) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    with store.engine.connect() as conn:
        for table, columns in TIME_COLUMNS.items():
            if store.dialect == "sqlite":
                for row in conn.execute(text(f"PRAGMA table_info({table})")):
                    if row[1] in columns:
                        out[(table, row[1])] = str(row[2])
            else:
                for name, kind in conn.execute(
                    text(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = :t"
                    ),
                    {"t": table},
                ):
                    if name in columns:
                        out[(table, name)] = str(kind)
    return out


def test_a_0004_database_is_converted_in_place_and_its_audit_chain_still_verifies(
    database_url: str, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _at_0004(database_url)
    hashes = _old_rows(engine, OLD_AUDIT_TIMES, "2026-11-28T08:00:00.000100+02:00")
    _anchor(engine, database_url, cli_env, len(hashes), hashes[-1])
    engine.dispose()

    store = open_store(database_url, cli_env)
    kinds = _column_types(store)
    expected = "DATETIME" if store.dialect == "sqlite" else "timestamp with time zone"
    assert kinds == {(t, c): expected for t, cs in TIME_COLUMNS.items() for c in cs}

    # the chain written with text times verifies against the signed anchor
    assert main(["audit", "verify"]) == 0
    assert "audit log intact: 4 entries" in capsys.readouterr().out
    entries = store.audit_entries()
    assert [e.ts for e in entries] == OLD_AUDIT_TIMES  # the text each hash covers
    assert [e.hash for e in entries] == hashes
    store.audit("after.migration", "x", {})
    assert main(["audit", "verify"]) == 0
    assert "audit log intact: 5 entries" in capsys.readouterr().out
    assert main(["audit", "log", "--json"]) == 0
    logged = json.loads(capsys.readouterr().out)
    assert [e["ts"] for e in logged[:4]] == OLD_AUDIT_TIMES

    # every other value kept its instant and reads back as aware UTC
    scans = last_scans(store, 2)
    assert [s.finished_at for s in scans] == [None, datetime(2026, 11, 28, 6, 1, tzinfo=UTC)]
    assert scans[1].started_at == datetime(2026, 11, 28, 6, 0, 0, 250000, tzinfo=UTC)
    assert all(s.started_at.tzinfo is UTC for s in scans)
    with store.engine.connect() as conn:  # the rebuild of `scans` cascaded nothing away
        assert conn.execute(text("SELECT count(*) FROM scan_targets")).scalar() == 3
    views = {v.id: v for v in list_findings(store)}
    assert views[1].first_seen == "2026-11-28T06:00:00.000100+00:00"
    assert views[1].resolved_at is None and views[1].status == "open"
    assert views[2].first_seen == "2026-11-27T06:01:00.000001+00:00"
    assert views[2].resolved_at == "2026-11-28T06:01:00+00:00"
    (waiver,) = list_waivers(store)
    assert waiver.expires_at == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert waiver.created_at == datetime(2026, 11, 28, 5, 0, 0, 42, tzinfo=UTC)
    with store.session() as s:  # windows are ordered by their start, in SQL
        starts = [(w.id, w.start) for w in s.query(WindowRow).order_by(WindowRow.start)]
        hosts = {h.target: (h.started_at, h.finished_at) for h in s.query(WindowHostRow)}
        cache = s.get(UpgradeCacheRow, "sbc-01")
        assert cache is not None
        computed = cache.computed_at
    assert starts == [
        ("W-1", datetime(2026, 12, 1, 22, tzinfo=UTC)),
        ("W-2", datetime(2026, 12, 2, 22, tzinfo=UTC)),
    ]
    assert hosts == {
        "sbc-01": (
            datetime(2026, 12, 1, 22, 0, 5, tzinfo=UTC),
            datetime(2026, 12, 1, 22, 4, tzinfo=UTC),
        ),
        "sbc-02": (None, None),
    }
    assert computed == datetime(2026, 11, 28, 6, 0, 30, 500000, tzinfo=UTC)
    assert known_sightings(store, ["sbc-01"]) == {"sbc-01": {"openssl=3.0.15": 1764300000}}
    assert package_sightings(store) == [("sbc-01", "openssl", "3.0.15", 1764300000, 1764386400)]
    with store.session() as s:
        (sighting,) = s.query(PackageSightingRow)
        assert sighting.first_seen == datetime(2025, 11, 28, 3, 20, tzinfo=UTC)
    (approval,) = approvals_of(store, "W-1")
    assert approval.at == datetime(2026, 11, 30, 10, 0, 0, 654321, tzinfo=UTC)

    # a time compared in SQL: findings first seen after 06:00:00 UTC, given in +01:00
    after = datetime(2026, 11, 28, 7, 0, tzinfo=timezone(timedelta(hours=1)))
    assert [v.id for v in list_findings(store, first_seen_after=after)] == [1]
    assert [v.id for v in list_findings(store, resolved_after=after)] == [2]


def test_an_unreadable_audit_time_keeps_its_row_and_is_named_after_the_migration(
    database_url: str, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _at_0004(database_url)
    times = [OLD_AUDIT_TIMES[0], "2026-13-45T99:00:00+00:00", OLD_AUDIT_TIMES[1]]
    hashes = _old_rows(engine, times, "2026-11-28T06:00:00+00:00")
    _anchor(engine, database_url, cli_env, 3, hashes[-1])
    engine.dispose()

    open_store(database_url, cli_env)
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "entry 2 is unreadable: its time '2026-13-45T99:00:00+00:00' is impossible" in out
    assert main(["audit", "log", "--json"]) == 0
    logged = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in logged] == [1, 2, 3] and logged[1]["problem"]
    assert not logged[0]["problem"] and not logged[2]["problem"]


def test_an_unreadable_time_elsewhere_stops_the_migration_before_anything_changes(
    database_url: str, cli_env: Path
) -> None:
    engine = _at_0004(database_url)
    hashes = _old_rows(engine, OLD_AUDIT_TIMES, "yesterday")
    _anchor(engine, database_url, cli_env, 4, hashes[-1])
    with pytest.raises(StoreError) as caught:
        open_store(database_url, cli_env)
    message = str(caught.value)
    assert "migration 0005" in message and "findings row 1: first_seen 'yesterday'" in message
    assert "nothing changed" in message
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
        assert conn.execute(text("SELECT first_seen FROM findings WHERE id = 1")).scalar() == (
            "yesterday"
        )
    with engine.begin() as conn:  # the fix the message names, then the migration runs
        conn.execute(text("UPDATE findings SET first_seen = '2026-11-28T06:00:00+00:00'"))
    engine.dispose()
    store = open_store(database_url, cli_env)
    views = list_findings(store)
    assert views[0].first_seen == "2026-11-28T06:00:00+00:00"


def test_a_hand_edited_time_names_its_row_never_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only SQLite lets a DateTime column hold text that is no time (PostgreSQL refuses
    the UPDATE itself): the command fails with one line naming the row."""
    monkeypatch.chdir(tmp_path)
    database_url = f"sqlite:///{tmp_path / '.vcops' / 'vcops.db'}"
    monkeypatch.setenv("VCOPS_DATABASE_URL", database_url)
    monkeypatch.delenv("VCOPS_CONFIG", raising=False)
    engine = _at_0004(database_url)
    _old_rows(engine, OLD_AUDIT_TIMES[:1], "2026-11-28T06:00:00+00:00")
    store = open_store(database_url, tmp_path / ".vcops")
    with engine.begin() as conn:
        conn.execute(text("UPDATE findings SET last_seen = 'last tuesday' WHERE id = 2"))
    engine.dispose()
    with pytest.raises(StoreError) as caught:
        list_findings(store)
    assert "findings.last_seen holds 'last tuesday'" in str(caught.value)
    assert "row 2 ('last tuesday') of findings was edited by hand" in str(caught.value)
    assert main(["findings"]) == 1
    err = capsys.readouterr().err
    assert "vcops: error:" in err and "row 2 ('last tuesday') of findings" in err
    assert "Traceback" not in err and "internal error" not in err
