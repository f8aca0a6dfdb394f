"""Read ``inventory/`` into an :class:`~vcops.inventory.models.Inventory`, reporting every problem.

Every ``*.yml`` / ``*.yaml`` file directly under the directory is read (sub-directories
such as ``inventory/lab/`` are separate inventories). Top-level keys merge across
files: list sections (``servers``, ``devices`` ...) are concatenated, mapping sections
(``settings``, ``change_board``) may appear in one file only.

Nothing stops at the first problem: the loader collects all of them, each with the
file, the entry and the fix, and raises one :class:`~vcops.errors.InventoryError`.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from vcops.errors import InventoryError, Problem
from vcops.inventory.models import (
    ENVIRONMENTS,
    PLATFORMS,
    ROLES,
    TRANSPORTS,
    ChangeBoard,
    Device,
    Freeze,
    Group,
    Inventory,
    RedundancyGroup,
    Server,
    Settings,
    Site,
)
from vcops.inventory.yamlbound import YamlLimit, load_bounded
from vcops.safeio import UnsafeInput, read_regular

LIST_SECTIONS: dict[str, tuple[type[BaseModel], str]] = {
    "sites": (Site, "site"),
    "redundancy_groups": (RedundancyGroup, "redundancy group"),
    "groups": (Group, "group"),
    "servers": (Server, "server"),
    "devices": (Device, "device"),
    "freezes": (Freeze, "freeze"),
}
MAP_SECTIONS: dict[str, type[BaseModel]] = {"settings": Settings, "change_board": ChangeBoard}
SECTIONS = (*LIST_SECTIONS, *MAP_SECTIONS)

_SECRET_KEY_RE = re.compile(
    r"(^|_)(password|passwd|secret|token|community|psk|private_key|api_key)($|_)", re.I
)
_REFERENCE_SUFFIXES = ("_env", "_file", "_ref")
#: Variable prefixes the engines read as connection settings (owned by vcops).
_CONNECTION_PREFIXES = ("ansible_", "ssh_")

_ALLOWED = {
    "roles": ROLES,
    "platform": PLATFORMS,
    "transport": TRANSPORTS,
    "environment": ENVIRONMENTS,
}


@dataclass
class _Entry:
    section: str
    file: str
    line: int
    data: object


@dataclass
class _Collected:
    entries: list[_Entry] = field(default_factory=list)
    maps: dict[str, _Entry] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _duplicate_keys(node: yaml.Node, where: str, problems: list[Problem]) -> None:
    """PyYAML keeps the last of two equal keys silently; report them instead."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    problems.append(
                        Problem(
                            f"{where}:{key.start_mark.line + 1}",
                            "",
                            f"duplicate key {key.value!r}",
                            "keep one of them",
                        )
                    )
                seen.add(key.value)
            _duplicate_keys(value, where, problems)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, where, problems)


def _read_file(path: Path, root: Path, out: _Collected) -> None:
    name = _display(path, root)
    try:
        text = read_regular(path).decode("utf-8")
    except UnsafeInput as exc:
        out.problems.append(Problem(name, "", f"refused: {exc}", ""))
        return
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(
            Problem(name, "", f"cannot read file: {exc}", "fix its permissions or encoding")
        )
        return
    try:
        node, data = load_bounded(text)
    except YamlLimit as exc:
        where = f"{name}:{exc.line}" if exc.line else name
        out.problems.append(Problem(where, "", f"refused: {exc}", "simplify the YAML"))
        return
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        reason = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            reason = f"{reason} ({context} started at line {context_mark.line + 1})"
        out.problems.append(Problem(where, "", f"malformed YAML: {reason}", "fix the YAML syntax"))
        return
    if data is None or node is None:
        return
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        out.problems.append(
            Problem(
                name,
                "",
                "top level is not a mapping",
                f"use sections such as: {', '.join(SECTIONS)}",
            )
        )
        return
    _duplicate_keys(node, name, out.problems)
    lines: dict[str, yaml.Node] = {
        k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)
    }
    key_lines = {
        k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
    }
    for key, value in data.items():
        key_line = key_lines.get(str(key), 1)
        if key in LIST_SECTIONS:
            if value is None:
                continue
            if not isinstance(value, list):
                out.problems.append(
                    Problem(
                        f"{name}:{key_line}",
                        key,
                        "is not a list",
                        f"write {key}: as a list of entries",
                    )
                )
                continue
            seq = lines.get(key)
            for index, item in enumerate(value):
                line = key_line
                if isinstance(seq, yaml.SequenceNode) and index < len(seq.value):
                    line = seq.value[index].start_mark.line + 1
                out.entries.append(_Entry(key, name, line, item))
        elif key in MAP_SECTIONS:
            if key in out.maps:
                other = out.maps[key]
                out.problems.append(
                    Problem(
                        f"{name}:{key_line}",
                        key,
                        f"also defined in {other.file}",
                        "keep it in one file",
                    )
                )
                continue
            out.maps[key] = _Entry(key, name, key_line, value if value is not None else {})
        else:
            close = difflib.get_close_matches(str(key), SECTIONS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(SECTIONS)}"
            out.problems.append(Problem(f"{name}:{key_line}", str(key), "unknown section", hint))


def _entry_label(entry: _Entry, index_in_section: int) -> str:
    kind = LIST_SECTIONS[entry.section][1] if entry.section in LIST_SECTIONS else entry.section
    if isinstance(entry.data, Mapping) and isinstance(entry.data.get("name"), str):
        return f"{kind} {entry.data['name']}"
    return f"{kind} #{index_in_section + 1}"


def _fix_for(error: Mapping[str, object], model: type[BaseModel]) -> tuple[str, str]:
    """Turn one pydantic error into (message, fix)."""
    loc = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]  # type: ignore[attr-defined]
    field_name = ".".join(loc) or "entry"
    kind = str(error.get("type", ""))
    value = error.get("input")
    msg = str(error.get("msg", "invalid"))
    leaf = loc[-1] if loc else ""
    if kind == "missing":
        return f"missing field {field_name!r}", f"add {leaf}: to the entry"
    if kind == "extra_forbidden":
        if _SECRET_KEY_RE.search(leaf) and not leaf.endswith(_REFERENCE_SUFFIXES):
            return (
                f"inline secret {field_name!r} refused",
                f"reference it instead: {leaf}_env: VARIABLE or {leaf}_file: PATH",
            )
        known = list(model.model_fields) if len(loc) == 1 else []
        close = difflib.get_close_matches(leaf, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "remove it"
        return f"unknown field {field_name!r}", hint
    if kind == "literal_error" and leaf in _ALLOWED:
        noun = {"roles": "role"}.get(leaf, leaf)
        return f"unknown {noun} {value!r}", f"use one of: {', '.join(_ALLOWED[leaf])}"
    if leaf == "port" or kind in {"greater_than_equal", "less_than_equal"}:
        return (
            f"invalid {field_name} {value!r}",
            "use a whole number from 1 to 65535" if leaf == "port" else msg,
        )
    if kind == "value_error":
        return f"{field_name}: {msg.removeprefix('Value error, ')}", ""
    if kind.startswith("ip_") or "network" in kind:
        return f"invalid {field_name} {value!r}", "write a network like 192.0.2.0/24"
    return f"{field_name}: {msg}", ""


def _validate(
    entry: _Entry, model: type[BaseModel], label: str, problems: list[Problem]
) -> BaseModel | None:
    if not isinstance(entry.data, Mapping):
        problems.append(
            Problem(
                f"{entry.file}:{entry.line}",
                label,
                "is not a mapping",
                "write the entry as key: value pairs",
            )
        )
        return None
    try:
        return model.model_validate(entry.data)
    except ValidationError as exc:
        for error in exc.errors():
            message, fix = _fix_for(error, model)
            problems.append(Problem(f"{entry.file}:{entry.line}", label, message, fix))
        return None


def _inline_secrets(
    vars_: object, where: str, label: str, problems: list[Problem], path: str = "vars"
) -> None:
    """Refuse secret-looking keys with literal values anywhere under ``vars``."""
    if isinstance(vars_, Mapping):
        for key, value in vars_.items():
            key_s = str(key)
            if (
                _SECRET_KEY_RE.search(key_s)
                and not key_s.endswith(_REFERENCE_SUFFIXES)
                and isinstance(value, str | int)
                and str(value) != ""
            ):
                problems.append(
                    Problem(
                        where,
                        label,
                        f"inline secret {path}.{key_s} refused",
                        f"reference it instead: {key_s}_env: VARIABLE or {key_s}_file: PATH",
                    )
                )
            _inline_secrets(value, where, label, problems, f"{path}.{key_s}")
    elif isinstance(vars_, list):
        for item in vars_:
            _inline_secrets(item, where, label, problems, path)


def _connection_vars(vars_: object, where: str, label: str, problems: list[Problem]) -> None:
    """Refuse vars that would override the connection vcops sets up (``ansible_*``,
    ``ssh_*``): a ProxyCommand or ``ssh_known_hosts_file: /dev/null`` in group vars
    would run a command on the controller or switch off host-key pinning."""
    if isinstance(vars_, Mapping):
        for key in vars_:
            if str(key).lower().startswith(_CONNECTION_PREFIXES):
                problems.append(
                    Problem(
                        where,
                        label,
                        f"vars.{key}: connection settings belong to vcops and cannot be "
                        "set in vars",
                        "remove it; use settings.ssh (user, port, key_file, "
                        "known_hosts_file) or the host's own port and user",
                    )
                )


def _cross_check(
    inv: Inventory, where: dict[tuple[str, str], str], problems: list[Problem]
) -> None:
    def add(section: str, name: str, message: str, fix: str) -> None:
        kind = LIST_SECTIONS[section][1]
        problems.append(
            Problem(where.get((section, name), "inventory"), f"{kind} {name}", message, fix)
        )

    def dangling(section: str, name: str, what: str, ref: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(ref, known, n=1)
        if close:
            fix = f"did you mean {close[0]!r}?"
        elif known:
            fix = f"declare it under {what}s: or use one of: {', '.join(known)}"
        else:
            fix = f"declare it under {what.replace(' ', '_')}s:"
        add(section, name, f"unknown {what} {ref!r}", fix)

    sites = {s.name for s in inv.sites}
    groups = {g.name for g in inv.groups}
    rgs = {r.name for r in inv.redundancy_groups}
    for target in inv.targets:
        section = "servers" if isinstance(target, Server) else "devices"
        if target.site not in sites:
            dangling(section, target.name, "site", target.site, sites)
        for group in target.groups:
            if group not in groups:
                dangling(section, target.name, "group", group, groups)
        if target.redundancy_group and target.redundancy_group not in rgs:
            dangling(section, target.name, "redundancy group", target.redundancy_group, rgs)

    seen_names: dict[str, str] = {}
    for section in LIST_SECTIONS:
        if section in {"servers", "devices"}:
            continue
        names: set[str] = set()
        for item in getattr(inv, section):
            if item.name in names:
                add(section, item.name, "duplicate name", "give every entry its own name")
            names.add(item.name)
    for target in inv.targets:
        section = "servers" if isinstance(target, Server) else "devices"
        if target.name in seen_names:
            add(
                section,
                target.name,
                f"duplicate name (also a {seen_names[target.name]})",
                "give every host and device its own name",
            )
        seen_names[target.name] = section[:-1]

    seen_addr: dict[tuple[str, int], str] = {}
    for target in inv.targets:
        section = "servers" if isinstance(target, Server) else "devices"
        port = inv.ssh_port(target) if isinstance(target, Server) else target.port
        key = (target.address, port)
        if key in seen_addr:
            add(
                section,
                target.name,
                f"duplicate address {target.address} port {port} (also {seen_addr[key]})",
                "each target needs its own address or port",
            )
        else:
            seen_addr[key] = target.name
        try:
            ip = ipaddress.ip_address(target.address)
        except ValueError:
            continue
        if ip.is_unspecified or ip.is_multicast or (ip.is_loopback and section == "devices"):
            add(
                section,
                target.name,
                f"address {ip} cannot be a target",
                "use the host's management address",
            )

    members: set[str] = set()
    for member in inv.change_board.members:
        if member.name in members:
            problems.append(
                Problem(
                    where.get(("change_board", ""), "inventory"),
                    f"board member {member.name}",
                    "duplicate name",
                    "list each member once",
                )
            )
        members.add(member.name)
    keys: dict[str, str] = {}
    for member in inv.change_board.members:
        pubkey = " ".join(member.ssh_public_key.split()[:2])
        if pubkey in keys:
            problems.append(
                Problem(
                    where.get(("change_board", ""), "inventory"),
                    f"board member {member.name}",
                    f"same SSH key as {keys[pubkey]}",
                    "each member signs with their own key",
                )
            )
        keys[pubkey] = member.name
    for env, count in inv.change_board.quorum.items():
        if count < 1 or (members and count > len(members)):
            problems.append(
                Problem(
                    where.get(("change_board", ""), "inventory"),
                    f"quorum {env}",
                    f"quorum {count} cannot be met by {len(members)} members",
                    "use a number from 1 to the board size",
                )
            )


def load_inventory(root: Path) -> Inventory:
    """Read and validate every YAML file directly under ``root``.

    Raises:
        InventoryError: with every problem found, each naming file, entry and fix.
    """
    root = Path(root)
    shown = _display(root, root)
    if not root.is_dir():
        raise InventoryError(
            [
                Problem(
                    shown,
                    "",
                    "inventory directory not found",
                    "pass --inventory DIR or set VCOPS_INVENTORY",
                )
            ]
        )
    files = sorted([*root.glob("*.yml"), *root.glob("*.yaml")])
    if not files:
        raise InventoryError(
            [Problem(shown, "", "no *.yml files", "add hosts.yml (see the example inventory/)")]
        )
    collected = _Collected()
    for path in files:
        _read_file(path, root, collected)

    problems = collected.problems
    values: dict[str, object] = {section: [] for section in LIST_SECTIONS}
    where: dict[tuple[str, str], str] = {}
    counters: dict[str, int] = {}
    for entry in collected.entries:
        model, _ = LIST_SECTIONS[entry.section]
        index = counters.get(entry.section, 0)
        counters[entry.section] = index + 1
        label = _entry_label(entry, index)
        if isinstance(entry.data, Mapping):
            _inline_secrets(entry.data.get("vars"), f"{entry.file}:{entry.line}", label, problems)
            _connection_vars(entry.data.get("vars"), f"{entry.file}:{entry.line}", label, problems)
        parsed = _validate(entry, model, label, problems)
        if parsed is not None:
            values[entry.section].append(parsed)  # type: ignore[attr-defined]
            where[(entry.section, parsed.name)] = f"{entry.file}:{entry.line}"  # type: ignore[attr-defined]
    for section, map_entry in collected.maps.items():
        parsed = _validate(map_entry, MAP_SECTIONS[section], section, problems)
        if parsed is not None:
            values[section] = parsed
        where[(section, "")] = f"{map_entry.file}:{map_entry.line}"

    try:
        inventory = Inventory(root=root.resolve(), **values)
    except ValidationError as exc:  # pragma: no cover - entries were validated one by one
        raise InventoryError([Problem(shown, "", str(exc), "")]) from exc
    _cross_check(inventory, where, problems)
    if problems:
        raise InventoryError(list(dict.fromkeys(problems)))
    return inventory
