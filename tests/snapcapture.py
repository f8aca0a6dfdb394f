"""Captures of the snapshot collection task, kept readable on disk
(``tests/fixtures/snapshot/collect/*.txt``), for the simulated hosts of
:mod:`tests.simhosts`.

A capture is the records one run of :class:`vcops.snapshot.collect.SnapshotTask` printed
on a lab host, each ``@@snap NAME RC SIZE`` then SIZE bytes and a newline; the ``files``
record (a tar on the host) is written member by member, ``@@file MODE OWNER GROUP SIZE
PATH`` then SIZE bytes and a newline, or ``@@link MODE OWNER GROUP PATH -> TARGET``::

    @@snap files 0 -
    @@file 0644 root root 3301 /etc/ssh/sshd_config
    ...
    @@snap nft 0 412
    table inet filter { ...

:func:`records` turns a capture back into the records (the tar rebuilt), so the
simulated host answers as the lab host did. Record one from a lab host with
``python -m tests.snapcapture INVENTORY_DIR HOST OUT`` (needs the lab: hold the lab lock).
"""

from __future__ import annotations

import io
import re
import sys
import tarfile
from pathlib import Path

Record = tuple[str, int, bytes]
_SNAP = re.compile(rb"@@snap (\S+) (-?\d+) (\d+|-)\n")
_FILE = re.compile(rb"@@file (\d{4}) (\S+) (\S+) (\d+) (.+)\n")
_LINK = re.compile(rb"@@link (\d{4}) (\S+) (\S+) (.+) -> (.+)\n")


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _info(path: bytes, mode: bytes, owner: bytes, group: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path.decode().lstrip("/"))
    info.mode, info.uname, info.gname = int(mode, 8), owner.decode(), group.decode()
    return info


def records(text: bytes, extra: dict[str, bytes] | None = None) -> list[Record]:
    """The task's records from a capture; ``extra`` files (path -> content, mode 0640
    root root) are added to the ``files`` tar, after a capture's own members."""
    out: list[Record] = []
    pos = 0
    while pos < len(text):
        m = _SNAP.match(text, pos)
        if m is None:
            raise ValueError(f"capture: no record at byte {pos}")
        name, rc, size = m.group(1).decode(), int(m.group(2)), m.group(3)
        pos = m.end()
        if size != b"-":
            out.append((name, rc, text[pos : pos + int(size)]))
            pos += int(size) + 1
            continue
        members: list[tuple[tarfile.TarInfo, bytes | None]] = []
        while (f := _FILE.match(text, pos)) or (ln := _LINK.match(text, pos)):
            if f is not None:
                info = _info(f.group(5), f.group(1), f.group(2), f.group(3))
                data = text[f.end() : f.end() + int(f.group(4))]
                info.size = len(data)
                members.append((info, data))
                pos = f.end() + int(f.group(4)) + 1
            else:
                info = _info(ln.group(4), ln.group(1), ln.group(2), ln.group(3))
                info.type, info.linkname = tarfile.SYMTYPE, ln.group(5).decode()
                members.append((info, None))
                pos = ln.end()
        for path, data in (extra or {}).items():
            info = _info(path.encode(), b"0640", b"root", b"root")
            info.size = len(data)
            members.append((info, data))
        out.append((name, rc, _tar(members)))
    return out


def capture(recs: list[Record]) -> bytes:
    """A readable capture of a run's records (the ``files`` tar written member by member)."""
    out = bytearray()
    for name, rc, data in recs:
        if name != "files":
            out += f"@@snap {name} {rc} {len(data)}\n".encode() + data + b"\n"
            continue
        out += f"@@snap files {rc} -\n".encode()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                mode = f"{m.mode & 0o7777:04o}"
                who = f"{m.uname or m.uid} {m.gname or m.gid}"
                if m.issym():
                    out += f"@@link {mode} {who} /{m.name} -> {m.linkname}\n".encode()
                elif m.isreg():
                    handle = tar.extractfile(m)
                    body = handle.read() if handle is not None else b""
                    out += f"@@file {mode} {who} {len(body)} /{m.name}\n".encode() + body + b"\n"
    return bytes(out)


def _record(inventory: Path, host: str, out: Path) -> None:
    from vcops.connectors.hosttask import run_tasks
    from vcops.connectors.ssh import SshTarget
    from vcops.inventory import load_inventory
    from vcops.inventory.models import Server
    from vcops.snapshot.collect import SnapshotTask, paths_for_roles

    inv = load_inventory(inventory)
    server = inv.target(host)
    assert isinstance(server, Server), host
    task = SnapshotTask(roots=paths_for_roles(server.roles))
    [run] = run_tasks([SshTarget.from_inventory(inv, server)], [task])
    assert run.ok, run.error
    recs = [(r.name, r.rc, r.data) for r in run.output("snapshot").records]
    out.write_bytes(capture(recs))


if __name__ == "__main__":
    _record(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
