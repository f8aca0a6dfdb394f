"""The vcops command line."""

from __future__ import annotations

from vcops.cli.main import cli, main, run

__all__ = ["cli", "main", "run"]
