"""``vcops audit``: read and verify the hash-chained audit log, its signed anchor and key."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from vcops import sshsig
from vcops.cli.app import App, json_option
from vcops.cli.text import styled
from vcops.dashboard import audit_verdict


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
            if e.problem:
                detail = f"UNREADABLE: {e.problem}"
            table.add_row(
                str(e.id), e.ts[:19].replace("T", " "), e.actor, e.action, e.target, detail[:80]
            )
        console.print(table)

    app.emit([e.model_dump() for e in entries], render)
    return 0


@audit.command()
@click.option(
    "--pubkey",
    "pubkey",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Check the anchor's signature with this pinned public key (from `vcops audit key`).",
)
@json_option
@click.pass_obj
def verify(app: App, pubkey: Path | None) -> int:
    """Check the chain and the signed anchor; exit 1 naming the first problem.

    Catches an edited, deleted or unreadable row, a cut-off tail, a rewritten chain, a
    database rolled back to an older copy, rows appended behind the controller's back,
    and a missing, edited or forged anchor.
    """
    try:
        pinned = pubkey.read_text() if pubkey else None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{pubkey}: cannot read: {exc}") from exc
    store = app.store()
    anchor = store.read_anchor()
    result = audit_verdict(store, pinned)

    def render(console: Console) -> None:
        if result.ok:
            console.print(
                styled(
                    "[green]audit log intact[/]: {} entries, every link verified{}",
                    result.entries,
                    ", anchor signature verified" if anchor is not None else "",
                )
            )
        else:
            console.print(styled("[red]audit log TAMPERED[/]: {}", result.reason))

    app.emit(result.model_dump(), render)
    return 0 if result.ok else 1


@audit.command()
@json_option
@click.pass_obj
def key(app: App) -> int:
    """Print the controller's audit public key (created on first use) for auditors to pin."""
    store = app.store()
    public = store.public_key()
    data = {
        "public_key": public,
        "fingerprint": sshsig.fingerprint(public),
        "file": str(store.key_file),
    }
    app.emit(data, lambda c: c.print(public, markup=False))
    return 0


@audit.command()
@click.option("--reason", required=True, help="Why the current head is accepted (recorded).")
@json_option
@click.pass_obj
def reanchor(app: App, reason: str) -> int:
    """Accept the log's current head as this controller's anchor, recording why.

    For a restored database or a lost anchor, after checking the log by other means (the
    syslog/journal copy of each head). The chain itself must verify.
    """
    store = app.store()
    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    entry = store.reanchor(reason)
    app.emit(
        entry.model_dump(),
        lambda c: c.print(
            f"audit log re-anchored at entry {entry.id} (recorded as audit.reanchor)"
        ),
    )
    return 0
