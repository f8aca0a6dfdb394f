"""``vcops schedule``: systemd timers for drift scans and due windows, runs that never overlap."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from vcops.cli.app import App, json_option
from vcops.errors import ConfigError
from vcops.schedule import (
    SCAN_UNITS,
    WINDOW_UNITS,
    activate,
    check_calendar,
    check_run_name,
    render_units,
    run_locked,
    timer_schedule,
    write_units,
)

DEFAULT_DIR = Path("/etc/systemd/system")


def _checked(check: Callable[[str], str], value: str, hint: str) -> str:
    """A click callback: the value when ``check`` accepts it, else a usage error (exit 2)."""
    try:
        return check(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from exc


def _vcops_binary() -> Path:
    candidate = Path(sys.executable).parent / "vcops"
    found = candidate if candidate.exists() else shutil.which("vcops")
    return Path(found).resolve() if found else candidate


@click.group()
def schedule() -> None:
    """Daily drift scans and due patch windows from systemd timers."""


@schedule.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Where to write the units.",
)
@click.option(
    "--scan-at",
    default="*-*-* 06:00:00",
    callback=lambda _c, _p, v: _checked(check_calendar, v, "--scan-at"),
    show_default=True,
    help="systemd OnCalendar of the drift scan.",
)
@click.option(
    "--windows/--no-windows",
    default=True,
    show_default=True,
    help="Also run due patch windows every five minutes.",
)
@json_option
@click.pass_obj
def install(app: App, directory: Path, scan_at: str, windows: bool) -> int:
    """Write the units for this checkout and enable the timers (when systemd runs here)."""
    cfg = app.config()
    units = render_units(
        vcops=_vcops_binary(),
        workdir=Path.cwd().resolve(),
        inventory=app.inventory_dir.resolve(),
        config=cfg.source.resolve() if cfg.source else None,
        scan_calendar=scan_at,
        windows=windows,
    )
    app.inventory()  # refuse to schedule runs against an invalid inventory
    paths = write_units(units, directory)
    todo = (
        activate(units)
        if directory == DEFAULT_DIR
        else [
            "systemctl daemon-reload",
            f"systemctl enable --now {' '.join(n for n in units if n.endswith('.timer'))}",
        ]
    )
    app.store().audit(
        "schedule.install", str(directory), {"units": list(units), "scan_at": scan_at}
    )

    def render(console: Console) -> None:
        for p in paths:
            console.print(f"wrote {p}")
        for command in todo:
            console.print(f"then run: {command}")

    app.emit({"written": [str(p) for p in paths], "then_run": todo}, render)
    return 0


@schedule.command()
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=DEFAULT_DIR, show_default=True
)
@json_option
@click.pass_obj
def show(app: App, directory: Path) -> int:
    """The installed vcops units, their schedules and the last recorded runs."""
    rows = []
    for name in (*SCAN_UNITS, *WINDOW_UNITS):
        path = directory / name
        if path.exists():
            text = path.read_text()
            rows.append(
                {
                    "unit": name,
                    "path": str(path),
                    "schedule": timer_schedule(text) if name.endswith(".timer") else "",
                }
            )
    runs = [e.model_dump() for e in app.store().audit_entries(limit=10, action="schedule.*")]

    def render(console: Console) -> None:
        table = Table(title=f"vcops units in {directory}", title_justify="left")
        for col in ("unit", "schedule", "path"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["unit"], r["schedule"], r["path"])
        console.print(
            table if rows else f"no vcops units in {directory}; run `vcops schedule install`"
        )
        for e in runs:
            console.print(f"{e['ts'][:19]} {e['action']} {e['target']} {e['detail']}")

    app.emit({"units": rows, "recent_runs": runs}, render)
    return 0


@schedule.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("name", callback=lambda _c, _p, v: _checked(check_run_name, v, "NAME"))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(app: App, name: str, args: tuple[str, ...]) -> int:
    """What the units execute: `vcops schedule run NAME -- ARGS`, one run of NAME at a time."""
    from vcops.cli.main import main

    passthrough = [
        *(["--inventory", str(app.inventory_dir)]),
        *(["--config", str(app.config_file)] if app.config_file else []),
        *args,
    ]
    return run_locked(name, app.store(), list(args), lambda _a: main(passthrough))
