"""The results of ``vcops apply`` as data: per host (:class:`HostOutcome`) and per run
(:class:`ApplyReport`). They travel as JSON between a site worker and the controller
(:mod:`vcops.workers_apply`), so they live apart from the code that makes them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Engine = Literal["pyinfra", "ansible"]
Status = Literal["changed", "unchanged", "failed", "unreachable"]


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
