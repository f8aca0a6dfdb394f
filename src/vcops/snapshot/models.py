"""Data crossing the snapshot package's boundaries (CLI, JSON, the audit log).

Nothing here ever holds a secret: file contents in :class:`HostSnapshot` are masked
before the model is built, and errors are masked or written without device output.
Example take row::

    HostTakeResult(name="lab-kamailio-01", kind="server", status="changed", via="ssh",
                   files=41, masked=3, seconds=0.42)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

TargetKind = Literal["server", "device"]
TakeStatus = Literal["new", "changed", "unchanged", "unreachable", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostSnapshot(_Model):
    """One host's snapshot, masked: repo paths under the host folder -> text."""

    name: str
    kind: TargetKind
    via: str
    files: dict[str, str]
    masked: int = 0
    warnings: list[str] = []


class HostTakeResult(_Model):
    """What a take did for one host."""

    name: str
    kind: TargetKind
    status: TakeStatus
    via: str = ""
    files: int = 0
    masked: int = 0
    warnings: list[str] = []
    error: str | None = None
    seconds: float = 0.0


class TakeReport(_Model):
    """One ``snapshot take`` run: the commit (None when nothing changed) and every host."""

    commit: str | None
    reason: str
    operator: str
    window: str | None = None
    hosts: list[HostTakeResult]

    @property
    def unreachable(self) -> list[str]:
        return [h.name for h in self.hosts if h.status == "unreachable"]

    @property
    def failed(self) -> list[str]:
        return [h.name for h in self.hosts if h.status == "failed"]

    @property
    def changed(self) -> list[str]:
        return [h.name for h in self.hosts if h.status in {"new", "changed"}]

    @property
    def exit_code(self) -> int:
        """3 if a host was unreachable, 1 if one failed, else 0."""
        if self.unreachable:
            return 3
        return 1 if self.failed else 0


class CommitInfo(_Model):
    """One commit of the snapshot repository, with the trailers vcops writes."""

    commit: str
    short: str
    date: str
    author: str
    subject: str
    reason: str = ""
    operator: str = ""
    window: str | None = None
    hosts_changed: list[str] = []


class FileEntry(_Model):
    """A server file as listed in ``file-list.txt`` (mode, owner, what was stored)."""

    path: str
    mode: str
    owner: str
    group: str
    type: Literal["file", "link", "binary", "oversize"]
    detail: str = ""


class FileDiff(_Model):
    """One file's change between two snapshots of a host."""

    path: str
    status: Literal["added", "deleted", "modified", "renamed", "mode"]
    diff: str


RestoreAction = Literal["write", "create", "delete", "unchanged", "refused", "skipped"]


class RestoreFile(_Model):
    """What a restore does (or would do) to one file."""

    path: str
    action: RestoreAction
    diff: str = ""
    reason: str = ""
    validator: str | None = None


class RestoreReport(_Model):
    """The outcome of ``snapshot restore`` on one host."""

    host: str
    kind: TargetKind
    rev: str
    check: bool
    status: Literal["planned", "restored", "nothing-to-do", "refused", "failed"]
    method: str = ""
    files: list[RestoreFile] = []
    #: Device config lines pushed (or to push), masked.
    commands: list[str] = []
    reloaded: dict[str, str] = {}
    notes: list[str] = []
    error: str | None = None
    emergency: str | None = None
    before_commit: str | None = None
    after_commit: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.status in {"planned", "restored", "nothing-to-do"} else 1
