"""The kernel area's settings resolved for one host's roles (pure).

One place decides, for the scanner and both engines: which value each sysctl should
have once the roles' documented VoIP exceptions apply
(``sysctl_role_exceptions``, see :data:`vcops.roles.MEDIA_RELAY_SYSCTLS`), which
modules are blacklisted (``sctp`` stays loadable where SIP runs over SCTP), and
whether process accounting is on.

>>> from vcops.baseline.settings import DEFAULT_SETTINGS as S
>>> sysctl_sets(S, {"sbc"})["arp"]["net.ipv4.conf.all.drop_gratuitous_arp"]
'0'
>>> "sctp" in blacklist_for(S, {"kamailio"}), accounting_on(S, {"rtpengine"})
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable

from vcops.baseline.settings import BaselineSettings

SCTP = "sctp"
_FIELDS = {  # sysctl set -> its settings field
    "net": "net_sysctls",
    "arp": "net_arp_sysctls",
    "ipv6": "net_ipv6_sysctls",
    "kernel": "kernel_sysctls",
    "protect": "kernel_protect_sysctls",
}


def role_exceptions(settings: BaselineSettings, roles: Iterable[str]) -> dict[str, str]:
    """Key -> kept value, for every exception of the host's roles (sorted by role)."""
    out: dict[str, str] = {}
    for role in sorted(set(roles)):
        out.update(settings.sysctl_role_exceptions.get(role, {}))
    return out


def sysctl_sets(settings: BaselineSettings, roles: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each sysctl control's wanted keys and values with the role exceptions applied.

    ``net`` (VC-KRN-001), ``arp`` (004), ``ipv6`` (005) are per network namespace;
    ``kernel`` (003) and ``protect`` (006) belong to the container host in a container.
    """
    keep = role_exceptions(settings, roles)
    return {
        name: {k: keep.get(k, v) for k, v in _wanted(settings, name).items()} for name in _FIELDS
    }


def _wanted(settings: BaselineSettings, name: str) -> dict[str, str]:
    value: dict[str, str] = getattr(settings, _FIELDS[name])
    return value


def exceptions_applied(settings: BaselineSettings, roles: Iterable[str]) -> list[str]:
    """The exceptions that changed a wanted value, as ``key=value (role)`` (for reports)."""
    wanted = {k: v for name in _FIELDS for k, v in _wanted(settings, name).items()}
    out = []
    for role in sorted(set(roles)):
        for key, value in sorted(settings.sysctl_role_exceptions.get(role, {}).items()):
            if key in wanted and wanted[key] != value:
                out.append(f"{key}={value} ({role})")
    return out


def sctp_kept(settings: BaselineSettings, roles: Iterable[str]) -> bool:
    """Whether the host declares SIP signalling over SCTP (role or host setting)."""
    return settings.sctp_signalling or bool(set(roles) & set(settings.sctp_roles))


def blacklist_for(settings: BaselineSettings, roles: Iterable[str]) -> list[str]:
    """The modules to blacklist on the host, in settings order."""
    keep = sctp_kept(settings, roles)
    return [m for m in settings.blacklisted_modules if not (keep and m == SCTP)]


def accounting_on(settings: BaselineSettings, roles: Iterable[str]) -> bool:
    """Process accounting and sysstat: the setting, else on except on media roles."""
    if settings.process_accounting is not None:
        return settings.process_accounting
    return not set(roles) & set(settings.process_accounting_off_roles)
