"""Network devices in ``baseline`` windows: planned with their remediation lines (masked,
so they hash into the terms the board signs), run with the same safety net as ``vcops
apply`` (commit-confirm or Netmiko, verify from a fresh login, rollback).

A device whose remediation differs from the approved one when its turn comes is not
touched: the board approved those lines, not whatever the device needs today.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from vcops.enforce.apply import device_host
from vcops.enforce.apply_models import HostOutcome
from vcops.enforce.netdev_apply import DevicePlanned, plan_one, push_one
from vcops.errors import ConnectError, InventoryError, VcopsError, WindowError
from vcops.inventory.models import Device, Inventory
from vcops.snapshot.take import SnapshotContext, take_snapshots
from vcops.window.model import HostPlan
from vcops.window.progress import HostRecord
from vcops.window.sites import WindowSites


def plan_devices(
    inv: Inventory,
    devices: Sequence[Device],
    key: bytes,
    *,
    max_parallel: int = 8,
    sites: WindowSites | None = None,
) -> list[HostPlan]:
    """Each device's plan: the controls it closes, then its remediation lines (masked);
    a device of a site with workers is planned there (``apply --check``'s plan).

    Raises:
        WindowError: a device cannot be reached or planned.
    """
    away = [d for d in devices if sites is not None and sites.routes(d)]
    planned = sites.apply.run(list(away), "pyinfra", True) if sites is not None and away else {}

    def one(device: Device) -> HostPlan | str:
        if device in away:
            there = planned.get(device.name)
            if there is None or there.status in {"failed", "unreachable"}:
                return f"{device.name} ({there.reason if there else 'no answer from its site'})"
            lines = [*there.controls, *there.changes]
        else:
            try:
                here = plan_one(inv, device, key)
            except (ConnectError, InventoryError, VcopsError) as exc:
                return f"{device.name} ({str(exc).splitlines()[0]})"
            lines = approved_lines(here)
        return HostPlan(
            target=device.name,
            environment=device.environment,
            redundancy_group=device.redundancy_group,
            baseline_changes=lines,
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


def approved_lines(planned: DevicePlanned) -> list[str]:
    """What the board approves for a device: the controls, then the remediation lines
    as shown (masked)."""
    return [*planned.plan.controls, *planned.plan.shown_remediation]


def push_approved(inv: Inventory, device: Device, key: bytes, approved: list[str]) -> HostOutcome:
    """Plan the device now and push its remediation with the safety net only when the
    plan is the approved one (the same code on the controller and on a site worker)."""
    try:
        planned = plan_one(inv, device, key)
    except (ConnectError, InventoryError, VcopsError) as exc:
        return HostOutcome(
            name=device.name,
            kind="device",
            status="failed",
            reason=f"not touched: {str(exc).splitlines()[0]}",
        )
    if approved_lines(planned) != approved:
        return HostOutcome(
            name=device.name,
            kind="device",
            status="failed",
            reason="not touched: its remediation differs from the approved plan "
            "(the device changed since approval); plan a new window",
        )
    return device_host(push_one(planned, key))


def run_device(
    inv: Inventory,
    snapshots: SnapshotContext,
    window_id: str,
    device: Device,
    approved: HostPlan,
    record: HostRecord,
    sites: WindowSites | None = None,
) -> None:
    """Snapshot, push the approved remediation with its safety net, snapshot; the outcome
    lands in ``record`` (state ``done`` or ``failed``, summary, rollback). A device of a
    site with workers is snapshotted and pushed there."""
    reason = f"window {window_id}"
    routed = sites is not None and sites.routes(device)
    remote = sites.snapshot if sites is not None else None
    try:
        before = take_snapshots(
            snapshots, [device], reason=f"{reason}: before", window=window_id, remote=remote
        )
    except VcopsError as exc:
        record.state, record.summary = "failed", f"not touched: {str(exc).splitlines()[0]}"
        return
    record.before_rev = record.before_rev or before.commit or snapshots.repo.resolve("HEAD")
    if before.hosts and before.hosts[0].status in {"failed", "unreachable"}:
        record.state = "failed"
        record.summary = f"not touched: no snapshot before any change ({before.hosts[0].error})"
        return
    if routed and sites is not None:
        outcome = sites.push(device, approved.baseline_changes)
    else:
        outcome = push_approved(inv, device, snapshots.key, approved.baseline_changes)
    if outcome.reason.startswith("not touched:"):
        record.state, record.summary = "failed", outcome.reason
        return
    record.baseline = list(outcome.controls)
    if outcome.status in ("failed", "unreachable"):
        record.state, record.summary = "failed", outcome.reason
        record.rollback = "rolled back" if outcome.rolled_back else "not rolled back"
    else:
        record.state, record.summary = "done", outcome.reason
    try:
        after = take_snapshots(
            snapshots, [device], reason=f"{reason}: after", window=window_id, remote=remote
        )
        record.after_rev = after.commit or snapshots.repo.resolve("HEAD")
    except VcopsError as exc:
        record.gate.append(f"after-snapshot failed: {str(exc).splitlines()[0]}")
