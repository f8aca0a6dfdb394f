"""The hash chain of the audit log: pure functions, no database.

Each entry carries the hash of the one before it; its own hash covers its id, time,
actor, action, target, detail and that previous hash. Editing any field of an entry
breaks its hash; deleting an entry leaves a gap in the ids and breaks the next
entry's link; deleting entries at the end is caught by the *anchor*, the id and hash
of the newest entry this controller wrote, kept outside the database.

Example entry::

    AuditEntry(id=3, ts="2026-11-28T13:01:02.123456+00:00", actor="root@ctl1",
               action="lab.up", target="lab", detail={"hosts": 6},
               prev_hash="9f2c...", hash="41aa...")
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

GENESIS = "0" * 64


class AuditEntry(BaseModel):
    """One audit-log row."""

    model_config = ConfigDict(frozen=True)

    id: int
    ts: str
    actor: str
    action: str
    target: str
    detail: dict[str, object]
    prev_hash: str
    hash: str


class Anchor(BaseModel):
    """The newest entry a controller wrote: catches deletions at the end of the log."""

    id: int
    hash: str


class VerifyResult(BaseModel):
    """The verdict on a chain: ``ok``, how many entries, and the first bad one."""

    ok: bool
    entries: int
    first_bad_id: int | None = None
    reason: str = ""


def entry_hash(
    id_: int,
    ts: str,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, object],
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of an entry and the previous hash."""
    canonical = json.dumps(
        {"id": id_, "ts": ts, "actor": actor, "action": action, "target": target, "detail": detail},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def verify_chain(entries: Sequence[AuditEntry], anchor: Anchor | None = None) -> VerifyResult:
    """Check every link of the chain, in id order; name the first bad entry."""
    prev_hash = GENESIS
    expected_id = 1
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.id != expected_id:
            return VerifyResult(
                ok=False,
                entries=len(entries),
                first_bad_id=expected_id,
                reason=f"entry {expected_id} is missing (deleted): the log jumps from "
                f"{expected_id - 1} to {entry.id}",
            )
        recomputed = entry_hash(
            entry.id,
            entry.ts,
            entry.actor,
            entry.action,
            entry.target,
            entry.detail,
            entry.prev_hash,
        )
        if recomputed != entry.hash:
            return VerifyResult(
                ok=False,
                entries=len(entries),
                first_bad_id=entry.id,
                reason=f"entry {entry.id} was edited: its content no longer matches its hash",
            )
        if entry.prev_hash != prev_hash:
            return VerifyResult(
                ok=False,
                entries=len(entries),
                first_bad_id=entry.id,
                reason=f"entry {entry.id} does not link to entry {entry.id - 1}: "
                "an earlier entry was replaced or the chain was rewritten",
            )
        prev_hash = entry.hash
        expected_id += 1
    last_id = expected_id - 1
    if anchor is not None:
        if anchor.id > last_id:
            return VerifyResult(
                ok=False,
                entries=len(entries),
                first_bad_id=last_id + 1,
                reason=f"entries {last_id + 1} to {anchor.id} were deleted: this controller "
                f"wrote entry {anchor.id}, the log ends at {last_id}",
            )
        anchored = next((e for e in entries if e.id == anchor.id), None)
        if anchored is not None and anchored.hash != anchor.hash:
            return VerifyResult(
                ok=False,
                entries=len(entries),
                first_bad_id=anchor.id,
                reason=f"entry {anchor.id} is not the one this controller wrote: "
                "the chain was rewritten",
            )
    return VerifyResult(ok=True, entries=len(entries))
