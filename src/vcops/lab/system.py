"""Running commands and watching processes on the controller (Linux ``/proc``).

Every command is an argument list, never a shell string. Failures become
:class:`~vcops.errors.LabError` naming what failed, the command's own error and the fix.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from vcops.errors import LabError

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Detached processes started by this Python process, kept so they can be reaped."""


class ProcessRef(BaseModel):
    """A process the lab started, identified by pid AND start time (pids get reused).

    Example: ``{"pid": 4242, "start_time": 981234, "argv0": "systemd-nspawn"}``
    """

    model_config = ConfigDict(frozen=True)

    pid: int
    start_time: int
    argv0: str


def run(
    argv: Sequence[str],
    *,
    what: str,
    fix: str = "",
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``argv`` to completion and return its standard output.

    Args:
        argv: the command as an argument list.
        what: what the command does, for the error message ("create bridge vcopsbr0").
        fix: how to fix it if it fails, appended to the error message.
        timeout: seconds before the command is killed.
        env: environment for the command (default: inherited).

    Raises:
        LabError: the command is missing, timed out or exited non-zero.
    """
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError as exc:
        raise LabError(f"cannot {what}: {argv[0]} is not installed{_tail(fix)}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"cannot {what}: `{shlex.join(argv)}` took over {timeout:.0f} s") from exc
    if done.returncode != 0:
        err = (done.stderr or done.stdout).strip().splitlines()
        detail = err[-1] if err else f"exit status {done.returncode}"
        raise LabError(f"cannot {what}: `{shlex.join(argv)}`: {detail}{_tail(fix)}")
    return done.stdout


def _tail(fix: str) -> str:
    return f"; {fix}" if fix else ""


def spawn_detached(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    before_exec: Callable[[], None] | None = None,
) -> ProcessRef:
    """Start ``argv`` in its own session, output appended to ``log``, stdin closed.

    The process outlives the caller (the CLI exits while the lab keeps running).

    Args:
        argv: the command.
        log: file receiving stdout and stderr (created mode 0600).
        env: environment (default: inherited).
        before_exec: runs in the child between fork and exec (e.g. join a cgroup).

    Raises:
        LabError: the program cannot be started.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd="/",
            env=dict(env) if env is not None else None,
            preexec_fn=before_exec,  # noqa: PLW1509 - only os-level calls, no locks
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise LabError(f"cannot start `{shlex.join(argv)}`: {exc}") from exc
    finally:
        os.close(fd)
    _CHILDREN[child.pid] = child
    start = process_start_time(child.pid)
    return ProcessRef(pid=child.pid, start_time=start or 0, argv0=Path(argv[0]).name)


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it does not exist."""
    stat = _read_stat(pid)
    return int(stat[19]) if stat else None


def _read_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (field 3 onwards)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid``, or None if it does not exist."""
    stat = _read_stat(pid)
    return int(stat[1]) if stat else None


def reap(pid: int) -> None:
    """Collect ``pid`` if it is an exited child of this process (no zombie left)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_running(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` is alive (not a zombie) and, if given, started at ``start_time``."""
    reap(pid)
    stat = _read_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return start_time is None or int(stat[19]) == start_time


def is_same_process(ref: ProcessRef) -> bool:
    """Whether the process in ``ref`` still runs (same pid and same start time)."""
    return is_running(ref.pid, ref.start_time)


def send_signal(pid: int, sig: int) -> bool:
    """Send ``sig`` to ``pid``; False if it no longer exists."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def all_pids() -> list[int]:
    """Every process id on the machine, from ``/proc``."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def cmdline(pid: int) -> list[str]:
    """The argument list of ``pid`` (empty for kernel threads or vanished processes)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def netns_inode(pid: int) -> int | None:
    """Inode of the network namespace ``pid`` lives in, or None."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


class Mount(BaseModel):
    """One line of ``/proc/self/mountinfo``."""

    model_config = ConfigDict(frozen=True)

    target: Path
    fstype: str
    source: str
    options: str


def mounts() -> list[Mount]:
    """Every mount visible to this process, in mount order."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail_fields = left.split(), right.split()
        if len(fields) >= 5 and len(tail_fields) >= 3:
            found.append(
                Mount(
                    target=Path(_unescape(fields[4])),
                    fstype=tail_fields[0],
                    source=_unescape(tail_fields[1]),
                    options=tail_fields[2],
                )
            )
    return found


def _unescape(field: str) -> str:
    """Undo the octal escapes (``\\040`` for a space) mountinfo uses."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below ``directory``, deepest (last mounted) first."""
    return [
        m.target
        for m in reversed(mounts())
        if m.target == directory or directory in m.target.parents
    ]


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, for error messages ("" if unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` with ``mode`` (parents created, old file replaced).

    Raises:
        LabError: the file cannot be written (e.g. a directory is in the way).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(path, mode)
    except OSError as exc:
        raise LabError(
            f"cannot write {path}: {exc.strerror or exc}; make sure it can be a plain file"
        ) from exc
