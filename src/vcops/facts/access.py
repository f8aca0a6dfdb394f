"""Access facts: SSH host keys, DH moduli, login banners and fail2ban ban escalation.

Pure parsers for the ``host_keys``, ``moduli`` and ``fail2ban_increment`` sections and
the ``banners`` tar record of the facts task (``gather.sh``); :func:`parse_access`
turns them into :class:`~vcops.facts.server.ServerFacts` fields. Host output is data:
every line is bounded and a line that does not parse is skipped, never trusted.

Examples of the sections::

    host_keys:  /etc/ssh/ssh_host_ed25519_key pub ssh-ed25519 AAAAC3Nza... root@h
                /etc/ssh/ssh_host_ecdsa_key 256 SHA256:XyZ... root@h (ECDSA)
                /etc/ssh/gone ssh-keygen: /etc/ssh/gone: No such file or directory

    (a key with a ``.pub`` file: that file's line, which is what ``ssh-keygen -l`` reads
    first; the others: ``ssh-keygen -l``'s line)
    moduli:          60 2047              (count, then size - 1 as moduli(5) stores it)
    fail2ban_increment:  sshd True
"""

from __future__ import annotations

import base64
import binascii
import re

from pydantic import BaseModel

#: Host output is bounded: at most this many lines per section, this long each ...
MAX_LINES = 64
MAX_LINE = 512
#: ... and at most this many bytes of a banner file.
MAX_BANNER = 4096
KEY_FILES = "/etc/ssh/ssh_host_*_key"
"""The host key files the ``host_keys`` section describes (every one that exists)."""
BANNER_FILES = ("/etc/issue", "/etc/issue.net")
"""The login banners read by the ``banners`` tar record (and written by the ssh area)."""

_KEY_LINE = re.compile(r"^(\d{1,5}) (?:SHA256|MD5):\S+ .*\(([A-Z0-9-]{2,16})\)$")
#: A ``.pub`` line is longer than other lines (an RSA-16384 key is ~2,800 characters).
MAX_PUB_LINE = 8192
#: Key types whose size the type names, as ``ssh-keygen -l`` prints kind and bits.
_FIXED_SIZE = {
    "ssh-ed25519": ("ED25519", 256),
    "sk-ssh-ed25519@openssh.com": ("ED25519-SK", 256),
    "ecdsa-sha2-nistp256": ("ECDSA", 256),
    "ecdsa-sha2-nistp384": ("ECDSA", 384),
    "ecdsa-sha2-nistp521": ("ECDSA", 521),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("ECDSA-SK", 256),
}
#: Key types whose size is the bit length of the blob's Nth mpint after the type.
_MODULUS = {"ssh-rsa": ("RSA", 1), "ssh-dss": ("DSA", 0)}


class HostKey(BaseModel):
    """One ``HostKey`` of ``sshd -T`` as ``ssh-keygen -l`` describes its file.

    ``kind`` is ``ED25519``, ``RSA``, ``ECDSA``, ``DSA`` ... or None when the file is
    missing or no key (sshd skips it then: it is not offered)."""

    path: str
    kind: str | None = None
    bits: int | None = None


def _lines(text: str, width: int = MAX_LINE) -> list[str]:
    return [ln[:width] for ln in text.splitlines()[:MAX_LINES] if ln.strip()]


def _ssh_strings(blob: bytes, count: int) -> list[bytes] | None:
    """The first ``count`` length-prefixed strings of an SSH wire-format blob."""
    out: list[bytes] = []
    at = 0
    for _ in range(count):
        if at + 4 > len(blob):
            return None
        size = int.from_bytes(blob[at : at + 4], "big")
        at += 4
        if at + size > len(blob):
            return None
        out.append(blob[at : at + size])
        at += size
    return out


def public_key_size(line: str) -> tuple[str, int] | None:
    """Kind and bits of an OpenSSH public key line (``TYPE BASE64 [COMMENT]``), as
    ``ssh-keygen -l`` reports them; None when the line is not one (pure).

    >>> public_key_size("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDsW root@h")
    ('ED25519', 256)
    """
    parts = line.split()
    if len(parts) < 2:
        return None
    kind = parts[0]
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    first = _ssh_strings(blob, 1)
    if first is None or first[0] != kind.encode():
        return None
    if kind in _FIXED_SIZE:
        return _FIXED_SIZE[kind]
    if kind in _MODULUS:
        name, index = _MODULUS[kind]
        fields = _ssh_strings(blob, index + 2)
        if fields is None:
            return None
        return name, int.from_bytes(fields[index + 1], "big").bit_length()
    return None


def parse_host_keys(text: str) -> dict[str, HostKey]:
    """``PATH pub <.pub line>`` or ``PATH <ssh-keygen -l -f PATH line>`` lines into
    path -> :class:`HostKey` (pure).

    >>> parse_host_keys("/k 256 SHA256:x root@h (ED25519)\\n")["/k"].kind
    'ED25519'
    """
    keys: dict[str, HostKey] = {}
    for line in _lines(text, MAX_PUB_LINE):
        path, _, rest = line.partition(" ")
        if not path.startswith("/") or len(path) > MAX_LINE:
            continue
        if rest.startswith("pub "):
            size = public_key_size(rest[4:])
            keys[path] = (
                HostKey(path=path, kind=size[0], bits=size[1]) if size else HostKey(path=path)
            )
            continue
        match = _KEY_LINE.match(rest[:MAX_LINE].strip())
        if match:
            keys[path] = HostKey(path=path, kind=match[2], bits=int(match[1]))
        else:
            keys[path] = HostKey(path=path)
    return keys


def parse_moduli(text: str) -> dict[int, int]:
    """Counts of /etc/ssh/moduli's size column into bits -> count of groups (pure).

    moduli(5) stores the size minus one (``2047`` is a 2048-bit group); ``missing``
    means the file does not exist ({}: sshd then falls back to fixed groups).

    >>> parse_moduli("     60 2047\\n     76 3071\\n")
    {2048: 60, 3072: 76}
    """
    if text.strip() == "missing":
        return {}
    sizes: dict[int, int] = {}
    for line in _lines(text):
        parts = line.split()
        if len(parts) == 2 and all(p.isascii() and p.isdigit() and len(p) < 7 for p in parts):
            sizes[int(parts[1]) + 1] = sizes.get(int(parts[1]) + 1, 0) + int(parts[0])
    return sizes


def parse_fail2ban_increment(text: str) -> dict[str, str]:
    """``JAIL VALUE`` lines (``fail2ban-client get JAIL bantime.increment``) (pure).

    >>> parse_fail2ban_increment("sshd True\\nkamailio None\\n")
    {'sshd': 'True', 'kamailio': 'None'}
    """
    out: dict[str, str] = {}
    for line in _lines(text):
        jail, _, value = line.partition(" ")
        if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", jail):
            out[jail] = value.strip()[:64]
    return out


def banner_texts(members: dict[str, bytes]) -> dict[str, str]:
    """The banner files found among a tar's members, as bounded text (pure)."""
    return {
        path: members[path][:MAX_BANNER].decode("utf-8", "replace")
        for path in BANNER_FILES
        if path in members
    }


def parse_access(ok: dict[str, str | None], banners: dict[str, bytes] | None) -> dict[str, object]:
    """The access fields of ServerFacts from the sections that succeeded (``ok``: section
    name -> text, or None when its command failed) and the banners' tar members."""
    facts: dict[str, object] = {}
    if (text := ok.get("host_keys")) is not None:
        facts["host_keys"] = parse_host_keys(text)
    if (text := ok.get("moduli")) is not None:
        facts["moduli_bits"] = parse_moduli(text)
    if (text := ok.get("fail2ban_increment")) is not None:
        facts["fail2ban_increment"] = parse_fail2ban_increment(text)
    if banners is not None:
        facts["banners"] = banner_texts(banners)
    return facts
