"""APT sources: one-line ``.list`` and deb822 ``.sources`` files parsed with bounds, and
whether they carry the Debian security suite (VC-PATCH-005).

Pure and stdlib-only on purpose: the scan parses the files the ``facts`` task brought
back (:func:`parse_files`), and both enforcement engines run this same file on the host
as a probe (``python3 aptsources.py MIRROR``, see :func:`main`) to decide whether the
updates area must add its sources file, so the scan and the deploys judge the sources
by the same code. Host text is data: files, lines, entries and field values are bounded
and anything over a bound is dropped with a note, never executed.

Example::

    entries, notes = parse_files({
        "/etc/apt/sources.list": "deb http://deb.debian.org/debian bookworm main\\n",
        "/etc/apt/sources.list.d/debian.sources":
            "Types: deb\\nURIs: http://deb.debian.org/debian-security\\n"
            "Suites: bookworm-security\\nComponents: main\\n",
    })
    missing_security(entries, "bookworm", "")   # ["bookworm-updates"]
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import time
from dataclasses import dataclass

#: Bounds on what a host may hand us.
MAX_FILES = 64
MAX_FILE_BYTES = 64 * 1024
MAX_LINE = 4096
MAX_ENTRIES = 512
MAX_VALUES = 32

SOURCES_DIR = "/etc/apt/sources.list.d"
SOURCES_FILES = ("/etc/apt/sources.list", f"{SOURCES_DIR}/*.list", f"{SOURCES_DIR}/*.sources")
#: The file the updates area manages (left out when deciding whether it is needed).
OWN_FILE = f"{SOURCES_DIR}/vcops-security.sources"

_TOKEN = re.compile(r"[A-Za-z0-9._~:/?#@!$&'()*+,;=%\[\]-]{1,512}")


@dataclass(frozen=True)
class AptSource:
    """One source entry: ``deb http://deb.debian.org/debian-security bookworm-security main``."""

    file: str
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...] = ()
    enabled: bool = True


def _tokens(value: str) -> tuple[str, ...]:
    return tuple(t for t in value.split()[:MAX_VALUES] if _TOKEN.fullmatch(t))


def parse_list(text: str, file: str) -> list[AptSource]:
    """One-line format: ``deb [trusted=yes arch=amd64] URI SUITE [COMPONENT...]``."""
    out: list[AptSource] = []
    for raw in text.splitlines():
        line = raw[:MAX_LINE].split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind not in {"deb", "deb-src"}:
            continue
        rest = rest.strip()
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                continue
            rest = rest[end + 1 :]
        words = _tokens(rest)
        if len(words) < 2 or len(words) != len(rest.split()[:MAX_VALUES]):
            continue  # an unreadable word: the entry is dropped, never shifted
        out.append(AptSource(file, (kind,), (words[0],), (words[1],), words[2:]))
    return out


def parse_deb822(text: str, file: str) -> list[AptSource]:
    """deb822 format: stanzas of ``Types:``, ``URIs:``, ``Suites:``, ``Components:``,
    ``Enabled:`` separated by blank lines; continuation lines start with a space."""
    out: list[AptSource] = []
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            line = raw[:MAX_LINE]
            if line.startswith("#"):
                continue
            if line[:1] in {" ", "\t"} and key:
                fields[key] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,40}", name.strip()):
                key = name.strip().lower()
                fields[key] = value.strip()
        types = tuple(t for t in _tokens(fields.get("types", "")) if t in {"deb", "deb-src"})
        uris, suites = _tokens(fields.get("uris", "")), _tokens(fields.get("suites", ""))
        if not (types and uris and suites):
            continue
        enabled = fields.get("enabled", "yes").strip().lower() not in {"no", "false", "0"}
        out.append(
            AptSource(file, types, uris, suites, _tokens(fields.get("components", "")), enabled)
        )
    return out


def parse_files(files: dict[str, str]) -> tuple[list[AptSource], list[str]]:
    """Every source entry of ``path -> text`` (the ``.list`` / ``.sources`` files apt
    reads; anything else is ignored), with notes on what the bounds dropped."""
    entries: list[AptSource] = []
    notes: list[str] = []
    names = sorted(files)
    if len(names) > MAX_FILES:
        notes.append(f"{len(names) - MAX_FILES} source files beyond {MAX_FILES} ignored")
        names = names[:MAX_FILES]
    for name in names:
        text = files[name]
        if len(text) > MAX_FILE_BYTES:
            notes.append(f"{name}: only the first {MAX_FILE_BYTES} bytes read")
            text = text[:MAX_FILE_BYTES]
        if name.endswith(".sources"):
            entries += parse_deb822(text, name)
        elif name.endswith(".list"):
            entries += parse_list(text, name)
    if len(entries) > MAX_ENTRIES:
        notes.append(f"{len(entries) - MAX_ENTRIES} source entries beyond {MAX_ENTRIES} ignored")
        entries = entries[:MAX_ENTRIES]
    return entries, notes


def _norm(uri: str) -> str:
    return uri.rstrip("/").lower()


def missing_security(entries: list[AptSource], codename: str, mirror: str) -> list[str]:
    """What the enabled ``deb`` entries lack: ``<codename>-security`` and
    ``<codename>-updates``; nothing when they use the configured ``mirror`` (a URI)."""
    live = [e for e in entries if e.enabled and "deb" in e.types]
    if mirror and any(_norm(mirror) == _norm(u) for e in live for u in e.uris):
        return []
    suites = {s for e in live for s in e.suites}
    wanted = [f"{codename}-security", f"{codename}-updates"]
    return [s for s in wanted if s not in suites]


def read_host_files(exclude: str = OWN_FILE) -> dict[str, str]:
    """The host's source files (bounded), for the probe."""
    paths: list[str] = []
    for pattern in SOURCES_FILES:
        paths += sorted(glob.glob(pattern))
    out: dict[str, str] = {}
    for path in paths[: MAX_FILES + 1]:
        if path == exclude or not os.path.isfile(path):
            continue
        with open(path, "rb") as handle:
            out[path] = handle.read(MAX_FILE_BYTES + 1).decode("utf-8", "replace")
    return out


def codename_of(os_release: str) -> str:
    """``VERSION_CODENAME`` of an ``/etc/os-release`` text ("" when absent)."""
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "VERSION_CODENAME":
            value = value.strip().strip("\"'")
            return value if re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,30}", value) else ""
    return ""


LISTS_DIR = "/var/lib/apt/lists"
#: Entries of LISTS_DIR that say nothing about a successful ``apt-get update``.
LISTS_SKIP = frozenset({"lock", "partial", "auxfiles"})


def lists_mtime(directory: str = LISTS_DIR) -> int:
    """The newest mtime of the directory and its entries (as ``gather.sh`` reads it for
    VC-PATCH-006); 0 when it holds no lists."""
    try:
        with os.scandir(directory) as entries:
            times = [
                e.stat(follow_symlinks=False).st_mtime for e in entries if e.name not in LISTS_SKIP
            ]
        if not times:
            return 0
        return int(max([*times, os.stat(directory).st_mtime]))
    except OSError:
        return 0


def main(argv: list[str]) -> int:
    """The deploy probe: prints ``{"codename": ..., "missing": [...], "lists_age": S}``
    for this host: the security suites its sources lack, judged without the file the
    updates area manages (``argv[1]`` is the mirror), and the seconds since its apt
    lists last changed, by its own clock (-1: no lists)."""
    mirror = argv[1] if len(argv) > 1 else ""
    with open("/etc/os-release", encoding="utf-8", errors="replace") as handle:
        codename = codename_of(handle.read(MAX_FILE_BYTES))
    entries, _ = parse_files(read_host_files())
    missing = missing_security(entries, codename, mirror) if codename else ["codename"]
    newest = lists_mtime()
    age = max(0, int(time.time()) - newest) if newest else -1
    print(json.dumps({"codename": codename, "missing": missing, "lists_age": age}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
