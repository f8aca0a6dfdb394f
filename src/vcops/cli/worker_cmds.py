"""``vcops worker``: run a site worker; ``vcops worker status``: who is serving which site."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from vcops.cli.app import App, json_option
from vcops.cli.text import styled
from vcops.errors import ConfigError

if TYPE_CHECKING:
    from vcops.window.sites import WindowSites
    from vcops.workers import SitePlan


def _broker(app: App) -> str:
    url = app.config().broker_url
    if not url:
        raise ConfigError(
            "no broker: set [workers] broker_url in vcops.toml (or $VCOPS_BROKER_URL), "
            'e.g. "redis://127.0.0.1:6379/0"'
        )
    return url


def site_plan(app: App) -> SitePlan | None:
    """The sites with workers and how to reach them, when vcops.toml names a broker
    and sites (else None: everything runs in-process)."""
    cfg = app.config()
    if not cfg.broker_url or not cfg.workers.sites:
        return None
    from vcops.workers import SitePlan

    return SitePlan(
        broker_url=cfg.broker_url,
        sites=list(cfg.workers.sites),
        inventory_root=app.inventory_dir,
        chunk=cfg.workers.chunk,
        result_timeout=cfg.workers.result_timeout,
        visibility_timeout=cfg.workers.visibility_timeout,
    )


def window_sites(app: App, key: bytes | None = None) -> WindowSites | None:
    """Where a window's servers are planned and run from: their sites' workers for
    the sites with workers (``key``: the masking key, read if not given); None when
    everything runs here."""
    plan = site_plan(app)
    if plan is None:
        return None
    from vcops.snapshot.keys import load_or_create_key
    from vcops.workers_window import window_sites as through_workers

    cfg = app.config()
    return through_workers(plan, key or load_or_create_key(cfg.state_dir, cfg.snapshots_dir))


@click.group(invoke_without_command=True)
@click.option("--site", default=None, help="The site whose queue this worker consumes.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=2, show_default=True)
@click.pass_context
def worker(ctx: click.Context, site: str | None, concurrency: int) -> int:
    """Run a site worker: scan, snapshot, apply and run window steps on this site's
    servers and devices for the controller (Celery on Redis).

    Runs until stopped (SIGTERM finishes the tasks in hand). It reads the same inventory
    as the controller and uses its own SSH key and known_hosts; snapshots and apply
    --check diffs are masked here with the controller's masking key copied into this worker's state_dir.
    Nothing secret crosses the broker.
    """
    if ctx.invoked_subcommand is not None:
        return 0
    app: App = ctx.obj
    if not site:
        raise click.UsageError("give --site NAME (or `vcops worker status`)")
    inv = app.inventory()
    if inv.site(site) is None and not any(s.site == site for s in inv.servers):
        known = ", ".join(sorted({s.name for s in inv.sites})) or "none"
        raise ConfigError(f"inventory: no site {site!r}; sites: {known}")
    from vcops.connectors.broker import node_name
    from vcops.workers import WorkerContext
    from vcops.workers_serve import serve

    cfg = app.config()
    node = node_name(site)
    click.echo(f"vcops worker {node}: serving site {site} (concurrency {concurrency})", err=True)
    serve(
        WorkerContext(
            site=site,
            inventory_root=app.inventory_dir,
            broker_url=_broker(app),
            node=node,
            max_parallel=cfg.run.max_parallel,
            concurrency=concurrency,
            lock_ttl=cfg.workers.host_lock_seconds,
            state_dir=cfg.state_dir,
            snapshots_dir=cfg.snapshots_dir,
        ),
        concurrency,
        cfg.workers.visibility_timeout,
    )
    return 0


@worker.command("install")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("/etc/systemd/system"),
    show_default=True,
    help="Where to write the unit.",
)
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=2, show_default=True)
@json_option
@click.pass_obj
def install(app: App, directory: Path, concurrency: int) -> int:
    """Write the systemd unit template vcops-worker@.service for this checkout."""
    from vcops.cli.schedule_cmds import _vcops_binary
    from vcops.schedule import render_worker_unit, write_units

    cfg = app.config()
    app.inventory()  # refuse to serve an invalid inventory
    units = render_worker_unit(
        vcops=_vcops_binary(),
        workdir=Path.cwd().resolve(),
        inventory=app.inventory_dir.resolve(),
        config=cfg.source.resolve() if cfg.source else None,
        concurrency=concurrency,
    )
    paths = write_units(units, directory)
    todo = ["systemctl daemon-reload", "systemctl enable --now vcops-worker@SITE  (per site)"]

    def render(console: Console) -> None:
        for p in paths:
            console.print(f"wrote {p}")
        for command in todo:
            console.print(f"then run: {command}")

    app.emit({"written": [str(p) for p in paths], "then_run": todo}, render)
    return 0


@worker.command("status")
@json_option
@click.pass_obj
def status(app: App) -> int:
    """Workers per site: node, queue, concurrency, last heartbeat, alive or not."""
    from vcops.connectors.broker import worker_beats

    beats = worker_beats(_broker(app))
    sites = app.config().workers.sites
    now = time.time()
    data = {
        "sites": sites,
        "workers": [b.model_dump() | {"age_seconds": round(now - b.last, 1)} for b in beats],
    }

    def render(console: Console) -> None:
        table = Table(title=f"{sum(b.alive for b in beats)} live workers", title_justify="left")
        for col in ("site", "node", "queue", "concurrency", "last heartbeat", "state"):
            table.add_column(col)
        for b in beats:
            table.add_row(
                b.site,
                b.node,
                b.queue,
                str(b.concurrency),
                f"{now - b.last:.0f}s ago",
                styled("[green]alive[/]") if b.alive else styled("[red]gone[/]"),
            )
        console.print(table)
        for site in sites:
            if not any(b.alive and b.site == site for b in beats):
                console.print(
                    styled("[yellow]site {}: no live worker; its targets are unknown[/]", site)
                )

    app.emit(data, render)
    return 0
