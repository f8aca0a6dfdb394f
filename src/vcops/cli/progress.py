"""A progress bar on a terminal, nothing otherwise (never under --json or in a pipe)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vcops.cli.app import App


@contextmanager
def progress_for(app: App, label: str, total: int) -> Iterator[Callable[[str], None]]:
    """Yield ``advance(name)``; thread-safe, a no-op when nobody is watching."""
    if not app.interactive or total == 0:
        yield lambda _name: None
        return
    lock = threading.Lock()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}", markup=False),
        TimeElapsedColumn(),
        console=app.err,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total, last="")

        def advance(name: str) -> None:
            with lock:
                progress.update(task, advance=1, last=name)

        yield advance
