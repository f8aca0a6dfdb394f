"""``vcops lab``: throwaway Debian hosts, switch simulators and an SMTP server on this machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from vcops.cli.app import App, json_option
from vcops.cli.text import styled

if TYPE_CHECKING:
    from vcops.lab import LabStatus


@click.group()
def lab() -> None:
    """Build, inspect and tear down the lab (root; Debian 12 hosts in network namespaces)."""


def _say(app: App) -> Callable[[str], None]:
    def say(message: str) -> None:
        if not app.json:
            app.err.print(styled("[dim]lab:[/] {}", message))

    return say


@lab.command()
@click.option(
    "--hosts",
    type=click.IntRange(1, 100),
    default=6,
    show_default=True,
    help="Number of Debian hosts.",
)
@click.option(
    "--switches",
    type=click.IntRange(0, 20),
    default=2,
    show_default=True,
    help="Number of switch simulators.",
)
@click.option(
    "--dir",
    "lab_dir",
    type=click.Path(path_type=Path),
    default=Path("inventory/lab"),
    show_default=True,
    help="Where to write the lab inventory.",
)
@click.option(
    "--user",
    type=click.Choice(["root", "vcops"]),
    default="vcops",
    show_default=True,
    help="The login the lab inventory uses: vcops manages the hosts through sudo, as a "
    "real fleet; root (opt-in) logs in as root (every host has both).",
)
@json_option
@click.pass_obj
def up(app: App, hosts: int, switches: int, lab_dir: Path, user: str) -> int:
    """Start the lab and write its inventory (seconds once the image is cached)."""
    from vcops.lab import check_prerequisites, lab_up

    check_prerequisites(switches=switches > 0)
    status = lab_up(lab_dir, hosts=hosts, switches=switches, on_step=_say(app), user=user)
    app.store().audit("lab.up", str(lab_dir), {"hosts": hosts, "switches": switches, "user": user})
    _show(app, status)
    if not app.json:
        app.err.print(f"lab inventory: {lab_dir}  (use: vcops --inventory {lab_dir} ...)")
    return 0


@lab.command()
@click.option("--verbose", "-v", is_flag=True, help="Name every resource as it is removed.")
@json_option
@click.pass_obj
def down(app: App, verbose: bool) -> int:
    """Remove every lab host, switch, namespace, mount and process (safe to run twice)."""
    from vcops.lab import check_prerequisites, lab_down

    check_prerequisites(switches=False)
    removed = lab_down(on_step=_say(app) if verbose else None)
    app.store().audit("lab.down", "lab", {"removed": len(removed)})
    app.emit({"removed": removed}, lambda c: c.print(f"lab down: removed {len(removed)} resources"))
    return 0


@lab.command()
@click.argument("names", nargs=-1, required=True)
@json_option
@click.pass_obj
def reset(app: App, names: tuple[str, ...]) -> int:
    """Rebuild lab hosts to stock from the image (fresh overlay, same address and keys)."""
    from vcops.lab.reset import lab_reset

    done = lab_reset(list(names), on_step=_say(app))
    app.emit({"reset": done}, lambda c: c.print(f"lab reset: {', '.join(done)} back to stock"))
    return 0


@lab.command()
@json_option
@click.pass_obj
def image(app: App) -> int:
    """Build the cached Debian 12 lab image if it is missing (about a minute, once)."""
    from vcops.lab import check_prerequisites
    from vcops.lab.image import ensure_image

    check_prerequisites()
    path = ensure_image(_say(app))
    app.emit({"image": str(path)}, lambda c: c.print(f"lab image: {path}"))
    return 0


@lab.command()
@json_option
@click.pass_obj
def status(app: App) -> int:
    """Show lab hosts, switches and the SMTP server; exit 3 if something is down."""
    from vcops.lab import lab_status

    st = lab_status()
    _show(app, st)
    nodes = [(h.running, h.ssh_reachable) for h in st.hosts] + [
        (s.running, s.ssh_reachable) for s in st.switches
    ]
    if nodes and not all(running and reachable for running, reachable in nodes):
        return 3
    return 0


def _show(app: App, st: LabStatus) -> None:

    def render(console: Console) -> None:
        if not st.hosts and not st.switches:
            console.print("the lab is down")
            return
        table = Table(title="lab", title_justify="left")
        for col in ("name", "kind", "address", "role / platform", "running", "ssh"):
            table.add_column(col)
        yes = {True: styled("[green]yes[/]"), False: styled("[red]no[/]")}
        for h in st.hosts:
            table.add_row(
                h.name, "server", h.address, ",".join(h.roles), yes[h.running], yes[h.ssh_reachable]
            )
        for s in st.switches:
            table.add_row(
                s.name,
                "switch",
                s.address,
                f"{s.platform} ({s.transport})",
                yes[s.running],
                yes[s.ssh_reachable],
            )
        console.print(table)
        smtp = st.smtp
        if smtp is not None:
            console.print(
                f"smtp: {smtp.host}:{smtp.port} running={smtp.running} maildir={smtp.maildir}"
            )

    app.emit(st.model_dump(mode="json"), render)
