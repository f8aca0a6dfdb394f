"""``vcops info`` (where everything is found) and ``vcops init`` (a starter directory)."""

from __future__ import annotations

import os
import shlex
import shutil
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click
from rich.console import Console

from vcops import __version__
from vcops.cli.app import App, json_option
from vcops.cli.text import plain, styled
from vcops.errors import ConfigError
from vcops.paths import deploys_dir, roles_dir, share_dir, templates_origin
from vcops.store import redact_url

STARTER = "starter"


def collect_info(app: App) -> dict[str, object]:
    """Where the state, config, inventory and templates were found, and why."""
    info: dict[str, object] = {"version": __version__}
    try:
        cfg = app.config()
    except ConfigError as exc:
        info["config"] = {"path": str(app.config_file), "origin": app.config_origin}
        info["error"] = str(exc)
        return info
    state, state_origin = cfg.state_origin
    info["config"] = {
        "path": str(cfg.source.absolute()) if cfg.source else None,
        "origin": app.config_origin if cfg.source else "none",
    }
    info["state"] = {"path": str(state), "origin": state_origin, "exists": state.is_dir()}
    info["database"] = redact_url(cfg.database_url)
    if cfg.broker_url:
        from vcops.connectors.broker import redact

        info["broker"] = redact(cfg.broker_url)
        info["worker_sites"] = list(cfg.workers.sites)
    info["snapshots"] = str(cfg.snapshots_dir.absolute())
    inv = app.inventory_dir.absolute()
    info["inventory"] = {"path": str(inv), "origin": app.inventory_origin, "exists": inv.is_dir()}
    templates, origin = templates_origin()
    if cfg.templates_dir is not None:
        origin = "config"
    info["templates"] = {"path": str(templates), "origin": origin, "exists": templates.is_dir()}
    info["deploys"] = str(deploys_dir())
    info["roles"] = str(roles_dir())
    info["package"] = str(share_dir().parent)
    return info


@click.command()
@json_option
@click.pass_obj
def info(app: App) -> int:
    """Where vcops keeps its state and found its config, inventory and templates."""
    data = collect_info(app)

    def render(console: Console) -> None:
        console.print(plain(f"vcops {data['version']}"))
        for key in ("config", "state", "inventory", "templates"):
            value = data.get(key)
            if isinstance(value, dict):
                console.print(
                    styled(
                        "  {}{}  ({})" + ("" if value.get("exists", True) else "{}"),
                        f"{key:<10} ",
                        value["path"] or "none",
                        value["origin"],
                        *([] if value.get("exists", True) else [" (not there yet)"]),
                    )
                )
        for key in ("database", "broker", "worker_sites", "snapshots", "deploys", "roles"):
            if key in data:
                console.print(plain(f"  {key:<10} {data[key]}"))
        if "error" in data:
            console.print(styled("  [red]{}[/]", data["error"]))

    app.emit(data, render)
    return 2 if "error" in data else 0


def _files(root: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    """Every file under ``root`` as (relative path, resource), sorted."""
    found: list[tuple[str, Traversable]] = []
    for item in sorted(root.iterdir(), key=lambda t: t.name):
        name = f"{prefix}{item.name}"
        if item.is_dir():
            found += _files(item, f"{name}/")
        elif not name.endswith((".pyc", ".pyo")):
            found.append((name, item))
    return found


def write_starter(directory: Path, *, force: bool = False) -> list[Path]:
    """Copy the starter ``inventory/`` and ``vcops.toml`` into ``directory``.

    Raises:
        ConfigError: a file would be overwritten (without ``force``) or cannot be written.
    """
    files = _files(resources.files("vcops") / STARTER)
    targets = [(directory / name, item) for name, item in files]
    existing = [str(path) for path, _ in targets if path.exists()]
    if existing and not force:
        raise ConfigError(
            f"{directory}: would overwrite {', '.join(existing)}; "
            "choose an empty directory or pass --force"
        )
    written = []
    try:
        for path, item in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(item.read_bytes())
            written.append(path)
        known_hosts = directory / "inventory" / "known_hosts"
        if not known_hosts.exists():
            known_hosts.touch(mode=0o644)
            written.append(known_hosts)
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot write the starter files: {exc}") from exc
    return written


def next_commands(directory: Path) -> list[str]:
    """The three commands to run after ``vcops init`` (paths quoted for a shell)."""
    config = shlex.quote(str(directory / "vcops.toml"))
    known = shlex.quote(str(directory / "inventory" / "known_hosts"))
    return [
        f"ssh-keyscan -t ed25519 -p 22 192.0.2.21 >> {known}",
        f"vcops -c {config} inventory check",
        f"vcops -c {config} inventory ping",
    ]


@click.command()
@click.argument("directory", type=click.Path(path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Overwrite starter files that already exist.")
@json_option
@click.pass_obj
def init(app: App, directory: Path, force: bool) -> int:
    """Write a starter operator directory: inventory/ and vcops.toml, all commented."""
    directory = directory.absolute()
    written = write_starter(directory, force=force)
    steps = next_commands(directory)
    data = {"directory": str(directory), "written": [str(p) for p in written], "next": steps}

    def render(console: Console) -> None:
        console.print(plain(f"wrote {len(written)} files in {directory}:"))
        for path in written:
            console.print(plain(f"  {path.relative_to(directory)}"))
        listing = shlex.quote(str(directory / "inventory" / "known_hosts"))
        console.print(
            styled(
                "\nedit inventory/*.yml (your servers, devices, networks, board), then:\n"
                "\n  1. pin each server's host key (once per server):\n       {}"
                "\n     [yellow]ssh-keyscan trusts the network: compare every fingerprint"
                " (ssh-keygen -lf {})\n     with the host's own, read on its console"
                " (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), before you rely on it[/]"
                "\n  2. {}\n  3. {}",
                steps[0],
                listing,
                steps[1],
                steps[2],
            )
        )
        if shutil.which("vcops") is None and os.environ.get("VIRTUAL_ENV"):
            console.print(plain(f"\n(vcops is in {os.environ['VIRTUAL_ENV']}/bin)"))

    app.emit(data, render)
    return 0
