"""Access facts: SSH host keys, DH moduli, login banners and fail2ban ban escalation.

Pure parsers for the ``host_keys``, ``moduli`` and ``fail2ban_increment`` sections and
the ``banners`` tar record of the facts task (``gather.sh``); :func:`parse_access`
turns them into :class:`~vcops.facts.server.ServerFacts` fields. Host output is data:
every line is bounded and a line that does not parse is skipped, never trusted.

Examples of the sections::

    host_keys:  /etc/ssh/ssh_host_ed25519_key 256 SHA256:AbC... root@h (ED25519)
                /etc/ssh/ssh_host_ecdsa_key 256 SHA256:XyZ... root@h (ECDSA)
                /etc/ssh/gone ssh-keygen: /etc/ssh/gone: No such file or directory
    moduli:          60 2047              (count, then size - 1 as moduli(5) stores it)
    fail2ban_increment:  sshd True
"""

from __future__ import annotations

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


class HostKey(BaseModel):
    """One ``HostKey`` of ``sshd -T`` as ``ssh-keygen -l`` describes its file.

    ``kind`` is ``ED25519``, ``RSA``, ``ECDSA``, ``DSA`` ... or None when the file is
    missing or no key (sshd skips it then: it is not offered)."""

    path: str
    kind: str | None = None
    bits: int | None = None


def _lines(text: str) -> list[str]:
    return [ln[:MAX_LINE] for ln in text.splitlines()[:MAX_LINES] if ln.strip()]


def parse_host_keys(text: str) -> dict[str, HostKey]:
    """``PATH`` + ``ssh-keygen -l -f PATH`` lines into path -> :class:`HostKey` (pure).

    >>> parse_host_keys("/k 256 SHA256:x root@h (ED25519)\\n")["/k"].kind
    'ED25519'
    """
    keys: dict[str, HostKey] = {}
    for line in _lines(text):
        path, _, rest = line.partition(" ")
        if not path.startswith("/"):
            continue
        match = _KEY_LINE.match(rest.strip())
        if match:
            keys[path] = HostKey(path=path, kind=match[2], bits=int(match[1]))
        else:
            keys[path] = HostKey(path=path)
    return keys


def parse_moduli(text: str) -> dict[int, int]:
    """``uniq -c`` of /etc/ssh/moduli's size column into bits -> count of groups (pure).

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
