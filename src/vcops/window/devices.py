"""Network devices in ``baseline`` windows: planned with their remediation lines (masked,
so they hash into the terms the board signs), run with the same safety net as ``vcops
apply`` (commit-confirm or Netmiko, verify from a fresh login, rollback).

A device whose remediation differs from the approved one when its turn comes is not
touched: the board approved those lines, not whatever the device needs today.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from vcops.enforce.netdev_apply import plan_one, push_one
from vcops.errors import ConnectError, InventoryError, VcopsError, WindowError
from vcops.inventory.models import Device, Inventory
from vcops.snapshot.take import SnapshotContext, take_snapshots
from vcops.window.model import HostPlan
from vcops.window.progress import HostRecord


def plan_devices(
    inv: Inventory, devices: Sequence[Device], key: bytes, *, max_parallel: int = 8
) -> list[HostPlan]:
    """Each device's plan: the controls it closes, then its remediation lines (masked).

    Raises:
        WindowError: a device cannot be reached or planned.
    """

    def one(device: Device) -> HostPlan | str:
        try:
            planned = plan_one(inv, device, key)
        except (ConnectError, InventoryError, VcopsError) as exc:
            return f"{device.name} ({str(exc).splitlines()[0]})"
        return HostPlan(
            target=device.name,
            environment=device.environment,
            redundancy_group=device.redundancy_group,
            baseline_changes=[*planned.plan.controls, *planned.plan.shown_remediation],
        )

    if not devices:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(devices)))) as pool:
        done = list(pool.map(one, devices))
    problems = [d for d in done if isinstance(d, str)]
    if problems:
        raise WindowError(
            f"cannot plan these devices; fix them or leave them out: {'; '.join(problems)}"
        )
    return [d for d in done if isinstance(d, HostPlan)]


def run_device(
    inv: Inventory,
    snapshots: SnapshotContext,
    window_id: str,
    device: Device,
    approved: HostPlan,
    record: HostRecord,
) -> None:
    """Snapshot, push the approved remediation with its safety net, snapshot; the outcome
    lands in ``record`` (state ``done`` or ``failed``, summary, rollback)."""
    reason = f"window {window_id}"
    try:
        before = take_snapshots(snapshots, [device], reason=f"{reason}: before", window=window_id)
        record.before_rev = record.before_rev or before.commit or snapshots.repo.resolve("HEAD")
        planned = plan_one(inv, device, snapshots.key)
    except (ConnectError, InventoryError, VcopsError) as exc:
        record.state, record.summary = "failed", f"not touched: {str(exc).splitlines()[0]}"
        return
    now = [*planned.plan.controls, *planned.plan.shown_remediation]
    if now != approved.baseline_changes:
        record.state = "failed"
        record.summary = (
            "not touched: its remediation differs from the approved plan "
            "(the device changed since approval); plan a new window"
        )
        return
    outcome = push_one(planned, snapshots.key)
    record.baseline = list(outcome.controls)
    if outcome.status in ("failed", "unreachable"):
        record.state, record.summary = "failed", outcome.reason
        record.rollback = "rolled back" if outcome.rolled_back else "not rolled back"
    else:
        record.state, record.summary = "done", outcome.reason
    try:
        after = take_snapshots(snapshots, [device], reason=f"{reason}: after", window=window_id)
        record.after_rev = after.commit or snapshots.repo.resolve("HEAD")
    except VcopsError as exc:
        record.gate.append(f"after-snapshot failed: {str(exc).splitlines()[0]}")
