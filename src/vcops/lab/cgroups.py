"""One cgroup per container, so the containers' systemds do not race each other.

``systemd-nspawn --keep-unit`` runs the container in the cgroup nspawn itself was
started in. Two containers sharing one cgroup each believe they own it and fight over
its subtree. So each nspawn is moved, between fork and exec, into its own
``vcops-<host>`` cgroup in every hierarchy systemd manages: the cgroup2 (unified)
hierarchy and, on a v1/v2 hybrid machine, the v1 ``name=systemd`` hierarchy. The v1
controller hierarchies (cpu, memory, ...) are left as they are: the container's
systemd does not manage them and they belong to whoever runs this machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from vcops.errors import LabError
from vcops.lab.layout import CGROUP_PREFIX
from vcops.lab.system import mounts


def _cgroup_mounts() -> list[tuple[Path, str, str]]:
    """(mount point, fstype, super options) of every cgroup mount."""
    return [(m.target, m.fstype, m.options) for m in mounts() if m.fstype in ("cgroup", "cgroup2")]


def systemd_hierarchies() -> list[Path]:
    """Mount points of the hierarchies a container needs its own cgroup in.

    Raises:
        LabError: neither a cgroup2 nor a ``name=systemd`` hierarchy is mounted.
    """
    chosen: dict[str, Path] = {}
    for mount, fstype, options in _cgroup_mounts():
        if fstype == "cgroup2":
            chosen.setdefault("unified", mount)
        elif "name=systemd" in options.split(","):
            chosen.setdefault("systemd", mount)
    if not chosen:
        raise LabError(
            "no cgroup2 or name=systemd cgroup hierarchy is mounted; "
            "mount one (mount -t cgroup2 none /sys/fs/cgroup) and retry"
        )
    return list(chosen.values())


def cgroup_paths(name: str) -> list[Path]:
    """The cgroup directories for ``name`` (``vcops-<host>``) in every systemd hierarchy."""
    return [root / name for root in systemd_hierarchies()]


def create_cgroups(paths: list[Path]) -> None:
    """Create the cgroup directories (an existing empty one is reused).

    Raises:
        LabError: a directory cannot be created.
    """
    for path in paths:
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise LabError(
                f"cannot create cgroup {path}: {exc}; is /sys/fs/cgroup writable?"
            ) from exc


def joiner(paths: list[Path]) -> Callable[[], None]:
    """A ``before_exec`` hook moving the calling (child) process into ``paths``."""
    procs_files = [str(path / "cgroup.procs") for path in paths]

    def join() -> None:
        pid = str(os.getpid()).encode()
        for procs in procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    return join


def member_pids(path: Path) -> list[int]:
    """Every process in the cgroup ``path`` and its descendants."""
    pids: list[int] = []
    for directory, _dirs, files in os.walk(path):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError, ValueError):
                text = (Path(directory) / "cgroup.procs").read_text()
                pids.extend(int(p) for p in text.split())
    return pids


def kill_cgroup(path: Path) -> None:
    """SIGKILL every process in the cgroup subtree (``cgroup.kill`` where available)."""
    kill_file = path / "cgroup.kill"
    if kill_file.exists():
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
    for pid in member_pids(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove_cgroup(path: Path, timeout: float = 10.0) -> None:
    """Remove the cgroup ``path`` and every sub-cgroup, deepest first.

    Processes still inside are killed (they can only be ones the lab started, since the
    cgroup is the lab's). A missing cgroup is not an error.

    Raises:
        LabError: the cgroup is still populated after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while path.exists():
        if member_pids(path):
            kill_cgroup(path)
        for directory, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
            with contextlib.suppress(FileNotFoundError, OSError):
                os.rmdir(directory)
        if not path.exists():
            return
        if time.monotonic() > deadline:
            raise LabError(
                f"cannot remove cgroup {path}: still holds pids {member_pids(path)}; "
                "check them with ps and retry `vcops lab down`"
            )
        time.sleep(0.1)


def find_lab_cgroups() -> list[Path]:
    """Every top-level ``vcops-*`` cgroup in any mounted cgroup hierarchy."""
    found: list[Path] = []
    for mount, _fstype, _options in _cgroup_mounts():
        with contextlib.suppress(OSError):
            found.extend(
                mount / entry
                for entry in sorted(os.listdir(mount))
                if entry.startswith(CGROUP_PREFIX) and (mount / entry).is_dir()
            )
    return found
