"""A progress bar on a terminal, nothing otherwise (never under --json or in a pipe)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from vcops.cli.app import App


class Bar:
    """``bar(name)``: one more target done (its name shown). ``bar.at(share)``: the
    targets not done yet are that share of the way (engines that run their hosts in
    lockstep). ``bar.doing(text)``: what is running now, shown until the next name.
    Thread-safe; does nothing when nobody is watching."""

    def __init__(
        self, progress: Progress | None = None, task: TaskID | None = None, total: int = 0
    ) -> None:
        self._progress, self._task, self._total = progress, task, total
        self._lock = threading.Lock()
        self._done, self._share = 0, 0.0

    def __call__(self, name: str) -> None:
        with self._lock:
            self._done += 1
            self._show(last=name)

    def at(self, share: float) -> None:
        with self._lock:
            self._share = min(max(share, 0.0), 1.0)
            self._show()

    def doing(self, text: str) -> None:
        with self._lock:
            self._show(last=text)

    def _show(self, last: str | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        left = max(self._total - self._done, 0)
        completed = self._done + left * self._share
        if last is None:
            self._progress.update(self._task, completed=completed, done=self._done)
        else:
            self._progress.update(self._task, completed=completed, done=self._done, last=last)


@contextmanager
def progress_for(app: App, label: str, total: int) -> Iterator[Bar]:
    """Yield a :class:`Bar` for ``total`` targets; a no-op one when nobody is watching."""
    if not app.interactive or total == 0:
        yield Bar()
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[done]}/{task.total:.0f}"),
        TextColumn("{task.fields[last]}", markup=False),
        TimeElapsedColumn(),
        console=app.err,
        transient=True,
    ) as progress:
        yield Bar(progress, progress.add_task(label, total=total, last="", done=0), total)
