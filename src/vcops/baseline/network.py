"""Network device controls (ios, eos, junos, nxos_ssh), judged on the running config.

Every check is pure: :class:`~vcops.baseline.netparse.DeviceFacts` (from
:func:`~vcops.baseline.netparse.parse_device_config`) and the resolved
:class:`~vcops.baseline.context.DeviceContext` (resolved settings and management
networks) in, a
:class:`~vcops.baseline.model.CheckResult` out. A fact the config does not give is
*unknown*, never a pass. ``expected``/``actual`` never carry a secret: communities are
counted, secrets named by hash type, NTP keys reduced to "authenticated".

Example::

    facts = parse_device_config("ios", running_config)
    results = {c.id: c.check(facts, DeviceContext(settings, networks)) for c in NETWORK_CONTROLS
               if c.applies({facts.platform})}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from vcops.baseline.context import DeviceContext
from vcops.baseline.model import (
    CheckResult,
    Clause,
    Control,
    Severity,
    failed,
    not_applicable,
    passed,
    unknown,
)
from vcops.baseline.netacl import is_any, outside_networks
from vcops.baseline.netparse import (
    PLATFORMS,
    DeviceFacts,
    SecretHash,
    parse_device_config,
)

__all__ = [
    "NETWORK_CONTROLS",
    "DeviceFacts",
    "NetworkControl",
    "compare_versions",
    "parse_device_config",
    "version_key",
]

NetworkControl = Control[DeviceFacts, DeviceContext]
Check = Callable[[DeviceFacts, DeviceContext], CheckResult]
EVERY: frozenset[str] = PLATFORMS
IOS_NXOS = frozenset({"ios", "nxos_ssh"})

#: What makes a config "complete" per platform, for the *unknown* explanations.
_ANCHOR = {
    "ios": "it has no closing `end` line",
    "eos": "it has no closing `end` line",
    "nxos_ssh": "it lacks the `version` or the `line vty` NX-OS always prints",
    "junos": "it has no `version` statement or root password, unbalanced braces, "
    "or a cut last line",
}
#: Where the management ACL lives, per platform.
_ACL = {
    "ios": "access-class on every vty line",
    "nxos_ssh": "access-class on the vty line",
    "eos": "ip access-group under management ssh or control-plane",
    "junos": "an input filter on lo0",
}


def _missing(facts: DeviceFacts, what: str) -> str:
    if facts.complete:
        return f"the config does not show {what}"
    return f"the config looks cut off ({_ANCHOR[facts.platform]}) and does not show {what}"


def _plural(n: int, word: str, plural: str = "") -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


# --- versions (3.2.2) --------------------------------------------------------------------


def version_key(platform: str, version: str) -> tuple[int, ...] | None:
    """A comparable key for an OS version, or ``None`` when it holds no number.

    Release-train letters are ignored. A Junos version is always (major, minor, release,
    service release), the build number after the last dot dropped, so ``21.4R3-S2.4``
    sorts after ``21.4R3.5``::

        >>> version_key("ios", "15.2(4)M7"), version_key("eos", "4.28.3M")
        ((15, 2, 4, 7), (4, 28, 3))
        >>> version_key("junos", "21.4R3-S2.4"), version_key("junos", "21.4R3.5")
        ((21, 4, 3, 2), (21, 4, 3, 0))
        >>> version_key("nxos_ssh", "9.3(8)")
        (9, 3, 8)
    """
    if platform == "junos":
        m = re.match(
            r"([0-9]{1,9})\.([0-9]{1,9})(?:[A-Za-z]+([0-9]{1,9}))?(?:-[A-Za-z]+([0-9]{1,9}))?",
            version.strip(),
        )
        return tuple(int(g or 0) for g in m.groups()) if m else None
    numbers = tuple(int(n) for n in re.findall(r"[0-9]{1,9}", version))
    return numbers or None


def compare_versions(
    actual: tuple[int, ...], minimum: tuple[int, ...]
) -> Literal["older", "ok", "imprecise"]:
    """``actual`` against ``minimum``; "imprecise" when ``actual`` stops short of the
    minimum's precision while agreeing so far (IOS prints only ``version 15.2``)::

        >>> compare_versions((15, 2), (15, 2)), compare_versions((15, 1, 9), (15, 2))
        ('ok', 'older')
        >>> compare_versions((15, 2), (15, 2, 4, 7)), compare_versions((15, 2), (15, 2, 0))
        ('imprecise', 'ok')
    """
    n = min(len(actual), len(minimum))
    if actual[:n] != minimum[:n]:
        return "older" if actual[:n] < minimum[:n] else "ok"
    if len(actual) >= len(minimum) or not any(minimum[n:]):
        return "ok"
    return "imprecise"


def check_os_version(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    minimum = ctx.settings.device_min_versions.get(facts.platform)
    expected = f"{facts.platform} {minimum} or later" if minimum else "a minimum version"
    if minimum is None:
        return unknown(expected, f"no baseline_device_min_versions entry for {facts.platform}")
    if facts.os_version is None:
        return unknown(expected, _missing(facts, "the OS version"))
    have, want = version_key(facts.platform, facts.os_version), version_key(facts.platform, minimum)
    if have is None or want is None:
        return unknown(expected, f"cannot compare versions {facts.os_version!r} and {minimum!r}")
    verdict = compare_versions(have, want)
    if verdict == "older":
        return failed(expected, facts.os_version, "below the baseline minimum: plan an upgrade")
    if verdict == "imprecise":
        return unknown(
            expected,
            f"the running config gives only {facts.os_version}; "
            f"{minimum} needs the full release (show version)",
        )
    return passed(expected, facts.os_version)


# --- management access -------------------------------------------------------------------


def check_ssh_v2(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = "SSH protocol 2 only"
    if facts.ssh_offered is False:
        return not_applicable(expected, "the device offers no SSH (no SSH server configured)")
    if facts.ssh_version is None:
        return unknown(expected, _missing(facts, "the SSH protocol version"))
    if facts.ssh_version == 1:
        fix = {
            "ios": "without `ip ssh version 2` IOS runs compatibility mode 1.99",
            "junos": "remove protocol-version v1",
        }.get(facts.platform, "")
        return failed(expected, "SSH v1 accepted", fix)
    return passed(expected, "SSH v2 only")


def check_telnet(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = "telnet off"
    if facts.telnet_enabled is None:
        bare = [v.name for v in facts.vty_lines if v.transport_input is None]
        if bare:
            why = f"{', '.join(bare)}: no `transport input`, whose default depends on the release"
            return unknown(expected, why)
        what = "a vty line" if facts.platform in IOS_NXOS else "the telnet service"
        return unknown(expected, _missing(facts, what))
    if facts.telnet_enabled:
        lines = [
            v.name
            for v in facts.vty_lines
            if v.transport_input and {"telnet", "all"} & set(v.transport_input)
        ]
        return failed(expected, "telnet on" + (f" ({', '.join(lines)})" if lines else ""))
    return passed(expected, "telnet off")


_HTTP = {
    "ios": "ip http server / ip http secure-server",
    "eos": "management api http-commands (eAPI) not shut down",
    "nxos_ssh": "feature nxapi",
    "junos": "system services web-management / rest",
}


def check_http(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = "HTTP(S) management server off"
    if facts.http_server_enabled is None:
        if facts.platform == "ios" and facts.complete:
            why = "neither `ip http server` nor `no ip http server`: the default varies by model"
            return unknown(expected, why)
        return unknown(expected, _missing(facts, "the HTTP server state"))
    if facts.http_server_enabled:
        return failed(expected, f"on ({_HTTP[facts.platform]})")
    return passed(expected, "off")


def check_mgmt_acl(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = _ACL[facts.platform]
    if facts.vty_access_class is None:
        what = "every vty line" if facts.platform in IOS_NXOS else _ACL[facts.platform]
        return unknown(expected, _missing(facts, what))
    if not facts.vty_access_class:
        open_lines = [v.name for v in facts.vty_lines if not v.access_class_in]
        actual = f"no access-class on {', '.join(open_lines)}" if open_lines else "no ACL"
        return failed(expected, actual)
    acls = ", ".join(facts.mgmt_acls) or "the ACL"
    sources = facts.mgmt_acl_sources
    if sources is None:
        return unknown(expected, f"{acls}: entries missing from the config or not readable")
    if not sources:
        return passed(expected, f"{acls} permits no source")
    networks = ctx.management_networks
    if not networks:
        if any_ := [s for s in sources if is_any(s)]:
            return failed(expected, f"{acls} permits any source ({', '.join(any_)})")
        return unknown(
            expected,
            f"{acls} permits {', '.join(sources)}; no management_networks in the inventory",
        )
    if outside := outside_networks(sources, networks):
        nets = ", ".join(str(n) for n in networks)
        return failed(
            expected,
            f"{acls} permits {', '.join(outside)}",
            f"outside the management networks {nets}",
        )
    return passed(expected, f"{acls} permits {', '.join(sources)} only")


def check_aaa(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = "logins authenticated by TACACS+ or RADIUS"
    if facts.platform == "ios":
        expected = "aaa new-model; " + expected
        if facts.aaa_new_model is False:
            return failed(expected, "no aaa new-model")
    if facts.aaa_login == "local":
        where = "authentication-order" if facts.platform == "junos" else "method list"
        return failed(expected, f"local accounts first (no server group leads the {where})")
    if facts.platform == "ios" and facts.aaa_new_model is None:
        return unknown(expected, _missing(facts, "aaa new-model"))
    if facts.aaa_login is None:
        return unknown(expected, _missing(facts, "a login authentication method"))
    if facts.aaa_login == "none":
        return failed(expected, "no aaa authentication login")
    return passed(expected, "TACACS+/RADIUS")


_HASH_NAMES: dict[SecretHash, str] = {
    "none": "no enable secret",
    "cleartext": "clear text",
    "type7": "reversible type 7 (enable password)",
    "sha256-unsalted": "type 4 (unsalted SHA-256)",
    "md5": "MD5",
    "sha256-crypt": "SHA-256 crypt",
    "sha512-crypt": "SHA-512 crypt",
    "pbkdf2": "type 8 (PBKDF2)",
    "scrypt": "type 9 (scrypt)",
}
_STRONG: frozenset[SecretHash] = frozenset({"pbkdf2", "scrypt", "sha256-crypt", "sha512-crypt"})
_SECRET_WANTED = {
    "ios": ("enable secret type 8 or 9, no enable password", "use type 8 or 9"),
    "eos": ("enable secret sha512", "use sha512"),
    "junos": ("root password hashed with SHA-256/512 ($5$/$6$)", "use $6$"),
}


def check_enable_secret(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected, fix = _SECRET_WANTED.get(facts.platform, ("a strong enable secret", ""))
    kind = facts.enable_secret_type
    if kind is None:
        what = "a root password" if facts.platform == "junos" else "an enable secret"
        return unknown(expected, _missing(facts, what))
    if kind in _STRONG:
        return passed(expected, _HASH_NAMES[kind])
    detail = {"md5": f"MD5, {fix}", "sha256-unsalted": f"type 4 is broken, {fix}"}.get(kind, fix)
    return failed(expected, _HASH_NAMES[kind], detail)


def check_password_encryption(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = {"nxos_ssh": "feature password encryption aes"}.get(
        facts.platform, "service password-encryption"
    )
    if facts.password_encryption is None:
        return unknown(expected, _missing(facts, expected))
    return (passed if facts.password_encryption else failed)(
        expected, "on" if facts.password_encryption else "off"
    )


# --- SNMP, time, logs, banner ------------------------------------------------------------


def check_snmp(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = "no SNMP v1/v2c community (SNMPv3 only)"
    communities = facts.snmp_communities
    if communities is None:
        return unknown(expected, _missing(facts, "the SNMP configuration"))
    if communities:
        rw = sum(c.access == "read-write" for c in communities)
        open_ = sum(not c.restricted for c in communities)
        actual = (
            f"{_plural(len(communities), 'v1/v2c community', 'v1/v2c communities')} "
            f"({rw} read-write, {open_} without an ACL)"
        )
        return failed(expected, actual)
    return passed(expected, "SNMPv3 only" if facts.snmp_v3 else "SNMP off")


def _ntp_expected(ctx: DeviceContext) -> str:
    required = ctx.settings.device_ntp_servers
    return "authenticated NTP" + (f" from {', '.join(required)}" if required else "")


def _syslog_expected(ctx: DeviceContext) -> str:
    required = ctx.settings.device_syslog_servers
    return f"syslog to {', '.join(required)}" if required else "a remote syslog host"


def check_ntp(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = _ntp_expected(ctx)
    servers = facts.ntp_servers
    if servers is None:
        return unknown(expected, _missing(facts, "the NTP servers"))
    if not servers:
        return failed(expected, "no NTP server")
    problems = []
    if missing := [s for s in ctx.settings.device_ntp_servers if s not in servers]:
        if not facts.complete:
            return unknown(expected, _missing(facts, ", ".join(missing)))
        problems.append(f"missing {', '.join(missing)}")
    if facts.ntp_authenticated is None and not problems:
        return unknown(expected, _missing(facts, "the NTP authentication keys"))
    if facts.ntp_authenticated is False:
        problems.append("not authenticated")
    actual = f"{_plural(len(servers), 'server')}, " + (
        ", ".join(problems) if problems else "authenticated"
    )
    return (failed if problems else passed)(expected, actual)


def check_syslog(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = _syslog_expected(ctx)
    hosts = facts.syslog_hosts
    if hosts is None:
        return unknown(expected, _missing(facts, "the syslog hosts"))
    if not hosts:
        return failed(expected, "no remote syslog host")
    if missing := [h for h in ctx.settings.device_syslog_servers if h not in hosts]:
        if not facts.complete:
            return unknown(expected, _missing(facts, ", ".join(missing)))
        return failed(expected, f"missing {', '.join(missing)} (has {', '.join(hosts)})")
    return passed(expected, f"syslog to {', '.join(hosts)}")


def check_banner(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    if not ctx.settings.device_banner_required:
        return passed("no banner required", "not checked (device_banner_required: false)")
    expected = "a login banner"
    if facts.login_banner is None:
        return unknown(expected, _missing(facts, "a banner"))
    return (passed if facts.login_banner else failed)(
        expected, "set" if facts.login_banner else "none"
    )


def check_legacy_services(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
    expected = "legacy services off"
    if on := [s.name for s in facts.legacy_services if s.enabled]:
        return failed(expected, f"on: {', '.join(on)}")
    if unsure := [s.name for s in facts.legacy_services if s.enabled is None]:
        return unknown(expected, _missing(facts, ", ".join(unsure)))
    return passed(expected, "all off")


# --- the list ----------------------------------------------------------------------------


def _control(
    id: str,
    severity: Severity,
    platforms: frozenset[str],
    title: str,
    rationale: str,
    expected: str | Callable[[DeviceContext], str],
    check: Check,
    *,
    clause: Clause = "3.2.1",
    elsewhere: str = "",
) -> NetworkControl:
    """A device control whose check answers *not applicable* off its platforms."""

    def expect(ctx: DeviceContext) -> str:
        return expected if isinstance(expected, str) else expected(ctx)

    def guarded(facts: DeviceFacts, ctx: DeviceContext) -> CheckResult:
        if facts.platform not in platforms:
            why = elsewhere or f"not a {facts.platform} control"
            return not_applicable(expect(ctx), why)
        return check(facts, ctx)

    return Control(
        id=id,
        clause=clause,
        severity=severity,
        kind="device",
        applies_to=platforms,
        title=title,
        rationale=rationale,
        expected=expect,
        check=guarded,
    )


def _expected_versions(ctx: DeviceContext) -> str:
    floors = ", ".join(f"{p} {v}" for p, v in sorted(ctx.settings.device_min_versions.items()))
    return f"OS release at or above the baseline ({floors})"


_SERVICES = "small servers, finger, BOOTP, CDP, source routing, PAD"

NETWORK_CONTROLS: list[NetworkControl] = [
    _control(
        "VC-NET-001",
        "high",
        EVERY,
        "SSH accepts protocol version 2 only.",
        "SSH v1 is broken; a hijacked management session on an edge router lets an attacker "
        "reroute or mirror customers' SIP and RTP traffic.",
        "SSH protocol 2 only",
        check_ssh_v2,
    ),
    _control(
        "VC-NET-002",
        "high",
        EVERY,
        "Telnet is off.",
        "Telnet carries engineers' credentials and every command in clear text over networks "
        "that also carry customer calls.",
        "telnet off",
        check_telnet,
    ),
    _control(
        "VC-NET-003",
        "medium",
        EVERY,
        "The HTTP(S) management server is off.",
        "An embedded web server is attack surface on a device routing customer calls; "
        "management needs SSH only.",
        "HTTP(S) management server off",
        check_http,
    ),
    _control(
        "VC-NET-004",
        "medium",
        EVERY,
        "Management logins are limited to the management networks by an ACL.",
        "Device logins must be reachable from the operator's management networks only, not "
        "from the customer and peering networks that carry SIP.",
        "management access limited by an ACL",
        check_mgmt_acl,
    ),
    _control(
        "VC-NET-005",
        "medium",
        EVERY,
        "Logins are authenticated through TACACS+ or RADIUS (AAA).",
        "Central accounts can be revoked the day an engineer leaves and leave a record of who "
        "changed call routing; shared local passwords cannot.",
        "logins authenticated by TACACS+ or RADIUS",
        check_aaa,
    ),
    _control(
        "VC-NET-006",
        "high",
        frozenset({"ios", "eos", "junos"}),
        "The enable (Junos: root) secret is stored as a strong hash.",
        "A reversible or MD5 secret lifted from a config backup gives full control of a device "
        "that routes customer calls.",
        "enable secret type 8/9 or SHA-512 crypt, no enable password",
        check_enable_secret,
        elsewhere="NX-OS has no enable secret: privilege comes from the user's role",
    ),
    _control(
        "VC-NET-007",
        "medium",
        IOS_NXOS,
        "Passwords in the config are encrypted.",
        "Clear-text passwords in a config leak through backups, tickets and screen shares of "
        "the devices carrying customer calls.",
        "service password-encryption (NX-OS: feature password encryption aes)",
        check_password_encryption,
        elsewhere="EOS and Junos always store secrets hashed or encrypted",
    ),
    _control(
        "VC-NET-008",
        "high",
        EVERY,
        "SNMP uses v3 only: no v1/v2c community is configured.",
        "v1/v2c community strings cross the network in clear text, and a read-write one lets "
        "whoever sniffs it reconfigure the device and its call routing.",
        "no SNMP v1/v2c community (SNMPv3 only)",
        check_snmp,
    ),
    _control(
        "VC-NET-009",
        "medium",
        EVERY,
        "NTP is configured and authenticated.",
        "Forged or drifting time corrupts CDR timestamps and the log trail of fraud "
        "investigations, and breaks certificate checks for SIP over TLS.",
        _ntp_expected,
        check_ntp,
    ),
    _control(
        "VC-NET-010",
        "medium",
        EVERY,
        "Logs are sent to the remote syslog servers.",
        "Logs kept on the device are lost on reboot and wiped by an intruder; toll-fraud and "
        "call-outage investigations need them off the box.",
        _syslog_expected,
        check_syslog,
    ),
    _control(
        "VC-NET-011",
        "low",
        EVERY,
        "A login banner warns that access is restricted.",
        "A warning banner before login supports action against unauthorised access to the "
        "call-carrying network.",
        lambda c: "a login banner" if c.settings.device_banner_required else "no banner required",
        check_banner,
    ),
    _control(
        "VC-NET-012",
        "medium",
        IOS_NXOS,
        f"Legacy services are off ({_SERVICES}).",
        "These services are unused on a VoIP core and each leaks information or opens attack "
        "surface (waive CDP where IP phones need it for the voice VLAN).",
        "legacy services off",
        check_legacy_services,
        elsewhere="EOS and Junos do not run these IOS services",
    ),
    _control(
        "VC-NET-013",
        "high",
        EVERY,
        "The OS release is at or above the baseline minimum for its platform.",
        "Old network OS releases carry known, exploited vulnerabilities; a compromised router "
        "exposes every call crossing it.",
        _expected_versions,
        check_os_version,
        clause="3.2.2",
    ),
]
