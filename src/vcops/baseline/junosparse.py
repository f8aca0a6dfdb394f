"""Junos configurations (``display set`` or curly braces) into :class:`DeviceFacts`.

Split from :mod:`vcops.baseline.netparse` (shared models and helpers in
:mod:`vcops.baseline.devicefacts`); both forms become one list of set-style
statements before the facts are read.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from vcops.baseline.devicefacts import (
    AaaLogin,
    DeviceFacts,
    SnmpCommunity,
    Statement,
    _ccp,
    _crypt_type,
    _dedupe,
    _known,
    _weakest,
    clean_config_text,
)
from vcops.baseline.netacl import junos_filter_sources


def _tokens(line: str) -> list[str]:
    """Words of one Junos line: quotes removed, ``## comments`` and the final ``;`` dropped."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote: fall back to plain words
        words = line.split()
    if words and words[-1].endswith(";"):
        words[-1] = words[-1][:-1]
    return [w for w in words if w]


def _expand(words: list[str]) -> Iterator[Statement]:
    """``a [ x y ] b`` -> ``a x b``, ``a y b`` (display set prints one line per value)."""
    if "[" in words and "]" in words:
        start, end = words.index("["), words.index("]")
        for value in words[start + 1 : end]:
            yield (*words[:start], value, *words[end + 1 :])
    else:
        yield tuple(words)


def _close_braces(lines: list[str]) -> tuple[list[str], bool]:
    """Close the blocks a cut-off brace config left open; False if it was not balanced.

    A stray ``}`` ends the readable part: what follows it would otherwise be read at
    the wrong depth (or dropped by ciscoconfparse2), so only the lines before it count,
    and the config is not whole."""
    depth = 0
    for n, line in enumerate(lines):
        bare = re.sub(r'"(?:\\.|[^"\\])*"|#.*|/\*.*?\*/', "", line)
        depth += bare.count("{") - bare.count("}")
        if depth < 0:
            return _close_braces(lines[:n])[0], False
    return lines + ["}"] * depth, depth == 0


#: Where a Junos config starts, after a prompt, an echoed command or other capture noise.
_JUNOS_START = re.compile(r"(set|deactivate) \S|version \S|## |/\*|[\w-]+ \{\s*$")


def _ends_whole(lines: list[str]) -> bool:
    """A brace config's last line closes a block or a statement (not cut mid-line)."""
    last = lines[-1].strip() if lines else ""
    return last.endswith(("}", ";"))


def _junos_statements(text: str) -> tuple[list[Statement], bool]:
    """Set-style statements (without ``set``) from display-set or curly-brace text, and
    whether the text is whole (a brace config must be balanced; one that ciscoconfparse2
    cannot read gives no statement at all).

    Deactivated statements are dropped; top-level ``apply-groups`` are expanded.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    start = next((n for n, line in enumerate(lines) if _JUNOS_START.match(line.strip())), None)
    lines = lines[start:] if start is not None else []
    content = [line.strip() for line in lines if not line.strip().startswith(("#", "/*"))]
    statements: list[Statement] = []
    inactive: list[Statement] = []
    whole = True
    if content and content[0].split()[0] in ("set", "deactivate"):
        for line in content:
            words = _tokens(line)
            if words[:1] == ["set"]:
                statements.extend(_expand(words[1:]))
            elif words[:1] == ["deactivate"]:
                inactive.append(tuple(words[1:]))
    elif content:
        ends_whole = _ends_whole(lines)
        lines, whole = _close_braces(lines)
        whole = whole and ends_whole
        try:
            objs = list(_ccp()(config=lines, syntax="junos").objs)
        except Exception:  # pyparsing errors, ValueError: not a brace config we can read
            return [], False
        for obj in objs:
            if obj.children:
                continue
            path = [str(p.text).strip() for p in obj.all_parents] + [str(obj.text).strip()]
            if path[-1].startswith(("#", "/*")) or any(p.startswith("inactive:") for p in path):
                continue
            statements.extend(_expand([w for part in path for w in _tokens(part)]))
    statements = [s for s in statements if not any(s[: len(i)] == i for i in inactive)]
    groups = [s[1] for s in statements if len(s) == 2 and s[0] == "apply-groups"]
    for group in groups:
        statements += [s[2:] for s in statements if s[:2] == ("groups", group) and len(s) > 2]
    return statements, whole


class _JunosConfig:
    """Prefix queries over set-style statements."""

    def __init__(self, statements: list[Statement]) -> None:
        self.statements = statements

    def under(self, *prefix: str) -> list[Statement]:
        """What follows ``prefix`` in every statement that starts with it."""
        n = len(prefix)
        return [s[n:] for s in self.statements if s[:n] == prefix]

    def has(self, *prefix: str) -> bool:
        return bool(self.under(*prefix))

    def firsts(self, *prefix: str) -> tuple[str, ...]:
        """The word right after ``prefix``, once each, in config order."""
        return _dedupe(s[0] for s in self.under(*prefix) if s)


def junos_facts(text: str) -> DeviceFacts:
    statements, whole = _junos_statements(text)
    cfg = _JunosConfig(statements)
    versions = cfg.firsts("version")
    # Junos prints no end marker: the version statement (and balanced braces, a whole
    # last line) anchor it, and Junos refuses to commit without a root password, so a
    # config that shows none was cut before `system` ended.
    complete = whole and bool(versions) and cfg.has("system", "root-authentication")
    ssh_versions = cfg.firsts("system", "services", "ssh", "protocol-version")

    order = cfg.firsts("system", "authentication-order")
    # Without `authentication-order`, Junos checks local passwords only; with `password`
    # first, local accounts are tried before any server.
    aaa: AaaLogin | None = "server" if order and order[0] in ("radius", "tacplus") else None
    if aaa is None and (order or complete):
        aaa = "local"

    root = cfg.firsts("system", "root-authentication", "encrypted-password")
    communities = tuple(
        SnmpCommunity(
            access="read-write"
            if "read-write" in cfg.firsts("snmp", "community", name, "authorization")
            else "read-only",  # Junos default authorization: read-only
            restricted=cfg.has("snmp", "community", name, "clients")
            or cfg.has("snmp", "community", name, "client-list-name"),
        )
        for name in cfg.firsts("snmp", "community")
    )
    servers = cfg.firsts("system", "ntp", "server")
    keys = set(cfg.firsts("system", "ntp", "authentication-key"))
    trusted = set(cfg.firsts("system", "ntp", "trusted-key"))
    syslog = cfg.firsts("system", "syslog", "host")
    filters = _dedupe(
        m[1]
        for s in cfg.under("interfaces", "lo0")
        if (m := re.search(r"\bfilter (?:input|input-list) (\S+)", " ".join(s)))
    )
    lo0_filter = bool(filters)
    sources = junos_filter_sources(statements, filters) if filters else None
    ssh_on = cfg.has("system", "services", "ssh")
    # Junos services are off unless configured, so absence is "off" in a complete config.
    return DeviceFacts(
        platform="junos",
        running_config=text,
        complete=complete,
        os_version=versions[0] if versions else None,
        # Junos services are off unless configured: no `system services ssh`, no SSH.
        ssh_offered=True if ssh_on else _known(complete, False),
        # SSH v2 only unless `protocol-version v1` (Junos dropped v1 as a default long ago).
        ssh_version=1
        if "v1" in ssh_versions
        else _known(complete or cfg.has("system", "services", "ssh"), 2),
        telnet_enabled=cfg.has("system", "services", "telnet") or _known(complete, False),
        http_server_enabled=cfg.has("system", "services", "web-management")
        or cfg.has("system", "services", "rest")
        or _known(complete, False),
        vty_access_class=lo0_filter or _known(complete, False),
        mgmt_acls=filters,
        mgmt_acl_sources=sources,
        aaa_login=aaa,
        enable_secret_type=_weakest(t for r in root if (t := _crypt_type(r))),
        snmp_communities=communities or _known(complete, ()),
        snmp_v3=cfg.has("snmp", "v3") or _known(complete, False),
        ntp_servers=servers or _known(complete, ()),
        ntp_authenticated=bool(keys & trusted) or _known(complete, False),
        syslog_hosts=syslog or _known(complete, ()),
        login_banner=cfg.has("system", "login", "message") or _known(complete, False),
    )


def junos_statements(text: str) -> tuple[list[Statement], bool]:
    """Set-style statements of a Junos config in either form, and whether it is whole
    (for remediation, which compares configs as ``set`` lines)."""
    return _junos_statements(clean_config_text(text))
