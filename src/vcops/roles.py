"""The role registry: what each server role runs, and everything vcops derives from it.

One typed, frozen table. A *role* (what the inventory says a server is) runs zero or
more *daemons*; a daemon owns its systemd units, config trees, baseline area, fail2ban
jail, control ports, call counter and SIP behaviour. Every other module reads this
table: the inventory (valid role names), the baseline (areas, jails, config dirs,
forwarding exception, which controls apply), the enforce engines (areas, groups,
certificates), snapshots (trees), the window runner (drain: call counters; gate:
units and SIP OPTIONS) and the customer notice (service names). Adding a role is one
entry here plus its templates. Example::

    >>> ROLES["sbc"].daemons
    ('kamailio', 'rtpengine')
    >>> units_for(["sbc"])
    ('kamailio.service', 'rtpengine-daemon.service', 'ngcp-rtpengine-daemon.service')
    >>> role_areas(["sbc"])
    ('kamailio',)

This module imports nothing from vcops: it sits below every layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Daemon:
    """A VoIP service a role runs.

    Attributes:
        name: the daemon (also its baseline area when ``area`` is set).
        package: the Debian package that installs it.
        units: systemd units the window gate wants running when they ran before.
        config_trees: config trees a snapshot collects, relative to ``/``.
        config_dir: the directory holding its secrets (must not be world-readable,
            VC-FILE-002), or None.
        group: the system group that must read ``config_dir``.
        area: the baseline area both engines apply for it, or None.
        area_packages: packages that area installs.
        tls: the area installs a certificate and key for it.
        fail2ban_jail: the jail the baseline wants for it, or None.
        control_ports: control ports never open beyond management networks.
        call_counter: a fixed shell command printing the calls in progress as one
            integer (or nothing when it cannot tell); None: it carries no calls.
        counter_tool: the program ``call_counter`` needs (absent: "none").
        sip: it answers SIP OPTIONS (the window gate asks when it answered before).
    """

    name: str
    package: str
    units: tuple[str, ...]
    config_trees: tuple[str, ...]
    config_dir: str | None = None
    group: str | None = None
    area: str | None = None
    area_packages: tuple[str, ...] = ()
    tls: bool = False
    fail2ban_jail: str | None = None
    control_ports: tuple[tuple[str, int], ...] = ()
    call_counter: str | None = None
    counter_tool: str | None = None
    sip: bool = False


@dataclass(frozen=True)
class Role:
    """A server role.

    Attributes:
        name: as written in the inventory (``roles: [sbc]``).
        daemons: names in :data:`DAEMONS`, in apply order.
        service_name: what customers call the service (maintenance notice, 4.1.2);
            None: not customer-facing.
        forwards: the documented forwarding exception (it relays media, so
            ``net.ipv4.ip_forward`` may be on).
        sysctl_exceptions: documented VoIP exceptions to the sysctl baseline (key ->
            the value this role keeps); see :data:`MEDIA_RELAY_SYSCTLS`.
        media: it relays calls' audio (process accounting is off by default here:
            every forked helper and every packet path counts on a media host).
    """

    name: str
    daemons: tuple[str, ...]
    service_name: str | None
    forwards: bool = False
    sysctl_exceptions: tuple[tuple[str, str], ...] = ()
    media: bool = False


MEDIA_RELAY_SYSCTLS: tuple[tuple[str, str], ...] = (
    # Multi-homed: signalling and media on different interfaces with asymmetric return
    # paths; strict reverse-path filtering drops legitimate RTP, loose mode (RFC 3704)
    # still drops sources no route reaches.
    ("net.ipv4.conf.all.rp_filter", "2"),
    ("net.ipv4.conf.default.rp_filter", "2"),
    # HA pairs move a virtual IP by gratuitous ARP (keepalived/VRRP): a host that drops
    # them keeps sending media to the failed peer's MAC.
    ("net.ipv4.conf.all.drop_gratuitous_arp", "0"),
    ("net.ipv4.conf.default.drop_gratuitous_arp", "0"),
)
"""The sysctl exceptions of roles that relay media (SBC, rtpengine), with the reason."""

_KAMAILIO = Daemon(
    name="kamailio",
    package="kamailio",
    units=("kamailio.service",),
    config_trees=("etc/kamailio", "etc/default/kamailio"),
    config_dir="/etc/kamailio",
    group="kamailio",
    area="kamailio",
    area_packages=("kamailio-tls-modules", "openssl"),
    tls=True,
    fail2ban_jail="kamailio",
    control_ports=(("kamailio-binrpc", 2046),),
    call_counter="kamcmd dlg.stats_active 2>/dev/null | sed -n 's/.*all: *\\([0-9]*\\).*/\\1/p'",
    counter_tool="kamcmd",
    sip=True,
)
_ASTERISK = Daemon(
    name="asterisk",
    package="asterisk",
    units=("asterisk.service",),
    config_trees=("etc/asterisk", "etc/default/asterisk"),
    config_dir="/etc/asterisk",
    group="asterisk",
    area="asterisk",
    area_packages=("openssl",),
    tls=True,
    fail2ban_jail="asterisk",
    control_ports=(
        ("asterisk-ami", 5038),
        ("asterisk-http-ari", 8088),
        ("asterisk-https-ari", 8089),
    ),
    call_counter="asterisk -rx 'core show channels count' 2>/dev/null "
    "| sed -n 's/^\\([0-9]*\\) active call.*/\\1/p'",
    counter_tool="asterisk",
    sip=True,
)
_FREESWITCH = Daemon(
    name="freeswitch",
    package="freeswitch",
    units=("freeswitch.service",),
    config_trees=("etc/freeswitch", "etc/default/freeswitch"),
    config_dir="/etc/freeswitch",
    group="freeswitch",
    area="freeswitch",
    fail2ban_jail="freeswitch",
    control_ports=(("freeswitch-event-socket", 8021),),
    call_counter="fs_cli -x 'show calls count' 2>/dev/null | sed -n 's/^\\([0-9]*\\) total.*/\\1/p'",
    counter_tool="fs_cli",
    sip=True,
)
_RTPENGINE = Daemon(
    name="rtpengine",
    package="rtpengine-daemon",
    units=("rtpengine-daemon.service", "ngcp-rtpengine-daemon.service"),
    config_trees=("etc/rtpengine", "etc/default/rtpengine"),
    control_ports=(("rtpengine-ng", 2223),),
    call_counter="rtpengine-ctl list numsessions 2>/dev/null "
    "| sed -n 's/.*own: *\\([0-9]*\\).*/\\1/p'",
    counter_tool="rtpengine-ctl",
)

DAEMONS: MappingProxyType[str, Daemon] = MappingProxyType(
    {d.name: d for d in (_KAMAILIO, _ASTERISK, _FREESWITCH, _RTPENGINE)}
)
"""Every VoIP daemon vcops knows, by name."""

ROLES: MappingProxyType[str, Role] = MappingProxyType(
    {
        r.name: r
        for r in (
            Role("kamailio", ("kamailio",), "SIP signalling"),
            # an SBC is Kamailio in front of rtpengine: hardened, drained and gated as both
            Role(
                "sbc",
                ("kamailio", "rtpengine"),
                "SIP trunking / session border",
                forwards=True,
                sysctl_exceptions=MEDIA_RELAY_SYSCTLS,
                media=True,
            ),
            Role("asterisk", ("asterisk",), "Hosted PBX"),
            Role("freeswitch", ("freeswitch",), "Conferencing and IVR"),
            Role(
                "rtpengine",
                ("rtpengine",),
                "Media relay (calls' audio)",
                forwards=True,
                sysctl_exceptions=MEDIA_RELAY_SYSCTLS,
                media=True,
            ),
            Role("generic", (), None),
        )
    }
)
"""Every role, by name, in the order customers see their services listed."""

ROLE_NAMES: tuple[str, ...] = tuple(ROLES)
VOIP_ROLES: frozenset[str] = frozenset(r.name for r in ROLES.values() if r.daemons)
"""Roles whose hosts carry SIP or RTP traffic."""

COMMON_SNAPSHOT_TREES: tuple[str, ...] = (
    "etc/ssh",
    "etc/nftables.conf",
    "etc/nftables.d",
    "etc/fail2ban",
    "etc/sysctl.conf",
    "etc/sysctl.d",
    "etc/audit",
    "etc/chrony",
    "etc/apt/sources.list",
    "etc/apt/sources.list.d",
    "etc/apt/apt.conf",
    "etc/apt/apt.conf.d",
    "etc/apt/preferences",
    "etc/apt/preferences.d",
    "etc/apt/auth.conf",
    "etc/apt/auth.conf.d",
    "etc/modprobe.d",
    "etc/security/limits.d",
    "etc/systemd/coredump.conf.d",
    "etc/default/sysstat",
)
"""Config trees every server has, relative to ``/``."""


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def daemons_of(roles: Iterable[str]) -> tuple[Daemon, ...]:
    """The daemons a server with ``roles`` runs, once each; unknown roles run none.

    >>> [d.name for d in daemons_of(["sbc", "kamailio"])]
    ['kamailio', 'rtpengine']
    """
    names = _unique(d for r in roles if r in ROLES for d in ROLES[r].daemons)
    return tuple(DAEMONS[n] for n in names)


def units_for(roles: Iterable[str]) -> tuple[str, ...]:
    """The systemd units of a server's daemons (what the window gate watches)."""
    return _unique(u for d in daemons_of(roles) for u in d.units)


def role_areas(roles: Iterable[str]) -> tuple[str, ...]:
    """The role-specific baseline areas, in apply order (after the common ones)."""
    return _unique(d.area for d in daemons_of(roles) if d.area)


def snapshot_trees(roles: Iterable[str]) -> tuple[str, ...]:
    """Config trees a snapshot of a server collects: common ones, then its daemons'."""
    return _unique(
        (*COMMON_SNAPSHOT_TREES, *(t for d in daemons_of(roles) for t in d.config_trees))
    )


def counters_for(roles: Iterable[str]) -> tuple[Daemon, ...]:
    """The daemons whose calls the drain counts on a server."""
    return tuple(d for d in daemons_of(roles) if d.call_counter)


def answers_sip(roles: Iterable[str]) -> bool:
    """Whether the window gate asks the server for SIP OPTIONS."""
    return any(d.sip for d in daemons_of(roles))


def roles_with_area(area: str) -> frozenset[str]:
    """Roles that get a baseline area (which VoIP controls apply to which roles).

    >>> sorted(roles_with_area("kamailio"))
    ['kamailio', 'sbc']
    """
    return frozenset(r.name for r in ROLES.values() if area in role_areas([r.name]))


def roles_running(daemon: str) -> frozenset[str]:
    """Roles that run ``daemon`` (the lab enables Kamailio on these)."""
    return frozenset(r.name for r in ROLES.values() if daemon in r.daemons)


def forwarding_roles() -> tuple[str, ...]:
    """Roles with the documented forwarding exception."""
    return tuple(r.name for r in ROLES.values() if r.forwards)


def role_sysctl_exceptions() -> dict[str, dict[str, str]]:
    """Role -> its documented sysctl exceptions (baseline default).

    >>> role_sysctl_exceptions()["sbc"]["net.ipv4.conf.all.rp_filter"]
    '2'
    """
    return {r.name: dict(r.sysctl_exceptions) for r in ROLES.values() if r.sysctl_exceptions}


def media_roles() -> tuple[str, ...]:
    """Roles that relay media (process accounting off by default)."""
    return tuple(r.name for r in ROLES.values() if r.media)


def role_jails() -> dict[str, list[str]]:
    """Role -> the fail2ban jails its daemons need (baseline default)."""
    jails = {
        r.name: [d.fail2ban_jail for d in daemons_of([r.name]) if d.fail2ban_jail]
        for r in ROLES.values()
    }
    return {name: js for name, js in sorted(jails.items()) if js}


def role_config_dirs() -> dict[str, str]:
    """Role -> the config directory holding its secrets (baseline default).

    A role with several such daemons is listed under its first one.
    """
    out: dict[str, str] = {}
    for role in ROLES.values():
        dirs = [d.config_dir for d in daemons_of([role.name]) if d.config_dir]
        if dirs:
            out[role.name] = dirs[0]
    return out


def control_ports() -> dict[str, int]:
    """Every daemon's control ports by name (baseline default)."""
    return dict(sorted((name, port) for d in DAEMONS.values() for name, port in d.control_ports))


def daemon_areas() -> tuple[str, ...]:
    """Every daemon baseline area, in apply order."""
    return _unique(d.area for d in DAEMONS.values() if d.area)


def service_names() -> dict[str, str]:
    """Role -> customer-facing service name, for customer-facing roles."""
    return {r.name: r.service_name for r in ROLES.values() if r.service_name}
