"""Parse a network device's running config into typed :class:`DeviceFacts` (pure, no I/O).

IOS-style configs (``ios``, ``eos``, ``nxos_ssh``) are parsed with
:class:`ciscoconfparse2.CiscoConfParse` for their parent/child structure (``eos`` with
the ``ios`` syntax: ciscoconfparse2 0.9 has no ``eos`` syntax). Junos is accepted as
``show configuration | display set`` output or as a curly-brace config (parsed with
ciscoconfparse2's ``junos`` syntax); both become the same list of set-style statements.

A field is ``None`` when the config does not say, so a check answers *unknown*
instead of guessing. Running configs omit defaults, so an absent line means "the
default" only when the config is *complete*: it ends with ``end`` (ios, eos) or has a
``version`` line (nxos_ssh, junos, which print no end marker). In a cut-off config
only what is written counts. Every default relied on is named in a comment.

Example::

    >>> facts = parse_device_config("ios", "version 15.2\\nip ssh version 2\\nend\\n")
    >>> facts.os_version, facts.ssh_version, facts.complete, facts.telnet_enabled
    ('15.2', 2, True, None)
    >>> [s.name for s in facts.legacy_services if s.enabled]
    ['ip bootp server', 'cdp run', 'ip source-route', 'service pad']

Secrets never leave ``running_config``: SNMP communities are recorded as their access
mode only, enable secrets as their hash type, NTP keys as "authenticated or not".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vcops.baseline.devicefacts import (
    HASH_STRENGTH,
    PLATFORMS,
    AaaLogin,
    DeviceFacts,
    Platform,
    SecretHash,
    ServiceState,
    SnmpCommunity,
    VtyLine,
    _ccp,
    _crypt_type,
    _dedupe,
    _known,
    _state,
    _weakest,
    clean_config_text,
)
from vcops.baseline.junosparse import junos_facts
from vcops.baseline.netacl import (
    ACL_HEADER,
    ANY4,
    AclKind,
    ios_acl_sources,
    numbered_kind,
)

__all__ = [
    "HASH_STRENGTH",
    "PLATFORMS",
    "AaaLogin",
    "DeviceFacts",
    "Platform",
    "SecretHash",
    "ServiceState",
    "SnmpCommunity",
    "VtyLine",
    "clean_config_text",
    "parse_device_config",
]
"""Re-exported from :mod:`vcops.baseline.devicefacts` for the checks and callers."""

_CCP_SYNTAX = {"ios": "ios", "eos": "ios", "nxos_ssh": "nxos"}
_IOS_SECRET_TYPES: dict[str, SecretHash] = {
    "0": "cleartext",
    "4": "sha256-unsalted",
    "5": "md5",
    "7": "type7",
    "8": "pbkdf2",
    "9": "scrypt",
    "sha512": "sha512-crypt",
}


def parse_device_config(platform: str, text: str) -> DeviceFacts:
    """Parse a running config of ``platform`` ("ios", "eos", "junos", "nxos_ssh").

    Raises:
        ValueError: ``platform`` is not one of those.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; expected one of {sorted(PLATFORMS)}")
    cleaned = clean_config_text(text)
    if platform == "junos":
        facts = junos_facts(cleaned)
    else:
        facts = _ios_facts(platform, cleaned)
    return facts if cleaned == text else facts.model_copy(update={"running_config": text})


def _key_ids(spec: str) -> set[str]:
    """Key numbers in ``1``, ``1 - 3`` or ``1,4-5`` (NTP trusted-key)."""
    ids: set[str] = set()
    budget = 65_536  # key numbers are 1-65535: a device's config never makes this a hang
    for part in re.sub(r"\s*-\s*", "-", spec).replace(",", " ").split():
        low, _, high = part.partition("-")
        if not (low.isascii() and low.isdigit() and len(low) <= 6):
            continue
        if high.isascii() and high.isdigit() and len(high) <= 6:
            first = int(low)
            last = min(int(high), 65_535, first + budget - 1)
            ids.update(str(n) for n in range(first, last + 1))
            budget -= max(0, last - first + 1)
        else:
            ids.add(low)
            budget -= 1
        if budget <= 0:
            break
    return ids


# --- IOS-style (ios, eos, nxos_ssh) ------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """A top-level config line and every line under it, stripped."""

    text: str
    children: tuple[str, ...]


class _IosConfig:
    """The typed face of a :class:`ciscoconfparse2.CiscoConfParse`: top-level blocks only."""

    def __init__(self, platform: str, lines: list[str]) -> None:
        blocks: list[_Block] = []
        if any(line.strip() for line in lines):
            # A list, never a str: ciscoconfparse2 reads a str as a file path.
            parse = _ccp()(config=lines, syntax=_CCP_SYNTAX[platform])
            for obj in parse.objs:
                text = str(obj.text).strip()
                if obj.parent is not obj or not text or text.startswith("!"):
                    continue
                children = (str(c.text).strip() for c in obj.all_children)
                blocks.append(_Block(text, tuple(c for c in children if c)))
        self.blocks = tuple(blocks)

    def matches(self, pattern: str) -> list[re.Match[str]]:
        """Top-level lines matching ``pattern`` from their start."""
        rx = re.compile(pattern)
        return [m for b in self.blocks if (m := rx.match(b.text))]

    def has(self, pattern: str) -> bool:
        return bool(self.matches(pattern))

    def find(self, pattern: str) -> list[_Block]:
        rx = re.compile(pattern)
        return [b for b in self.blocks if rx.match(b.text)]


def _strip_eos_banners(lines: list[str]) -> tuple[list[str], bool]:
    """Drop EOS banner bodies (``banner login`` ... ``EOF``): ciscoconfparse2 would read
    each body line as a top-level command. Returns the lines and whether a banner exists."""
    kept: list[str] = []
    inside = banner = False
    for line in lines:
        if inside:
            inside = line.strip() != "EOF"
            continue
        if re.fullmatch(r"banner (login|motd)\s*", line.strip()):
            inside = banner = True
        kept.append(line)
    return kept, banner


def _ios_facts(platform: str, text: str) -> DeviceFacts:
    lines = text.splitlines()
    eos_banner = False
    if platform == "eos":
        lines, eos_banner = _strip_eos_banners(lines)
    cfg = _IosConfig(platform, lines)
    nonblank = [line.strip() for line in lines if line.strip()]
    if platform == "nxos_ssh":
        # NX-OS prints no `end` line; its `version` line comes first and `line vty` (always
        # printed, near the end, after the interfaces) anchors the rest.
        complete = cfg.has(r"version \S") and cfg.has(r"line vty\b")
    else:
        complete = bool(nonblank) and nonblank[-1] == "end"

    os_version: str | None = None
    if platform == "eos":  # no version line; the header says "! device: x (..., EOS-4.28.3M)"
        found = (re.search(r"\bEOS-(\d[\w.\-]*)", line) for line in nonblank if line[0] == "!")
        os_version = next((m[1] for m in found if m), None)
    elif version := cfg.matches(r"version (\S+)"):
        os_version = version[0][1]

    vty = _vty_lines(cfg) if platform in ("ios", "nxos_ssh") else ()
    aaa_new_model = None
    if platform == "ios":  # IOS default: `no aaa new-model` (usually printed anyway)
        # `aaa authentication ...` is refused without aaa new-model, so it proves it.
        on = cfg.has(r"aaa (new-model|authentication )")
        aaa_new_model = _state(on, cfg.has(r"no aaa new-model"), complete, default=False)
    acls, sources = _ios_mgmt_acls(platform, cfg, complete)
    return DeviceFacts(
        platform=platform,  # checked by parse_device_config; pydantic validates it again
        running_config=text,
        complete=complete,
        os_version=os_version,
        ssh_offered=_ios_ssh_offered(platform, cfg, complete, vty),
        ssh_version=_ios_ssh(platform, cfg, complete),
        telnet_enabled=_ios_telnet(platform, cfg, complete, vty),
        http_server_enabled=_ios_http(platform, cfg, complete),
        vty_lines=vty,
        vty_access_class=_ios_acl(platform, cfg, complete, vty),
        mgmt_acls=acls,
        mgmt_acl_sources=sources,
        aaa_new_model=aaa_new_model,
        aaa_login=_ios_aaa_login(cfg, complete),
        enable_secret_type=_ios_enable(platform, cfg, complete),
        password_encryption=_ios_password_encryption(platform, cfg, complete),
        snmp_communities=_ios_snmp(cfg, complete),
        snmp_v3=cfg.has(r"snmp-server (group \S+ v3|user \S+ \S+ (v3|auth))")
        or _known(complete, False),
        ntp_servers=_ios_ntp_servers(cfg, complete),
        ntp_authenticated=_ios_ntp_auth(cfg, complete),
        syslog_hosts=_ios_syslog(cfg, complete),
        # No banner is the default everywhere.
        login_banner=eos_banner or cfg.has(r"banner (login|motd)\b") or _known(complete, False),
        legacy_services=_ios_services(platform, cfg, complete),
    )


def _ios_ssh_offered(
    platform: str, cfg: _IosConfig, complete: bool, vty: tuple[VtyLine, ...]
) -> bool | None:
    """SSH on unless switched off: EOS `management ssh` / `shutdown`, NX-OS `no feature
    ssh`; IOS offers it with an `ip ssh` line or a vty line taking ssh (or all), and not
    when every vty line names its transports without ssh."""
    if platform == "eos":
        off = any("shutdown" in b.children for b in cfg.find(r"management ssh\s*$"))
        return not off if (off or complete) else None
    if platform == "nxos_ssh":  # NX-OS default: `feature ssh` on
        return not cfg.has(r"no feature ssh\b") if complete else None
    if cfg.has(r"ip ssh\b") or any(
        v.transport_input and {"ssh", "all"} & set(v.transport_input) for v in vty
    ):
        return True
    if complete and vty and all(v.transport_input is not None for v in vty):
        return False
    return None


def _ios_ssh(platform: str, cfg: _IosConfig, complete: bool) -> Literal[1, 2] | None:
    if platform != "ios":
        return _known(complete, 2)  # EOS and NX-OS implement SSH v2 only
    if found := cfg.matches(r"ip ssh version ([12])\b"):
        return 1 if found[0][1] == "1" else 2
    # IOS default without `ip ssh version`: compatibility mode 1.99, which accepts v1.
    return _known(complete, 1)


def _vty_lines(cfg: _IosConfig) -> tuple[VtyLine, ...]:
    lines = []
    for block in cfg.find(r"line vty\b"):
        transport = next(
            (c.split()[2:] for c in block.children if c.startswith("transport input ")), None
        )
        acl = any(re.match(r"(ip )?access-class \S+ in\b", c) for c in block.children)
        lines.append(
            VtyLine(
                name=block.text.removeprefix("line ").strip(),
                access_class_in=acl,
                transport_input=tuple(transport) if transport is not None else None,
            )
        )
    return tuple(lines)


def _ios_telnet(
    platform: str, cfg: _IosConfig, complete: bool, vty: tuple[VtyLine, ...]
) -> bool | None:
    if platform == "eos":  # EOS default: `management telnet` is shut down
        on = any("no shutdown" in b.children for b in cfg.find(r"management telnet\b"))
        return on or _known(complete, False)
    if platform == "nxos_ssh":  # NX-OS default: `feature telnet` is off
        return cfg.has(r"feature telnet\b") or _known(complete, False)
    if any(v.transport_input and {"telnet", "all"} & set(v.transport_input) for v in vty):
        return True
    # "Off" needs every vty line: a cut-off config may have lost the last ones. A line
    # without `transport input` runs the release's default, which differs between releases.
    if complete and vty and all(v.transport_input is not None for v in vty):
        return False
    return None


def _ios_http(platform: str, cfg: _IosConfig, complete: bool) -> bool | None:
    if platform == "eos":  # EOS default: eAPI (`management api http-commands`) shut down
        blocks = cfg.find(r"management api http-commands\b")
        return any("no shutdown" in b.children for b in blocks) or _known(complete, False)
    if platform == "nxos_ssh":  # NX-OS default: `feature nxapi` off
        return cfg.has(r"feature nxapi\b") or _known(complete, False)
    if cfg.has(r"ip http (secure-)?server\b"):
        return True
    # The `ip http server` default differs between IOS platforms, so IOS prints the state
    # either way; `ip http secure-server` is off unless written.
    return False if cfg.has(r"no ip http server\b") else None


def _ios_acl(
    platform: str, cfg: _IosConfig, complete: bool, vty: tuple[VtyLine, ...]
) -> bool | None:
    if platform == "eos":
        blocks = cfg.find(r"(management ssh|(system )?control-plane)\s*$")
        restricted = any(re.match(r"ip access-group \S+", c) for b in blocks for c in b.children)
        return restricted or _known(complete, False)
    if not vty:
        return None  # IOS and NX-OS always print their vty lines: this config is cut
    if not all(v.access_class_in for v in vty):
        return False
    return _known(complete, True)  # a cut-off config may have lost the last vty lines


def _ios_aaa_login(cfg: _IosConfig, complete: bool) -> AaaLogin | None:
    """Judge the method lists logins use: ``default`` and those named on vty lines. A
    list is central only when it *starts* with ``group``: ``local group tacacs+`` tries
    local accounts first, and ``default local`` is local-only proof."""
    lists = {m[1]: m[2].split() for m in cfg.matches(r"aaa authentication login (\S+) (.+)")}
    if not lists:
        return _known(complete, "none")  # default: local accounts (or line passwords) only
    used = {"default"}
    for block in cfg.find(r"line vty\b"):
        named = [c.split()[2] for c in block.children if re.match(r"login authentication \S", c)]
        used.update(named)
    methods = [lists[name] for name in sorted(used) if name in lists]
    if any(m[0] != "group" for m in methods):
        return "local"
    if methods and all(m[0] == "group" for m in methods):
        return "server"
    # No list the vty lines use is written: with aaa new-model, IOS then uses local logins.
    return _known(complete, "local")


def _acl_entries(cfg: _IosConfig, name: str) -> tuple[AclKind | None, list[str]] | None:
    """The kind and entries of ACL ``name`` (named or IOS numbered), None if not written."""
    for block in cfg.blocks:
        header = ACL_HEADER.match(block.text)
        if header and header[2] == name:
            # EOS and NX-OS `ip access-list NAME` (no kind) are extended lists.
            kind: AclKind = "standard" if header[1] == "standard" else "extended"
            return kind, list(block.children)
    numbered = cfg.matches(rf"access-list {re.escape(name)} (.+)")
    if numbered:
        return numbered_kind(name), [m[1] for m in numbered]
    return None


def _ios_mgmt_acls(
    platform: str, cfg: _IosConfig, complete: bool
) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """The ACLs applied to management logins and the SSH sources they permit."""
    names: list[str] = []
    if platform == "eos":
        for block in cfg.find(r"(management ssh|(system )?control-plane)\s*$"):
            for child in block.children:
                if m := re.match(r"ip access-group (\S+)", child):
                    names.append(m[1])
    else:
        for block in cfg.find(r"line vty\b"):
            for child in block.children:
                if m := re.match(r"(?:ip )?access-class (\S+) in\b", child):
                    names.append(m[1])
    names = list(_dedupe(names))
    sources: list[str] = []
    for name in names:
        found = _acl_entries(cfg, name)
        if found is None:
            if not complete:
                return tuple(names), None
            # An access-class naming a list that does not exist filters nothing.
            sources.append(ANY4)
            continue
        kind, entries = found
        got = ios_acl_sources(kind, entries) if kind else None
        if got is None:
            return tuple(names), None
        sources.extend(got)
    return tuple(names), _dedupe(sources)


def _ios_enable(platform: str, cfg: _IosConfig, complete: bool) -> SecretHash | None:
    if platform == "nxos_ssh":
        return None  # NX-OS has no enable secret
    found: list[SecretHash] = []
    lines = cfg.matches(r"enable (secret|password) (?:level \d+ )?(.+)")
    for m in lines:
        words = m[2].split()
        kind = _IOS_SECRET_TYPES.get(words[0]) if len(words) > 1 else None
        if kind is None and len(words) == 1:
            kind = _crypt_type(words[0]) or "cleartext"
        if platform == "ios" and m[1] == "password":
            kind = "type7" if words[0] == "7" else "cleartext"  # IOS enable password: reversible
        if kind is not None:
            found.append(kind)
    if lines and len(found) < len(lines):
        return None  # a hash type we do not know: no verdict rather than a guess
    # Default: no enable secret at all.
    return _weakest(found) or _known(complete, "none")


def _ios_password_encryption(platform: str, cfg: _IosConfig, complete: bool) -> bool | None:
    if platform == "ios":  # IOS default: `no service password-encryption`
        on = cfg.has(r"service password-encryption\b")
        return _state(on, cfg.has(r"no service password-encryption\b"), complete, default=False)
    if platform == "nxos_ssh":  # NX-OS default: type-6 (AES) password encryption off
        return cfg.has(r"feature password encryption aes\b") or _known(complete, False)
    return None  # EOS stores secrets hashed or encrypted, always


def _ios_snmp(cfg: _IosConfig, complete: bool) -> tuple[SnmpCommunity, ...] | None:
    # Grouped by community string (NX-OS writes `use-acl` on a line of its own); the
    # string itself goes no further than this dict.
    options: dict[str, list[str]] = {}
    for m in cfg.matches(r"snmp-server community (\S+)\s*(.*)"):
        options.setdefault(m[1], []).extend(m[2].lower().split())
    communities = tuple(_community(words) for words in options.values())
    return communities or _known(complete, ())  # default: no community, SNMP off


def _community(words: list[str]) -> SnmpCommunity:
    """``[view V] [ro|rw] [ipv6 ACL] [ACL]`` (ios, eos) or ``group ROLE`` / ``use-acl ACL``
    (nxos); whatever is left after the access mode and ``view``/``group`` names is an ACL."""
    rest: list[str] = []
    skip = False
    for word in words:
        if skip or word in ("ro", "rw"):
            skip = False
            continue
        skip = word in ("view", "group")
        if not skip:
            rest.append(word)
    read_write = "rw" in words or "network-admin" in words  # default access: read-only
    return SnmpCommunity(access="read-write" if read_write else "read-only", restricted=bool(rest))


def _ios_ntp_servers(cfg: _IosConfig, complete: bool) -> tuple[str, ...] | None:
    servers = []
    for m in cfg.matches(r"ntp server (.+)"):
        words = m[1].split()
        while words and words[0] in ("vrf", "ip", "ipv6"):
            words = words[2:] if words[0] == "vrf" else words[1:]
        if words:
            servers.append(words[0])
    return _dedupe(servers) if servers else _known(complete, ())


def _ios_ntp_auth(cfg: _IosConfig, complete: bool) -> bool | None:
    keys = {m[1] for m in cfg.matches(r"ntp authentication-key (\d+)\b")}
    trusted = set().union(*(_key_ids(m[1]) for m in cfg.matches(r"ntp trusted-key (.+)")))
    if cfg.has(r"ntp authenticate\b") and keys & trusted:
        return True
    return _known(complete, False)  # default: NTP unauthenticated


def _ios_syslog(cfg: _IosConfig, complete: bool) -> tuple[str, ...] | None:
    hosts = [
        m[1] for m in cfg.matches(r"logging (?:vrf \S+ )?(?:host |server )?(?:ipv6 )?(\S*[.:]\S*)")
    ]
    return _dedupe(hosts) if hosts else _known(complete, ())


#: IOS legacy services: (name, `on` pattern, `off` pattern, default when neither is written).
_IOS_SERVICES: tuple[tuple[str, str, str, bool], ...] = (
    # Small servers are off by default since IOS 11.3, finger since 12.1(5).
    ("service tcp-small-servers", r"service tcp-small-servers", r"no service tcp-small", False),
    ("service udp-small-servers", r"service udp-small-servers", r"no service udp-small", False),
    ("ip finger", r"(ip|service) finger\b", r"no (ip|service) finger\b", False),
    # On by default: a running config shows only the `no` form.
    ("ip bootp server", r"ip bootp server\b", r"no ip bootp server\b", True),
    ("cdp run", r"cdp run\b", r"no cdp run\b", True),
    ("ip source-route", r"ip source-route\b", r"no ip source-route\b", True),
    ("service pad", r"service pad\b", r"no service pad\b", True),
)


def _ios_services(platform: str, cfg: _IosConfig, complete: bool) -> tuple[ServiceState, ...]:
    if platform == "nxos_ssh":  # NX-OS has only CDP of these, on by default
        on, off = cfg.has(r"cdp enable\b"), cfg.has(r"no cdp enable\b")
        return (ServiceState(name="cdp enable", enabled=_state(on, off, complete, True)),)
    if platform != "ios":
        return ()
    return tuple(
        ServiceState(name=name, enabled=_state(cfg.has(on), cfg.has(off), complete, default))
        for name, on, off, default in _IOS_SERVICES
    )
