"""Device-config facts shared by the IOS-style and Junos parsers (pure, no I/O).

The typed :class:`DeviceFacts` both parsers produce, the hash and platform names, and
the small helpers they share ("absent means the default only in a complete config",
the weakest of several hashes ...). :mod:`vcops.baseline.netparse` (IOS, EOS, NX-OS)
and :mod:`vcops.baseline.junosparse` both import this module and not each other's
internals, so the two parsers form no import cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field


def _ccp() -> type:
    """ciscoconfparse2, imported on first use: it takes about a second to import, and
    most vcops commands never parse a device config. Its loguru records (tracebacks on
    stderr for input it cannot read) are silenced: a bad config is data, not a crash."""
    from ciscoconfparse2 import CiscoConfParse
    from loguru import logger

    # ciscoconfparse2 is loguru's only user here; its `@logger.catch` records are named
    # after the caller's module, so drop the sink it installed rather than one name.
    logger.remove()
    return CiscoConfParse  # type: ignore[no-any-return]


def clean_config_text(text: str) -> str:
    """A running config without a UTF-8 BOM, NUL bytes or carriage returns: what a file
    saved on Windows or a terminal capture adds before the config proper."""
    return text.lstrip("\ufeff").replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


Platform = Literal["ios", "eos", "junos", "nxos_ssh"]
PLATFORMS: frozenset[str] = frozenset({"ios", "eos", "junos", "nxos_ssh"})
#: How the admin password hash is stored, weakest first (see :data:`HASH_STRENGTH`).
SecretHash = Literal[
    "none",  # no enable secret / password at all
    "cleartext",  # IOS/EOS type 0
    "type7",  # IOS `enable password 7`: reversible
    "sha256-unsalted",  # IOS type 4: broken
    "md5",  # IOS/EOS type 5, Junos $1$
    "sha256-crypt",  # Junos $5$
    "sha512-crypt",  # EOS sha512, Junos $6$
    "pbkdf2",  # IOS type 8
    "scrypt",  # IOS type 9
]
HASH_STRENGTH: tuple[SecretHash, ...] = get_args(SecretHash)
AaaLogin = Literal["server", "local", "none"]

_CRYPT_PREFIXES: dict[str, SecretHash] = {
    "$1$": "md5",
    "$5$": "sha256-crypt",
    "$6$": "sha512-crypt",
    "$8$": "pbkdf2",
    "$9$": "scrypt",
}

T = TypeVar("T")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VtyLine(_Frozen):
    """One ``line vty`` block: ``{"name": "vty 0 4", "access_class_in": true,
    "transport_input": ["ssh"]}``. ``transport_input`` is ``None`` when the block has no
    ``transport input`` line (the default then depends on the release)."""

    name: str
    access_class_in: bool
    transport_input: tuple[str, ...] | None


class SnmpCommunity(_Frozen):
    """An SNMP v1/v2c community, without its string: ``{"access": "read-only",
    "restricted": true}`` (``restricted``: an ACL or client list limits who may use it)."""

    access: Literal["read-only", "read-write"]
    restricted: bool


class ServiceState(_Frozen):
    """A legacy service by its config keyword: ``{"name": "cdp run", "enabled": true}``;
    ``enabled`` is ``None`` when the config is incomplete and does not mention it."""

    name: str
    enabled: bool | None


class DeviceFacts(_Frozen):
    """What a running config says about hardening; ``None`` means "the config does not say".

    Example payload (``model_dump()`` of a hardened IOS router, config elided)::

        {"platform": "ios", "running_config": "...", "complete": true,
         "os_version": "15.2", "ssh_version": 2, "telnet_enabled": false,
         "http_server_enabled": false,
         "vty_lines": [{"name": "vty 0 4", "access_class_in": true,
                        "transport_input": ["ssh"]}],
         "vty_access_class": true, "aaa_new_model": true, "aaa_login": "server",
         "enable_secret_type": "scrypt", "password_encryption": true,
         "snmp_communities": [], "snmp_v3": true,
         "ntp_servers": ["192.0.2.123"], "ntp_authenticated": true,
         "syslog_hosts": ["192.0.2.50"], "login_banner": true,
         "legacy_services": [{"name": "service pad", "enabled": false}, ...]}
    """

    platform: Platform
    running_config: str = Field(repr=False)
    complete: bool
    os_version: str | None = None
    #: Whether the device offers SSH logins at all (False: no SSH server configured, so
    #: VC-NET-001 does not apply).
    ssh_offered: bool | None = None
    #: The lowest SSH protocol version the device accepts.
    ssh_version: Literal[1, 2] | None = None
    telnet_enabled: bool | None = None
    http_server_enabled: bool | None = None
    vty_lines: tuple[VtyLine, ...] = ()
    #: Management logins restricted by an ACL (vty access-class, EOS management ssh
    #: access-group, Junos lo0 input filter).
    vty_access_class: bool | None = None
    #: Names of the ACLs (Junos: filters) applied to management logins.
    mgmt_acls: tuple[str, ...] = ()
    #: Sources those ACLs permit to reach SSH, as CIDRs (``0.0.0.0/0`` for ``any``);
    #: None when an ACL is missing from a cut-off config or cannot be read.
    mgmt_acl_sources: tuple[str, ...] | None = None
    #: IOS only (None elsewhere).
    aaa_new_model: bool | None = None
    #: "server": a login method list (or Junos authentication-order) names TACACS+/RADIUS.
    aaa_login: AaaLogin | None = None
    #: Weakest of the enable secrets/passwords (Junos: root-authentication). NX-OS: None.
    enable_secret_type: SecretHash | None = None
    #: ios `service password-encryption`, nxos `feature password encryption aes`.
    password_encryption: bool | None = None
    snmp_communities: tuple[SnmpCommunity, ...] | None = None
    snmp_v3: bool | None = None
    ntp_servers: tuple[str, ...] | None = None
    ntp_authenticated: bool | None = None
    syslog_hosts: tuple[str, ...] | None = None
    login_banner: bool | None = None
    #: ios: small servers, finger, bootp, cdp, source-route, pad; nxos: cdp; else empty.
    legacy_services: tuple[ServiceState, ...] = ()


Statement = tuple[str, ...]
"""A Junos statement in set form, as words."""


# --- helpers -----------------------------------------------------------------------------


def _known(complete: bool, default: T) -> T | None:
    """``default`` when the config is complete (absence means the default), else None."""
    return default if complete else None


def _state(on: bool, off: bool, complete: bool, default: bool) -> bool | None:
    """A switch written as ``cmd`` / ``no cmd``, or its default when neither is written."""
    if on:
        return True
    if off:
        return False
    return _known(complete, default)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _weakest(hashes: Iterable[SecretHash]) -> SecretHash | None:
    found = list(hashes)
    return min(found, key=HASH_STRENGTH.index) if found else None


def _crypt_type(value: str) -> SecretHash | None:
    return next((t for p, t in _CRYPT_PREFIXES.items() if value.startswith(p)), None)
