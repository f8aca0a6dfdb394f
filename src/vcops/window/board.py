"""The change board's verdict on a window: every decision re-verified on every read.

A decision counts only when the window's request signature verifies, the decision's
signature verifies for these terms, the member is not the requester (by key), and it
was signed before the window's start."""

from __future__ import annotations

from vcops.inventory.models import Inventory
from vcops.window.approval import Approval, verify
from vcops.window.model import Window
from vcops.window.request import is_requester, request_problem


def quorum_for(inv: Inventory, window: Window) -> int:
    return max((inv.change_board.quorum.get(env, 1) for env in window.environments), default=1)  # type: ignore[call-overload]


def verified(
    inv: Inventory, window: Window, approvals: list[Approval]
) -> list[tuple[Approval, str | None]]:
    """Every recorded decision with None (valid) or the reason it does not verify."""
    board = list(inv.change_board.members)
    unauthenticated = request_problem(window)
    out = []
    for a in approvals:
        member = next((m for m in board if m.name == a.member), None)
        problem = unauthenticated or verify(a, window, board)
        if problem is None and (
            a.member == window.requester or (member is not None and is_requester(window, member))
        ):
            problem = "the requester cannot decide on their own window"
        if problem is None and a.at >= window.start:
            problem = (
                f"signed at {a.at.isoformat()}, not before the window's start "
                f"{window.start.isoformat()}"
            )
        out.append((a, problem))
    return out


def tally(inv: Inventory, window: Window, approvals: list[Approval]) -> tuple[int, int, int]:
    """(valid approvals by distinct members, valid rejections, quorum)."""
    checked = verified(inv, window, approvals)
    approvers = {a.member for a, p in checked if p is None and a.decision == "approve"}
    rejecters = {a.member for a, p in checked if p is None and a.decision == "reject"}
    return len(approvers), len(rejecters), quorum_for(inv, window)
