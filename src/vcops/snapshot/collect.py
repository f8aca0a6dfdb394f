"""What a server snapshot collects, the one script that collects it, and its output split.

The script runs over one SSH session (``/bin/sh -s``, dash on Debian) and prints
sections, each a marker line carrying a random per-run nonce chosen by the controller
followed by ONE line of base64::

    @@vcops-snap-5f0c...e1 files 0
    <base64 of a tar of every collected file>
    @@vcops-snap-5f0c...e1 nft 0
    <base64 of `nft -s list ruleset`>

Content is always base64, so no file on the host can forge a marker, and file names
travel inside the tar (NUL-separated ``find -print0 | tar --null -T``), so any name
is safe. SSH host private keys are never read: ``ssh_host_*_key`` is excluded on the
host; only the ``.pub`` halves travel.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import shlex
from collections.abc import Iterable

from pydantic import BaseModel

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

_SCRIPT = r"""
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 077
M=@@MARK@@
t=$(mktemp -d) || { echo "mktemp failed" >&2; exit 1; }
trap 'rm -rf "$t"' EXIT
emit() { printf '%s %s %s\n' "$M" "$1" "$2"; base64 -w0 <"$3"; printf '\n'; }
state() { name=$1; shift; "$@" >"$t/o" 2>&1; emit "$name" "$?" "$t/o"; }
cd / || exit 1
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
state nft nft -s list ruleset
state sshd_t sshd -T
state packages dpkg-query -W -f='${binary:Package}\t${Version}\t${db:Status-Abbrev}\n'
state units systemctl list-unit-files --state=enabled --no-legend --no-pager
printf '%s end 0\n' "$M"
"""


class Section(BaseModel):
    """One section of the script output: exit status and decoded bytes."""

    rc: int
    data: bytes


def new_nonce() -> str:
    """A fresh marker nonce (16 hex digits) for one host in one run."""
    return secrets.token_hex(8)


def marker(nonce: str) -> str:
    """The marker prefix of a run."""
    if not re.fullmatch(r"[0-9a-f]{16}", nonce):
        raise ValueError("nonce must be 16 hex digits")
    return f"@@vcops-snap-{nonce}"


def paths_for_roles(roles: Iterable[str]) -> list[str]:
    """The trees to collect (relative to ``/``) for a server with these roles, no duplicates."""
    return list(snapshot_trees(roles))


def render_script(nonce: str, paths: Iterable[str]) -> str:
    """The collection script for one host and run."""
    roots = " ".join(shlex.quote(p) for p in paths)
    return (
        _SCRIPT.replace("@@MARK@@", marker(nonce))
        .replace("@@ROOTS@@", roots)
        .replace("@@MAXK1@@", str(MAX_FILE_KIB + 1))
        .replace("@@MAXK@@", str(MAX_FILE_KIB))
    )


def split_output(output: str, nonce: str) -> dict[str, Section]:
    """Split the script output at this run's markers; undecodable payloads are skipped.

    A section must be a marker line followed by one line of base64; anything else
    (a forged marker without the nonce, stray text) is ignored.
    """
    prefix = marker(nonce) + " "
    sections: dict[str, Section] = {}
    lines = output.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.startswith(prefix):
            continue
        parts = line[len(prefix) :].split()
        digits = parts[1].removeprefix("-") if len(parts) == 2 else ""
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
            continue
        name, rc = parts[0], int(parts[1])
        if name == "end":
            sections["end"] = Section(rc=0, data=b"")
            break
        payload = lines[index] if index < len(lines) else ""
        index += 1
        try:
            data = base64.b64decode(payload.strip(), validate=True)
        except (binascii.Error, ValueError):
            continue
        sections[name] = Section(rc=rc, data=data)
    return sections
