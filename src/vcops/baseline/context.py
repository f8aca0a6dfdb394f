"""What a server check knows besides its facts: settings, roles, networks, and now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vcops.baseline.settings import BaselineSettings
from vcops.facts.nft import Network


@dataclass(frozen=True)
class ServerContext:
    """The resolved baseline for one server, its roles and management networks, and the
    scan time (a parameter: checks never read the clock)."""

    settings: BaselineSettings
    roles: frozenset[str]
    management_networks: tuple[Network, ...]
    now: datetime


@dataclass(frozen=True)
class DeviceContext:
    """The resolved baseline for one network device and the management networks its
    management ACL must keep logins to (its site's, else the inventory-wide ones)."""

    settings: BaselineSettings
    management_networks: tuple[Network, ...] = ()
