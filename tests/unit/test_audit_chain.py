"""The audit chain catches an edited row, a deleted row and a cut-off tail."""

from __future__ import annotations

import pytest

from vcops.audit import GENESIS, Anchor, AuditEntry, entry_hash, head_problem, verify_chain


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


def test_the_head_must_be_the_anchored_entry_or_its_pending_successor() -> None:
    chain = _chain(5)
    anchor = Anchor(id=4, hash=chain[3].hash, pending_id=5, pending_hash=chain[4].hash)
    assert head_problem((5, chain[4].hash), anchor) is None  # killed between commit and anchor
    assert head_problem((4, chain[3].hash), anchor) is None  # the commit never happened
    assert "rewritten" in str(head_problem((5, "f" * 64), anchor))
    settled = Anchor(id=5, hash=chain[4].hash)
    assert "behind its back" in str(head_problem((6, "e" * 64), settled))
    assert "rolled back" in str(head_problem((3, chain[2].hash), settled))
    assert "wiped" in str(head_problem(None, settled))
    assert "no anchor" in str(head_problem((5, chain[4].hash), None))
    assert head_problem(None, None) is None
    assert head_problem(None, Anchor(id=0, hash=GENESIS, pending_id=1, pending_hash="a")) is None


def test_an_anchored_log_must_end_at_the_anchor() -> None:
    chain = _chain(5)
    assert verify_chain(chain, Anchor(id=5, hash=chain[-1].hash), anchored=True).ok
    early = verify_chain(chain, Anchor(id=4, hash=chain[3].hash), anchored=True)
    assert not early.ok and "behind its back" in early.reason
    missing = verify_chain(chain, None, anchored=True)
    assert not missing.ok and "no anchor" in missing.reason
    assert verify_chain([], None, anchored=True).ok


def test_an_unreadable_entry_is_named() -> None:
    chain = _chain(3)
    chain[1] = chain[1].model_copy(update={"problem": "its detail is not valid JSON"})
    result = verify_chain(chain)
    assert result.first_bad_id == 2 and "entry 2 is unreadable" in result.reason
