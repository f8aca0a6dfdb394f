"""Which parts of a device config each VC-NET control owns (pure, one table).

Remediation never compares the whole running config with the intended one (that would
negate every interface and route vcops does not manage): both are first cut down to
the sections owned by the controls being fixed. A section is a top-level line matching
``top`` (with all its children, or only those matching ``child``). Junos configs are
compared as ``set`` lines, so ``top`` is matched against the line after ``set ``.

Example::

    >>> scoped_lines("ios", ["hostname r1", "ip http server", "line vty 0 4",
    ...                      " exec-timeout 5 0", " transport input telnet"],
    ...              {"VC-NET-002", "VC-NET-003"})
    ['ip http server', 'line vty 0 4', ' transport input telnet']
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Controls no configuration line can fix (an OS upgrade is a window of its own).
NOT_ENFORCEABLE: dict[str, str] = {
    "VC-NET-013": "an OS upgrade: plan it in a window of its own",
}


#: Switches on by default: a config that shows neither ``X`` nor ``no X`` has them on, so
#: rolling back a pushed ``no X`` means ``X``; for every other ``no X`` it means nothing
#: (re-enabling finger because a config did not mention it would not be a rollback).
DEFAULT_ON: dict[str, frozenset[str]] = {
    "ios": frozenset(
        {
            "service pad",
            "ip bootp server",
            "ip source-route",
            "cdp run",
            # varies by model; IOS 12.x switches (and the lab's) have them on
            "ip http server",
            "ip http secure-server",
        }
    ),
    "eos": frozenset(),
    "nxos_ssh": frozenset({"cdp enable"}),
    "junos": frozenset(),
}


@dataclass(frozen=True)
class Scope:
    """A section of a config owned by ``control``."""

    control: str
    top: str
    child: str | None = None

    def matches_top(self, line: str) -> bool:
        return re.match(self.top, line) is not None

    def matches_child(self, line: str) -> bool:
        return self.child is None or re.match(self.child, line.strip()) is not None


_LEGACY_IOS = (
    r"(no )?(service (tcp|udp)-small-servers|ip finger|service finger|ip bootp server"
    r"|cdp run|ip source-route|service pad)\b"
)

SCOPES: dict[str, tuple[Scope, ...]] = {
    "ios": (
        Scope("VC-NET-001", r"ip ssh version\b"),
        Scope("VC-NET-002", r"line vty\b", r"(no )?transport input\b"),
        Scope("VC-NET-003", r"(no )?ip http (secure-)?server\b"),
        Scope("VC-NET-004", r"line vty\b", r"(no )?(ip )?access-class\b"),
        Scope("VC-NET-004", r"ip access-list standard VCOPS-MGMT$"),
        Scope("VC-NET-005", r"(no )?aaa new-model\b"),
        Scope("VC-NET-005", r"aaa group server (tacacs\+|radius) VCOPS-"),
        Scope("VC-NET-005", r"(tacacs|radius) server VCOPS-"),
        Scope("VC-NET-005", r"aaa authentication login default\b"),
        Scope("VC-NET-006", r"enable (secret|password|algorithm-type)\b"),
        Scope("VC-NET-007", r"(no )?service password-encryption\b"),
        Scope("VC-NET-008", r"snmp-server (community|group|user)\b"),
        Scope("VC-NET-009", r"ntp (authenticate|authentication-key|trusted-key|server)\b"),
        Scope("VC-NET-010", r"logging host\b"),
        Scope("VC-NET-011", r"banner (login|motd)\b"),
        Scope("VC-NET-012", _LEGACY_IOS),
    ),
    "eos": (
        Scope("VC-NET-002", r"management telnet$"),
        Scope("VC-NET-003", r"management api http-commands$", r"(no )?shutdown$"),
        Scope("VC-NET-004", r"ip access-list standard VCOPS-MGMT$"),
        Scope("VC-NET-004", r"management ssh$", r"ip access-group\b"),
        Scope("VC-NET-005", r"(tacacs|radius)-server host\b"),
        Scope("VC-NET-005", r"aaa authentication login default\b"),
        Scope("VC-NET-006", r"enable (secret|password)\b"),
        Scope("VC-NET-008", r"snmp-server (community|group|user)\b"),
        Scope("VC-NET-009", r"ntp (authenticate|authentication-key|trusted-key|server)\b"),
        Scope("VC-NET-010", r"logging host\b"),
        Scope("VC-NET-011", r"banner (login|motd)\b"),
    ),
    "nxos_ssh": (
        Scope("VC-NET-002", r"(no )?feature telnet\b"),
        Scope("VC-NET-003", r"(no )?feature nxapi\b"),
        Scope("VC-NET-004", r"ip access-list VCOPS-MGMT$"),
        Scope("VC-NET-004", r"line vty\b", r"(no )?(ip )?access-class\b"),
        Scope("VC-NET-005", r"feature tacacs\+"),
        Scope("VC-NET-005", r"tacacs-server host\b"),
        Scope("VC-NET-005", r"aaa group server tacacs\+ VCOPS-"),
        Scope("VC-NET-005", r"aaa authentication login default\b"),
        Scope("VC-NET-007", r"(no )?feature password encryption aes\b"),
        Scope("VC-NET-008", r"snmp-server (community|user)\b"),
        Scope("VC-NET-009", r"ntp (authenticate|authentication-key|trusted-key|server)\b"),
        Scope("VC-NET-010", r"logging server\b"),
        Scope("VC-NET-011", r"banner motd\b"),
        Scope("VC-NET-012", r"(no )?cdp enable\b"),
    ),
    "junos": (
        Scope("VC-NET-001", r"system services ssh protocol-version\b"),
        Scope("VC-NET-002", r"system services telnet\b"),
        Scope("VC-NET-003", r"system services (web-management|rest)\b"),
        Scope("VC-NET-004", r"policy-options prefix-list VCOPS-MGMT\b"),
        Scope("VC-NET-004", r"firewall family inet filter VCOPS-MGMT\b"),
        Scope("VC-NET-004", r"interfaces lo0 unit 0 family inet filter input\b"),
        Scope("VC-NET-005", r"system (tacplus|radius)-server\b"),
        Scope("VC-NET-005", r"system authentication-order\b"),
        Scope("VC-NET-006", r"system root-authentication\b"),
        Scope("VC-NET-008", r"snmp (community|v3)\b"),
        Scope("VC-NET-009", r"system ntp (server|authentication-key|trusted-key)\b"),
        Scope("VC-NET-010", r"system syslog host\b"),
        Scope("VC-NET-011", r"system login message\b"),
    ),
}


def enforceable(platform: str) -> frozenset[str]:
    """Control ids that configuration can fix on ``platform``."""
    return frozenset(s.control for s in SCOPES[platform])


def blocks(lines: Sequence[str], platform: str) -> list[list[str]]:
    """Top-level blocks: a line and its indented children. A banner's body (IOS:
    up to the closing delimiter; EOS: up to ``EOF``) stays inside its block."""
    out: list[list[str]] = []
    banner_end: str | None = None
    for line in lines:
        if banner_end is not None:
            out[-1].append(line)
            if banner_end in line:
                banner_end = None
            continue
        if not line.strip() or line.lstrip().startswith("!"):
            continue
        if line[0].isspace() and out:
            out[-1].append(line)
            continue
        out.append([line])
        m = re.match(r"banner (?:login|motd|exec)( (\^C|\S))?(.*)$", line)
        if m and platform == "eos" and m[1] is None:
            banner_end = "EOF"
        elif m and m[2] and platform != "eos" and m[2] not in m[3]:
            banner_end = m[2]
    return out


def _quote(word: str) -> str:
    return f'"{word}"' if (not word or re.search(r"[\s;{}\"]", word)) else word


def junos_set_lines(statements: Iterable[Sequence[str]]) -> list[str]:
    """``("system", "login", "message", "a b")`` -> ``set system login message "a b"``."""
    return ["set " + " ".join(_quote(w) for w in s) for s in statements]


def scoped_lines(platform: str, lines: Sequence[str], controls: Iterable[str]) -> list[str]:
    """The lines of ``lines`` owned by ``controls`` (blocks kept in config order)."""
    scopes = [s for s in SCOPES[platform] if s.control in set(controls)]
    out: list[str] = []
    if platform == "junos":
        for line in lines:
            body = line.removeprefix("set ").strip()
            if line.startswith("set ") and any(s.matches_top(body) for s in scopes):
                out.append(line)
        return out
    for block in blocks(lines, platform):
        owners = [s for s in scopes if s.matches_top(block[0])]
        if not owners:
            continue
        if any(s.child is None for s in owners) or block[0].startswith("banner"):
            out.extend(block)
            continue
        children = [c for c in block[1:] if any(s.matches_child(c) for s in owners)]
        if children:
            out.extend([block[0], *children])
    return out


def split_words(line: str) -> list[str]:
    """Words of a Junos set line, quotes honoured."""
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()
