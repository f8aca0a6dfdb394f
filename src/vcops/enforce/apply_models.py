"""The results of ``vcops apply`` as data: per host (:class:`HostOutcome`) and per run
(:class:`ApplyReport`). They travel as JSON between a site worker and the controller
(:mod:`vcops.workers_apply`), so they live apart from the code that makes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

Engine = Literal["pyinfra", "ansible"]
Status = Literal["changed", "unchanged", "failed", "unreachable"]


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True)
class Progress:
    """Where an apply is, as the engines report it while they run (the CLI's progress
    bar; nothing by default). ``done(name)``: that target's engine part has ended (once
    per target). ``at(share)``: the targets still running are that share (0 to 1) of
    the way through (the engines run their hosts in lockstep: pyinfra reports operation
    *k* of *n*). ``doing(text)``: what the engine is on now (an operation or a task)."""

    done: Callable[[str], None] = _ignore
    at: Callable[[float], None] = _ignore
    doing: Callable[[str], None] = _ignore


QUIET = Progress()


class FileChange(BaseModel):
    """One managed file that differs (or would), with its diff (secrets masked)."""

    path: str
    area: str
    diff: str


class HostOutcome(BaseModel):
    """What apply did (or would do) on one host or device (device lines masked)."""

    name: str
    kind: Literal["server", "device"] = "server"
    status: Status
    reason: str = ""
    changes: list[str] = []
    files: list[FileChange] = []
    packages: list[str] = []
    #: Devices: the controls remediated, the rollback lines, whether they were pushed.
    controls: list[str] = []
    rollback: list[str] = []
    rolled_back: bool = False
    notes: list[str] = []


class ApplyReport(BaseModel):
    """The whole run, ready for a table or JSON."""

    engine: Engine
    check: bool
    selection: str
    emergency: str | None
    seconds: float
    hosts: list[HostOutcome]
    snapshot_before: str | None = None
    snapshot_after: str | None = None

    def exit_code(self) -> Literal[0, 1, 3]:
        """3 if any host was unreachable, else 1 if any failed, else 0."""
        if any(h.status == "unreachable" for h in self.hosts):
            return 3
        return 1 if any(h.status == "failed" for h in self.hosts) else 0
