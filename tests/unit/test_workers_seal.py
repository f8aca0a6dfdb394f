"""Sealed worker tasks (vcops.workers_seal): only the controller's own, unexpired, unchanged
payloads verify."""

from __future__ import annotations

import pytest

from vcops.workers_seal import CLOCK_SKEW, seal, unsealed

KEY = bytes(range(32))
BODY: dict[str, object] = {
    "targets": ["kam-01", "ast-01"],
    "inventory": "ab" * 32,
    "key": "1a2b3c4d5e6f7a8b",
    "engine": "pyinfra",
    "check": False,
}


def test_a_sealed_task_verifies_until_it_expires() -> None:
    task = seal(BODY, KEY, 900, now=1_000_000)
    assert task["expires"] == 1_000_900 and isinstance(task["seal"], str)
    assert unsealed(task, KEY, now=1_000_000) is None
    assert unsealed(task, KEY, now=1_000_900 + CLOCK_SKEW) is None  # a worker's clock ahead
    assert "expired" in str(unsealed(task, KEY, now=1_000_901 + CLOCK_SKEW))


@pytest.mark.parametrize(
    "change",
    [
        {"targets": ["kam-01", "ast-01", "prod-core-01"]},  # a host added
        {"check": True},
        {"engine": "ansible"},
        {"expires": 2_000_000_000},  # the expiry pushed out
        {"seal": "0" * 64},
    ],
)
def test_any_change_to_a_sealed_task_is_refused(change: dict[str, object]) -> None:
    task = seal(BODY, KEY, 900, now=1_000_000)
    assert "does not verify" in str(unsealed(task | change, KEY, now=1_000_000))


def test_unsealed_or_otherwise_keyed_tasks_are_refused() -> None:
    assert "does not verify" in str(unsealed(dict(BODY), KEY, now=1_000_000))
    other = seal(BODY, bytes(32), 900, now=1_000_000)  # another controller's key
    assert "does not verify" in str(unsealed(other, KEY, now=1_000_000))
    # the seal is not the masking key's own HMAC (mask markers are), nor does it hold it
    assert KEY.hex() not in str(seal(BODY, KEY, 900))


def test_resealing_replaces_the_old_seal_and_expiry() -> None:
    first = seal(BODY, KEY, 900, now=1_000_000)
    again = seal(first, KEY, 60, now=1_000_000)
    assert again["expires"] == 1_000_060 and unsealed(again, KEY, now=1_000_000) is None
