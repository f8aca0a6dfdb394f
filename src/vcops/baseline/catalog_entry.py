"""One server control's catalog entry: its expected value comes from its own check."""

from __future__ import annotations

from collections.abc import Callable

from vcops.baseline.context import ServerContext
from vcops.baseline.model import Clause, Control, Severity
from vcops.baseline.server import Check, ServerControl
from vcops.facts.server import ServerFacts


def expected_from(check: Check) -> Callable[[ServerContext], str]:
    """A control's expected value is what its own check expects on empty facts."""

    def expected(ctx: ServerContext) -> str:
        return check(ServerFacts(), ctx).expected

    return expected


def control(
    id_: str,
    clause: Clause,
    severity: Severity,
    applies: frozenset[str],
    title: str,
    rationale: str,
    check: Check,
) -> ServerControl:
    """A server control of ``kind="server"`` (see :class:`vcops.baseline.model.Control`)."""
    return Control(
        id=id_,
        clause=clause,
        severity=severity,
        kind="server",
        applies_to=applies,
        title=title,
        rationale=rationale,
        expected=expected_from(check),
        check=check,
    )
