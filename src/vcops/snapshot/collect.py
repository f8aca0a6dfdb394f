"""What a server snapshot collects, and the host task that collects it.

The task (:class:`SnapshotTask`) runs in the one script of a host's SSH session,
framed by :mod:`vcops.connectors.hosttask` (a random per-run nonce in every marker,
content always base64), with records::

    files       a tar of every collected file
    tar_errors  what tar said    oversize   sha256 of files over the size limit
    nft, sshd_t, packages, units  generated state

No file on the host can forge a marker, and file names travel inside the tar
(NUL-separated ``find -print0 | tar --null -T``), so any name is safe. SSH host
private keys are never read: ``ssh_host_*_key`` is excluded on the host; only the
``.pub`` halves travel.
"""

from __future__ import annotations

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
    "units": ("state/enabled-units.txt", "systemctl list-unit-files --state=enabled"),
}
#: Files above this size are listed with their checksum, not stored.
MAX_FILE_KIB = 1024

_BODY = r"""
set -- @@ROOTS@@
find "$@" -xdev \( -type f -o -type l \) ! -name 'ssh_host_*_key' -size -@@MAXK1@@k \
    -print0 >"$t/list" 2>/dev/null
tar --create --file="$t/files.tar" --null --no-recursion --files-from="$t/list" \
    2>"$t/tarerr"
emit files "$?" "$t/files.tar"
emit tar_errors 0 "$t/tarerr"
find "$@" -xdev -type f ! -name 'ssh_host_*_key' -size +@@MAXK@@k -print0 2>/dev/null \
    | xargs -0r sha256sum -z >"$t/big" 2>/dev/null
emit oversize 0 "$t/big"
section nft nft -s list ruleset
section sshd_t sshd -T
section packages dpkg-query -W -f='${binary:Package}\t${Version}\t${db:Status-Abbrev}\n'
section units systemctl list-unit-files --state=enabled --no-legend --no-pager
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

    def body(self) -> str:
        return (
            _BODY.replace("@@ROOTS@@", " ".join(shlex.quote(p) for p in self.roots))
            .replace("@@MAXK1@@", str(MAX_FILE_KIB + 1))
            .replace("@@MAXK@@", str(MAX_FILE_KIB))
        )


def snapshot_sections(out: TaskOutput) -> dict[str, Section]:
    """The task's records by name; ``end`` is there only when the task ran to its end."""
    sections = {r.name: Section(rc=r.rc, data=r.data) for r in out.records}
    if out.complete:
        sections["end"] = Section(rc=out.rc or 0, data=b"")
    return sections
