"""The lab, brought up once per test session and torn down at the end.

The session lab is managed as a real fleet is: its inventory logs in as ``vcops`` and
gains root through sudo (``settings.ssh.become`` defaults to ``sudo`` for a login
that is not root). Tests that read or change host files for their own verification
get root the same way, through one helper: ``run_one(SshTarget.from_inventory(lab,
server), script)`` (:func:`vcops.connectors.ssh.run_one`), which runs the script
under the inventory's ``sudo -n``. Root's own SSH login is never used by the tests'
plumbing; the baseline turns it off (``PermitRootLogin no``) on every host a test
hardens, and ``vcops lab reset`` gives the host back stock.

A test that brings up a lab of its own from inside a session asks for
:func:`lab_free` (the machine's lab lock, with no lab up);
:func:`pytest_collection_modifyitems` runs such tests, and the rest of their module,
before the first test that uses the session lab.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from vcops.inventory import Inventory, load_inventory
from vcops.lab.layout import STATE_DIR, SUFFIX

# the area proofs are plain functions the apply modules call: rewrite their asserts too
pytest.register_assert_rewrite("tests.integration.area_proofs")

VCOPS = [sys.executable, "-m", "vcops.cli"]


def lab_available() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root"
    if not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"):
        return "apt-get install debootstrap systemd-container"
    return None


LAB_LOCK = f"/run/vcops-lab-tests{SUFFIX}.lock"
"""One lock per lab instance ($VCOPS_LAB_INSTANCE): two pytest sessions on two instances
run side by side (``make test``); two on one instance take turns."""
_held_here: list[bool] = []
"""True while this process holds :data:`LAB_LOCK` for the session lab."""
_depth: list[bool] = []
"""One entry per :func:`machine_lab_lock` this process is inside (it holds the lock)."""


@contextmanager
def machine_lab_lock() -> Iterator[None]:
    """Hold the machine's one lab for a while (sessions, helpers and CI take turns).

    A test that needs a lab of its own (the lifecycle module) cannot run while this very
    process holds the session lab: it is skipped then (``make test`` runs it alone)."""
    if _held_here:
        pytest.skip("this pytest session runs the shared lab: run this module on its own")
    if _depth:  # this process holds it already (a module fixture): flock would deadlock
        _depth.append(True)
        try:
            yield
        finally:
            _depth.pop()
        return
    with open(LAB_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _depth.append(True)
        try:
            yield
        finally:
            _depth.pop()
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def lab_free() -> Iterator[None]:
    """The machine's lab lock, with no lab up, for one test that brings up (and takes
    down) a lab of its own. Such tests run before this session's shared lab comes up
    (see :func:`pytest_collection_modifyitems`); a lab that is up anyway is left alone."""
    reason = lab_available()
    if reason:
        pytest.skip(reason)
    with machine_lab_lock():
        if STATE_DIR.exists():
            pytest.skip(f"a lab is up on this machine ({STATE_DIR}); run `vcops lab down`")
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that need :func:`lab_free` (and the rest of their modules) just
    before the first test that uses the session lab, so no lab is up when they start."""
    needs_free = [i for i in items if "lab_free" in getattr(i, "fixturenames", ())]
    if not needs_free:
        return
    free_ids = {id(i) for i in needs_free}
    modules = {i.nodeid.split("::")[0] for i in needs_free}
    moved = needs_free + [
        i for i in items if i.nodeid.split("::")[0] in modules and id(i) not in free_ids
    ]
    moved_ids = {id(i) for i in moved}
    rest = [i for i in items if id(i) not in moved_ids]
    first_lab = next(
        (n for n, i in enumerate(rest) if "lab" in getattr(i, "fixturenames", ())), len(rest)
    )
    items[:] = rest[:first_lab] + moved + rest[first_lab:]


def reset_lab_hosts(names: list[str]) -> None:
    """Give lab hosts back stock (``vcops lab reset``): a module that hardens or breaks
    a host calls this when it is done, so modules run in any order."""
    proc = subprocess.run(
        [*VCOPS, "lab", "reset", *names],
        env={**os.environ, "VCOPS_CONFIG": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inventory]:
    """A lab of 6 hosts (one per role) and 2 switches (napalm and netmiko), managed as
    ``vcops`` through sudo (``lab up``'s default login)."""
    reason = lab_available()
    if reason:
        pytest.skip(reason)
    # One lab per machine: sessions (developers, helpers, CI) take turns.
    lock = open(LAB_LOCK, "w")  # noqa: SIM115 - held for the session
    fcntl.flock(lock, fcntl.LOCK_EX)
    _held_here.append(True)
    lab_dir = tmp_path_factory.mktemp("lab") / "inventory"
    state = tmp_path_factory.mktemp("state")
    env = {
        **os.environ,
        "VCOPS_CONFIG": "",
        "VCOPS_DATABASE_URL": f"sqlite:///{state / 'vcops.db'}",
    }
    up = subprocess.run(
        [*VCOPS, "lab", "up", "--hosts", "6", "--switches", "2", "--dir", str(lab_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield load_inventory(lab_dir)
    finally:
        down = subprocess.run(
            [*VCOPS, "lab", "down"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        _held_here.clear()
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        assert down.returncode == 0, down.stderr[-2000:]
