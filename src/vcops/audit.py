"""The hash chain of the audit log: pure functions, no database.

Each entry carries the hash of the one before it; its own hash covers its id, time,
actor, action, target, detail and that previous hash. Editing any field of an entry
breaks its hash; deleting an entry leaves a gap in the ids and breaks the next
entry's link. The chain alone is unkeyed: whoever can write the database can
recompute it. What they cannot forge is the *anchor*: the id and hash of the newest
entry this controller wrote, kept outside the database and signed with the
controller's own SSH key (:func:`anchor_payload`). Every append first checks that the
database's head is the anchored entry (:func:`head_problem`) and refuses otherwise, so
a rewritten chain, a database rolled back to an older copy, or rows appended behind
the controller's back are caught by the next append and by ``audit verify``, and the
anchor never follows a forged head.

An append moves the anchor in two signed steps: before the commit the anchor names
the old head and the *pending* new one; after the commit, the new head alone. A
controller killed between the two finds the pending entry as the head and rolls on.

Example entry::

    AuditEntry(id=3, ts="2026-11-28T13:01:02.123456+00:00", actor="root@ctl1",
               action="lab.up", target="lab", detail={"hosts": 6},
               prev_hash="9f2c...", hash="41aa...")
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

GENESIS = "0" * 64


class AuditEntry(BaseModel):
    """One audit-log row."""

    model_config = ConfigDict(frozen=True)

    id: int
    #: The time as the text the hash covers (:func:`time_text`).
    ts: str
    actor: str
    action: str
    target: str
    detail: dict[str, object]
    prev_hash: str
    hash: str
    #: Why this row cannot be read (invalid JSON, impossible time ...); empty when readable.
    problem: str = ""


class Anchor(BaseModel):
    """The newest entry a controller wrote (and the one it is about to commit), signed."""

    id: int
    hash: str
    pending_id: int | None = None
    pending_hash: str | None = None
    signature: str = ""


#: The namespace of anchor signatures (``ssh-keygen -Y sign -n``).
ANCHOR_NAMESPACE = "vcops-audit"


def anchor_payload(anchor: Anchor, database: str) -> bytes:
    """The exact bytes the controller signs for an anchor of ``database``."""
    pending = (
        f"{anchor.pending_id} {anchor.pending_hash}" if anchor.pending_id is not None else "none"
    )
    return (
        "vcops-audit-anchor-v1\n"
        f"database: {database}\nhead-id: {anchor.id}\nhead-sha256: {anchor.hash}\n"
        f"pending: {pending}\n"
    ).encode()


def head_problem(head: tuple[int, str] | None, anchor: Anchor | None) -> str | None:
    """Why the database's head (id, hash) is not the entry this controller anchored.

    ``anchor`` None means there is none: fine for an empty log only.
    """
    if anchor is None:
        if head is None:
            return None
        return (
            f"the audit log has {head[0]} entries but this controller holds no anchor for it "
            "(deleted, or another database): run `vcops audit reanchor --reason TEXT` "
            "after checking the log"
        )
    if head == ((anchor.id, anchor.hash) if anchor.id else None):
        return None
    if head is not None and head == (anchor.pending_id, anchor.pending_hash):
        return None
    if head is None:
        return (
            f"the audit log is empty but this controller wrote entry {anchor.id}: "
            "the database was replaced or wiped"
        )
    if head[0] < anchor.id:
        return (
            f"the audit log ends at entry {head[0]} but this controller wrote entry "
            f"{anchor.id}: entries were deleted or the database was rolled back"
        )
    if head[0] == anchor.id:
        return f"entry {anchor.id} is not the one this controller wrote: the chain was rewritten"
    return (
        f"the audit log's head is entry {head[0]} but this controller wrote entry "
        f"{anchor.id} last: entries after it were written behind its back "
        "(or the chain was rewritten)"
    )


def time_text(moment: datetime) -> str:
    """The one text form of an entry's time that its hash covers (and that ``audit log``
    shows): ISO 8601 in UTC, ``2026-11-28T13:01:02.123456+00:00`` (no fraction when the
    microseconds are zero), exactly what entries written before the database kept real
    times hashed."""
    return moment.astimezone(UTC).isoformat()


def row_problem(ts: object, detail: object) -> str:
    """Why a row's time or detail cannot be read ("" when both can)."""
    if not isinstance(ts, str):
        return f"its time is not text ({type(ts).__name__})"
    try:
        moment = datetime.fromisoformat(ts)
    except ValueError:
        return f"its time {ts[:40]!r} is impossible"
    if moment.tzinfo is None:
        return f"its time {ts[:40]!r} has no timezone"
    if not isinstance(detail, dict):
        return "its detail is not a JSON object"
    return ""


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


def verify_chain(
    entries: Sequence[AuditEntry], anchor: Anchor | None = None, *, anchored: bool = False
) -> VerifyResult:
    """Check every link of the chain, in id order; name the first bad entry.

    With ``anchored`` the log must end exactly at the anchor (or its pending entry);
    a missing anchor is then a failure for a log that has entries.
    """
    prev_hash = GENESIS
    expected_id = 1
    for entry in sorted(entries, key=lambda e: e.id):
        if entry.problem:
            return VerifyResult(
                ok=False,
                entries=len(entries),
                first_bad_id=entry.id,
                reason=f"entry {entry.id} is unreadable: {entry.problem}",
            )
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
        at_anchor = next((e for e in entries if e.id == anchor.id), None)
        if at_anchor is not None and at_anchor.hash != anchor.hash:
            return VerifyResult(
                ok=False,
                entries=len(entries),
                first_bad_id=anchor.id,
                reason=f"entry {anchor.id} is not the one this controller wrote: "
                "the chain was rewritten",
            )
    if anchored:
        head = (last_id, prev_hash) if last_id else None
        problem = head_problem(head, anchor)
        if problem is not None:
            return VerifyResult(
                ok=False, entries=len(entries), first_bad_id=last_id or None, reason=problem
            )
    return VerifyResult(ok=True, entries=len(entries))
