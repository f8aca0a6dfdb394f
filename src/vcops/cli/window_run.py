"""``vcops window run`` and ``vcops window report``: run approved windows, summarise them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from vcops.cli.app import App, json_option
from vcops.cli.progress import progress_for
from vcops.cli.text import plain, styled
from vcops.cli.window_notify import notifier
from vcops.cli.worker_cmds import window_sites
from vcops.errors import WindowError
from vcops.snapshot.take import SnapshotContext
from vcops.window.model import Window
from vcops.window.progress import HostRecord
from vcops.window.runner import RunContext, RunReport, due_windows, run_window, runner_lock
from vcops.window.store import load_window, progress_of, set_state


def _now() -> datetime:
    return datetime.now(UTC)


def _context(app: App) -> RunContext:
    cfg = app.config()
    store = app.store()
    inv = app.inventory()
    say = (lambda _m: None) if app.json else (lambda m: app.err.print(plain(m)))
    snapshots = SnapshotContext.open(inv, cfg, store)
    return RunContext(
        inventory=inv,
        store=store,
        snapshots=snapshots,
        state_dir=cfg.state_dir,
        now=_now,
        say=say,
        notify=notifier(app),
        max_parallel=cfg.run.max_parallel,
        sites=window_sites(app, snapshots.key),
    )


def _run_one(app: App, ctx: RunContext, window_id: str, *, lock: bool = True) -> RunReport:
    """Run one window with a per-host progress bar on a terminal (hosts still to run)."""
    window = load_window(ctx.store, window_id)
    left = sum(r.state in ("pending", "running") for r in progress_of(ctx.store, window))
    with progress_for(app, f"window {window_id}", left) as advance:
        return run_window(replace(ctx, host_done=advance), window_id, lock=lock)


def _render_run(console: Console, report: RunReport) -> None:
    counts = {s: sum(h.state == s for h in report.hosts) for s in ("done", "failed", "skipped")}
    colour = "green" if report.exit_code == 0 else "red"
    console.print(
        styled(
            f"window {{}}: [{colour}]{{}}[/] - {{}}{{}}",
            report.window,
            report.state,
            ", ".join(f"{n} {s}" for s, n in counts.items()),
            f" ({report.reason})" if report.reason else "",
        )
    )


@click.command()
@click.argument("window_id", required=False)
@click.option("--due", is_flag=True, help="Run every approved window that is open now (scheduler).")
@json_option
@click.pass_obj
def run(app: App, window_id: str | None, due: bool) -> int:
    """Run an approved window batch by batch (resumes a window that was interrupted).

    Each host: snapshot, drain, install the approved packages, restart, reboot if
    required and allowed, health gate (units, SIP OPTIONS, SSH), snapshot. A failed
    gate rolls the host's configs back and counts as an error; max errors halts.
    """
    if bool(window_id) == due:
        raise click.UsageError("give a WINDOW_ID or --due (not both)")
    ctx = _context(app)
    if window_id:
        report = _run_one(app, ctx, window_id)
        app.emit(report.model_dump(mode="json"), lambda c: _render_run(c, report))
        return report.exit_code
    reports: list[RunReport] = []
    refused: list[dict[str, str]] = []
    with runner_lock(ctx.store):
        due_now, missed = due_windows(ctx.store, ctx.now())
        for w in missed:
            set_state(ctx.store, w, "expired")
            reason = f"its last start {w.last_start.isoformat()} passed while it was {w.state}"
            ctx.store.audit("window.expired", w.id, {"reason": reason})
            ctx.say(f"window {w.id} expired: {reason}")
        for w in due_now:
            try:
                reports.append(_run_one(app, ctx, w.id, lock=False))
            except WindowError as exc:
                refused.append({"window": w.id, "reason": str(exc)})
                ctx.say(f"window {w.id} not run: {exc}")

    def render(console: Console) -> None:
        if not reports and not refused:
            console.print("no window is due")
        for r in reports:
            _render_run(console, r)

    app.emit(
        {
            "ran": [r.model_dump(mode="json") for r in reports],
            "refused": refused,
            "expired": [w.id for w in missed],
        },
        render,
    )
    return max([r.exit_code for r in reports] + [1 if refused else 0])


def window_summary(app: App, w: Window, hosts: list[HostRecord]) -> dict[str, object]:
    """What a window did, from its saved progress and the audit log."""
    # the web page's module: only what reports a window's summary needs it
    from vcops import dashboard

    return dashboard.window_summary(app.inventory(), app.store(), w, hosts)


@click.command()
@click.argument("window_id")
@json_option
@click.pass_obj
def report(app: App, window_id: str) -> int:
    """What a window did: per host batch, state, packages, restarts, gate, rollback."""
    w = load_window(app.store(), window_id)
    hosts = progress_of(app.store(), w)
    data = window_summary(app, w, hosts)

    def render(console: Console) -> None:
        counts = data["counts"]
        assert isinstance(counts, dict)
        console.print(
            styled(
                "[bold]{}[/] {} ({}): [bold]{}[/]; {}",
                w.id,
                w.title,
                w.change_id,
                w.state,
                ", ".join(f"{n} {s}" for s, n in counts.items() if n),
            )
        )
        ran = data["ran"]
        assert isinstance(ran, dict)
        console.print(
            f"scheduled {w.start.isoformat()} to {w.end.isoformat()}; ran "
            f"{ran['first_start'] or '-'} to {ran['last_finish'] or '-'}; "
            f"{data['packages_installed']} package upgrades; {data['audit_events']} audit events"
        )
        if data["halt_reason"]:
            console.print(styled("[red]halted: {}[/]", data["halt_reason"]))
        table = Table(title="hosts", title_justify="left")
        for col in ("batch", "host", "state", "what happened"):
            table.add_column(col)
        for h in hosts:
            table.add_row(str(h.batch or "-"), h.target, h.state, h.summary)
        console.print(table)

    app.emit(data, render)
    return 0
