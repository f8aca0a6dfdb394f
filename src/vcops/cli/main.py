"""``vcops``: the command line.

Exit codes: 0 ok, 1 drift or a failed action, 2 bad input, 3 targets unreachable.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import ClassVar

import click

from vcops import __version__
from vcops.cli.app import App
from vcops.errors import InventoryError, VcopsError

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_INTERNAL = 0, 1, 2, 3, 70


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or help lists it), so
    `vcops --version` and `vcops inventory show` do not pay for NAPALM or the parsers."""

    lazy: ClassVar[dict[str, str]] = {
        "inventory": "vcops.cli.inventory_cmds:inventory",
        "lab": "vcops.cli.lab_cmds:lab",
        "baseline": "vcops.cli.scan_cmds:baseline",
        "scan": "vcops.cli.scan_cmds:scan",
        "findings": "vcops.cli.scan_cmds:findings",
        "waiver": "vcops.cli.scan_cmds:waiver",
        "audit": "vcops.cli.audit_cmds:audit",
        "report": "vcops.cli.report_cmds:report",
        "schedule": "vcops.cli.schedule_cmds:schedule",
        "window": "vcops.cli.window_cmds:window",
        "snapshot": "vcops.cli.snapshot_cmds:snapshot",
        "apply": "vcops.cli.apply_cmds:apply",
        "serve": "vcops.cli.serve_cmds:serve",
        "worker": "vcops.cli.worker_cmds:worker",
        "info": "vcops.cli.info_cmds:info",
        "init": "vcops.cli.info_cmds:init",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            module, _, attr = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    help="Print the version and exit (with --json: also where state, config, inventory "
    "and templates were found, as `vcops info --json`).",
)
@click.option(
    "--inventory",
    "-i",
    "inventory_dir",
    type=click.Path(path_type=Path),
    envvar="VCOPS_INVENTORY",
    default=Path("inventory"),
    show_default=True,
    help="Inventory directory (or $VCOPS_INVENTORY).",
)
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    envvar="VCOPS_CONFIG",
    default=None,
    help="Configuration file (default ./vcops.toml, or $VCOPS_CONFIG).",
)
@click.option("--json", "json_", is_flag=True, help="Print machine-readable JSON.")
@click.option("--debug", is_flag=True, envvar="VCOPS_DEBUG", help="Show tracebacks on errors.")
@click.pass_context
def cli(
    ctx: click.Context,
    version: bool,
    inventory_dir: Path,
    config_file: Path | None,
    json_: bool,
    debug: bool,
) -> None:
    """vcops keeps a VoIP fleet hardened and patched (Code of Practice section 3.2).

    \b
    Start with `vcops init DIR` (a starter inventory and vcops.toml); `vcops info`
    says where state, config, inventory and templates are found.
    Exit codes: 0 ok; 1 drift or a failed action; 2 bad input; 3 targets unreachable.
    """
    app = App(
        inventory_dir=inventory_dir,
        config_file=config_file,
        json=json_,
        debug=debug,
        inventory_origin=_origin(ctx.get_parameter_source("inventory_dir"), "$VCOPS_INVENTORY"),
        config_origin=_origin(ctx.get_parameter_source("config_file"), "$VCOPS_CONFIG"),
    )
    ctx.obj = app
    app.apply_config_paths()
    if version:
        if json_:
            from vcops.cli.info_cmds import collect_info

            click.echo(json.dumps(collect_info(app), indent=2))
        else:
            click.echo(f"vcops {__version__}")
        ctx.exit(0)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)


def _origin(source: click.core.ParameterSource | None, env: str) -> str:
    """How a global option got its value: ``--option``, ``$ENV`` or ``default``."""
    if source is click.core.ParameterSource.COMMANDLINE:
        return "option"
    if source is click.core.ParameterSource.ENVIRONMENT:
        return env
    return "default"


def _report(exc: VcopsError, as_json: bool) -> None:
    if as_json:
        payload: dict[str, object] = {"error": str(exc), "type": exc.__class__.__name__}
        if isinstance(exc, InventoryError):
            payload["problems"] = [
                {"file": p.file, "entry": p.entry, "message": p.message, "fix": p.fix}
                for p in exc.problems
            ]
        click.echo(json.dumps(payload, indent=2), err=True)
        return
    if isinstance(exc, InventoryError) and len(exc.problems) > 1:
        click.echo(f"vcops: error: {len(exc.problems)} problems:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        return
    click.echo(f"vcops: error: {exc}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of raising (``sys.exit`` in the script)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("VCOPS_DEBUG", "") not in {"", "0"}
    as_json = "--json" in args
    try:
        result = cli.main(args=args, prog_name="vcops", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("vcops: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except VcopsError as exc:
        if debug:
            traceback.print_exc()
        _report(exc, as_json)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("vcops: interrupted", err=True)
        return 130
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"vcops: internal error: {exc.__class__.__name__}: {exc}; "
            "rerun with --debug and report it",
            err=True,
        )
        return EXIT_INTERNAL
    return int(result) if isinstance(result, int) else EXIT_OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
