"""What ``lab status`` reports (public, JSON-serialisable).

Example (``LabStatus.model_dump(mode="json")``, abridged)::

    {"up": true,
     "hosts": [{"name": "lab-kamailio-01", "address": "10.213.0.11",
                "roles": ["kamailio"], "running": true, "ssh_reachable": true}],
     "switches": [{"name": "lab-sw-01", "address": "10.213.0.101", "platform": "ios",
                   "transport": "napalm", "running": true, "ssh_reachable": true}],
     "smtp": {"host": "127.0.0.1", "port": 2525,
              "maildir": "/var/lib/vcops-lab/mail", "running": true},
     "image": "/var/cache/vcops/images/bookworm-1a2b3c4d5e6f",
     "state_dir": "/var/lib/vcops-lab", "inventory_dir": "/repo/inventory/lab"}
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class HostStatus(BaseModel):
    """One lab host: is its container running, does its sshd answer."""

    model_config = ConfigDict(frozen=True)

    name: str
    address: str
    roles: list[str]
    running: bool
    ssh_reachable: bool


class SwitchStatus(BaseModel):
    """One switch simulator: is it running, does its SSH port answer."""

    model_config = ConfigDict(frozen=True)

    name: str
    address: str
    platform: str
    transport: str
    running: bool
    ssh_reachable: bool


class SmtpStatus(BaseModel):
    """The lab's SMTP server."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    maildir: Path
    running: bool


class LabStatus(BaseModel):
    """The whole lab. ``up`` is False (and the lists empty) when no lab exists."""

    model_config = ConfigDict(frozen=True)

    up: bool
    hosts: list[HostStatus]
    switches: list[SwitchStatus]
    smtp: SmtpStatus | None
    image: Path | None
    state_dir: Path
    inventory_dir: Path | None

    @property
    def healthy(self) -> bool:
        """Whether the lab is up and every node runs and answers."""
        return (
            self.up
            and all(h.running and h.ssh_reachable for h in self.hosts)
            and all(s.running and s.ssh_reachable for s in self.switches)
            and (self.smtp is None or self.smtp.running)
        )
