"""Locks between two controllers (two processes) sharing one database, on SQLite (flock)
and on a real PostgreSQL (advisory locks): one window runner wins, the other refuses
naming the holder; a scheduled run is skipped, not doubled; a killed holder frees it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vcops.errors import WindowError
from vcops.schedule import run_locked
from vcops.store import open_store
from vcops.window.runner import runner_lock

HOLDER = (
    "import sys; from pathlib import Path\n"
    "from vcops.store import open_store\n"
    "store = open_store(sys.argv[1], Path(sys.argv[2]))\n"
    "with store.lock(sys.argv[3]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


def _hold(database_url: str, state: Path, name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_url, str(state), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_one_window_runner_per_database_the_other_names_the_holder(
    database_url: str, tmp_path: Path
) -> None:
    # two controllers: each its own state directory, one shared database (for SQLite the
    # lock files live beside the database both of them open)
    first = _hold(database_url, tmp_path / ".vcops", "window-runner")
    try:
        other = open_store(database_url, tmp_path / ".vcops")
        expected = (
            rf"another window runner is running \(pid {first.pid} on {socket.gethostname()}\)"
        )
        with pytest.raises(WindowError, match=expected), runner_lock(other):
            pytest.fail("two runners held the window lease at once")
    finally:
        assert first.stdin is not None
        first.stdin.close()
        assert first.wait(timeout=30) == 0
    with runner_lock(other):  # released when the holder let go
        pass


def test_a_killed_holder_frees_the_lock(database_url: str, tmp_path: Path) -> None:
    holder = _hold(database_url, tmp_path / ".vcops", "window-runner")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    store = open_store(database_url, tmp_path / ".vcops")
    with runner_lock(store):  # the server (or the kernel) dropped it with the process
        pass


def test_a_scheduled_run_still_going_makes_the_next_a_recorded_skip(
    database_url: str, tmp_path: Path
) -> None:
    holder = _hold(database_url, tmp_path / ".vcops", "scan-nightly")
    store = open_store(database_url, tmp_path / ".vcops")
    ran: list[list[str]] = []
    try:
        code = run_locked("scan-nightly", store, ["scan"], lambda a: ran.append(a) or 0)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert code == 0 and ran == []
    [skip] = store.audit_entries(action="schedule.skipped")
    assert f"pid {holder.pid}" in str(skip.detail["reason"])
    assert run_locked("scan-nightly", store, ["scan"], lambda a: ran.append(a) or 0) == 0
    assert ran == [["scan"]]
