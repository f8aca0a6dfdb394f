"""What a server snapshot collects, and the host task that collects it.

The task (:class:`SnapshotTask`) runs in the one script of a host's SSH session,
framed by :mod:`vcops.connectors.hosttask` (a random per-run nonce in every marker,
content always base64), with records::

    files       a tar of every collected file (incremental: only those that changed)
    tar_errors  what tar said    oversize   sha256 of files over the size limit
    nft, sshd_t, packages, units  generated state
    sums, meta  with ``checksums``: every file's ``sha256  path`` and ``mode user group
                path`` (NUL-separated, sorted), computed on the host
    delta       present when ``files`` holds only the changed files

An *incremental* task (``known_sums``/``known_meta`` from an earlier run of the same
host) compares them on the host and tars only the files whose content, mode or owner
changed, the new ones and every symlink; the controller takes the rest from the
earlier snapshot (:func:`vcops.snapshot.build.apply_delta`). The generated state is
always collected whole. The checksums travel only between the host and the
controller's memory: they are never stored (a hash of a file holding a secret would
let the masked value be guessed offline).

No file on the host can forge a marker, and file names travel inside the tar
(NUL-separated ``find -print0 | tar --null -T``), so any name is safe. SSH host
private keys are never read: ``ssh_host_*_key`` is excluded on the host; only the
``.pub`` halves travel.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterable

from pydantic import BaseModel

from vcops.connectors.hosttask import TaskOutput
from vcops.roles import COMMON_SNAPSHOT_TREES, snapshot_trees

#: Config trees every server has, relative to ``/`` (from the role registry).
COMMON_PATHS: tuple[str, ...] = COMMON_SNAPSHOT_TREES
#: Generated state: section name -> (file in the host folder, command shown in the file).
STATE_FILES: dict[str, tuple[str, str]] = {
    "nft": ("state/nftables.txt", "nft -s list ruleset"),
    "sshd_t": ("state/sshd-effective.txt", "sshd -T"),
    "packages": ("state/packages.txt", "dpkg-query -W"),
    "units": ("state/enabled-units.txt", "systemctl list-unit-files"),
}
#: ``units`` lists every unit file and keeps the enabled ones when it is read
#: (:func:`vcops.snapshot.build.enabled_units`): ``--state=enabled`` takes systemd twice
#: as long (0.4 s against 0.2 s on a lab host), the largest part of a snapshot.
#: Files above this size are listed with their checksum, not stored.
MAX_FILE_KIB = 1024

_BODY = r"""
set -- @@ROOTS@@
find "$@" -xdev \( -type f -o -type l \) ! -name 'ssh_host_*_key' -size -@@MAXK1@@k \
    -print0 >"$t/list" 2>/dev/null
@@SUMS@@
tar --create --file="$t/files.tar" --null --no-recursion --files-from="$t/send" \
    2>"$t/tarerr"
emit files "$?" "$t/files.tar"
emit tar_errors 0 "$t/tarerr"
find "$@" -xdev -type f ! -name 'ssh_host_*_key' -size +@@MAXK@@k -print0 2>/dev/null \
    | xargs -0r sha256sum -z >"$t/big" 2>/dev/null
emit oversize 0 "$t/big"
section nft nft -s list ruleset
section sshd_t sshd -T
section packages dpkg-query -W -f='${binary:Package}\t${Version}\t${db:Status-Abbrev}\n'
section units systemctl list-unit-files --no-legend --no-pager
"""
_WHOLE = 'cp "$t/list" "$t/send"'
_SUMS = r"""xargs -0r sha256sum -z <"$t/list" 2>/dev/null | sort -z >"$t/sums"
find "$@" -xdev \( -type f -o -type l \) ! -name 'ssh_host_*_key' -size -@@MAXK1@@k \
    -printf '%m %u %g %p\0' 2>/dev/null | sort -z >"$t/meta"
emit sums 0 "$t/sums"
emit meta 0 "$t/meta"
"""
#: Changed content (after the 64-digit hash and two spaces), changed mode or owner
#: (after three fields), and every symlink (its target is not in either list).
#: Without NUL-separated comm/cut (not GNU coreutils), every file is sent: the
#: missing ``delta`` record tells the controller it is a full collection.
_DELTA = r"""printf '%s' @@KSUMS@@ | base64 -d >"$t/ksums"
printf '%s' @@KMETA@@ | base64 -d >"$t/kmeta"
if printf 'a\0' | comm -z -13 /dev/null - 2>/dev/null | cut -z -c1- 2>/dev/null | grep -q a
then
    { comm -z -13 "$t/ksums" "$t/sums" | cut -z -c67-
      comm -z -13 "$t/kmeta" "$t/meta" | cut -z -d' ' -f4-
      find "$@" -xdev -type l ! -name 'ssh_host_*_key' -print0 2>/dev/null
    } | sort -zu >"$t/send"
    : >"$t/delta"
    emit delta 0 "$t/delta"
else
    cp "$t/list" "$t/send"
fi
"""


class Section(BaseModel):
    """One section of the task output: exit status and decoded bytes."""

    rc: int
    data: bytes


def paths_for_roles(roles: Iterable[str]) -> list[str]:
    """The trees to collect (relative to ``/``) for a server with these roles, no duplicates."""
    return list(snapshot_trees(roles))


class SnapshotTask(BaseModel):
    """The snapshot host task: a tar of ``roots`` (relative to ``/``) and the generated
    state, framed by :mod:`vcops.connectors.hosttask`. Example::

        task = SnapshotTask(roots=paths_for_roles(["kamailio"]))
        sections = snapshot_sections(run_tasks([target], [task])[0].output("snapshot"))
    """

    name: str = "snapshot"
    roots: list[str]
    #: Also report every file's checksum, mode and owner (``sums`` and ``meta``).
    checksums: bool = False
    #: The ``sums`` and ``meta`` records of an earlier run on this host: send only what
    #: changed since (implies ``checksums``).
    known_sums: bytes | None = None
    known_meta: bytes | None = None

    @property
    def incremental(self) -> bool:
        return self.known_sums is not None and self.known_meta is not None

    def body(self) -> str:
        sums = _WHOLE
        if self.checksums or self.incremental:
            sums = _SUMS + (_DELTA if self.incremental else _WHOLE)
        if self.incremental:
            assert self.known_sums is not None and self.known_meta is not None
            sums = sums.replace("@@KSUMS@@", _b64(self.known_sums)).replace(
                "@@KMETA@@", _b64(self.known_meta)
            )
        return (
            _BODY.replace("@@SUMS@@", sums.rstrip())
            .replace("@@ROOTS@@", " ".join(shlex.quote(p) for p in self.roots))
            .replace("@@MAXK1@@", str(MAX_FILE_KIB + 1))
            .replace("@@MAXK@@", str(MAX_FILE_KIB))
        )


def _b64(data: bytes) -> str:
    return shlex.quote(base64.b64encode(data).decode("ascii"))


def snapshot_sections(out: TaskOutput) -> dict[str, Section]:
    """The task's records by name; ``end`` is there only when the task ran to its end."""
    sections = {r.name: Section(rc=r.rc, data=r.data) for r in out.records}
    if out.complete:
        sections["end"] = Section(rc=out.rc or 0, data=b"")
    return sections
