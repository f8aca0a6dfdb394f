"""Command names reserved by the CLI contract whose work has not landed yet.

Each answers with one line and exit 2 rather than pretending to work: a scan that
reports nothing must never be mistaken for a clean fleet.
"""

from __future__ import annotations

import click

from vcops.errors import VcopsError


class NotAvailable(VcopsError):
    """The command is part of the contract but not built yet."""


PLANNED: dict[str, str] = {}


def placeholder(name: str, what: str) -> click.Command:
    @click.command(
        name=name,
        help=f"{what[0].upper()}{what[1:]} (not available in this version).",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def command() -> None:
        raise NotAvailable(f"`vcops {name}` ({what}) is not available in this version of vcops")

    return command
