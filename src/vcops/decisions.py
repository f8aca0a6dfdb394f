"""Change-board decisions: the one service the CLI and the web page both call.

A member decides from their own machine in three steps: vcops *issues* the exact
payload (window, the hash of every term, decision, member, time, comment hash), the
member signs it with ``ssh-keygen -Y sign -n vcops-window`` wherever their key lives
(a file, an agent, a hardware key), and the signature is *recorded*
(``vcops window approve --signature``, or an upload on the window page). The issued
time is kept in the audit log (``window.payload``), so the signature alone is enough
to record the decision; ``--key`` on the controller is the same path with vcops
signing at once.

Every rule is checked here, once, for both: the member is on the board and the key
that signed is theirs, the window's request is signed by its requester
(:mod:`vcops.window.request`), the requester (by key) never decides on their own
window, no approval for a window inside a freeze, nothing after a signed rejection,
decisions come before the start, once per member, on an intact plan, and the signature must
verify against a payload vcops issued for this window's current terms (a signature
copied from another window, made for another decision, member or comment, or made
before a term changed never counts; a signature already recorded never counts twice).
Refusals are audited (``window.<decision>.refused``) and raised as one
:class:`~vcops.errors.ApprovalError` naming every reason.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select

from vcops.config import Config
from vcops.errors import ApprovalError
from vcops.inventory.models import BoardMember, Inventory
from vcops.report.notify import Delivery, notify_customers, notify_window
from vcops.report.window_mail import HostLine, WindowEvent
from vcops.sshsig import SignatureError, fingerprint, key_id, normalise, signer_key
from vcops.store import Store
from vcops.tables import ApprovalRow
from vcops.window.approval import NAMESPACE, Approval, decision_problems, payload, verify
from vcops.window.board import tally, verified
from vcops.window.model import Decision, Window, plan_hash, terms_hash
from vcops.window.request import is_requester, request_problem
from vcops.window.rules import freeze_problems
from vcops.window.store import add_approval, approvals_of, load_window, set_state

MAX_COMMENT = 2000
#: Issued payloads tried per signature (newest first).
MAX_CANDIDATES = 50


class IssuedPayload(BaseModel):
    """The bytes one member signs for one decision, and how to sign them."""

    window_id: str
    member: str
    decision: Decision
    at: datetime
    comment: str
    data: bytes

    @property
    def filename(self) -> str:
        return f"{self.window_id}-{self.decision}-{self.member}.txt"

    @property
    def sign_command(self) -> str:
        return (
            f"ssh-keygen -Y sign -n {NAMESPACE} -f ~/.ssh/id_ed25519 {shlex.quote(self.filename)}"
        )


class Outcome(BaseModel):
    """A recorded decision and where it left the window."""

    window_id: str
    member: str
    decision: Decision
    state: str
    previous_state: str
    approvals: int
    rejections: int
    quorum: int


def _comment_hash(comment: str) -> str:
    return hashlib.sha256(comment.encode()).hexdigest()


def board_member(inv: Inventory, name: str) -> BoardMember:
    """The board member called ``name``.

    Raises:
        ApprovalError: nobody of that name is on the change board.
    """
    for member in inv.change_board.members:
        if member.name == name:
            return member
    names = ", ".join(m.name for m in inv.change_board.members) or "none"
    raise ApprovalError(
        f"{name!r} is not on the change board (members: {names}); "
        "only board members listed in the inventory may decide"
    )


def issue_payload(
    store: Store,
    inv: Inventory,
    window_id: str,
    *,
    member: str,
    decision: Decision,
    comment: str,
    now: datetime,
) -> IssuedPayload:
    """Build the payload ``member`` signs for ``decision`` and record that it was issued.

    Raises:
        ApprovalError: the member is not on the board, or the comment is too long.
        WindowError: no such window.
    """
    window = load_window(store, window_id)
    board_member(inv, member)
    if len(comment) > MAX_COMMENT:
        raise ApprovalError(f"comment too long ({len(comment)} characters; at most {MAX_COMMENT})")
    data = payload(window, decision, member, now, comment)
    store.audit(
        "window.payload",
        window.id,
        {
            "member": member,
            "decision": decision,
            "at": now.isoformat(),
            "comment_sha256": _comment_hash(comment),
            "terms_sha256": terms_hash(window),
        },
        now=now,
    )
    return IssuedPayload(
        window_id=window.id, member=member, decision=decision, at=now, comment=comment, data=data
    )


def issued_times(
    store: Store, window_id: str, member: str, decision: Decision, comment: str
) -> list[datetime]:
    """When payloads for this member, decision and comment were issued, newest first."""
    wanted = _comment_hash(comment)
    out: list[datetime] = []
    for entry in reversed(store.audit_entries(action="window.payload")):
        d = entry.detail
        if (
            entry.target == window_id
            and d.get("member") == member
            and d.get("decision") == decision
            and d.get("comment_sha256") == wanted
        ):
            try:
                out.append(datetime.fromisoformat(str(d.get("at"))))
            except ValueError:
                continue
        if len(out) >= MAX_CANDIDATES:
            break
    return out


def _recorded_with(store: Store, signature: str) -> tuple[str, str] | None:
    """(window, member) of a decision already recorded with this very signature."""
    with store.session() as s:
        for row in s.execute(select(ApprovalRow)).scalars():
            try:
                if normalise(row.signature) == signature:
                    return row.window_id, row.member
            except SignatureError:
                continue
    return None


def _signer_problems(
    board: Sequence[BoardMember], member: BoardMember, signature: str
) -> list[str]:
    signer, namespace = signer_key(signature)
    problems = []
    owner = next((m for m in board if key_id(m.ssh_public_key) == key_id(signer)), None)
    if owner is None:
        problems.append(
            f"the signature was made by a key that is not on the change board ({fingerprint(signer)})"
        )
    elif owner.name != member.name:
        problems.append(f"the signature was made with {owner.name}'s key, not {member.name}'s")
    if namespace != NAMESPACE:
        problems.append(f"the signature is for namespace {namespace!r}; sign with -n {NAMESPACE}")
    return problems


def record_decision(
    inv: Inventory,
    store: Store,
    window_id: str,
    *,
    member: str,
    decision: Decision,
    comment: str,
    signature: str,
    now: datetime,
    recorded_by: str,
    at: datetime | None = None,
) -> Outcome:
    """Verify a signed decision against every rule and record it.

    ``at`` is the payload's time when the caller signed just now (``--key``); without it
    the signature is checked against the payloads issued for this member, decision and
    comment (:func:`issue_payload`).

    Raises:
        ApprovalError: any rule refuses the decision (every reason in the message).
        WindowError: no such window.
    """
    window = load_window(store, window_id)
    board = list(inv.change_board.members)
    who = board_member(inv, member)
    try:
        sig = normalise(signature)
        problems = _signer_problems(board, who, sig)
    except SignatureError as exc:
        raise ApprovalError(f"{decision} refused: {exc}") from exc
    problems += decision_problems(window, who, decision, now)
    if plan_hash(window.plan) != window.plan_hash:
        problems.append("the stored plan no longer matches its hash: it was tampered with")
    if decision == "approve":
        problems += [f"window {window.id} {p}" for p in freeze_problems(window, inv.freezes)]
    earlier = _recorded_with(store, sig)
    if earlier is not None:
        problems.append(
            f"this signature was already recorded ({earlier[1]} on window {earlier[0]}): "
            "a signature counts once"
        )
    previous = [a for a, p in verified(inv, window, approvals_of(store, window.id)) if p is None]
    if window.state != "rejected" and any(a.decision == "reject" for a in previous):
        problems.append(f"window {window.id} was already rejected (a signed rejection stands)")
    if any(a.member == who.name and a.decision == decision for a in previous):
        problems.append(f"{who.name} already recorded {decision} on {window.id}")
    approval = None
    if not problems:
        candidates = (
            [at] if at is not None else issued_times(store, window.id, who.name, decision, comment)
        )
        if not candidates:
            problems.append(
                f"no payload was issued for {who.name} to {decision} {window.id} with this comment: "
                f"get it with `vcops window payload {window.id} --decision {decision} --member {who.name}` "
                "(or from the window page) and sign that"
            )
        for when in candidates:
            attempt = Approval(
                window_id=window.id,
                member=who.name,
                decision=decision,
                at=when,
                comment=comment,
                signature=sig,
            )
            if verify(attempt, window, board) is None:
                approval = attempt
                break
        if candidates and approval is None:
            problems.append(
                f"the signature does not verify for window {window.id} with its current terms "
                f"(terms sha256 {terms_hash(window)[:16]}...), decision {decision}, member {who.name} "
                "and this comment: it was made for another window or payload, or a term changed "
                "since the payload was issued"
            )
    unauthenticated = request_problem(window)
    if unauthenticated:
        problems.append(unauthenticated)
    if problems or approval is None:
        store.audit(
            f"window.{decision}.refused",
            window.id,
            {"member": who.name, "problems": problems},
            now=now,
        )
        raise ApprovalError(f"{decision} refused: " + "; ".join(problems))
    add_approval(store, approval, recorded_by)
    ok, rejected, quorum = tally(inv, window, approvals_of(store, window.id))
    state = "rejected" if rejected else ("approved" if ok >= quorum else "pending")
    was = window.state
    window = set_state(store, window, state)  # type: ignore[arg-type]
    store.audit(
        f"window.{decision}",
        window.id,
        {
            "member": who.name,
            "comment": comment,
            "plan_hash": window.plan_hash,
            "terms_sha256": terms_hash(window),
            "signed_at": approval.at.isoformat(),
            "approvals": ok,
            "quorum": quorum,
            "state": state,
        },
        now=now,
    )
    return Outcome(
        window_id=window.id,
        member=who.name,
        decision=decision,
        state=state,
        previous_state=was,
        approvals=ok,
        rejections=rejected,
        quorum=quorum,
    )


def request_payloads(
    store: Store, inv: Inventory, window: Window, *, now: datetime
) -> list[IssuedPayload]:
    """One payload per board member (but the requester) and decision, for the approval mail."""
    return [
        issue_payload(store, inv, window.id, member=m.name, decision=d, comment="", now=now)
        for m in inv.change_board.members
        if not is_requester(window, m)
        for d in ("approve", "reject")
    ]


def mail_event(
    config: Config,
    inv: Inventory,
    store: Store,
    window: Window,
    event: WindowEvent,
    *,
    now: datetime,
    decided_by: str | None = None,
    reason: str = "",
    hosts: Sequence[HostLine] = (),
) -> list[Delivery]:
    """Mail a window event (and the customer notice when a window becomes approved).

    The approval request carries one payload per member and decision, ready to sign.
    Without an ``[smtp]`` section nothing is mailed (one skipped Delivery says so).
    """
    if "smtp" not in config.model_fields_set:
        return [
            Delivery(
                event=event, to=(), subject="", skipped_reason="vcops.toml has no [smtp] section"
            )
        ]
    ok, _rejected, quorum = tally(inv, window, approvals_of(store, window.id))
    payloads = request_payloads(store, inv, window, now=now) if event == "approval-needed" else []
    out = [
        notify_window(
            config, inv, store, window, event,
            quorum=quorum, approvals=ok, decided_by=decided_by, reason=reason, hosts=hosts,
            now=now, payloads=[(p.filename, p.data) for p in payloads],
        )
    ]  # fmt: skip
    if event == "approved":
        customers = notify_customers(config, inv, store, window, now=now)
        if customers is not None:
            out.append(customers)
    return out


def mail_outcome(
    config: Config, inv: Inventory, store: Store, outcome: Outcome, comment: str, *, now: datetime
) -> list[Delivery]:
    """The approved or rejected mail when a decision moved the window there."""
    if outcome.state in (outcome.previous_state, "pending"):
        return []
    window = load_window(store, outcome.window_id)
    event: WindowEvent = "rejected" if outcome.state == "rejected" else "approved"
    return mail_event(
        config, inv, store, window, event, now=now, decided_by=outcome.member, reason=comment
    )
