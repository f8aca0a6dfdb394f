"""``--limit PATTERN``: pick targets by name glob, group, role, site and more.

A pattern is a comma-separated list of terms, read left to right like Ansible's
``--limit``::

    kam-*                 names matching the glob (or any group/role/site so named)
    role:kamailio         by role            site:lon1       by site
    group:sip-edge        by group           env:production  by environment
    rg:kam-lon1           by redundancy group  patch:wave-1  by patch group
    platform:ios          devices by platform  kind:server   servers or devices
    all                   everything

A term prefixed ``!`` removes its matches, ``&`` keeps only the targets that also
match it. Example: ``site:lon1,&role:kamailio,!kam-lon1-02``.

A positive term that matches nothing is an error (a typo must never silently
shrink a change to zero hosts, nor widen it).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase

from vcops.errors import InventoryError, Problem
from vcops.inventory.models import Device, Inventory, Server, Target

_KINDS = ("name", "group", "role", "site", "env", "rg", "patch", "platform", "kind")


def _attributes(target: Target) -> dict[str, list[str]]:
    attrs: dict[str, list[str]] = {
        "name": [target.name],
        "group": list(target.groups),
        "site": [target.site],
        "env": [target.environment],
        "kind": [target.kind],
        "role": [],
        "rg": [],
        "patch": [],
        "platform": [],
    }
    if isinstance(target, Server):
        attrs["role"] = list(target.roles)
        attrs["rg"] = [target.redundancy_group] if target.redundancy_group else []
        attrs["patch"] = [target.patch_group] if target.patch_group else []
    elif isinstance(target, Device):
        attrs["platform"] = [target.platform]
    return attrs


def _matcher(term: str) -> Callable[[Target], bool]:
    kind, sep, value = term.partition(":")
    if not sep:
        kind, value = "", term
    elif kind not in _KINDS:
        raise InventoryError(
            [
                Problem(
                    "--limit",
                    term,
                    f"unknown selector {kind!r}",
                    f"use one of: {', '.join(k + ':' for k in _KINDS)}",
                )
            ]
        )
    if not value:
        raise InventoryError(
            [Problem("--limit", term, "empty value", "write it like role:kamailio")]
        )

    def match(target: Target) -> bool:
        attrs = _attributes(target)
        if kind:
            return any(fnmatchcase(v, value) for v in attrs[kind])
        return any(fnmatchcase(v, value) for values in attrs.values() for v in values)

    return match


def _vocabulary(targets: Iterable[Target]) -> list[str]:
    words: set[str] = set()
    for target in targets:
        for kind, values in _attributes(target).items():
            words.update(values)
            words.update(f"{kind}:{v}" for v in values)
    return sorted(words)


def select_targets(inventory: Inventory, pattern: str | None) -> list[Target]:
    """The targets a ``--limit`` pattern selects, in inventory order.

    Raises:
        InventoryError: the pattern is malformed, a positive term matches nothing,
            or the selection is empty.
    """
    targets = inventory.targets
    if pattern is None or pattern.strip() in {"", "all", "*"}:
        return list(targets)
    selected: list[Target] = []
    chosen: set[str] = set()
    problems: list[Problem] = []
    for raw in pattern.split(","):
        term = raw.strip()
        if not term:
            continue
        op = term[0] if term[0] in "!&" else ""
        body = term[1:] if op else term
        if body == "all":
            body = "*"
        match = _matcher(body)
        hits = [t for t in targets if match(t)]
        if op == "!":
            chosen -= {t.name for t in hits}
        elif op == "&":
            chosen &= {t.name for t in hits}
        else:
            if not hits:
                close = difflib.get_close_matches(body, _vocabulary(targets), n=1)
                fix = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else "see `vcops inventory show` for names, groups, roles and sites"
                )
                problems.append(Problem("--limit", term, "matches no host or device", fix))
            chosen |= {t.name for t in hits}
    if problems:
        raise InventoryError(problems)
    selected = [t for t in targets if t.name in chosen]
    if not selected:
        raise InventoryError(
            [Problem("--limit", pattern, "selects no host or device", "loosen the pattern")]
        )
    return selected


def select_servers(inventory: Inventory, limit: str | None) -> list[Server]:
    """The servers ``--limit`` selects.

    Raises:
        InventoryError: the pattern is bad or selects no server.
    """
    servers = [t for t in select_targets(inventory, limit) if isinstance(t, Server)]
    if not servers:
        raise InventoryError(
            [Problem("--limit", limit or "all", "selects no server", "name servers or kind:server")]
        )
    return servers
