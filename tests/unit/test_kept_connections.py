"""SSH connections kept open for a window run (vcops.connectors.kept), against fake
hosts on loopback that count the connections they accept."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakessh import LOST, FakeFleet
from vcops.connectors.hosttask import ScriptTask, run_tasks
from vcops.connectors.kept import current, keep_connections, run_sync
from vcops.connectors.ssh import SshTarget, run_one, run_script
from vcops.errors import CommandError


def _target(fleet: FakeFleet, name: str) -> SshTarget:
    address, port = fleet.hosts[name]
    return SshTarget(
        name=name,
        address=address,
        port=port,
        user="root",
        key_file=fleet.client_key,
        known_hosts=fleet.known_hosts,
        connect_timeout=5,
    )


@pytest.fixture
def one_host(tmp_path: Path) -> Iterator[tuple[FakeFleet, SshTarget]]:
    """A fake host that answers every script with "ok"."""
    with FakeFleet(tmp_path) as fleet:
        fleet.add("kam-01", lambda script: ("ok\n", 0))
        yield fleet, _target(fleet, "kam-01")


def test_a_host_is_connected_once_for_the_block_and_once_per_script_outside(
    one_host: tuple[FakeFleet, SshTarget],
) -> None:
    fleet, target = one_host
    run_one(target, "echo one")
    run_one(target, "echo two")
    assert len(fleet.connections["kam-01"]) == 2
    with keep_connections() as kept:
        assert current() is kept
        with keep_connections() as inner:  # nested: the outer block's connections
            assert inner is kept
        for word in ("three", "four", "five"):
            assert run_one(target, f"echo {word}").stdout == "ok\n"
        assert kept.opened == 1
    assert current() is None
    assert len(fleet.connections["kam-01"]) == 3
    assert [s.splitlines()[-1] for s in fleet.scripts["kam-01"]] == [
        "echo one", "echo two", "echo three", "echo four", "echo five",
    ]  # fmt: skip
    run_one(target, "echo after")  # outside again: a connection of its own
    assert len(fleet.connections["kam-01"]) == 4


def test_a_connection_the_host_dropped_is_made_again_and_no_script_runs_twice(
    one_host: tuple[FakeFleet, SshTarget],
) -> None:
    fleet, target = one_host
    with keep_connections() as kept:
        run_one(target, "echo before")
        fleet.drop("kam-01")  # the host rebooted
        assert run_one(target, "echo after").stdout == "ok\n"
        assert kept.opened == 2
    assert [s.splitlines()[-1] for s in fleet.scripts["kam-01"]] == [
        "echo before",
        "echo after",
    ]


def test_a_connection_lost_while_the_script_runs_is_never_sent_again(
    one_host: tuple[FakeFleet, SshTarget],
) -> None:
    fleet, target = one_host
    fleet.handlers["kam-01"] = lambda script: ("", LOST if "install" in script else 0)
    with keep_connections() as kept:
        run_one(target, "echo before")
        with pytest.raises(CommandError, match="exited 255"):  # no exit status came back
            run_one(target, "echo install")
        assert run_one(target, "echo after").stdout == ""  # a new connection afterwards
        assert kept.opened == 2
    assert [s.splitlines()[-1] for s in fleet.scripts["kam-01"]] == [
        "echo before",
        "echo install",  # once: the session had opened, so it was not retried
        "echo after",
    ]


def test_hosts_run_from_several_threads_share_one_connection_each(tmp_path: Path) -> None:
    with FakeFleet(tmp_path) as fleet:
        names = [f"h-{i:02d}" for i in range(4)]
        for name in names:
            fleet.add(name, lambda script: ("", 0))
        targets = [_target(fleet, n) for n in names]
        failures: list[str] = []

        def batch() -> None:
            for run in run_tasks(targets, [ScriptTask(name="one", script="say hi")]):
                if run.status == "unreachable":  # (the fake answers no framing: "failed")
                    failures.append(f"{run.name}: {run.error}")

        with keep_connections() as kept:
            threads = [threading.Thread(target=batch) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert kept.opened == 4
        assert failures == []
        assert {n: len(fleet.scripts[n]) for n in names} == dict.fromkeys(names, 3)
        assert {n: len(fleet.connections[n]) for n in names} == dict.fromkeys(names, 1)


@pytest.mark.parametrize("kept", [False, True], ids=["own-connection", "kept"])
def test_a_command_that_exits_before_reading_the_script_is_an_answer_not_a_lost_host(
    tmp_path: Path, kept: bool
) -> None:
    """``sudo -n`` refusing exits at once and the server closes the session, often before
    the script is written: its exit status and stderr come back (a *failed* host with
    the sudo message), never a connection error (an *unreachable* one). The script is
    large, so writing it outlasts the session."""
    refusal = "sudo: a password is required\n"
    with FakeFleet(tmp_path) as fleet:
        fleet.add("gen-01", lambda script: ("not reached\n", 0), at_once=(refusal, 1))
        target = _target(fleet, "gen-01")
        script = "true\n" + "# padding\n" * 200_000
        with keep_connections() if kept else contextlib.nullcontext():
            for _ in range(20):
                result = run_sync(run_script(target, script, timeout=30))
                assert (result.exit_status, result.stderr) == (1, refusal)
