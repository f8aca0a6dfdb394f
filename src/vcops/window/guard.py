"""One rule for changing production outside a window: only with a stated emergency."""

from __future__ import annotations

from collections.abc import Sequence

from vcops.errors import ApprovalError
from vcops.inventory.models import Target


def refuse_production(targets: Sequence[Target], emergency: str | None, *, hint: str) -> None:
    """Refuse production targets unless an emergency reason is given.

    Routine changes to production go through a patch window the change board approved
    (``vcops window create``, ``approve``, ``run``); ``--emergency`` is for what cannot
    wait, and its reason lands in the audit log.

    Raises:
        ApprovalError: a production target and no emergency reason.
    """
    prod = [t.name for t in targets if t.environment == "production"]
    if not prod or (emergency and emergency.strip()):
        return
    more = f" and {len(prod) - 3} more" if len(prod) > 3 else ""
    raise ApprovalError(
        f"{', '.join(prod[:3])}{more}: production is changed only by an approved patch window "
        "(vcops window create, approve, run); if it cannot wait, give --emergency REASON "
        f"(recorded in the audit log); {hint}"
    )
