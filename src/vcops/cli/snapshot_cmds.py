"""``vcops snapshot``: take, list, show, diff and restore config snapshots kept in git."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vcops.cli.app import App, json_option, limit_option
from vcops.cli.progress import progress_for
from vcops.cli.text import styled
from vcops.cli.worker_cmds import site_plan
from vcops.errors import ApprovalError, InventoryError, Problem, StoreError
from vcops.inventory import select_targets
from vcops.inventory.models import Target
from vcops.snapshot.build import FILE_LIST, FILES_DIR, parse_file_list
from vcops.snapshot.gitstore import SnapshotRepo
from vcops.snapshot.models import FileDiff, RestoreReport, TakeReport
from vcops.snapshot.restore import restore_target
from vcops.snapshot.take import SnapshotContext, take_snapshots

_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_WINDOW_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_STATUS_COLOUR = {
    "new": "green",
    "changed": "yellow",
    "unchanged": "dim",
    "unreachable": "red",
    "failed": "red",
}


def _repo(app: App) -> SnapshotRepo:
    return SnapshotRepo(app.config().snapshots_dir)


def _snapshots_of(app: App, name: str) -> tuple[SnapshotRepo, str, list[str]]:
    """The repository, the checked host name and its snapshot commits (newest first)."""
    repo = _repo(app)
    repo.require()
    host = _host(name)
    commits = repo.host_commits(host)
    if not commits:
        raise StoreError(f"{host}: no snapshot in {repo.path}; run `vcops snapshot take -l {host}`")
    return repo, host, commits


def _host(name: str) -> str:
    if not _HOST_RE.match(name):
        raise InventoryError(
            [Problem("HOST", name, "not a host name", "see `vcops snapshot list` for hosts")]
        )
    return name


def _target(app: App, name: str) -> Target:
    inv = app.inventory()
    target = inv.target(_host(name))
    if target is None:
        raise InventoryError(
            [
                Problem(
                    str(app.inventory_dir),
                    name,
                    "no such server or device",
                    "see `vcops inventory show`",
                )
            ]
        )
    return target


def _context(app: App) -> SnapshotContext:
    return SnapshotContext.open(app.inventory(), app.config(), store=app.store())


def render_diff(console: Console, files: list[FileDiff]) -> None:
    """A unified diff, coloured on a terminal (plain in a pipe: rich drops the styles)."""
    for item in files:
        for line in item.diff.splitlines():
            style = ""
            if line.startswith(
                ("diff --git", "index ", "--- ", "+++ ", "new file", "deleted file")
            ):
                style = "bold"
            elif line.startswith("@@"):
                style = "cyan"
            elif line.startswith("+"):
                style = "green"
            elif line.startswith("-"):
                style = "red"
            console.print(Text(line, style=style), soft_wrap=True)


@click.group()
def snapshot() -> None:
    """Config snapshots of servers and network gear, kept in git with secrets masked."""


@snapshot.command()
@limit_option
@click.option("--reason", "-r", default="on demand", show_default=True, help="Why (in the commit).")
@click.option("--window", "window", default=None, metavar="ID", help="Patch window id, if any.")
@json_option
@click.pass_obj
def take(app: App, limit: str | None, reason: str, window: str | None) -> int:
    """Snapshot the selected targets: one commit per run, none if nothing changed."""
    if window is not None and not _WINDOW_RE.match(window):
        raise InventoryError(
            [
                Problem(
                    "--window", window, "not a window id", "use letters, digits, '-', '_', '.', ':'"
                )
            ]
        )
    reason = " ".join(reason.split()) or "on demand"
    targets = select_targets(app.inventory(), limit)
    ctx = _context(app)
    plan = site_plan(app)
    remote = None
    if plan is not None:
        from vcops.workers_snapshot import remote_snapshot

        remote = remote_snapshot(plan, ctx.key)
    with progress_for(app, "snapshot", len(targets)) as advance:
        report = take_snapshots(
            ctx, targets, reason=reason, window=window, on_result=advance, remote=remote
        )
    app.emit(report.model_dump(mode="json"), lambda c: _render_take(c, report))
    return report.exit_code


def _render_take(console: Console, report: TakeReport) -> None:
    table = Table(title=f"snapshot: {len(report.hosts)} targets", title_justify="left")
    for column in ("name", "kind", "status", "via", "files", "masked", "detail"):
        table.add_column(column)
    for row in report.hosts:
        detail = row.error or "; ".join(row.warnings[:2]) or f"{row.seconds:.2f}s"
        colour = _STATUS_COLOUR.get(row.status, "")
        table.add_row(
            row.name,
            row.kind,
            Text(row.status, style=colour),
            row.via,
            str(row.files) if row.files else "-",
            str(row.masked),
            Text(detail),
        )
    console.print(table)
    if report.commit:
        console.print(
            styled(
                "committed [bold]{}[/]: {} changed ({})",
                report.commit[:12],
                len(report.changed),
                ", ".join(report.changed),
            ),
            highlight=False,
        )
    else:
        console.print("no change: nothing committed")


@snapshot.command(name="list")
@click.argument("host", required=False)
@click.option("--max", "max_count", type=click.IntRange(1), default=None, help="At most N.")
@json_option
@click.pass_obj
def list_(app: App, host: str | None, max_count: int | None) -> int:
    """Snapshot commits, newest first (only those changing HOST when given)."""
    repo = _repo(app)
    repo.require()
    commits = repo.log(_host(host) if host else None, max_count)

    def render(console: Console) -> None:
        title = f"snapshots of {host}" if host else f"snapshots in {repo.path}"
        table = Table(title=f"{title}: {len(commits)}", title_justify="left")
        for column in ("commit", "date", "operator", "reason", "window", "hosts changed"):
            table.add_column(column)
        for c in commits:
            changed = ", ".join(c.hosts_changed[:6]) + (" ..." if len(c.hosts_changed) > 6 else "")
            table.add_row(
                c.short,
                c.date[:19].replace("T", " "),
                c.operator or c.author,
                Text(c.reason or c.subject),
                c.window or "-",
                changed or "-",
            )
        console.print(table)

    app.emit([c.model_dump(mode="json") for c in commits], render)
    return 0


@snapshot.command()
@click.argument("host")
@click.argument("rev", required=False)
@click.argument("path", required=False)
@json_option
@click.pass_obj
def show(app: App, host: str, rev: str | None, path: str | None) -> int:
    """List HOST's files at REV (default: its latest snapshot), or print one PATH."""
    repo, host, commits = _snapshots_of(app, host)
    commit = repo.resolve(rev) if rev else commits[0]
    files = repo.read_tree(host, commit)
    if not files:
        raise StoreError(f"{host}: no snapshot at {rev}; see `vcops snapshot list {host}`")
    if path is not None:
        inside = f"{FILES_DIR}{path}" if path.startswith("/") else path
        if inside not in files:
            raise StoreError(
                f"{host}: no file {path} in the snapshot at {commit[:12]}; "
                f"list them with `vcops snapshot show {host} {commit[:12]}`"
            )
        content = files[inside].decode("utf-8", "replace")
        if app.json:
            app.emit(
                {"host": host, "commit": commit, "path": path, "content": content}, lambda c: None
            )
        else:
            click.echo(content, nl=False)
        return 0
    listing = parse_file_list(files.get(FILE_LIST, b"").decode("utf-8", "replace"))
    rows = []
    for name in sorted(files):
        shown = name[len(FILES_DIR) :] if name.startswith(FILES_DIR + "/") else name
        entry = listing.get(shown)
        rows.append(
            {
                "path": shown,
                "bytes": len(files[name]),
                "mode": entry.mode if entry else "",
                "owner": f"{entry.owner}:{entry.group}" if entry else "",
            }
        )
    rows += [
        {
            "path": e.path,
            "bytes": None,
            "mode": e.mode,
            "owner": f"{e.owner}:{e.group}",
            "type": e.type,
            "detail": e.detail,
        }
        for e in listing.values()
        if e.type != "file"
    ]

    def render(console: Console) -> None:
        table = Table(title=f"{host} at {commit[:12]}: {len(rows)} entries", title_justify="left")
        for column in ("path", "bytes", "mode", "owner", "note"):
            table.add_column(column)
        for row in rows:
            note = f"{row.get('type', '')} {row.get('detail', '')}".strip()
            table.add_row(
                Text(str(row["path"])),
                str(row["bytes"] if row["bytes"] is not None else "-"),
                str(row["mode"]),
                str(row["owner"]),
                Text(note),
            )
        console.print(table)

    app.emit({"host": host, "commit": commit, "files": rows}, render)
    return 0


@snapshot.command()
@click.argument("host")
@click.argument("rev_a", required=False)
@click.argument("rev_b", required=False)
@json_option
@click.pass_obj
def diff(app: App, host: str, rev_a: str | None, rev_b: str | None) -> int:
    """What changed on HOST between two snapshots (default: its last two)."""
    repo, host, commits = _snapshots_of(app, host)
    if rev_a is None:
        if len(commits) < 2:
            app.emit(
                {"host": host, "from": None, "to": commits[0], "files": []},
                lambda c: c.print(
                    f"{host} has one snapshot ({commits[0][:12]}): nothing to compare"
                ),
            )
            return 0
        old, new = commits[1], commits[0]
    else:
        old = repo.resolve(rev_a)
        new = repo.resolve(rev_b) if rev_b else commits[0]
    files = repo.diff(host, old, new)

    def render(console: Console) -> None:
        console.print(
            Text(f"{host}: {old[:12]} -> {new[:12]}: {len(files)} file(s) changed", style="bold")
        )
        render_diff(console, files)

    app.emit(
        {"host": host, "from": old, "to": new, "files": [f.model_dump(mode="json") for f in files]},
        render,
    )
    return 0


@snapshot.command()
@click.argument("host")
@click.argument("rev")
@click.option("--check", is_flag=True, help="Show what would change; change nothing.")
@click.option("--emergency", metavar="REASON", default=None, help="Allow production; recorded.")
@click.option("--skip-masked", is_flag=True, help="Leave files whose secrets are unknown alone.")
@click.option("--path", "paths", multiple=True, metavar="PATH", help="Only this file or directory.")
@click.option(
    "--method",
    type=click.Choice(["auto", "replace", "merge"]),
    default="auto",
    show_default=True,
    help="Devices: NAPALM replace, Netmiko line merge, or replace falling back to merge.",
)
@json_option
@click.pass_obj
def restore(
    app: App,
    host: str,
    rev: str,
    check: bool,
    emergency: str | None,
    skip_masked: bool,
    paths: tuple[str, ...],
    method: str,
) -> int:
    """Put HOST's config back as the snapshot REV has it (validated, services reloaded)."""
    target = _target(app, host)
    ctx = _context(app)
    try:
        report = restore_target(
            ctx,
            target,
            rev,
            check=check,
            emergency=emergency,
            skip_masked=skip_masked,
            paths=list(paths) or None,
            method=method,
            now=datetime.now(UTC),
        )
    except ApprovalError as exc:
        app.store().audit("snapshot.restore.refused", target.name, {"rev": rev, "why": str(exc)})
        raise
    app.emit(report.model_dump(mode="json"), lambda c: _render_restore(c, report))
    if report.error and not app.json:
        click.echo(f"vcops: error: {report.error}", err=True)
    return report.exit_code


def _render_restore(console: Console, report: RestoreReport) -> None:
    if report.status == "nothing-to-do":
        console.print(Text(f"{report.host} already matches {report.rev[:12]}: nothing to do"))
        for note in report.notes:
            console.print(Text(f"note: {note}"))
        return
    what = "plan (--check: nothing changed)" if report.check else report.status
    console.print(
        Text(
            f"restore {report.host} to {report.rev[:12]} via {report.method or '-'}: {what}",
            style="bold",
        )
    )
    changed = [f for f in report.files if f.action != "unchanged"]
    if changed:
        table = Table(show_header=True, box=None)
        for column in ("path", "action", "validator", "note"):
            table.add_column(column)
        for f in changed:
            table.add_row(Text(f.path), f.action, f.validator or "-", Text(f.reason))
        console.print(table)
        render_diff(
            console,
            [FileDiff(path=f.path, status="modified", diff=f.diff) for f in changed if f.diff],
        )
    if report.commands:
        console.print(Text(f"config lines ({len(report.commands)}):", style="bold"))
        for line in report.commands:
            console.print(Text(f"  {line}"))
    for name, state in report.reloaded.items():
        console.print(Text(f"reload {name}: {state}"))
    for note in report.notes:
        console.print(Text(f"note: {note}"))
    if report.before_commit:
        console.print(f"before snapshot: {report.before_commit[:12]}")
    if report.after_commit:
        console.print(f"after snapshot: {report.after_commit[:12]}")
