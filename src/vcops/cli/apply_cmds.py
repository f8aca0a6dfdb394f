"""``vcops apply``: enforce the baseline with pyinfra or Ansible (servers) and hier-config
remediation with commit-confirm or Netmiko (devices), or ``--check`` it."""

from __future__ import annotations

import threading

import click
from rich.console import Console
from rich.table import Table

from vcops.cli.app import App, json_option, limit_option
from vcops.cli.progress import Bar, progress_for
from vcops.cli.text import plain, styled
from vcops.cli.worker_cmds import site_plan
from vcops.enforce.apply_models import Progress
from vcops.inventory.models import Target

STATUS_COLOUR = {
    "changed": "yellow",
    "unchanged": "green",
    "failed": "bold red",
    "unreachable": "bold yellow",
}


def once_per_target(bar: Bar) -> Progress:
    """The engines' reports on ``bar``, each target counted once (an engine reports a
    host's end as it happens and again with the outcomes)."""
    seen: set[str] = set()
    lock = threading.Lock()

    def done(name: str) -> None:
        with lock:
            if name in seen:
                return
            seen.add(name)
        bar(name)

    return Progress(done=done, at=bar.at, doing=bar.doing)


@click.command()
@limit_option
@click.option(
    "--engine",
    type=click.Choice(["pyinfra", "ansible"]),
    default="pyinfra",
    show_default=True,
    help="Enforcement engine.",
)
@click.option("--check", is_flag=True, help="Show per-host, per-file diffs; change nothing.")
@click.option(
    "--emergency",
    metavar="REASON",
    default=None,
    help="Allow production hosts outside a patch window; the reason is recorded.",
)
@json_option
@click.pass_obj
def apply(app: App, limit: str | None, engine: str, check: bool, emergency: str | None) -> int:
    """Enforce the section 3.2 baseline on servers and devices (exit 1 if a target failed,
    3 unreachable). Devices: --check prints each one's remediation and rollback lines."""
    from vcops.enforce.apply import ApplyReport, run_apply, select_apply_targets

    def say(message: str) -> None:
        if not app.json:
            app.err.print(styled("[dim]apply:[/] {}", message))

    store = None if check else app.store()
    inventory = app.inventory()

    plan = site_plan(app)  # the sites whose servers their workers apply and snapshot

    def snapshot(targets: list[Target], reason: str) -> str | None:
        from vcops.snapshot.take import SnapshotContext, take_snapshots

        ctx = SnapshotContext.open(inventory, app.config(), store)
        remote = None
        if plan is not None:
            from vcops.workers_snapshot import remote_snapshot

            remote = remote_snapshot(plan, ctx.key)
        taken = take_snapshots(ctx, targets, reason=reason, remote=remote)
        return taken.commit

    from vcops.snapshot.keys import key_path, load_or_create_key

    config = app.config()
    key = load_or_create_key(config.state_dir, config.snapshots_dir)
    remote_apply = None
    if plan is not None:
        from vcops.workers_apply import remote_apply as through_workers

        remote_apply = through_workers(plan, key)

    servers, devices = select_apply_targets(inventory, limit)
    with progress_for(app, "check" if check else "apply", len(servers) + len(devices)) as bar:
        report: ApplyReport = run_apply(
            inventory,
            limit,
            engine="ansible" if engine == "ansible" else "pyinfra",
            check=check,
            emergency=emergency,
            store=store,
            on_step=say,
            snapshot=None if check else snapshot,
            mask_key=key,
            mask_key_file=key_path(config.state_dir),
            remote=remote_apply,
            progress=once_per_target(bar),
        )

    def render(console: Console) -> None:
        if report.check:
            for host in report.hosts:
                for change in host.files:
                    console.print(styled("[bold]--- {}: {}[/]", host.name, change.path))
                    console.print(plain(change.diff.rstrip("\n")))
                if host.packages:
                    console.print(
                        styled("[bold]{}[/]: would install {}", host.name, ", ".join(host.packages))
                    )
                if host.kind == "device" and host.changes:
                    console.print(
                        styled(
                            "[bold]--- {}: remediation ({})[/]", host.name, ", ".join(host.controls)
                        )
                    )
                    console.print(plain("\n".join(host.changes)))
                    console.print(styled("[bold]--- {}: rollback[/]", host.name))
                    console.print(plain("\n".join(host.rollback)))
                for note in host.notes:
                    console.print(styled("[dim]{}: {}[/]", host.name, note))
        verb = "check" if report.check else "apply"
        table = Table(
            title=f"{verb} ({report.engine}) of {report.selection}: {len(report.hosts)} targets "
            f"in {report.seconds:.1f} s",
            title_justify="left",
        )
        for col in ("host", "status", "reason"):
            table.add_column(col)
        for host in report.hosts:
            colour = STATUS_COLOUR[host.status]
            status = "would change" if report.check and host.status == "changed" else host.status
            table.add_row(host.name, styled(f"[{colour}]{{}}[/]", status), host.reason)
        console.print(table)

    app.emit(report.model_dump(mode="json"), render)
    return report.exit_code()
