"""``vcops serve``: the dashboard and the change board's decision page."""

from __future__ import annotations

import ipaddress
import shutil
import sys
from pathlib import Path

import click

from vcops.cli.app import App
from vcops.errors import ConfigError


def parse_bind(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` / ``[::1]:8080`` -> (host, port).

    Raises:
        click.BadParameter: not an address and a port.
    """
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r}: give ADDRESS:PORT, e.g. 127.0.0.1:8080", param_hint="--bind"
        ) from exc
    if not sep or not 0 < number < 65536:
        raise click.BadParameter(f"{text!r}: port out of range", param_hint="--bind")
    return host, number


@click.command()
@click.option(
    "--bind",
    default=None,
    metavar="ADDRESS:PORT",
    help="Where to listen; default [web] bind, else 127.0.0.1:8080 (loopback).",
)
@click.option("--unit", is_flag=True, help="Print a systemd unit for this checkout and exit.")
@click.pass_obj
def serve(app: App, bind: str | None, unit: bool) -> int:
    """Serve the fleet dashboard, windows (signed decisions by upload) and the audit log."""
    cfg = app.config()
    address = bind or cfg.web.bind
    host, port = parse_bind(address)
    if unit:
        from vcops.schedule import render_web_unit

        vcops = Path(shutil.which("vcops") or Path(sys.executable).with_name("vcops"))
        click.echo(
            render_web_unit(
                vcops=vcops,
                workdir=Path.cwd(),
                inventory=app.inventory_dir.resolve(),
                config=cfg.source.resolve() if cfg.source else None,
                bind=address,
            ),
            nl=False,
        )
        return 0
    if not ipaddress.ip_address(host).is_loopback:
        app.err.print(
            f"listening on {host}: not loopback; put a reverse proxy with TLS and access control "
            "in front, or set [web] token_file"
        )
    import uvicorn

    from vcops.web.app import create_app

    app.inventory()  # a broken inventory is one readable line now, not a 500 later
    web = create_app(cfg, app.inventory_dir, app.store())
    app.err.print(f"vcops serve: http://{address}/ (Ctrl-C stops)")
    try:
        uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False)
    except OSError as exc:
        raise ConfigError(f"--bind {address}: {exc.strerror or exc}") from exc
    return 0
