"""The records of the ``facts`` task and their pure parsers, one per section, with the
bounds every parser of host output keeps (:func:`to_int`, :func:`json_depth`).
:func:`vcops.facts.server.parse_facts` puts them together into
:class:`~vcops.facts.server.ServerFacts`. Host output is data: nothing here trusts its
size or its shape."""

from __future__ import annotations

import re

from pydantic import BaseModel

#: Host output is bounded when parsed: no integer longer than this many digits ...
MAX_DIGITS = 19
#: ... and no JSON nested deeper than this (``nft -j`` needs about 12).
MAX_JSON_DEPTH = 64


def to_int(text: str) -> int | None:
    """A decimal integer of at most :data:`MAX_DIGITS` digits, else None."""
    text = text.strip()
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_DIGITS:
        return None
    return int(text)


def json_depth(text: str) -> int:
    """How deeply ``text`` nests arrays and objects (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class Section(BaseModel):
    """One command's output and exit status."""

    rc: int
    text: str


class ServiceState(BaseModel):
    """``systemctl show`` of one unit."""

    load: str
    active: str
    sub: str
    unit_file: str

    @property
    def exists(self) -> bool:
        return self.load == "loaded"

    @property
    def running(self) -> bool:
        return self.active == "active"

    @property
    def enabled(self) -> bool:
        return self.unit_file in {"enabled", "enabled-runtime", "static", "alias", "indirect"}


class Upgrade(BaseModel):
    """A pending package upgrade from ``apt list --upgradable``."""

    package: str
    version: str
    current: str
    suites: list[str]

    @property
    def security(self) -> bool:
        return any("security" in s for s in self.suites)


class FileStat(BaseModel):
    path: str
    mode: int
    owner: str
    group: str
    kind: str


class Listener(BaseModel):
    proto: str
    address: str
    port: int
    process: str


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


def parse_sshd_t(text: str) -> dict[str, list[str]]:
    """``sshd -T`` lines (``key value``) into key -> values (keys repeat for some options)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and key.isalnum():
            out.setdefault(key.lower(), []).append(value.strip())
    return out


def parse_sysctl(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            out[key.strip()] = " ".join(value.split())
    return out


def parse_services(text: str) -> dict[str, ServiceState]:
    """``systemctl show -p Id,LoadState,...`` blocks separated by blank lines."""
    out: dict[str, ServiceState] = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        props: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key] = value
        if "Id" in props:
            out[props["Id"]] = ServiceState(
                load=props.get("LoadState", ""),
                active=props.get("ActiveState", ""),
                sub=props.get("SubState", ""),
                unit_file=props.get("UnitFileState", ""),
            )
    return out


def parse_packages(text: str) -> dict[str, str]:
    """Installed packages (status ``ii``) and their versions."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip().startswith("ii"):
            out[parts[0].split(":", 1)[0]] = parts[1]  # a snapshot's list says pkg:arch
    return out


_UPGRADE_RE = re.compile(
    r"^(?P<pkg>[^/\s]+)/(?P<suites>\S+)\s+(?P<version>\S+)\s+\S+\s+\[upgradable from: (?P<current>[^\]]+)\]"
)


def parse_upgradable(text: str) -> list[Upgrade]:
    """``apt list --upgradable``: ``pkg/bookworm-security 1.2 amd64 [upgradable from: 1.1]``."""
    out: list[Upgrade] = []
    for line in text.splitlines():
        m = _UPGRADE_RE.match(line.strip())
        if m:
            out.append(
                Upgrade(
                    package=m["pkg"],
                    version=m["version"],
                    current=m["current"],
                    suites=m["suites"].split(","),
                )
            )
    return out


def parse_apt_config(text: str) -> dict[str, str]:
    """``apt-config dump``: ``APT::Periodic::Unattended-Upgrade "1";`` lines; list items joined."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r'^(\S+)\s+"(.*)";$', line.strip())
        if m:
            key = m[1]
            if key.endswith("::"):
                out[key] = (out.get(key, "") + "\n" + m[2]).strip()
            else:
                out[key] = m[2]
    return out


def parse_fail2ban(text: str) -> list[str]:
    return [
        line.split()[1]
        for line in text.splitlines()
        if line.startswith("jail ") and len(line.split()) > 1
    ]


def parse_chrony_tracking(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_stat(text: str) -> tuple[dict[str, FileStat], list[str]]:
    stats: dict[str, FileStat] = {}
    world: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] == "world":
            world.append(parts[0])
        elif len(parts) >= 5 and re.fullmatch(r"[0-7]{1,4}", parts[1]):
            stats[parts[0]] = FileStat(
                path=parts[0],
                mode=int(parts[1], 8),
                owner=parts[2],
                group=parts[3],
                kind=" ".join(parts[4:]),
            )
    return stats, world


def parse_listening(text: str) -> list[Listener]:
    """``ss -Htlnup`` lines."""
    out: list[Listener] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        local = parts[4]
        address, _, port_text = local.rpartition(":")
        port = to_int(port_text)
        if port is None or not 0 <= port <= 65535:
            continue
        process = parts[6] if len(parts) > 6 else ""
        out.append(
            Listener(
                proto=parts[0],
                address=address.strip("[]").split("%")[0],
                port=port,
                process=process,
            )
        )
    return out
