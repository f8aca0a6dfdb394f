"""The configuration commands the lab's IOS simulator accepts, in one place (pure).

fake-switches knows VLANs, interfaces and static routes only. The lab's switches add
the hardening commands vcops pushes (``templates/netdev/ios/``) and their ``no`` forms,
keep them in a :class:`HardeningStore` and show them in ``show running-config``;
anything else typed in configuration mode gets IOS's ``% Invalid input detected``, so a
wrong template fails in the lab as it would on a device.

This module imports nothing outside the standard library: ``switch_server.py`` loads it
by path inside the switch's network namespace.

Example::

    >>> store = HardeningStore()
    >>> store.apply("ip ssh version 2").ok, store.apply("ip ssh version 3").ok
    (True, False)
    >>> store.apply("line vty 0 4").section
    'line vty 0 4'
    >>> store.apply_child("line vty 0 4", "transport input ssh").ok
    True
    >>> store.running_lines()
    ['ip ssh version 2', 'line vty 0 4', ' transport input ssh']
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

INVALID = "% Invalid input detected at '^' marker."


@dataclass(frozen=True)
class Rule:
    """One command: ``pattern`` (full match, without ``no``); ``key`` names the regex group
    that identifies the setting (a new value replaces the old; ``no`` removes it), or
    None when every distinct line is its own entry. ``toggle``: ``no CMD`` is kept and
    shown (an on-by-default service switched off). ``children``: a section's rules."""

    pattern: str
    key: str | None = None
    toggle: bool = False
    children: tuple[Rule, ...] = ()
    #: A toggle's value when never configured (the switch's model default); a toggle set
    #: back to it is no longer shown, as on a device.
    default: bool = False

    def match(self, line: str, *, negated: bool = False) -> re.Match[str] | None:
        """Match a line; a negated one may stop after the key (``no ip ssh version``)."""
        found = re.fullmatch(self.pattern, line)
        if found is None and negated and self.key:
            found = re.fullmatch(_key_group(self.pattern) + r"( .*)?", line)
        return found

    def key_of(self, m: re.Match[str]) -> str:
        return m[self.key] if self.key else m[0]


def _key_group(pattern: str) -> str:
    """The ``(?P<k>...)`` group of ``pattern``, parentheses balanced."""
    start = pattern.index("(?P<k>")
    depth = 0
    for n, char in enumerate(pattern[start:], start):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return pattern[start : n + 1]
    raise ValueError(pattern)


_VTY_CHILDREN = (
    Rule(r"(?P<k>access-class) \S+ in", "k"),
    Rule(r"(?P<k>transport input)( (ssh|telnet|none|all))+", "k"),
    Rule(r"(?P<k>exec-timeout)( \d+){1,2}", "k"),
    Rule(r"(?P<k>login authentication) \S+", "k"),
    Rule(r"(?P<k>session-timeout) \d+", "k"),
)
_ACL_ENTRY = r"(?:\d+ )?(?:(?:permit|deny) (?:any|host \S+|[\d.]+(?: [\d.]+)?)(?: log)?|remark .*)"

#: Global configuration commands (``no`` forms derive from these).
GLOBAL_RULES: tuple[Rule, ...] = (
    Rule(r"(?P<k>service (password-encryption|tcp-small-servers|udp-small-servers))", "k", True),
    Rule(r"(?P<k>service pad)", "k", True, default=True),
    Rule(r"(?P<k>service timestamps (debug|log)) .*", "k"),
    Rule(r"(?P<k>ip finger)", "k", True),
    # IOS 12.1 on a 2960 (what fake-switches plays): BOOTP, source routing, CDP and the
    # HTTP servers are on until switched off.
    Rule(
        r"(?P<k>ip (bootp server|source-route|http server|http secure-server))",
        "k",
        True,
        default=True,
    ),
    Rule(r"(?P<k>cdp run)", "k", True, default=True),
    Rule(r"(?P<k>ip ssh version) [12]", "k"),
    Rule(r"(?P<k>ip ssh time-out) \d+", "k"),
    Rule(r"(?P<k>enable secret)( [0-9])? \S+", "k"),
    Rule(r"(?P<k>enable password)( [07])? \S+", "k"),
    Rule(r"(?P<k>aaa new-model)", "k", True),
    Rule(
        r"(?P<k>aaa authentication login \S+)( (group \S+|local|none|enable|line))+",
        "k",
    ),
    Rule(
        r"aaa group server (tacacs\+|radius) [\w.-]+", None, False, (Rule(r"server name [\w.-]+"),)
    ),
    Rule(
        r"(tacacs|radius) server [\w.-]+",
        None,
        False,
        (Rule(r"(?P<k>address ipv4) [\d.]+", "k"), Rule(r"(?P<k>key)( [07])? \S+", "k")),
    ),
    Rule(r"ip access-list standard [\w.-]+", None, False, (Rule(_ACL_ENTRY),)),
    Rule(r"access-list \d+ " + _ACL_ENTRY),
    Rule(r"(?P<k>snmp-server community \S+)( (RO|RW|ro|rw))?( \S+)?", "k"),
    Rule(r"(?P<k>snmp-server group \S+ v3) (auth|noauth|priv)( .*)?", "k"),
    Rule(r"(?P<k>snmp-server user \S+) \S+ v3 auth (sha|md5) \S+( priv (aes 128|des) \S+)?", "k"),
    Rule(r"(?P<k>ntp authentication-key \d+) md5 \S+( 7)?", "k"),
    Rule(r"(?P<k>ntp authenticate)", "k"),
    Rule(r"(?P<k>ntp trusted-key \d+)", "k"),
    Rule(r"(?P<k>ntp server [\w.:-]+)( key \d+)?", "k"),
    Rule(r"(?P<k>logging host [\w.:-]+)( transport \S+ port \d+)?", "k"),
    Rule(r"line vty \d+( \d+)?", None, False, _VTY_CHILDREN),
)
_ENABLE_RULE = next(
    n for n, r in enumerate(GLOBAL_RULES) if r.pattern.startswith("(?P<k>enable secret")
)
#: IOS hides SNMPv3 users from the running config (they live in the SNMP engine).
HIDDEN = re.compile(r"snmp-server user ")
_BANNER = re.compile(r"banner (login|motd|exec) (\^C|\S)(.*)$")


@dataclass
class Result:
    """What one line did: ``ok`` (accepted), ``section`` (entered, for child lines)."""

    ok: bool
    section: str | None = None


@dataclass
class _Entry:
    line: str
    rule: Rule
    children: dict[str, str] = field(default_factory=dict)


@dataclass
class HardeningStore:
    """The hardening part of one simulated switch's running config."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    _banner: list[str] | None = None
    _banner_end: str = ""

    @property
    def in_banner(self) -> bool:
        return self._banner is not None

    def feed_banner(self, line: str) -> None:
        """A line of a multi-line banner body (the one holding the delimiter ends it)."""
        assert self._banner is not None
        self._banner.append(line)
        if self._banner_end in line:
            head = self._banner[0]
            key = " ".join(head.split()[:2])
            self.entries[key] = _Entry("\n".join(self._banner), Rule(r".*"))
            self._banner = None

    def apply(self, line: str) -> Result:
        """Apply one global configuration line (``no`` forms included)."""
        line = " ".join(line.split())
        negate = line.startswith("no ")
        body = line[3:] if negate else line
        banner = re.fullmatch(r"banner (login|motd|exec)", body) if negate else _BANNER.match(body)
        if banner:
            key = f"banner {banner[1]}"
            if negate:
                self.entries.pop(key, None)
                return Result(True)
            delim, rest = banner[2], banner[3]
            if delim in rest:  # one-line banner
                self.entries[key] = _Entry(body, Rule(r".*"))
            else:
                self._banner, self._banner_end = [f"banner {banner[1]} {delim}"], delim
                if rest.strip():
                    self._banner.append(rest)
            return Result(True)
        algorithm = re.fullmatch(r"enable algorithm-type (scrypt|sha256) secret( \S+)?", body)
        if algorithm:  # IOS stores the hash and shows `enable secret 9 $9$...` (8 for sha256)
            self.entries.pop("enable secret", None)
            if not negate and algorithm[2]:
                digest = hashlib.sha256(algorithm[2].encode()).hexdigest()[:24]
                kind = "9" if algorithm[1] == "scrypt" else "8"
                line = f"enable secret {kind} ${kind}${digest}"
                self.entries["enable secret"] = _Entry(line, GLOBAL_RULES[_ENABLE_RULE])
            return Result(True)
        for rule in GLOBAL_RULES:
            m = rule.match(body, negated=negate)
            if m is None:
                continue
            key = rule.key_of(m)
            if negate:
                self._remove(body, key, rule)
                return Result(True)
            if rule.children:
                self.entries.setdefault(key, _Entry(body, rule))
                return Result(True, section=key)
            if rule.toggle and rule.default:
                self.entries.pop(key, None)  # back to the default: not shown
            else:
                self.entries[key] = _Entry(body, rule)
            return Result(True)
        if negate and self._remove_prefix(body):
            return Result(True)
        return Result(False)

    def _remove(self, body: str, key: str, rule: Rule) -> None:
        if rule.toggle and rule.default:
            self.entries[key] = _Entry(f"no {key}", rule)
        elif rule.toggle:
            self.entries.pop(key, None)  # back to the default (off): not shown
        else:
            self.entries.pop(key, None)
            self._remove_prefix(body)

    def _remove_prefix(self, body: str) -> bool:
        gone = [
            k for k, e in self.entries.items() if e.line == body or e.line.startswith(body + " ")
        ]
        for k in gone:
            del self.entries[k]
        return bool(gone)

    def apply_child(self, section: str, line: str) -> Result:
        """Apply one line inside ``section`` (``line vty 0 4``, an ACL, a server)."""
        entry = self.entries.get(section)
        if entry is None:
            return Result(False)
        line = " ".join(line.split())
        negate = line.startswith("no ")
        body = line[3:] if negate else line
        if entry.rule.children and entry.rule.children[0].pattern.startswith("(?:\\d+ )"):
            body = re.sub(r"^\d+ ", "", body)  # ACL sequence numbers are not shown
        for rule in entry.rule.children:
            m = rule.match(body, negated=negate)
            if m is None:
                continue
            key = rule.key_of(m)
            if negate:
                entry.children.pop(key, None)
            else:
                entry.children[key] = body
            return Result(True)
        if negate and re.fullmatch(r"\d+", body):
            return Result(True)
        return Result(False)

    def running_lines(self) -> list[str]:
        """The stored configuration as ``show running-config`` prints it (grammar order;
        sections with their children indented by one space; banners last)."""
        order = {rule.pattern: n for n, rule in enumerate(GLOBAL_RULES)}
        entries = sorted(
            self.entries.values(),
            key=lambda e: (e.line.startswith("banner"), order.get(e.rule.pattern, 99)),
        )
        out: list[str] = []
        for entry in entries:
            if HIDDEN.match(entry.line) or (entry.line.startswith("line ") and not entry.children):
                continue  # fake-switches shows no line blocks until one is configured
            out.extend(entry.line.split("\n"))
            out.extend(f" {child}" for child in entry.children.values())
        return out


def grammar_summary() -> list[str]:
    """The accepted commands, one pattern per line (for the README and error hints)."""
    lines = []
    for rule in GLOBAL_RULES:
        lines.append(rule.pattern)
        lines.extend(f"  {child.pattern}" for child in rule.children)
    return [*lines, r"banner (login|motd|exec) <delimiter>...<delimiter>"]
