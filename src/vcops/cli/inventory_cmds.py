"""``vcops inventory``: check, show, export, ping."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click
from rich.console import Console
from rich.table import Table

from vcops.cli.app import App, json_option, limit_option
from vcops.cli.progress import progress_for
from vcops.cli.text import styled
from vcops.connectors.hosttask import HostRun, ScriptTask, run_tasks
from vcops.connectors.netdev import DeviceResult, DeviceTarget, fetch_many
from vcops.connectors.ssh import SshTarget
from vcops.errors import InventoryError
from vcops.inventory import Device, Server, load_inventory, render_export, select_targets
from vcops.inventory.export import ExportFormat

PING_TASK = ScriptTask(
    name="ping",
    script=r"""
{
printf 'hostname=%s\n' "$(hostname)"
printf 'kernel=%s\n' "$(uname -r)"
if [ -r /etc/os-release ]; then . /etc/os-release; printf 'os=%s\n' "${PRETTY_NAME:-unknown}"; fi
printf 'systemd=%s\n' "$(systemctl is-system-running 2>/dev/null || true)"
printf 'uptime=%s\n' "$(cut -d' ' -f1 /proc/uptime)"
printf 'runs_as=%s\n' "$(id -un)"
} >"$t/ping"
emit facts 0 "$t/ping"
""",
)


@click.group()
def inventory() -> None:
    """Validate, show and export the inventory; check every target answers."""


@inventory.command()
@json_option
@click.pass_obj
def check(app: App) -> int:
    """Report every problem in the inventory at once (exit 2 if any).

    Beyond the files themselves: the key, known_hosts and password files they name exist
    and are readable, every window_* and baseline_* variable is valid; warnings for
    secrets readable by others and targets without a management network.
    """
    from vcops.preflight import preflight

    try:
        inv = load_inventory(app.inventory_dir)
        problems, warnings = preflight(inv)
        if problems:
            raise InventoryError(problems)
    except InventoryError as exc:
        if app.json:
            raise
        app.err.print(styled("[red]{}: {} problem(s)[/]", app.inventory_dir, len(exc.problems)))
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        return 2
    if not app.json:
        for warning in warnings:
            app.err.print(styled("[yellow]warning:[/] {}", warning))
    summary = {
        "inventory": str(app.inventory_dir),
        "valid": True,
        "warnings": [str(w) for w in warnings],
        "servers": len(inv.servers),
        "devices": len(inv.devices),
        "sites": len(inv.sites),
        "groups": len(inv.groups),
        "redundancy_groups": len(inv.redundancy_groups),
        "board_members": len(inv.change_board.members),
        "freezes": len(inv.freezes),
    }
    app.emit(
        summary,
        lambda c: c.print(
            styled("[green]{} is valid[/]: ", app.inventory_dir),
            f"{summary['servers']} servers, "
            f"{summary['devices']} devices, {summary['sites']} sites, {summary['groups']} groups, "
            f"{summary['redundancy_groups']} redundancy groups, "
            f"{summary['board_members']} board members, {summary['freezes']} freezes",
            sep="",
        ),
    )
    return 0


def _target_row(target: Server | Device) -> dict[str, object]:
    base: dict[str, object] = {
        "name": target.name,
        "kind": target.kind,
        "address": target.address,
        "site": target.site,
        "environment": target.environment,
        "groups": list(target.groups),
    }
    if isinstance(target, Server):
        base.update(
            roles=list(target.roles),
            redundancy_group=target.redundancy_group,
            patch_group=target.patch_group,
            port=target.port,
        )
    else:
        base.update(platform=target.platform, transport=target.transport, port=target.port)
    return base


@inventory.command()
@limit_option
@json_option
@click.pass_obj
def show(app: App, limit: str | None) -> int:
    """List the selected servers and devices."""
    inv = app.inventory()
    targets = select_targets(inv, limit)
    rows = [_target_row(t) for t in targets]

    def render(console: Console) -> None:
        table = Table(title=f"{len(targets)} targets in {app.inventory_dir}", title_justify="left")
        for col in (
            "name",
            "kind",
            "address",
            "roles / platform",
            "site",
            "env",
            "redundancy",
            "patch",
            "groups",
        ):
            table.add_column(col)
        for t in targets:
            if isinstance(t, Server):
                what, rg, patch = ",".join(t.roles), t.redundancy_group or "-", t.patch_group or "-"
            else:
                what, rg, patch = f"{t.platform} ({t.transport})", "-", "-"
            table.add_row(
                t.name,
                t.kind,
                t.address,
                what,
                t.site,
                t.environment,
                rg,
                patch,
                ",".join(t.groups) or "-",
            )
        console.print(table)

    app.emit(rows, render)
    return 0


@inventory.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ansible", "ansible-json", "pyinfra"]),
    required=True,
    help="ansible: YAML inventory; ansible-json: dynamic-inventory JSON; "
    "pyinfra: inventory module.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Write to FILE instead of stdout.",
)
@click.pass_obj
def export(app: App, fmt: str, output: Path | None) -> int:
    """Export the inventory for Ansible or pyinfra (same hosts, same variables)."""
    text = render_export(app.inventory(), cast(ExportFormat, fmt))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        app.err.print(f"wrote {output}")
    return 0


@inventory.command()
@limit_option
@json_option
@click.pass_obj
def ping(app: App, limit: str | None) -> int:
    """One SSH round to every selected server and a running-config fetch from every device."""
    inv = app.inventory()
    targets = select_targets(inv, limit)
    servers = [SshTarget.from_inventory(inv, t) for t in targets if isinstance(t, Server)]
    devices = [DeviceTarget.from_inventory(inv, t) for t in targets if isinstance(t, Device)]
    parallel = app.config().run.max_parallel
    with progress_for(app, "ping", len(servers) + len(devices)) as advance:
        host_results = run_tasks(
            servers,
            [PING_TASK],
            max_parallel=parallel,
            timeout=60,
            on_result=lambda r: advance(r.name),
        )
        device_results = fetch_many(
            devices, max_parallel=min(parallel, 16), on_result=lambda r: advance(r.name)
        )
    rows = [_ping_row(r) for r in host_results] + [_device_row(r) for r in device_results]
    app.store().audit(
        "inventory.ping",
        limit or "all",
        {
            "ok": sum(r["status"] == "ok" for r in rows),
            "unreachable": [r["name"] for r in rows if r["status"] == "unreachable"],
        },
    )

    def render(console: Console) -> None:
        table = Table(title=f"ping: {len(rows)} targets", title_justify="left")
        for col in ("name", "status", "via", "detail"):
            table.add_column(col)
        colour = {"ok": "green", "failed": "red", "unreachable": "yellow"}
        for row in rows:
            table.add_row(
                str(row["name"]),
                styled(f"[{colour[str(row['status'])]}]{{}}[/]", row["status"]),
                str(row["via"]),
                str(row["detail"]),
            )
        console.print(table)

    app.emit(rows, render)
    if any(r["status"] == "unreachable" for r in rows):
        return 3
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def _ping_row(result: HostRun) -> dict[str, object]:
    facts: dict[str, str] = {}
    for line in (result.output("ping").ok_text("facts") or "").splitlines()[:20]:
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()[:40]] = value.strip()[:200]
    detail = (
        result.error
        or f"{facts.get('os', '?')}, systemd {facts.get('systemd', '?')}, as "
        f"{facts.get('runs_as', '?')}, {result.seconds:.2f}s"
    )
    return {
        "name": result.name,
        "status": result.status,
        "via": "ssh",
        "detail": detail,
        "facts": facts,
        "seconds": result.seconds,
    }


def _device_row(result: DeviceResult) -> dict[str, object]:
    lines = result.output.count("\n") + (1 if result.output else 0)
    detail = result.error or f"running config: {lines} lines"
    return {
        "name": result.name,
        "status": result.status,
        "via": result.transport,
        "detail": detail,
        "config_lines": lines,
    }
