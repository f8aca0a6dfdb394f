"""The policy gate: whether production may be changed now, and the reason on record.

One rule, below every layer that changes hosts (``enforce``, ``snapshot restore``,
the window runner, device enforcement): a production target is changed only under

- a :class:`WindowLease`: the lease of a patch window the change board approved, whose
  plan is the one approved and that is open now. Only :func:`lease_window` issues one,
  from the window's verified terms (the window layer checks the signatures and passes
  the count; this module judges quorum, plan, state and time), so no caller can make
  one up; or
- an :class:`Emergency`: a stated reason, for what cannot wait.

:func:`authorize` decides; an allowed production change is recorded in the audit log
(``policy.allow``: the action, the targets, the basis and the window or reason).
Targets outside production need no grant. Example::

    lease = lease_window(terms, now=now)                 # ApprovalError if not runnable
    authorize(servers, lease, action="window.install", audit=store)
    authorize(servers, Emergency("CVE-2026-1234 exploited"), action="apply", audit=store)

This module imports no layer above it: nothing asks ``window`` for permission.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from vcops.errors import ApprovalError
from vcops.inventory.models import Target

_ISSUING: ContextVar[bool] = ContextVar("vcops_policy_issuing", default=False)
"""Set only inside :func:`lease_window`: a :class:`WindowLease` cannot be built (nor
copied with other targets) anywhere else."""


@dataclass(frozen=True)
class Emergency:
    """A change to production that cannot wait for a window; ``reason`` is recorded."""

    reason: str


@dataclass(frozen=True)
class WindowTerms:
    """What the window layer established about one window (plain data).

    ``approvals_ok`` counts the valid signed approvals of distinct board members (the
    window layer verifies the signatures); ``current_hash`` is the plan hashed afresh.
    """

    window_id: str
    state: str
    start: datetime
    last_start: datetime
    end: datetime
    targets: frozenset[str]
    plan_hash: str
    current_hash: str
    approvals_ok: int
    quorum: int
    #: Valid signed rejections (or a recorded ``window.reject``): any one stops the window
    #: whatever ``state`` says.
    rejections: int = 0
    #: The freezes of today's calendar the window overlaps, one line each.
    freezes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WindowLease:
    """Production access for the targets of one approved, open window (see module doc)."""

    window_id: str
    targets: frozenset[str]
    start: datetime
    end: datetime
    plan_hash: str

    def __post_init__(self) -> None:
        if not _ISSUING.get():
            raise TypeError("a WindowLease is issued only by vcops.policy.lease_window")


Grant = Emergency | WindowLease


@dataclass(frozen=True)
class Decision:
    """What :func:`authorize` allowed: the production targets and on what basis."""

    production: tuple[str, ...]
    basis: str
    """``no production target``, ``emergency`` or ``window``."""
    why: str


class AuditSink(Protocol):
    """Where decisions are recorded (:class:`vcops.store.Store` is one)."""

    def audit(
        self, action: str, target: str = "", detail: dict[str, object] | None = None
    ) -> object: ...


def lease_refusal(terms: WindowTerms, now: datetime) -> str | None:
    """Why a window may not run now (None when it may): rejection, freeze, state, plan,
    quorum, time."""
    wid = terms.window_id
    if terms.state == "rejected" or terms.rejections:
        return f"window {wid} was rejected by the change board: it can never run"
    if terms.freezes:
        return f"window {wid} " + "; ".join(terms.freezes)
    if terms.state in {"finished", "halted", "expired"}:
        return f"window {wid} is {terms.state}"
    if terms.current_hash != terms.plan_hash:
        return (
            f"window {wid}: the plan changed since it was approved "
            f"(hash {terms.current_hash[:12]} != {terms.plan_hash[:12]})"
        )
    if terms.approvals_ok < terms.quorum:
        return (
            f"window {wid} has {terms.approvals_ok} valid approval(s); the change board "
            f"requires {terms.quorum}"
        )
    if now < terms.start:
        return f"window {wid} opens at {terms.start.isoformat()}"
    if now >= terms.last_start:
        return (
            f"window {wid} is past its cutoff ({terms.last_start.isoformat()}): no host may start"
        )
    return None


def lease_window(terms: WindowTerms, *, now: datetime) -> WindowLease:
    """The lease of a window that may run now.

    Raises:
        ApprovalError: the window may not run now (the reason says why).
    """
    refusal = lease_refusal(terms, now)
    if refusal is not None:
        raise ApprovalError(refusal)
    token = _ISSUING.set(True)
    try:
        return WindowLease(
            window_id=terms.window_id,
            targets=terms.targets,
            start=terms.start,
            end=terms.end,
            plan_hash=terms.plan_hash,
        )
    finally:
        _ISSUING.reset(token)


def authorize(
    targets: Sequence[Target],
    grant: Grant | None,
    *,
    action: str,
    hint: str = "",
    audit: AuditSink | None = None,
) -> Decision:
    """Allow a change to ``targets`` or refuse it; record the decision.

    Args:
        targets: what the change touches.
        grant: the window lease or emergency it runs under (None: neither).
        action: what is being done (``apply``, ``snapshot.restore``, ``window.install``).
        hint: how else the operator can proceed, appended to a refusal.
        audit: where to record an allowed production change (``policy.allow``, with
            the basis and the window or reason); a refusal is raised, and the caller
            records it with its own context (``snapshot.restore.refused`` ...).

    Raises:
        ApprovalError: a production target without a grant, an empty emergency reason,
            or a target outside the lease's window.
    """
    prod = tuple(t.name for t in targets if t.environment == "production")
    refusal: str | None = None
    decision: Decision | None = None
    if not prod:
        decision = Decision((), "no production target", "")
    elif isinstance(grant, WindowLease):
        outside = [n for n in prod if n not in grant.targets]
        if outside:
            refusal = (
                f"{', '.join(outside[:3])}: not in window {grant.window_id}; production "
                "is changed only by the window that approved it"
            )
        else:
            decision = Decision(prod, "window", grant.window_id)
    elif isinstance(grant, Emergency) and grant.reason.strip():
        decision = Decision(prod, "emergency", grant.reason.strip())
    else:
        more = f" and {len(prod) - 3} more" if len(prod) > 3 else ""
        refusal = (
            f"{', '.join(prod[:3])}{more}: production is changed only by an approved patch "
            "window (vcops window create, approve, run); if it cannot wait, give "
            "--emergency REASON (recorded in the audit log)" + (f"; {hint}" if hint else "")
        )
    if refusal is not None:
        raise ApprovalError(refusal)
    assert decision is not None
    if audit is not None and decision.production:
        audit.audit(
            "policy.allow",
            action,
            {"targets": list(decision.production), "basis": decision.basis, "why": decision.why},
        )
    return decision
