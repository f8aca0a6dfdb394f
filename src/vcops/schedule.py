"""Scheduled runs: systemd units from ``templates/systemd/``, and a lock so runs never overlap.

``vcops schedule install`` renders the units for this checkout (its vcops binary,
inventory and config) and writes them; ``vcops schedule run NAME -- ARGS`` is what
the units execute: it takes the lock NAME without waiting (:mod:`vcops.locks`: a
PostgreSQL advisory lock, or ``<state_dir>/locks/NAME.lock`` on SQLite; a run still
going makes the new one a recorded skip), records start and end in the audit
log, and runs ``vcops ARGS`` in-process.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from vcops import __version__
from vcops.errors import ConfigError, LockHeld
from vcops.paths import templates_dir
from vcops.store import Store
from vcops.templating import environment

SCAN_UNITS = ("vcops-scan.service", "vcops-scan.timer")
WINDOW_UNITS = ("vcops-windows.service", "vcops-windows.timer")

#: A run's name names its lock: one plain word, never a path.
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: What a systemd calendar expression is made of (no newline, quote or semicolon).
_CALENDAR = re.compile(r"[A-Za-z0-9*:/.,~+ _-]{1,200}")


def check_run_name(name: str) -> str:
    """``name`` when it is a plain word (letters, digits, ``-``, ``_``; at most 64).

    Raises:
        ConfigError: anything else (``../../x`` would name a file outside the locks).
    """
    if not _RUN_NAME.fullmatch(name):
        raise ConfigError(
            f"schedule run name {name[:80]!r}: use a plain word (letters, digits, - and _, "
            "at most 64), such as drift-scan"
        )
    return name


def check_calendar(text: str) -> str:
    """``text`` when it can only be a systemd calendar expression (one line).

    Raises:
        ConfigError: a newline, quote, semicolon or other character that could add a
            line or a directive to the unit.
    """
    if not _CALENDAR.fullmatch(text):
        raise ConfigError(
            f"--scan-at {text[:80]!r}: not a systemd calendar expression; use letters, "
            "digits, spaces and * : / . , ~ + - only, such as '*-*-* 06:00:00'"
        )
    return text


def render_units(
    *,
    vcops: Path,
    workdir: Path,
    inventory: Path,
    config: Path | None,
    scan_calendar: str,
    windows: bool,
) -> dict[str, str]:
    """Unit name -> text for every unit to install."""
    check_calendar(scan_calendar)
    env = environment("report")
    context = {
        "generated_by": f"vcops {__version__}",
        "vcops": str(vcops),
        "workdir": str(workdir),
        "inventory": str(inventory),
        "config": str(config) if config else "",
        "scan_calendar": scan_calendar,
        "docs": str(templates_dir().parent / "README.md"),
    }
    names = [*SCAN_UNITS, *(WINDOW_UNITS if windows else ())]
    return {name: env.get_template(f"systemd/{name}.j2").render(**context) for name in names}


def render_web_unit(
    *, vcops: Path, workdir: Path, inventory: Path, config: Path | None, bind: str
) -> str:
    """``vcops-web.service``: ``vcops serve`` for this checkout, restarted on failure."""
    return (
        environment("report")
        .get_template("systemd/vcops-web.service.j2")
        .render(
            generated_by=f"vcops {__version__}",
            vcops=str(vcops),
            workdir=str(workdir),
            inventory=str(inventory),
            config=str(config) if config else "",
            docs=str(templates_dir().parent / "README.md"),
            bind=bind,
        )
    )


WORKER_UNIT = "vcops-worker@.service"


def render_worker_unit(
    *, vcops: Path, workdir: Path, inventory: Path, config: Path | None, concurrency: int
) -> dict[str, str]:
    """The site-worker unit template (one instance per site: ``vcops-worker@SITE``)."""
    context = {
        "generated_by": f"vcops {__version__}",
        "vcops": str(vcops),
        "workdir": str(workdir),
        "inventory": str(inventory),
        "config": str(config) if config else "",
        "concurrency": concurrency,
        "docs": str(templates_dir().parent / "README.md"),
    }
    template = environment("report").get_template(f"systemd/{WORKER_UNIT}.j2")
    return {WORKER_UNIT: template.render(**context)}


def write_units(units: dict[str, str], directory: Path) -> list[Path]:
    """Write the units atomically.

    Raises:
        ConfigError: the directory cannot be written (not root, read-only).
    """
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            path = directory / name
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            os.replace(tmp, path)
            written.append(path)
    except OSError as exc:
        raise ConfigError(
            f"{directory}: cannot write the units ({exc.strerror}); run as root or pass --dir"
        ) from exc
    return written


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def activate(units: dict[str, str]) -> list[str]:
    """daemon-reload and enable --now the timers when systemd runs this machine; else the commands to run."""
    timers = [n for n in units if n.endswith(".timer")]
    commands = [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", *timers]]
    if not systemd_running() or not shutil.which("systemctl"):
        return [" ".join(c) for c in commands]
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, text=True)
    return []


def timer_schedule(text: str) -> str:
    m = re.search(r"^OnCalendar=(.+)$", text, re.M)
    return m[1].strip() if m else "?"


def run_locked(name: str, store: Store, args: list[str], runner: Callable[[list[str]], int]) -> int:
    """Run ``vcops args`` under the non-blocking lock ``name`` (see :mod:`vcops.locks`: an
    advisory lock when the store is PostgreSQL); record it either way.

    Raises:
        ConfigError: ``name`` is not a plain word.
    """
    check_run_name(name)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(store.lock(name))
        except LockHeld as exc:
            reason = f"still running ({exc.holder})"
            store.audit("schedule.skipped", name, {"args": args, "reason": reason})
            return 0
        store.audit("schedule.start", name, {"args": args, "pid": os.getpid()})
        code = runner(args)
        store.audit("schedule.end", name, {"args": args, "exit": code})
        return code
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack never swallows here
