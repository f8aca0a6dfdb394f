"""The live progress of a pyinfra run, as ``vcops apply`` shows it.

pyinfra runs the baseline's operations in lockstep: operation *k* runs on every active
host before operation *k+1* starts. Inside the pyinfra process a state callback
(:class:`vcops.enforce.pyinfra_deploy.ProgressReporter`) prints one marker line to
stderr when an operation starts and when a host fails::

    @@vcops-progress op 12 57 ssh: /etc/ssh/sshd_config
    @@vcops-progress failed lab-sbc-01

:class:`ProgressReader` turns those lines, read as pyinfra prints them, into calls on
an :class:`~vcops.enforce.apply_models.Progress`. Only lines that begin with the marker
count; a host's own output is printed by pyinfra behind a ``[host]`` prefix, so it
cannot pose as one (and a forged line could only move a progress bar).
"""

from __future__ import annotations

from vcops.enforce.apply_models import Progress

MARK = "@@vcops-progress"
#: An operation's name is shown cut to this many characters (one line of a terminal).
NAME_LIMIT = 120


def op_line(index: int, total: int, name: str) -> str:
    """The marker of operation ``index`` (1-based) of ``total`` starting."""
    return f"{MARK} op {index} {total} {' '.join(name.split())}"


def failed_line(host: str) -> str:
    """The marker of ``host`` failing (pyinfra runs nothing more on it)."""
    return f"{MARK} failed {host}"


class ProgressReader:
    """Feeds a :class:`Progress` from pyinfra's stderr lines, for the hosts ``names``.

    A host is done when it fails or when the run ends (:meth:`finish`); until then
    operation *k* of *n* starting puts the running hosts (k-1)/n of the way."""

    def __init__(self, names: list[str], progress: Progress) -> None:
        self.running = list(dict.fromkeys(names))
        self.progress = progress

    def feed(self, line: str) -> None:
        if not line.startswith(MARK + " "):
            return
        words = line[len(MARK) + 1 :].rstrip("\n").split(" ", 3)
        if words[0] == "failed" and len(words) == 2 and words[1] in self.running:
            self.running.remove(words[1])
            self.progress.done(words[1])
        elif words[0] == "op" and len(words) >= 3 and words[1].isdigit() and words[2].isdigit():
            index, total = int(words[1]), int(words[2])
            if 0 < index <= total:
                self.progress.at((index - 1) / total)
                name = words[3][:NAME_LIMIT] if len(words) > 3 else ""
                self.progress.doing(f"operation {index}/{total} {name}".rstrip())

    def finish(self) -> None:
        """The run has ended: every host still running is done."""
        for name in self.running:
            self.progress.done(name)
        self.running = []
