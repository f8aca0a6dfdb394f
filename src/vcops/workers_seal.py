"""Sealed worker tasks: a site worker changes or reads hosts only for a task its
controller sent.

Anyone who can write to the broker could otherwise queue ``vcops.apply_chunk`` for a
production host outside any window (the policy gate runs on the controller) or have a
host's masked config trees collected. So the controller seals each snapshot and apply
payload with an HMAC-SHA256 over its canonical JSON and an expiry, under a key derived
from the masking key the controller and its workers already share (never the masking
key itself, and the key never crosses the broker); a worker refuses a payload whose seal
does not verify under its own key, or that expired (past the controller's
``result_timeout``: nobody waits for its answer any more). Example::

    >>> key = bytes(32)
    >>> task = seal({"targets": ["kam-01"], "engine": "pyinfra"}, key, 900, now=1_000_000)
    >>> unsealed(task, key, now=1_000_100) is None
    True
    >>> unsealed(task | {"targets": ["kam-02"]}, key, now=1_000_100)
    'the task seal does not verify (not sent by this controller, or changed on the way)'

A redelivered task (its worker died) carries the same seal and is accepted until it
expires: an apply converges, a collection only reads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

#: Seconds a worker's clock may be ahead of or behind the controller's.
CLOCK_SKEW = 60


def _task_key(key: bytes) -> bytes:
    # a key of its own (mask markers are HMACs under the masking key itself)
    return hmac.new(key, b"vcops worker task seal v1", hashlib.sha256).digest()


def _mac(key: bytes, body: dict[str, object]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(_task_key(key), text.encode(), hashlib.sha256).hexdigest()


def seal(
    payload: dict[str, object], key: bytes, ttl: float, *, now: float | None = None
) -> dict[str, object]:
    """``payload`` with an expiry (``ttl`` seconds from now) and its seal."""
    body = {k: v for k, v in payload.items() if k not in {"seal", "expires"}}
    body["expires"] = int((time.time() if now is None else now) + ttl)
    return body | {"seal": _mac(key, body)}


def unsealed(payload: dict[str, object], key: bytes, *, now: float | None = None) -> str | None:
    """Why a worker must refuse ``payload`` (None: sealed by the holder of ``key`` and
    not expired)."""
    given = payload.get("seal")
    body = {k: v for k, v in payload.items() if k != "seal"}
    if not isinstance(given, str) or not hmac.compare_digest(given, _mac(key, body)):
        return "the task seal does not verify (not sent by this controller, or changed on the way)"
    expires = payload.get("expires")
    current = time.time() if now is None else now
    if not isinstance(expires, int) or current > expires + CLOCK_SKEW:
        return "the task expired before this worker took it (the controller stopped waiting)"
    return None


def once_ttl(result_timeout: float, visibility_timeout: int) -> float:
    """The seal lifetime of a task that must never run twice (a window step, a
    rollback): over before the broker would hand a dead worker's copy to another
    worker (``visibility_timeout``, less the clock skew allowed), and never longer than
    the controller waits (``result_timeout``)."""
    return max(1.0, min(result_timeout, visibility_timeout - CLOCK_SKEW - 5))
