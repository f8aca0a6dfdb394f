"""Windows and the inventory shared by the window-mail unit and integration tests."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import FIXTURES
from vcops.inventory import Inventory, load_inventory
from vcops.window.model import HostPlan, PackageChange, Plan, Window, plan_hash

NOTIFY_INVENTORY = FIXTURES / "notify" / "inventory"
START = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
OPENSSL = PackageChange(
    package="openssl", current="3.0.11-1~deb12u1", target="3.0.15-1~deb12u1", security=True
)
KAMAILIO = PackageChange(
    package="kamailio", current="5.6.3-2", target="5.6.3-2+deb12u1", security=False
)


def inventory() -> Inventory:
    return load_inventory(NOTIFY_INVENTORY)


def make_window(hosts: list[str] | None = None, **kw: object) -> Window:
    """A window over ``hosts`` of the notify inventory (kam-lon1-01 and ast-man1-01 by
    default); redundancy groups and environments as the inventory has them."""
    inv = inventory()
    names = hosts if hosts is not None else ["kam-lon1-01", "ast-man1-01"]
    plans = []
    for name in names:
        server = next((s for s in inv.servers if s.name == name), None)
        plans.append(
            HostPlan(
                target=name,
                environment=server.environment if server else "production",
                redundancy_group=server.redundancy_group if server else None,
                packages=[OPENSSL, KAMAILIO] if name.startswith("kam") else [OPENSSL],
                baseline_changes=["VC-SSH-001 PasswordAuthentication no"]
                if name.startswith("ast")
                else [],
                reboot_required=name.startswith("ast"),
            )
        )
    plan = Plan(actions="security-updates", hosts=plans)
    base: dict[str, object] = dict(
        id="W-20261201-ab12",
        title="December security updates",
        change_id="CHG-1042",
        requester="dana",
        targets="all",
        start=START,
        duration_minutes=120,
        cutoff_minutes=30,
        max_concurrency="1",
        max_errors="1",
        actions="security-updates",
        reboot="if-needed",
        plan=plan,
        plan_hash=plan_hash(plan),
        created_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )
    return Window.model_validate(base | kw)
