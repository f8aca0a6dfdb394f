"""The runner's edges that need no lab: the lock, due windows, refusals, progress storage."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.notify_data import START, inventory, make_window
from vcops.errors import WindowError
from vcops.snapshot.gitstore import SnapshotRepo
from vcops.snapshot.take import SnapshotContext
from vcops.store import Store, open_store
from vcops.window.progress import HostRecord
from vcops.window.runner import RunContext, RunReport, due_windows, run_window, runner_lock
from vcops.window.store import load_progress, save_progress, save_window


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'vcops.db'}", tmp_path)


def test_one_runner_at_a_time_and_the_holder_is_named(store: Store) -> None:
    busy = pytest.raises(WindowError, match=r"another window runner is running \(pid \d+ on ")
    with runner_lock(store), busy, runner_lock(store):
        pytest.fail("a second runner got the lock")
    with runner_lock(store):  # released on exit
        pass


def test_due_windows_and_missed_ones(store: Store) -> None:
    now = START + timedelta(minutes=10)
    windows = {
        "W-due": make_window(id="W-due", state="approved"),
        "W-resume": make_window(id="W-resume", state="running"),
        "W-early": make_window(id="W-early", state="approved", start=START + timedelta(hours=1)),
        "W-missed": make_window(id="W-missed", state="approved", start=START - timedelta(hours=3)),
        "W-unapproved": make_window(
            id="W-unapproved", state="pending", start=START - timedelta(hours=3)
        ),
        "W-pending-now": make_window(id="W-pending-now", state="pending"),
        "W-rejected": make_window(id="W-rejected", state="rejected"),
        "W-done": make_window(id="W-done", state="finished"),
    }
    for w in windows.values():
        save_window(store, w)
    due, missed = due_windows(store, now)
    assert sorted(w.id for w in due) == ["W-due", "W-resume"]
    assert sorted(w.id for w in missed) == ["W-missed", "W-unapproved"]


def test_an_unapproved_window_is_refused_and_the_refusal_audited(
    store: Store, tmp_path: Path
) -> None:
    inv = inventory()
    w = make_window(state="pending")
    save_window(store, w)
    ctx = RunContext(
        inventory=inv,
        store=store,
        snapshots=SnapshotContext(inventory=inv, repo=SnapshotRepo(tmp_path / "s"), key=b"k" * 32),
        state_dir=tmp_path,
        now=lambda: START + timedelta(minutes=5),
    )
    with pytest.raises(WindowError, match="0 valid approval"):
        run_window(ctx, w.id)
    [entry] = store.audit_entries(action="window.run.refused")
    assert entry.target == w.id and "approval" in str(entry.detail["reason"])


def test_progress_is_saved_per_host_and_survives_a_reload(store: Store) -> None:
    w = make_window()
    save_window(store, w)
    first = HostRecord(target="kam-lon1-01", state="running", batch=1, before_rev="abc", attempts=1)
    save_progress(store, w.id, first)
    first.state, first.installed = "done", {"openssl": "3.0.15-1~deb12u1"}
    save_progress(store, w.id, first)
    loaded = load_progress(store, w.id)
    assert list(loaded) == ["kam-lon1-01"]
    assert loaded["kam-lon1-01"].state == "done" and loaded["kam-lon1-01"].before_rev == "abc"
    assert loaded["kam-lon1-01"].installed == {"openssl": "3.0.15-1~deb12u1"}


def test_exit_code_is_zero_only_when_every_host_is_done() -> None:
    done = [HostRecord(target="a", state="done"), HostRecord(target="b", state="done")]
    assert RunReport(window="W", state="finished", reason="", hosts=done).exit_code == 0
    skipped = [*done[:1], HostRecord(target="b", state="skipped")]
    assert RunReport(window="W", state="finished", reason="", hosts=skipped).exit_code == 1
    assert RunReport(window="W", state="halted", reason="", hosts=done).exit_code == 1
