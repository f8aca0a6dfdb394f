"""From collected output to a masked :class:`HostSnapshot` (pure: no I/O, no clock).

Host folder layout in the repository::

    <server>/files/etc/ssh/sshd_config     every collected text file, masked, byte-exact
    <server>/file-list.txt                 mode, owner, group, type and path of each file
    <server>/state/nftables.txt            generated state (nft, sshd -T, packages, units)
    <device>/running-config.txt            noise-filtered, masked
    <device>/startup-config.txt            when the device has one

``file-list.txt`` is tab-separated, one file a line, sorted by path::

    0644  root  root  file      /etc/ssh/sshd_config
    0777  root  root  link      /etc/kamailio/tls.cfg  -> tls.cfg.dist
    0600  root  root  binary    /etc/asterisk/keys/a.der  sha256:9f86...
    -     -     -     oversize  /etc/freeswitch/big.xml  sha256:1b4f...
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

from vcops.snapshot.catalog import PLATFORM_KINDS, classify_path
from vcops.snapshot.collect import STATE_FILES, Section
from vcops.snapshot.mask import MARKER_RE, mask_text
from vcops.snapshot.models import FileEntry, HostSnapshot
from vcops.snapshot.noise import is_error_output, normalize_config, normalize_nft, normalize_text

FILE_LIST = "file-list.txt"
FILES_DIR = "files"
RUNNING = "running-config.txt"
STARTUP = "startup-config.txt"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
#: Longest name part and path the store accepts (Linux NAME_MAX; far below PATH_MAX).
MAX_PART_BYTES = 255
MAX_PATH_BYTES = 1024


def safe_member_path(name: str, roots: Iterable[str]) -> str | None:
    """The absolute path of a tar member if it is inside one of ``roots``, else None."""
    if _UNSAFE.search(name) or "\\" in name:
        return None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return None
    parts = PurePosixPath(name).parts
    if not parts or parts[0] == "/" or any(p in {"..", ".", ".git", ""} for p in parts):
        return None
    relative = "/".join(parts)
    if not any(relative == r or relative.startswith(r.rstrip("/") + "/") for r in roots):
        return None
    return "/" + relative


def storable(
    found: list[tuple[FileEntry, str | None]],
) -> tuple[list[tuple[FileEntry, str | None]], list[str]]:
    """Leave out members no store can hold, with a warning each: a name too long for a
    file system, or a path that is a file and a directory at once (``a`` and ``a/b`` in
    one tar; the first one wins)."""
    kept: list[tuple[FileEntry, str | None]] = []
    warnings: list[str] = []
    files: set[str] = set()
    dirs: set[str] = set()
    for entry, text in found:
        path = entry.path
        parts = path.strip("/").split("/")
        if len(path.encode()) > MAX_PATH_BYTES or any(
            len(p.encode()) > MAX_PART_BYTES for p in parts
        ):
            warnings.append(f"{path[:80]}...: its name is too long to store; left out")
            continue
        parents = {"/" + "/".join(parts[:i]) for i in range(1, len(parts))}
        if path in dirs or parents & files:
            warnings.append(f"{path}: a file and a directory at once in the archive; left out")
            continue
        files.add(path)
        dirs.update(parents)
        kept.append((entry, text))
    return kept, warnings


def _decode_text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def render_file_list(entries: Iterable[FileEntry]) -> str:
    """``file-list.txt`` for these entries, sorted by path."""
    lines = [
        "\t".join([e.mode, e.owner, e.group, e.type, e.path] + ([e.detail] if e.detail else []))
        for e in sorted(entries, key=lambda e: e.path)
    ]
    return "\n".join(lines) + "\n" if lines else ""


def parse_file_list(text: str) -> dict[str, FileEntry]:
    """``file-list.txt`` back into entries keyed by absolute path (bad lines skipped)."""
    entries: dict[str, FileEntry] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 5 or fields[3] not in {"file", "link", "binary", "oversize"}:
            continue
        mode, owner, group, kind, path = fields[:5]
        entries[path] = FileEntry(
            path=path,
            mode=mode,
            owner=owner,
            group=group,
            type=kind,
            detail=fields[5] if len(fields) > 5 else "",
        )
    return entries


def _state_text(name: str, section: Section | None, key: bytes) -> str:
    _, command = STATE_FILES[name]
    if section is None:
        return f"# vcops: `{command}` produced no output section\n"
    raw = section.data.decode("utf-8", errors="replace")
    if section.rc != 0:
        body = normalize_text(raw)
        return mask_text(
            f"# vcops: `{command}` failed (exit {section.rc})\n{body}", "state", key
        ).text
    if name == "nft":
        text = normalize_nft(raw)
    elif name == "packages":
        rows = []
        for line in raw.splitlines():
            fields = line.split("\t")
            if len(fields) >= 3 and fields[2].strip()[:2] in {"ii", "hi"}:
                rows.append(f"{fields[0]}\t{fields[1]}")
        text = "\n".join(sorted(rows)) + "\n" if rows else ""
    elif name == "units":
        text = enabled_units(raw)
    else:
        text = normalize_text(raw)
    return mask_text(text, "state", key).text


def enabled_units(raw: str) -> str:
    """``state/enabled-units.txt`` from ``systemctl list-unit-files`` output: the units
    whose state is ``enabled``, ``unit enabled`` a line, sorted (what ``--state=enabled``
    lists; older collections, made with it, read the same)::

        ssh.service        enabled enabled   ->  ssh.service enabled
        getty@.service     static  -         ->  (left out)
    """
    rows = []
    for line in raw.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] == "enabled":
            rows.append(f"{fields[0]} {fields[1]}")
    return "\n".join(sorted(rows)) + "\n" if rows else ""


def parse_tar(
    data: bytes, roots: list[str]
) -> tuple[list[tuple[FileEntry, str | None]], list[str]]:
    """Tar members as (entry, text or None) plus warnings; nothing is extracted to disk."""
    found: list[tuple[FileEntry, str | None]] = []
    warnings: list[str] = []
    if not data:
        return found, warnings
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                item = _member(archive, member, roots)
                if isinstance(item, str):
                    warnings.append(item)
                elif item is not None:
                    found.append(item)
    except tarfile.TarError as exc:
        warnings.append(f"the file archive is unreadable ({exc}); files after it are missing")
    return found, warnings


def _member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, roots: list[str]
) -> tuple[FileEntry, str | None] | str | None:
    path = safe_member_path(member.name, roots)
    if path is None:
        return f"ignored an unexpected or unsafe file name: {member.name!r}"
    mode = f"{member.mode & 0o7777:04o}"
    owner, group = member.uname or str(member.uid), member.gname or str(member.gid)
    if member.issym():
        detail = f"-> {member.linkname}"
        return FileEntry(
            path=path, mode=mode, owner=owner, group=group, type="link", detail=detail
        ), None
    if not member.isreg():
        return None
    handle = archive.extractfile(member)
    content = handle.read() if handle is not None else b""
    text = _decode_text(content)
    if text is None:
        detail = f"sha256:{hashlib.sha256(content).hexdigest()}"
        return FileEntry(
            path=path, mode=mode, owner=owner, group=group, type="binary", detail=detail
        ), None
    return FileEntry(path=path, mode=mode, owner=owner, group=group, type="file"), text


def _oversize(data: bytes, roots: list[str]) -> list[FileEntry]:
    entries = []
    for record in data.split(b"\0"):
        digest, sep, raw_name = record.partition(b"  ")
        if not sep:
            continue
        name = raw_name.decode("utf-8", errors="replace")
        path = safe_member_path(name, roots)
        if path is None or not re.fullmatch(rb"[0-9a-f]{64}", digest):
            continue
        entries.append(
            FileEntry(
                path=path,
                mode="-",
                owner="-",
                group="-",
                type="oversize",
                detail=f"sha256:{digest.decode()}",
            )
        )
    return entries


def build_server_snapshot(
    name: str, sections: dict[str, Section], roots: list[str], key: bytes
) -> HostSnapshot:
    """Mask and lay out one server's collected output."""
    warnings: list[str] = []
    found = _tar_section(sections, roots, warnings)
    found, problems = storable(found)
    warnings.extend(problems)
    return _layout(name, [(e, t, False) for e, t in found], sections, roots, key, warnings)


def apply_delta(
    name: str,
    before: Mapping[str, str],
    sections: dict[str, Section],
    roots: list[str],
    key: bytes,
) -> HostSnapshot:
    """The snapshot of a host whose collection was incremental (its ``files`` record
    holds only what changed since the snapshot ``before``, the host folder's stored
    files): the same snapshot a full collection would give, with the unchanged files
    taken from ``before`` as stored (already masked).

    Every file the host listed now (its ``meta`` record) is in the result: sent again
    when its content, mode or owner changed, else as it was; a file no longer listed
    is gone. The generated state comes from this collection.

    Raises:
        ValueError: the output lacks the list of the host's current files.
    """
    meta = sections.get("meta")
    if meta is None or "delta" not in sections:
        raise ValueError("an incremental collection without its list of current files")
    current: set[str] = set()
    for record in meta.data.split(b"\0"):
        fields = record.split(b" ", 3)
        if len(fields) == 4:
            path = safe_member_path(fields[3].decode("utf-8", "replace"), roots)
            if path is not None:
                current.add(path)
    warnings: list[str] = []
    sent = {e.path: (e, t) for e, t in _tar_section(sections, roots, warnings)}
    known = parse_file_list(before.get(FILE_LIST, ""))
    found: list[tuple[FileEntry, str | None, bool]] = []
    for path in sorted(current):
        if path in sent:
            found.append((*sent[path], False))
        elif path in known and known[path].type != "oversize":
            found.append((known[path], before.get(f"{FILES_DIR}{path}"), True))
    kept, problems = storable([(e, t) for e, t, _ in found])
    warnings.extend(problems)
    stored = {e.path for e, t, s in found if s}
    return _layout(
        name, [(e, t, e.path in stored) for e, t in kept], sections, roots, key, warnings
    )


def _tar_section(
    sections: dict[str, Section], roots: list[str], warnings: list[str]
) -> list[tuple[FileEntry, str | None]]:
    tar = sections.get("files")
    if tar is None:
        warnings.append("no file archive in the output; no files stored")
        return []
    if tar.rc != 0:
        errors = sections.get("tar_errors")
        first = ""
        if errors is not None and errors.data:
            first = errors.data.decode("utf-8", "replace").strip().splitlines()[0]
        warnings.append(f"tar exited {tar.rc}: {first or 'no message'}")
    found, problems = parse_tar(tar.data, roots)
    warnings.extend(problems)
    return found


def _layout(
    name: str,
    found: list[tuple[FileEntry, str | None, bool]],
    sections: dict[str, Section],
    roots: list[str],
    key: bytes,
    warnings: list[str],
) -> HostSnapshot:
    """The host folder from (entry, text, already masked) triples and the state records."""
    files: dict[str, str] = {}
    masked = 0
    entries: list[FileEntry] = []
    for entry, text, done in found:
        entries.append(entry)
        if text is None:
            continue
        if done:
            masked += len(MARKER_RE.findall(text))
            files[f"{FILES_DIR}{entry.path}"] = text
            continue
        result = mask_text(text, classify_path(entry.path), key)
        masked += result.masked
        files[f"{FILES_DIR}{entry.path}"] = result.text
    big = sections.get("oversize")
    if big is not None:
        for entry in _oversize(big.data, roots):
            entries.append(entry)
            warnings.append(f"{entry.path}: larger than the limit; only its checksum is stored")
    files[FILE_LIST] = render_file_list(entries)
    for section_name, (file_name, _) in STATE_FILES.items():
        files[file_name] = _state_text(section_name, sections.get(section_name), key)
    return HostSnapshot(
        name=name, kind="server", via="ssh", files=files, masked=masked, warnings=warnings
    )


def build_device_snapshot(
    name: str, platform: str, running: str, startup: str | None, via: str, key: bytes
) -> HostSnapshot:
    """Noise-filter and mask one device's configs."""
    kind = PLATFORM_KINDS.get(platform, "generic")
    files: dict[str, str] = {}
    masked = 0
    warnings: list[str] = []
    for file_name, text in ((RUNNING, running), (STARTUP, startup)):
        if text is None:
            continue
        clean = normalize_config(text, platform)
        if file_name == STARTUP and (not clean.strip() or is_error_output(clean)):
            continue
        if file_name == RUNNING and is_error_output(clean):
            warnings.append("the device answered the running-config command with an error")
            continue
        result = mask_text(clean, kind, key)
        masked += result.masked
        files[file_name] = result.text
    return HostSnapshot(
        name=name, kind="device", via=via, files=files, masked=masked, warnings=warnings
    )
