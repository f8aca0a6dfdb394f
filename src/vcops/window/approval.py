"""Change-board approvals signed with SSH keys (``ssh-keygen -Y sign`` / ``-Y verify``).

The signed payload names the window, the hash of its terms (the plan and every
setting: times, cutoff, limits, actions, reboot policy, requester), the decision, the
member and the time, in the ``vcops-window`` namespace, so a signature made for
another window, for another plan or schedule, for another decision or by another
member never verifies. Signatures are verified against the board's public keys from
the inventory every time a window is shown or run: a member removed from the board,
or any term changed after approval, invalidates the approval.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from vcops import sshsig
from vcops.errors import ApprovalError
from vcops.inventory.models import BoardMember
from vcops.window.model import Decision, Window, plan_hash, terms_hash
from vcops.window.request import is_requester

NAMESPACE = "vcops-window"


class Approval(BaseModel):
    """A recorded decision with its signature (the payload is rebuilt, never trusted)."""

    window_id: str
    member: str
    decision: Decision
    at: datetime
    comment: str
    signature: str


def payload(window: Window, decision: Decision, member: str, at: datetime, comment: str) -> bytes:
    """The exact bytes a member signs (rebuilt from the stored window on every check)."""
    comment_hash = hashlib.sha256(comment.encode()).hexdigest()
    return (
        "vcops-window-decision-v2\n"
        f"window: {window.id}\nterms-sha256: {terms_hash(window)}\n"
        f"plan-sha256: {plan_hash(window.plan)}\ndecision: {decision}\nmember: {member}\n"
        f"time: {at.isoformat()}\ncomment-sha256: {comment_hash}\n"
    ).encode()


def public_key_of(key: Path) -> str:
    """The public key of a private key file (``ssh-keygen -y``), to find its board member."""
    try:
        return sshsig.public_key_of(key)
    except sshsig.SignatureError as exc:
        raise ApprovalError(str(exc)) from exc


def member_for_key(key: Path, board: list[BoardMember]) -> BoardMember:
    wanted = public_key_of(key)
    for member in board:
        if sshsig.same_key(member.ssh_public_key, wanted):
            return member
    raise ApprovalError(
        f"{key}: this key is not on the change board; only board members listed in the inventory may decide"
    )


def sign(key: Path, data: bytes) -> str:
    try:
        return sshsig.sign(key, data, NAMESPACE)
    except sshsig.SignatureError as exc:
        raise ApprovalError(str(exc)) from exc


def verify(approval: Approval, window: Window, board: list[BoardMember]) -> str | None:
    """None when the approval is valid for this window and plan; else why not."""
    member = next((m for m in board if m.name == approval.member), None)
    if member is None:
        return f"{approval.member} is not on the change board"
    data = payload(window, approval.decision, approval.member, approval.at, approval.comment)
    if not sshsig.verify(member.ssh_public_key, member.name, data, approval.signature, NAMESPACE):
        return (
            "signature does not verify for this window, its terms and this member "
            "(forged, replayed, or the plan or schedule changed since)"
        )
    return None


def decision_problems(
    window: Window, member: BoardMember, decision: Decision, now: datetime
) -> list[str]:
    """Why this member may not record this decision now."""
    problems = []
    if is_requester(window, member):
        problems.append(
            f"{member.name} requested window {window.id} and cannot approve or reject it"
        )
    if now >= window.start:
        problems.append(
            f"window {window.id} started at {window.start.isoformat()}: decisions must come before the start"
        )
    if window.state == "rejected":
        problems.append(f"window {window.id} was already rejected")
    if window.state not in {"pending", "approved", "rejected"}:
        problems.append(f"window {window.id} is {window.state}")
    return problems
