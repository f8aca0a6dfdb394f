"""Typed inventory: the one source of truth for hosts, devices, groups, board and calendar.

The YAML files under ``inventory/`` are parsed by :mod:`vcops.inventory.load` into
these models. Every model forbids unknown fields, so a typo is an error, not a
silently ignored key. Example server entry::

    servers:
      - name: kam-lon1-01
        address: 192.0.2.11
        roles: [kamailio]
        site: lon1
        redundancy_group: kam-lon1
        patch_group: wave-1
        environment: production
        groups: [sip-edge]
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["asterisk", "kamailio", "freeswitch", "sbc", "rtpengine", "generic"]
"""The names in :data:`vcops.roles.ROLES` (a unit test keeps the two equal)."""
Strategy = Literal["mitogen", "linear"]
"""How the Ansible engine runs a play (:class:`AnsibleSettings`)."""
Platform = Literal["ios", "eos", "junos", "nxos_ssh"]
Transport = Literal["napalm", "netmiko"]
Environment = Literal["production", "staging", "lab"]

ROLES: tuple[str, ...] = get_args(Role)
PLATFORMS: tuple[str, ...] = get_args(Platform)
TRANSPORTS: tuple[str, ...] = get_args(Transport)
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PUBKEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com)"
    r" [A-Za-z0-9+/]+=* ?.*$"
)
_ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Vars = dict[str, object]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"invalid name {value!r}: use letters, digits, '-', '_' or '.', at most 63 characters"
        )
    return value


def _check_address(value: str) -> str:
    text = str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    looks_numeric = re.fullmatch(r"[0-9.]+", text) is not None
    if looks_numeric or not _HOSTNAME_RE.match(text):
        raise ValueError(f"invalid address {text!r}: use an IPv4/IPv6 address or a DNS name")
    return text.lower()


Become = Literal["sudo", "none"]
_LOGIN_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


def _check_login(value: str | None) -> str | None:
    if value is not None and not _LOGIN_RE.match(value):
        raise ValueError(f"invalid user name {value!r}: use a Unix login name such as vcops")
    return value


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_VAR_RE.match(value):
        raise ValueError(f"invalid environment variable name {value!r}")
    return value


class SshSettings(_Model):
    """How vcops reaches servers over SSH (defaults for every server).

    ``become`` says how a login that is not root gains root for the host scripts:
    ``sudo`` (``sudo -n``; the default whenever ``user`` is not root) or ``none``.
    ``become_password_env`` names a controller environment variable holding the sudo
    password when the sudo rule asks for one (the value is never stored or printed)::

        ssh: {user: vcops, become: sudo, become_user: root}
    """

    user: str = "root"
    port: int = Field(22, ge=1, le=65535)
    key_file: str | None = None
    known_hosts_file: str | None = None
    connect_timeout: float = Field(10.0, gt=0, le=300)
    become: Become | None = None
    become_user: str = "root"
    become_password_env: str | None = None

    _user = field_validator("user", "become_user")(_check_login)
    _env = field_validator("become_password_env")(_check_env_name)


class SshOverride(_Model):
    """Per-group or per-host overrides of ``settings.ssh`` (unset fields inherit)."""

    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    become: Become | None = None
    become_user: str | None = None
    become_password_env: str | None = None

    _user = field_validator("user", "become_user")(_check_login)
    _env = field_validator("become_password_env")(_check_env_name)


class SshAccess(_Model):
    """How vcops logs in to one server and gains root there (resolved, never a secret)."""

    user: str
    port: int
    become: Become
    become_user: str = "root"
    become_password_env: str | None = None

    @property
    def sudo(self) -> bool:
        return self.become == "sudo"


class AnsibleSettings(_Model):
    """How the Ansible engine runs the server baseline.

    ``strategy``: ``mitogen`` (the default) runs the play with Mitogen for Ansible's
    ``mitogen_linear`` strategy: one SSH connection and one Python interpreter per host
    for the whole play, instead of a module upload and interpreter start per task
    (on the lab, 2.7x faster with nothing to change and 1.8x on a first apply:
    ``bench/bench_apply.py``; the same tasks, results, host key checking and become).
    ``linear`` is Ansible's own strategy, for a host or a module Mitogen does not
    handle::

        ansible: {strategy: linear}
    """

    strategy: Strategy = "mitogen"


class Settings(_Model):
    """Inventory-wide settings."""

    ssh: SshSettings = SshSettings()
    ansible: AnsibleSettings = AnsibleSettings()
    management_networks: list[IPv4Network | IPv6Network] = []


class Site(_Model):
    """A point of presence."""

    name: str
    description: str = ""
    timezone: str = "UTC"
    management_networks: list[IPv4Network | IPv6Network] = []

    _name = field_validator("name")(_check_name)


class RedundancyGroup(_Model):
    """Members that back each other up: never patched at the same time."""

    name: str
    description: str = ""
    min_healthy: int = Field(1, ge=0)

    _name = field_validator("name")(_check_name)


class Group(_Model):
    """A named set of hosts with variables (baseline overrides, for example)."""

    name: str
    description: str = ""
    vars: Vars = {}
    ssh: SshOverride = SshOverride()

    _name = field_validator("name")(_check_name)


class Server(_Model):
    """A Linux server running a VoIP role."""

    name: str
    address: str
    port: int | None = Field(None, ge=1, le=65535)
    user: str | None = None
    roles: list[Role] = Field(min_length=1)
    site: str
    redundancy_group: str | None = None
    patch_group: str | None = None
    environment: Environment
    groups: list[str] = []
    vars: Vars = {}
    ssh: SshOverride = SshOverride()

    _name = field_validator("name")(_check_name)
    _address = field_validator("address", mode="before")(_check_address)
    _user = field_validator("user")(_check_login)

    @field_validator("roles", mode="before")
    @classmethod
    def _one_role(cls, value: object) -> object:
        """``roles: generic`` means ``roles: [generic]`` (one role written as a string)."""
        return [value] if isinstance(value, str) else value

    @property
    def kind(self) -> Literal["server"]:
        return "server"


class Credentials(_Model):
    """Device credentials, only ever by reference: an environment variable or a file."""

    username: str
    password_env: str | None = None
    password_file: str | None = None

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_VAR_RE.match(value):
            raise ValueError(f"invalid environment variable name {value!r}")
        return value

    @model_validator(mode="after")
    def _one_reference(self) -> Credentials:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env or password_file")
        return self


class Device(_Model):
    """A network device (switch, router, firewall) reached through NAPALM or Netmiko."""

    name: str
    address: str
    port: int = Field(22, ge=1, le=65535)
    platform: Platform
    transport: Transport = "napalm"
    site: str
    #: Never two members in one window batch (both core routers of a site, say).
    redundancy_group: str | None = None
    environment: Environment
    groups: list[str] = []
    credentials: Credentials
    vars: Vars = {}

    _name = field_validator("name")(_check_name)
    _address = field_validator("address", mode="before")(_check_address)

    @property
    def kind(self) -> Literal["device"]:
        return "device"


class BoardMember(_Model):
    """A change-board member: approvals are verified against this SSH public key."""

    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    ssh_public_key: str

    _name = field_validator("name")(_check_name)

    @field_validator("ssh_public_key")
    @classmethod
    def _pubkey(cls, value: str) -> str:
        value = value.strip()
        if not _PUBKEY_RE.match(value):
            raise ValueError("not an OpenSSH public key; paste one line of an id_ed25519.pub file")
        return value


class ChangeBoard(_Model):
    """Who approves patch windows, and how many approvals each environment needs."""

    quorum: dict[Environment, int] = {"production": 2, "staging": 1, "lab": 1}
    members: list[BoardMember] = []


class Freeze(_Model):
    """A change freeze: no patch window may overlap it."""

    name: str
    start: datetime
    end: datetime
    reason: str = ""
    environments: list[Environment] = list(ENVIRONMENTS)  # type: ignore[arg-type]

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time has no timezone; write it like 2026-12-20T00:00:00+00:00")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.end <= self.start:
            raise ValueError("end is not after start")
        return self


Target = Server | Device


class Inventory(_Model):
    """The whole validated inventory, with the directory it was read from."""

    root: Path
    settings: Settings = Settings()
    sites: list[Site] = []
    redundancy_groups: list[RedundancyGroup] = []
    groups: list[Group] = []
    servers: list[Server] = []
    devices: list[Device] = []
    change_board: ChangeBoard = ChangeBoard()
    freezes: list[Freeze] = []

    @property
    def targets(self) -> list[Target]:
        """Servers then devices, in file order."""
        return [*self.servers, *self.devices]

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def site(self, name: str) -> Site | None:
        return next((s for s in self.sites if s.name == name), None)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)

    def resolve_path(self, value: str) -> Path:
        """A path from the inventory, relative to the inventory directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.root / path)

    def host_vars(self, target: Target) -> Vars:
        """Group vars merged in the order the target lists its groups, then host vars."""
        merged: Vars = {}
        for name in target.groups:
            group = self.group(name)
            if group is not None:
                merged.update(group.vars)
        merged.update(target.vars)
        return merged

    def ssh_access(self, server: Server) -> SshAccess:
        """The login and privilege settings of one server: ``settings.ssh``, then the
        ``ssh:`` of each of its groups in the order it lists them, then its own ``ssh:``
        (and its ``user``/``port``). ``become`` defaults to ``sudo`` unless the user is root.
        """
        base = self.settings.ssh
        merged: dict[str, object] = {
            "user": base.user,
            "port": base.port,
            "become": base.become,
            "become_user": base.become_user,
            "become_password_env": base.become_password_env,
        }
        overrides = [g.ssh for g in (self.group(n) for n in server.groups) if g is not None]
        for override in [*overrides, server.ssh]:
            merged.update(override.model_dump(exclude_none=True))
        if server.user:
            merged["user"] = server.user
        if server.port:
            merged["port"] = server.port
        if merged["become"] is None:
            merged["become"] = "none" if merged["user"] == "root" else "sudo"
        return SshAccess.model_validate(merged)

    def ssh_user(self, server: Server) -> str:
        return self.ssh_access(server).user

    def ssh_port(self, server: Server) -> int:
        return self.ssh_access(server).port

    def management_networks(self, target: Target) -> list[IPv4Network | IPv6Network]:
        """The target's site networks if it has any, else the inventory-wide ones."""
        site = self.site(target.site)
        if site is not None and site.management_networks:
            return list(site.management_networks)
        return list(self.settings.management_networks)
