"""What a management ACL lets in, read from its entries (pure, no I/O).

A VTY ``access-class`` (ios, nxos_ssh), a ``management ssh`` / ``control-plane``
``ip access-group`` (eos) or a Junos lo0 input filter restricts logins only as far as
its *permit* entries are narrow. These functions return the source networks an ACL
permits to reach SSH, as CIDR strings, or ``None`` when an entry cannot be read (a
non-contiguous wildcard, an unknown keyword): the check then answers *unknown*.

Deny entries are not subtracted: ``deny 10.1.0.0 0.0.255.255`` then ``permit any``
still counts as "permits any", the conservative reading.

Example::

    >>> ios_acl_sources("standard", ["10 permit 198.51.100.0 0.0.0.255", "deny any log"])
    ('198.51.100.0/24',)
    >>> ios_acl_sources("extended", ["permit tcp any any eq 22"])
    ('0.0.0.0/0',)
    >>> outside_networks(("0.0.0.0/0", "198.51.100.0/24"), ["198.51.100.0/24"])
    ['0.0.0.0/0']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address, ip_network
from typing import Literal

AclKind = Literal["standard", "extended"]
ANY4 = "0.0.0.0/0"
ANY6 = "::/0"
#: Protocols whose entries can let an SSH session in.
_SSH_PROTOCOLS = frozenset({"ip", "ipv4", "ipv6", "tcp", "6"})
_SSH_PORTS = frozenset({"22", "ssh"})


def _is_address(word: str) -> bool:
    try:
        ip_address(word)
    except ValueError:
        return False
    return True


def wildcard_network(address: str, wildcard: str) -> str | None:
    """``198.51.100.0 0.0.0.255`` -> ``198.51.100.0/24``; None for a non-contiguous mask."""
    try:
        mask = IPv4Address(~int(IPv4Address(wildcard)) & 0xFFFFFFFF)
        return str(IPv4Network(f"{address}/{mask}", strict=False))
    except ValueError:
        return None


def _source(words: Sequence[str], i: int) -> tuple[str | None, int]:
    """The address spec starting at ``words[i]`` and the index after it."""
    if i >= len(words):
        return None, i
    word = words[i]
    if word == "any":
        return ANY4, i + 1
    if word == "any6":
        return ANY6, i + 1
    if word == "host" and i + 1 < len(words):
        return (f"{words[i + 1]}/32" if _is_address(words[i + 1]) else None), i + 2
    if "/" in word:
        try:
            return str(ip_network(word, strict=False)), i + 1
        except ValueError:
            return None, i + 1
    if not _is_address(word):
        return None, i + 1
    if i + 1 < len(words) and _is_address(words[i + 1]) and ":" not in word:
        return wildcard_network(word, words[i + 1]), i + 2
    return f"{word}/32", i + 1


def _reaches_ssh(words: Sequence[str], after_source: int) -> bool:
    """Whether an extended entry (``tcp SRC DST eq 22``) can match SSH to the device."""
    if words[0] not in _SSH_PROTOCOLS:
        return False
    _, after_dest = _source(words, after_source)
    rest = list(words[after_dest:])
    if "eq" in rest:
        return bool(_SSH_PORTS & set(rest[rest.index("eq") + 1 :]))
    return not any(w in ("lt", "gt") for w in rest[:1])


def ios_acl_sources(kind: AclKind, entries: Iterable[str]) -> tuple[str, ...] | None:
    """Sources the entries of one IOS/EOS/NX-OS ACL permit to reach SSH.

    ``entries`` are the ACL's lines without the list header: ``10 permit ...`` (named,
    with or without a sequence number) or ``permit ...`` (numbered, after the number).
    """
    sources: list[str] = []
    for entry in entries:
        words = entry.split()
        if words and words[0].isdigit():
            words = words[1:]
        if not words or words[0] != "permit":
            continue  # deny, remark, statistics, ...
        words = words[1:]
        if not words:
            return None
        if kind == "standard":
            source, _ = _source(words, 0)
            if source is None:
                return None
            sources.append(source)
            continue
        source, after = _source(words, 1)
        if source is None:
            return None
        if _reaches_ssh(words, after):
            sources.append(source)
    return tuple(dict.fromkeys(sources))


def numbered_kind(number: str) -> AclKind | None:
    """IOS numbered lists: 1-99 and 1300-1999 standard, 100-199 and 2000-2699 extended."""
    if not (number.isascii() and number.isdigit() and len(number) <= 6):
        return None
    n = int(number)
    if 1 <= n <= 99 or 1300 <= n <= 1999:
        return "standard"
    if 100 <= n <= 199 or 2000 <= n <= 2699:
        return "extended"
    return None


Statement = tuple[str, ...]


def junos_filter_sources(
    statements: Sequence[Statement], names: Iterable[str]
) -> tuple[str, ...] | None:
    """Sources the Junos firewall filters ``names`` accept for SSH (terms in order).

    A term accepts when it says ``then accept`` or names no terminating action; it
    concerns SSH unless its ``from protocol`` excludes TCP or its ``destination-port``
    excludes 22. Its sources are its ``source-address`` / ``address`` values (minus
    ``except`` ones) and the prefixes of its ``source-prefix-list`` / ``prefix-list``;
    a term without them accepts any source. ``None``: a named filter is not defined.
    """
    prefix_lists: dict[str, list[str]] = {}
    for s in statements:
        if len(s) >= 4 and s[:2] == ("policy-options", "prefix-list"):
            prefix_lists.setdefault(s[2], []).append(s[3])
    sources: list[str] = []
    for name in names:
        terms: dict[str, list[Statement]] = {}
        for s in statements:
            for head in (
                ("firewall", "family", "inet", "filter", name, "term"),
                ("firewall", "filter", name, "term"),
            ):
                if s[: len(head)] == head and len(s) > len(head):
                    terms.setdefault(s[len(head)], []).append(s[len(head) + 1 :])
        if not terms:
            return None
        for body in terms.values():
            got = _junos_term(body, prefix_lists)
            if got is None:
                return None
            sources.extend(got)
    return tuple(dict.fromkeys(sources))


def _junos_term(body: list[Statement], prefix_lists: dict[str, list[str]]) -> list[str] | None:
    then = {s[1] for s in body if len(s) > 1 and s[0] == "then"}
    if then & {"discard", "reject", "next"} or ("accept" not in then and then - {"count", "log"}):
        return []
    froms = [s[1:] for s in body if s[:1] == ("from",) and len(s) > 1]
    protocols = {f[1] for f in froms if f[0] == "protocol" and len(f) > 1}
    if protocols and not protocols & {"tcp", "6"}:
        return []
    ports = {f[1] for f in froms if f[0] in ("destination-port", "port") and len(f) > 1}
    if ports and not ports & _SSH_PORTS:
        return []
    found: list[str] = []
    named = False
    for f in froms:
        if f[0] in ("source-address", "address") and len(f) > 1:
            named = True
            if "except" not in f[2:]:
                try:
                    found.append(str(ip_network(f[1], strict=False)))
                except ValueError:
                    return None
        elif f[0] in ("source-prefix-list", "prefix-list") and len(f) > 1:
            named = True
            if f[1] not in prefix_lists:
                return None
            found.extend(str(ip_network(p, strict=False)) for p in prefix_lists[f[1]])
    return found if named else [ANY4]


def outside_networks(
    sources: Iterable[str], networks: Sequence[str | IPv4Network | IPv6Network]
) -> list[str]:
    """The sources not inside any of ``networks`` (each as written)."""
    nets = [ip_network(n, strict=False) if isinstance(n, str) else n for n in networks]
    out = []
    for source in sources:
        src = ip_network(source, strict=False)
        inside = any(
            src.version == net.version and src.subnet_of(net)  # type: ignore[arg-type]
            for net in nets
        )
        if not inside:
            out.append(source)
    return out


def is_any(source: str) -> bool:
    return source in (ANY4, ANY6)


ACL_HEADER = re.compile(r"(?:ip|ipv4) access-list (?:(standard|extended) )?(\S+)\s*$")
