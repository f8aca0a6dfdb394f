"""``/var/lib/vcops-lab/state.json``: every resource a lab created, written as it goes.

Each resource is recorded *before* it is created, so a crash between the two leaves a
record that ``lab down`` tolerates (removing something already gone is a no-op), never
a resource nobody knows about. Example (abridged)::

    {"version": 1, "inventory_dir": "/repo/inventory/lab", "image": "/var/cache/...",
     "bridge": "vcopsbr0", "netns": ["vcops-lab-kamailio-01"], "links": ["vcops-v11"],
     "mounts": ["/var/lib/vcops-lab/hosts/lab-kamailio-01/root"],
     "cgroups": ["/sys/fs/cgroup/unified/vcops-lab-kamailio-01"],
     "processes": [{"pid": 4242, "start_time": 981234, "argv0": "systemd-nspawn"}],
     "hosts": [{"name": "lab-kamailio-01", "address": "10.213.0.11", ...}], ...}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from vcops.errors import LabError
from vcops.lab.layout import STATE_FILE
from vcops.lab.system import ProcessRef


class HostState(BaseModel):
    """A lab host as started: where its files are and which process runs it."""

    name: str
    role: str
    address: str
    roles: list[str]
    netns: str
    veth: str
    root: Path
    upper: Path
    work: Path
    log: Path
    machine_id: str
    cgroups: list[Path] = Field(default_factory=list)
    process: ProcessRef | None = None


class SwitchState(BaseModel):
    """A switch simulator as started."""

    name: str
    address: str
    platform: str
    transport: str
    netns: str
    veth: str
    log: Path
    process: ProcessRef | None = None


class SmtpState(BaseModel):
    """The SMTP server as started."""

    host: str
    port: int
    maildir: Path
    log: Path
    process: ProcessRef | None = None


class LabState(BaseModel):
    """The whole lab: flat resource lists (for teardown) plus per-node details."""

    version: int = 1
    inventory_dir: Path
    image: Path | None = None
    state_dir: Path
    bridge: str | None = None
    netns_dir_created: bool = False
    netns: list[str] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)
    mounts: list[Path] = Field(default_factory=list)
    cgroups: list[Path] = Field(default_factory=list)
    processes: list[ProcessRef] = Field(default_factory=list)
    dirs: list[Path] = Field(default_factory=list)
    hosts: list[HostState] = Field(default_factory=list)
    switches: list[SwitchState] = Field(default_factory=list)
    smtp: SmtpState | None = None
    repo_process: ProcessRef | None = None
    """The lab apt repository's HTTP server (see :mod:`vcops.lab.aptrepo`)."""
    complete: bool = False


def load_state(path: Path = STATE_FILE) -> LabState | None:
    """Read the state file; None when there is none or it is unreadable (after a crash)."""
    try:
        return LabState.model_validate_json(path.read_text())
    except (OSError, ValidationError, ValueError):
        return None


def save_state(state: LabState, path: Path = STATE_FILE) -> None:
    """Write the state file atomically (temp file + rename), mode 0600.

    Raises:
        LabError: the file cannot be written.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(state.model_dump(mode="json"), indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise LabError(f"cannot write lab state {path}: {exc}; check the disk") from exc
