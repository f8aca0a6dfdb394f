"""The audit chain catches an edited row, a deleted row and a cut-off tail."""

from __future__ import annotations

import pytest

from vcops.audit import GENESIS, Anchor, AuditEntry, entry_hash, verify_chain


def _chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for i in range(1, n + 1):
        ts = f"2026-11-28T10:00:0{i}+00:00"
        detail: dict[str, object] = {"i": i}
        digest = entry_hash(i, ts, "ops@ctl", "test.step", f"host-{i}", detail, prev)
        entries.append(
            AuditEntry(
                id=i,
                ts=ts,
                actor="ops@ctl",
                action="test.step",
                target=f"host-{i}",
                detail=detail,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    return entries


def test_an_intact_chain_verifies() -> None:
    chain = _chain(5)
    result = verify_chain(chain, Anchor(id=5, hash=chain[-1].hash))
    assert result.ok and result.entries == 5


@pytest.mark.parametrize("field", ["actor", "action", "target", "ts"])
def test_an_edited_field_names_the_entry(field: str) -> None:
    chain = _chain(5)
    chain[2] = chain[2].model_copy(update={field: "forged"})
    result = verify_chain(chain)
    assert not result.ok and result.first_bad_id == 3
    assert "entry 3 was edited" in result.reason


def test_an_edited_detail_is_caught() -> None:
    chain = _chain(3)
    chain[1] = chain[1].model_copy(update={"detail": {"i": 99}})
    assert verify_chain(chain).first_bad_id == 2


def test_a_deleted_row_is_caught() -> None:
    chain = _chain(5)
    del chain[1]
    result = verify_chain(chain)
    assert not result.ok and result.first_bad_id == 2
    assert "entry 2 is missing" in result.reason


def test_a_rewritten_chain_with_renumbered_ids_is_caught_by_the_link() -> None:
    chain = _chain(4)
    # Drop entry 2 and renumber entry 3 as 2, rehashing it: its prev_hash still names old entry 2.
    old3 = chain[2]
    digest = entry_hash(
        2, old3.ts, old3.actor, old3.action, old3.target, old3.detail, old3.prev_hash
    )
    forged = old3.model_copy(update={"id": 2, "hash": digest})
    result = verify_chain([chain[0], forged])
    assert not result.ok and result.first_bad_id == 2 and "does not link" in result.reason


def test_a_cut_off_tail_is_caught_by_the_anchor() -> None:
    chain = _chain(5)
    anchor = Anchor(id=5, hash=chain[-1].hash)
    result = verify_chain(chain[:3], anchor)
    assert not result.ok and result.first_bad_id == 4
    assert "entries 4 to 5 were deleted" in result.reason
    assert verify_chain(chain[:3]).ok  # without the anchor the cut cannot be seen


def test_an_anchor_that_disagrees_is_caught() -> None:
    chain = _chain(3)
    assert not verify_chain(chain, Anchor(id=2, hash="f" * 64)).ok
