"""``vcops audit``: read and verify the hash-chained audit log."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from vcops.audit import verify_chain
from vcops.cli.app import App, json_option
from vcops.cli.text import styled


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log."""


@audit.command("log")
@click.option(
    "--last", "-n", type=click.IntRange(min=1), default=None, help="Only the newest N entries."
)
@click.option(
    "--action", default=None, metavar="GLOB", help="Only actions matching GLOB (e.g. 'lab.*')."
)
@json_option
@click.pass_obj
def log_(app: App, last: int | None, action: str | None) -> int:
    """List audit entries, oldest first."""
    entries = app.store().audit_entries(limit=last, action=action)

    def render(console: Console) -> None:
        table = Table(title=f"audit log: {len(entries)} entries", title_justify="left")
        for col in ("id", "time (UTC)", "actor", "action", "target", "detail"):
            table.add_column(col)
        for e in entries:
            detail = ", ".join(f"{k}={v}" for k, v in e.detail.items())
            table.add_row(
                str(e.id), e.ts[:19].replace("T", " "), e.actor, e.action, e.target, detail[:80]
            )
        console.print(table)

    app.emit([e.model_dump() for e in entries], render)
    return 0


@audit.command()
@json_option
@click.pass_obj
def verify(app: App) -> int:
    """Check the chain; exit 1 and name the first bad entry if a row was edited or deleted."""
    store = app.store()
    result = verify_chain(store.audit_entries(), store.read_anchor())

    def render(console: Console) -> None:
        if result.ok:
            console.print(
                styled(
                    "[green]audit log intact[/]: {} entries, every link verified", result.entries
                )
            )
        else:
            console.print(styled("[red]audit log TAMPERED[/]: {}", result.reason))

    app.emit(result.model_dump(), render)
    return 0 if result.ok else 1
