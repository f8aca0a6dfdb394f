"""Secret masking: pure functions from text to text with every secret replaced by a marker.

A masked value becomes a keyed hash marker::

    <vcops:masked:hmac-sha256:1a2b3c4d5e6f7a8b>

the first 64 bits of HMAC-SHA256(key, value). The key lives outside the snapshot
store (``<state_dir>/snapshot-mask.key``), so the store alone reveals nothing, yet a
rotated secret changes its marker and shows up as a change in ``snapshot diff``. The
same value gives the same marker everywhere (a reused password is visible as such).

Example::

    >>> key = bytes(32)
    >>> mask_text("enable secret 9 $9$abc\\n", "ios", key).text
    'enable secret 9 <vcops:masked:hmac-sha256:...>\\n'

Restore works the other way round: :func:`collect_secrets` masks the *live* file in
memory and remembers which value each marker stands for; :func:`unmask` puts back
every marker whose value is still on the host, and reports the others.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field

from vcops.snapshot.catalog import Rule, rules_for

MARKER_PREFIX = "<vcops:masked:hmac-sha256:"
MARKER_RE = re.compile(r"<vcops:masked:hmac-sha256:[0-9a-f]{16}>")
#: A variable reference, not a secret (FreeSWITCH ``$${default_password}``, shell ``${X}``,
#: vcops's own ``@@vcops-secret:NAME@@`` that the host resolves at apply time).
_VARIABLE_RE = re.compile(r"\$?\$\{[\w.-]+\}|@@vcops-secret:[\w.-]+@@")


def marker_for(key: bytes, value: str) -> str:
    """The marker standing for ``value`` under ``key``."""
    digest = hmac.new(key, value.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return f"{MARKER_PREFIX}{digest[:16]}>"


def has_marker(text: str) -> bool:
    """Whether ``text`` holds at least one mask marker."""
    return MARKER_RE.search(text) is not None


@dataclass(frozen=True)
class MaskResult:
    """Masked text, how many values each rule masked, and (only on request) the values."""

    text: str
    counts: dict[str, int]
    #: marker -> the value it stands for; filled by :func:`collect_secrets` only.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def masked(self) -> int:
        return sum(self.counts.values())


def _apply(
    rule: Rule, text: str, key: bytes, counts: Counter[str], secrets: dict[str, str] | None
) -> str:
    taken = [m.span() for m in MARKER_RE.finditer(text)]

    def replace(match: re.Match[str]) -> str:
        start, end = match.span("secret")
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            return match.group(0)  # already masked, or part of a marker
        if rule.exclude_key is not None:
            name = match.groupdict().get("key")
            if name and rule.exclude_key.search(name):
                return match.group(0)
        start, end = match.span("secret")
        value = match.group("secret")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            start, end, value = start + 1, end - 1, value[1:-1]
        if not value.strip() or MARKER_RE.fullmatch(value) or _VARIABLE_RE.fullmatch(value):
            return match.group(0)
        marker = marker_for(key, value)
        if secrets is not None:
            secrets[marker] = value
        counts[rule.name] += 1
        base = match.start()
        whole = match.group(0)
        return whole[: start - base] + marker + whole[end - base :]

    return rule.pattern.sub(replace, text)


def _mask(text: str, kind: str, key: bytes, secrets: dict[str, str] | None) -> MaskResult:
    counts: Counter[str] = Counter()
    for rule in rules_for(kind):
        text = _apply(rule, text, key, counts, secrets)
    return MaskResult(text=text, counts=dict(counts), secrets=secrets or {})


def mask_text(text: str, kind: str, key: bytes) -> MaskResult:
    """Mask every secret the catalog knows for ``kind`` (see :mod:`vcops.snapshot.catalog`).

    Idempotent: masking masked text changes nothing.
    """
    return _mask(text, kind, key, None)


def collect_secrets(text: str, kind: str, key: bytes) -> MaskResult:
    """Mask ``text`` and keep marker -> value (in memory only, for restore)."""
    return _mask(text, kind, key, {})


def unmask(text: str, known: dict[str, str]) -> tuple[str, list[str]]:
    """Put back every marker whose value is in ``known``; return the text and the others."""
    unresolved: list[str] = []

    def replace(match: re.Match[str]) -> str:
        value = known.get(match.group(0))
        if value is None:
            unresolved.append(match.group(0))
            return match.group(0)
        return value

    return MARKER_RE.sub(replace, text), unresolved


def mask_message(text: str, kind: str, key: bytes) -> str:
    """Mask an error message or command output before it is shown or stored."""
    return mask_text(text, kind, key).text
