"""Change-board approvals with real SSH signatures (ssh-keygen -Y) on a real database:
quorum, and each forgery refused: wrong key, self-approval (by key, whatever the name),
a replayed signature, a tampered plan or request, an approval signed after the start, a
freeze added later; a signed rejection stops a window whatever its state column says."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vcops.errors import WindowError
from vcops.store import open_store
from vcops.window.approval import Approval, payload
from vcops.window.approval import sign as approval_sign
from vcops.window.model import HostPlan, PackageChange, Plan, Window, plan_hash
from vcops.window.request import sign_request
from vcops.window.store import add_approval, add_window, load_window, save_window

BIN = Path(sys.executable).parent
NOW = datetime.now(UTC)


@pytest.fixture
def env(tmp_path: Path) -> Path:
    """An inventory with a board of three (dana, erik, fatima: quorum 2 in production); its
    one server is a closed loopback port, so nothing here ever reaches another machine.
    Each window is signed by its requester's key (erik's board key for W-A, the key of
    ``ops``, who is not on the board, for the others)."""
    keys = tmp_path / "keys"
    keys.mkdir()
    members = []
    for name in ("dana", "erik", "fatima", "mallory", "ops"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(keys / name)],
            check=True,
        )
        if name not in ("mallory", "ops"):
            pub = (keys / f"{name}.pub").read_text().strip()
            members.append(
                f'    - {{name: {name}, email: {name}@example.net, ssh_public_key: "{pub}"}}'
            )
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "inv.yml").write_text(
        "sites: [{name: s1}]\nredundancy_groups: [{name: kam}]\n"
        "servers:\n  - {name: kam-01, address: 127.0.0.1, port: 9, roles: [kamailio], site: s1, redundancy_group: kam,"
        " environment: production}\n"
        "change_board:\n  quorum: {production: 2, staging: 1, lab: 1}\n  members:\n"
        + "\n".join(members)
        + "\n"
    )
    store = open_store(f"sqlite:///{tmp_path / '.vcops' / 'vcops.db'}", tmp_path / ".vcops")
    for wid, requester, start in (
        ("W-A", "erik", NOW + timedelta(hours=2)),
        ("W-B", "ops", NOW + timedelta(hours=3)),
        ("W-PAST", "ops", NOW - timedelta(minutes=5)),
    ):
        plan = Plan(
            actions="security-updates",
            hosts=[
                HostPlan(
                    target="kam-01",
                    environment="production",
                    redundancy_group="kam",
                    packages=[
                        PackageChange(
                            package="openssl", current="3.0.11", target="3.0.15", security=True
                        )
                    ],
                )
            ],
        )
        save_window(
            store,
            sign_request(
                Window(
                    id=wid,
                    title="t",
                    change_id="CHG-1",
                    requester=requester,
                    targets="all",
                    start=start,
                    duration_minutes=120,
                    cutoff_minutes=30,
                    max_concurrency="1",
                    max_errors="1",
                    actions="security-updates",
                    reboot="if-needed",
                    plan=plan,
                    plan_hash=plan_hash(plan),
                    created_at=NOW,
                ),
                keys / requester,  # the requester signs the terms with their own key
            ),
        )
    return tmp_path


def vcops(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in {"VCOPS_DATABASE_URL", "VCOPS_CONFIG"}
    }
    return subprocess.run(
        [str(BIN / "vcops"), "-i", str(root / "inventory"), *args],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def show(root: Path, wid: str) -> dict[str, object]:
    proc = vcops(root, "window", "show", wid, "--json")
    assert proc.returncode == 0, proc.stderr
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def test_quorum_of_two_distinct_members(env: Path) -> None:
    first = vcops(
        env,
        "window",
        "approve",
        "W-B",
        "--key",
        str(env / "keys" / "dana"),
        "--comment",
        "ok from dana",
    )
    assert first.returncode == 0, first.stderr
    assert show(env, "W-B")["state"] == "pending"
    again = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / "dana"))
    assert again.returncode == 1 and "already recorded approve" in again.stderr
    second = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / "fatima"))
    assert second.returncode == 0
    data = show(env, "W-B")
    assert data["state"] == "approved" and data["plan_intact"] is True
    assert [a["valid"] for a in data["approvals"]] == [True, True]  # type: ignore[union-attr, index]


def test_a_key_not_on_the_board_is_refused(env: Path) -> None:
    proc = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / "mallory"))
    assert proc.returncode == 1 and "not on the change board" in proc.stderr
    assert show(env, "W-B")["approvals"] == []


def test_the_requester_cannot_approve_their_own_window(env: Path) -> None:
    proc = vcops(env, "window", "approve", "W-A", "--key", str(env / "keys" / "erik"))
    assert proc.returncode == 1 and "erik requested window W-A and cannot approve" in proc.stderr


def test_a_replayed_signature_does_not_count(env: Path) -> None:
    assert (
        vcops(env, "window", "approve", "W-A", "--key", str(env / "keys" / "dana")).returncode == 0
    )
    db = env / ".vcops" / "vcops.db"
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT member, decision, at, comment, signature FROM approvals WHERE window_id='W-A'"
        ).fetchone()
        # Copy dana's valid signature for W-A onto W-B (and once more as if fatima had signed W-A).
        conn.execute(
            "INSERT INTO approvals (window_id, member, decision, at, comment, signature, recorded_by) "
            "VALUES ('W-B', ?, ?, ?, ?, ?, 'attacker')",
            row,
        )
        conn.execute(
            "INSERT INTO approvals (window_id, member, decision, at, comment, signature, recorded_by) "
            "VALUES ('W-A', 'fatima', ?, ?, ?, ?, 'attacker')",
            row[1:],
        )
    b = show(env, "W-B")
    assert [a["valid"] for a in b["approvals"]] == [False]  # type: ignore[union-attr, index]
    assert "forged, replayed" in str(b["approvals"][0]["problem"])  # type: ignore[index]
    a = show(env, "W-A")
    assert [x["valid"] for x in a["approvals"]] == [True, False]  # type: ignore[union-attr, index]
    listed = json.loads(vcops(env, "window", "list", "--json").stdout)
    assert {w["id"]: w["approvals"] for w in listed} == {"W-A": 1, "W-B": 0, "W-PAST": 0}


def test_a_tampered_plan_invalidates_approvals(env: Path) -> None:
    for member in ("dana", "fatima"):
        assert (
            vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / member)).returncode
            == 0
        )
    db = env / ".vcops" / "vcops.db"
    with sqlite3.connect(db) as conn:
        data = json.loads(conn.execute("SELECT data FROM windows WHERE id='W-B'").fetchone()[0])
        data["plan"]["hosts"][0]["packages"].append(
            {"package": "backdoor", "current": "0", "target": "1", "security": True}
        )
        conn.execute("UPDATE windows SET data=? WHERE id='W-B'", (json.dumps(data),))
    b = show(env, "W-B")
    assert b["plan_intact"] is False
    # Re-hashing the tampered plan does not help either: the signatures cover the old hash.
    with sqlite3.connect(db) as conn:
        data["plan_hash"] = plan_hash(Plan.model_validate(data["plan"]))
        conn.execute("UPDATE windows SET data=? WHERE id='W-B'", (json.dumps(data),))
    b = show(env, "W-B")
    assert b["plan_intact"] is True
    assert [a["valid"] for a in b["approvals"]] == [False, False]  # type: ignore[union-attr, index]
    # Nor can the board approve the tampered plan afresh: the requester never signed it.
    refused = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / "erik"))
    assert refused.returncode == 1 and "requester's signature on window W-B does not verify" in (
        refused.stderr
    )
    assert [a["valid"] for a in show(env, "W-B")["approvals"]] == [False, False]  # type: ignore[union-attr, index]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start", (NOW - timedelta(minutes=1)).isoformat()),  # moved to run right now
        ("reboot", "always"),
        ("max_errors", "100%"),
        ("max_concurrency", "100%"),
        ("cutoff_minutes", 0),
        ("requester", "dana"),
    ],
)
def test_editing_any_term_after_approval_voids_it_and_the_runner_refuses(
    env: Path, field: str, value: object
) -> None:
    for member in ("dana", "fatima"):
        approve = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / member))
        assert approve.returncode == 0, approve.stderr
    assert show(env, "W-B")["state"] == "approved"
    db = env / ".vcops" / "vcops.db"
    with sqlite3.connect(db) as conn:
        data = json.loads(conn.execute("SELECT data FROM windows WHERE id='W-B'").fetchone()[0])
        data[field] = value
        conn.execute("UPDATE windows SET data=? WHERE id='W-B'", (json.dumps(data),))
    shown = show(env, "W-B")
    assert shown["plan_intact"] is True  # the plan itself is untouched
    assert [a["valid"] for a in shown["approvals"]] == [False, False]  # type: ignore[union-attr, index]
    run = vcops(env, "window", "run", "W-B")
    assert run.returncode == 1 and "has 0 valid approval(s)" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_no_decision_after_the_start(env: Path) -> None:
    proc = vcops(env, "window", "approve", "W-PAST", "--key", str(env / "keys" / "dana"))
    assert proc.returncode == 1 and "decisions must come before the start" in proc.stderr


def test_a_rejected_window_stays_rejected(env: Path) -> None:
    rej = vcops(
        env,
        "window",
        "reject",
        "W-B",
        "--key",
        str(env / "keys" / "erik"),
        "--reason",
        "clashes with the SBC migration",
    )
    assert rej.returncode == 0, rej.stderr
    for member in ("dana", "fatima"):
        proc = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / member))
        assert proc.returncode == 1 and "already rejected" in proc.stderr
    assert show(env, "W-B")["state"] == "rejected"
    log = json.loads(vcops(env, "audit", "log", "--json").stdout)
    actions = [e["action"] for e in log]
    assert actions.count("window.reject") == 1 and actions.count("window.approve.refused") == 2
    assert vcops(env, "audit", "verify").returncode == 0


# -- a signed rejection, the requester's identity, signed times, freezes, ids --------


def _flip_state(root: Path, wid: str, state: str) -> None:
    """What an intruder with the database does: set the state column (and the copy in data)."""
    with sqlite3.connect(root / ".vcops" / "vcops.db") as conn:
        data = json.loads(conn.execute("SELECT data FROM windows WHERE id=?", (wid,)).fetchone()[0])
        data["state"] = state
        conn.execute(
            "UPDATE windows SET state=?, data=? WHERE id=?", (state, json.dumps(data), wid)
        )


def test_a_signed_rejection_stops_the_window_whatever_the_state_says(env: Path) -> None:
    for member in ("dana", "fatima"):
        assert (
            vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / member)).returncode
            == 0
        )
    rej = vcops(
        env, "window", "reject", "W-B", "--key", str(env / "keys" / "erik"), "--reason", "no"
    )
    assert rej.returncode == 0, rej.stderr
    assert show(env, "W-B")["state"] == "rejected"
    _flip_state(env, "W-B", "approved")
    run = vcops(env, "window", "run", "W-B")
    assert run.returncode == 1 and "was rejected by the change board" in run.stderr, run.stderr
    again = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / "erik"))
    assert again.returncode == 1 and "already rejected" in again.stderr


def test_the_requester_is_the_key_that_signed_not_a_name(env: Path) -> None:
    store = open_store(f"sqlite:///{env / '.vcops' / 'vcops.db'}", env / ".vcops")
    w = load_window(store, "W-B")
    # what `VCOPS_ACTOR=dana vcops window create --requester intern` used to store
    forged = sign_request(
        w.model_copy(update={"id": "W-INTERN", "requester": "intern"}), env / "keys" / "dana"
    )
    add_window(store, forged)
    proc = vcops(env, "window", "approve", "W-INTERN", "--key", str(env / "keys" / "dana"))
    assert proc.returncode == 1 and "dana requested window W-INTERN" in proc.stderr
    fatima = vcops(env, "window", "approve", "W-INTERN", "--key", str(env / "keys" / "fatima"))
    assert fatima.returncode == 0, fatima.stderr
    # dana's own signature, slipped into the database, never counts either
    at = NOW + timedelta(minutes=1)
    sig = approval_sign(env / "keys" / "dana", payload(forged, "approve", "dana", at, ""))
    add_approval(
        store,
        Approval(
            window_id="W-INTERN",
            member="dana",
            decision="approve",
            at=at,
            comment="",
            signature=sig,
        ),
        "intruder",
    )
    shown = show(env, "W-INTERN")
    assert [a["valid"] for a in shown["approvals"]] == [True, False]  # type: ignore[union-attr, index]
    assert "requester cannot decide" in str(shown["approvals"][1]["problem"])  # type: ignore[index]


@pytest.mark.parametrize(
    ("key", "requester", "message"),
    [
        ("dana", "intern", "signed with dana's board key but names 'intern'"),
        ("ops", "Dana", "requester 'Dana' names board member dana"),
        ("ops", "dana@EXAMPLE.net", "names board member dana"),
        ("ops", "ERIK", "names board member erik"),
    ],
)
def test_create_refuses_a_requester_the_key_does_not_prove(
    env: Path, key: str, requester: str, message: str
) -> None:
    proc = vcops(
        env, "window", "create", "--targets", "all", "--start", (NOW + timedelta(days=1)).isoformat(),
        "--change-id", "CHG-9", "--title", "t", "--requester", requester,
        "--key", str(env / "keys" / key),
    )  # fmt: skip
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_request_signed_by_someone_else_voids_every_decision(env: Path) -> None:
    assert (
        vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / "dana")).returncode == 0
    )
    store = open_store(f"sqlite:///{env / '.vcops' / 'vcops.db'}", env / ".vcops")
    w = load_window(store, "W-B")
    # mallory re-signs the request with her own key: the terms (the requester's key) change
    save_window(store, sign_request(w, env / "keys" / "mallory"))
    assert [a["valid"] for a in show(env, "W-B")["approvals"]] == [False]  # type: ignore[union-attr, index]
    # and a signature that is not the requester's at all
    save_window(
        store, w.model_copy(update={"requester_signature": w.requester_signature[:-60] + "A" * 60})
    )
    shown = show(env, "W-B")
    assert "requester's signature" in str(shown["approvals"][0]["problem"])  # type: ignore[index]


def test_an_approval_signed_after_the_start_never_counts(env: Path) -> None:
    store = open_store(f"sqlite:///{env / '.vcops' / 'vcops.db'}", env / ".vcops")
    w = load_window(store, "W-B")
    for member in ("dana", "fatima"):
        at = w.start + timedelta(minutes=5)  # signed (off the controller) after the start
        sig = approval_sign(env / "keys" / member, payload(w, "approve", member, at, ""))
        add_approval(
            store,
            Approval(
                window_id="W-B", member=member, decision="approve", at=at, comment="", signature=sig
            ),
            "backdated",
        )
    shown = show(env, "W-B")
    assert [a["valid"] for a in shown["approvals"]] == [False, False]  # type: ignore[union-attr, index]
    assert "not before the window's start" in str(shown["approvals"][0]["problem"])  # type: ignore[index]


def _freeze_over(root: Path, wid: str) -> None:
    store = open_store(f"sqlite:///{root / '.vcops' / 'vcops.db'}", root / ".vcops")
    w = load_window(store, wid)
    (root / "inventory" / "freezes.yml").write_text(
        f"freezes:\n  - {{name: late-freeze, start: {(w.start - timedelta(minutes=30)).isoformat()}, "
        f"end: {(w.end + timedelta(minutes=30)).isoformat()}, reason: carrier migration}}\n"
    )


def test_a_freeze_added_later_blocks_approval(env: Path) -> None:
    _freeze_over(env, "W-B")
    proc = vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / "dana"))
    assert proc.returncode == 1 and "overlaps freeze 'late-freeze'" in proc.stderr, proc.stderr
    rej = vcops(
        env, "window", "reject", "W-B", "--key", str(env / "keys" / "dana"), "--reason", "frozen"
    )
    assert rej.returncode == 0, rej.stderr  # rejecting is always allowed


def test_a_freeze_added_after_approval_blocks_the_run(env: Path) -> None:
    for member in ("dana", "fatima"):
        assert (
            vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / member)).returncode
            == 0
        )
    _freeze_over(env, "W-B")
    run = vcops(env, "window", "run", "W-B")
    assert run.returncode == 1 and "overlaps freeze 'late-freeze'" in run.stderr, run.stderr
    log = json.loads(vcops(env, "audit", "log", "--json", "--action", "window.run.*").stdout)
    assert [e["action"] for e in log] == ["window.run.refused"]


def test_a_window_id_is_never_reused(env: Path) -> None:
    store = open_store(f"sqlite:///{env / '.vcops' / 'vcops.db'}", env / ".vcops")
    original = load_window(store, "W-B")
    other = original.model_copy(update={"title": "overwritten", "reboot": "always"})
    with pytest.raises(WindowError, match="window W-B already exists"):
        add_window(store, other)
    assert load_window(store, "W-B") == original


def test_a_rejection_deleted_from_the_database_still_stops_the_window(env: Path) -> None:
    for member in ("dana", "fatima"):
        assert (
            vcops(env, "window", "approve", "W-B", "--key", str(env / "keys" / member)).returncode
            == 0
        )
    rej = vcops(
        env, "window", "reject", "W-B", "--key", str(env / "keys" / "erik"), "--reason", "no"
    )
    assert rej.returncode == 0, rej.stderr
    with sqlite3.connect(env / ".vcops" / "vcops.db") as conn:
        conn.execute("DELETE FROM approvals WHERE decision='reject'")
    _flip_state(env, "W-B", "approved")
    run = vcops(env, "window", "run", "W-B")
    assert run.returncode == 1 and "was rejected by the change board" in run.stderr, run.stderr
