"""The CLI's shared state: global options, lazily loaded inventory/config/store, output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from rich.console import Console

from vcops.config import Config, load_config
from vcops.errors import VcopsError
from vcops.inventory import Inventory, load_inventory
from vcops.paths import TEMPLATES_ENV

if TYPE_CHECKING:
    from vcops.store import Store

F = TypeVar("F", bound=Callable[..., object])


def _console(*, stderr: bool) -> Console:
    """A console as wide as the terminal, or 200 columns in a pipe (no truncated tables)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        stderr=stderr,
        highlight=False,
        markup=False,  # external text is never markup: see vcops.cli.text
        soft_wrap=True,
        width=None if stream.isatty() else 200,
    )


@dataclass
class App:
    """What every command gets through ``click.pass_obj``."""

    inventory_dir: Path
    config_file: Path | None
    json: bool = False
    debug: bool = False
    inventory_origin: str = "default"
    config_origin: str = "default"
    out: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))
    _inventory: Inventory | None = None
    _config: Config | None = None
    _store: Store | None = None

    def inventory(self) -> Inventory:
        if self._inventory is None:
            self._inventory = load_inventory(self.inventory_dir)
        return self._inventory

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_file)
        return self._config

    def apply_config_paths(self) -> None:
        """Let vcops.toml's ``[paths]`` choose the inventory (when neither ``-i`` nor
        ``$VCOPS_INVENTORY`` did) and the templates root (exported as ``$VCOPS_TEMPLATES``
        so the pyinfra and Ansible subprocesses render from the same files).

        A malformed config is not reported here: the command that needs it says so.
        """
        try:
            cfg = self.config()
        except VcopsError:
            self._config = None
            return
        if cfg.inventory_dir is not None and self.inventory_origin == "default":
            self.inventory_dir, self.inventory_origin = cfg.inventory_dir, "config"
        if cfg.templates_dir is not None:
            os.environ[TEMPLATES_ENV] = str(cfg.templates_dir)

    def store(self) -> Store:
        if self._store is None:
            from vcops.store import open_store  # SQLAlchemy: 0.15 s, only for commands that store

            cfg = self.config()
            self._store = open_store(cfg.database_url, cfg.state_dir, pgpass_file=cfg.pgpass_file)
        return self._store

    @property
    def interactive(self) -> bool:
        """Progress bars only for a person at a terminal, never under --json."""
        return not self.json and sys.stderr.isatty()

    def emit(self, data: object, render: Callable[[Console], None]) -> None:
        """Print ``data`` as JSON under --json, else call ``render`` for a person."""
        if self.json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            render(self.out)


def json_option(func: F) -> F:
    """``--json`` on a command (the global ``vcops --json`` works too)."""

    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.find_object(App).json = True  # type: ignore[union-attr]
        return value

    return click.option(
        "--json",
        "json_",
        is_flag=True,
        expose_value=False,
        callback=callback,
        is_eager=False,
        help="Print machine-readable JSON.",
    )(func)


def limit_option(func: F) -> F:
    """``--limit PATTERN``, the same on every command that targets hosts."""
    return click.option(
        "--limit",
        "-l",
        metavar="PATTERN",
        default=None,
        help="Targets by name glob, group, role, site ... (e.g. 'role:kamailio,!kam-02').",
    )(func)
