"""Findings history and package sightings on SQLite and on a real PostgreSQL: new,
persisting and resolved findings across scans, first-seen dates kept (bulk writes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from vcops.errors import StoreError
from vcops.findings import ControlResult, TargetOutcome, Waiver, compute_drift
from vcops.findings_store import (
    add_waiver,
    known_sightings,
    list_findings,
    list_waivers,
    open_findings,
    record_scan,
    record_sightings,
)
from vcops.store import open_store

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def _outcome(target: str, failing: dict[str, str]) -> TargetOutcome:
    results = [
        ControlResult(
            target=target,
            control_id=cid,
            clause="3.2.1",
            severity="high",
            title=cid,
            status="fail" if cid in failing else "pass",
            expected="x",
            actual=failing.get(cid, "x"),
        )
        for cid in ("VC-SSH-001", "VC-SSH-006", "VC-NET-001")
    ]
    return TargetOutcome(target=target, kind="server", status="scanned", results=results)


def _scan(store, outcomes: list[TargetOutcome], at: datetime) -> int:  # type: ignore[no-untyped-def]
    drift = compute_drift(open_findings(store), outcomes)
    return record_scan(
        store,
        started_at=at,
        finished_at=at,
        actor="t",
        selection="all",
        outcomes=outcomes,
        drift=drift,
        score=(0, 0, 0, 0.0),
        summary={},
    )


def test_findings_move_from_new_to_persisting_to_resolved(
    database_url: str, tmp_path: Path
) -> None:
    store = open_store(database_url, tmp_path / "state")
    first = _scan(
        store,
        [
            _outcome("a", {"VC-SSH-001": "yes", "VC-SSH-006": "6"}),
            _outcome("b", {"VC-SSH-006": "6"}),
        ],
        T0,
    )
    second = _scan(
        store,
        [_outcome("a", {"VC-SSH-006": "8"}), _outcome("b", {"VC-SSH-006": "6"})],
        T0 + timedelta(days=1),
    )
    rows = {(f.target, f.control_id): f for f in list_findings(store)}
    assert len(rows) == 3
    resolved = rows[("a", "VC-SSH-001")]
    assert resolved.resolved_at is not None and resolved.resolved_at.startswith("2026-12-01")
    kept = rows[("a", "VC-SSH-006")]
    assert kept.resolved_at is None and kept.actual == "8"
    assert kept.first_seen.startswith("2026-11-30") and kept.last_seen.startswith("2026-12-01")
    assert second == first + 1


def test_sightings_keep_their_first_seen_in_one_transaction(
    database_url: str, tmp_path: Path
) -> None:
    store = open_store(database_url, tmp_path / "state")
    assert record_sightings(store, {"a": [("openssl", "3.0.15")], "b": []}, 100) == {
        "a": {"openssl=3.0.15": 100},
        "b": {},
    }
    again = record_sightings(store, {"a": [("openssl", "3.0.15"), ("curl", "7.88")]}, 200)
    assert again == {"a": {"openssl=3.0.15": 100, "curl=7.88": 200}}
    assert known_sightings(store, ["a", "c"]) == {
        "a": {"openssl=3.0.15": 100, "curl=7.88": 200},
        "c": {},
    }


def test_the_upgrade_cache_is_stored_replaced_and_read_per_host(
    database_url: str, tmp_path: Path
) -> None:
    from vcops.facts.sections import Upgrade
    from vcops.facts.upgrades import UpgradeCache
    from vcops.findings_store import load_upgrade_cache, save_upgrade_cache

    store = open_store(database_url, tmp_path / "state")
    assert load_upgrade_cache(store, ["sbc-01"]) == {}
    up = Upgrade(
        package="openssl", version="3.0.15", current="3.0.11", suites=["bookworm-security"]
    )
    first = {
        f"sbc-{i:02d}": UpgradeCache(fingerprint=f"{i:02d}" * 32, upgradable=[up])
        for i in range(1, 4)
    }
    save_upgrade_cache(store, first, T0)
    assert load_upgrade_cache(store, ["sbc-01", "sbc-03", "nope"]) == {
        "sbc-01": first["sbc-01"],
        "sbc-03": first["sbc-03"],
    }
    # with the needrestart fingerprint (migration 0006), stamped in another zone
    stamp = (T0 + timedelta(hours=1)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    replaced = UpgradeCache(
        fingerprint="ff" * 32, upgradable=[], needrestart="ee" * 32, needrestart_at=stamp
    )
    save_upgrade_cache(store, {"sbc-02": replaced}, T0 + timedelta(hours=1))
    again = open_store(database_url, tmp_path / "state")  # a later run reads what was stored
    loaded = load_upgrade_cache(again, list(first))
    assert loaded == first | {"sbc-02": replaced}
    assert loaded["sbc-02"].needrestart_since(T0 + timedelta(hours=2)) == "ee" * 32
    assert loaded["sbc-01"].needrestart == "" and loaded["sbc-01"].needrestart_at is None
    dropped = replaced.model_copy(update={"needrestart": "", "needrestart_at": None})
    save_upgrade_cache(again, {"sbc-02": dropped}, T0 + timedelta(hours=2))
    assert load_upgrade_cache(again, ["sbc-02"]) == {"sbc-02": dropped}


def test_times_round_trip_as_aware_utc_and_naive_ones_are_refused(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A time written with any offset reads back as the same instant in UTC, also when
    the PostgreSQL session runs in another zone (PGTZ: psycopg then returns +05:30)."""
    monkeypatch.setenv("PGTZ", "Asia/Kolkata")
    store = open_store(database_url, tmp_path / "state")
    ist = timezone(timedelta(hours=5, minutes=30))
    expires = datetime(2026, 12, 31, 23, 59, 59, 5, tzinfo=ist)
    add_waiver(
        store,
        Waiver(
            id=0,
            control_id="VC-SSH-001",
            hosts="*",
            reason="r",
            approved_by="cab",
            expires_at=expires,
            created_at=T0,
            created_by="ops",
        ),
    )
    (waiver,) = list_waivers(store)
    assert waiver.expires_at == expires and waiver.expires_at.tzinfo is UTC
    assert waiver.expires_at.isoformat() == "2026-12-31T18:29:59.000005+00:00"
    assert waiver.created_at == T0 and waiver.created_at.tzinfo is UTC
    with pytest.raises(StoreError, match="needs an aware datetime"):
        _scan(store, [], T0.replace(tzinfo=None))
    assert list_findings(store) == []
