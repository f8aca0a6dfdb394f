"""``vcops apply`` on network devices: plan from the running config, push, verify, roll back.

Per device: fetch the running config, judge it with the VC-NET controls, render the
intended hardening config, compute remediation and rollback with hier-config for the
controls that are failing or unknown (and that configuration can fix), then either show
them (``--check``) or push them (:mod:`vcops.enforce.netdev_push`) and verify from a
fresh login that every pushed control now passes. A device that fails is rolled back
and re-read; one bad device never stops the others.

Every line shown, logged or audited is masked as snapshots mask secrets.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from vcops.baseline.context import DeviceContext
from vcops.baseline.network import NETWORK_CONTROLS, parse_device_config
from vcops.connectors.netdev import DeviceTarget, fetch_running_config
from vcops.enforce.netdev_intent import intent_vars, render_intended, resolve_secrets
from vcops.enforce.netdev_plan import DevicePlan, plan_device
from vcops.enforce.netdev_push import (
    COMMIT_CONFIRM,
    MergeDriver,
    PushOutcome,
    merge_with_confirm,
    push_netmiko,
)
from vcops.enforce.netdev_scope import NOT_ENFORCEABLE, enforceable
from vcops.errors import ConnectError, InventoryError, VcopsError
from vcops.inventory.models import Device, Inventory
from vcops.scan import device_context

DeviceStatus = Literal["changed", "unchanged", "failed", "unreachable"]


class DeviceOutcome(BaseModel):
    """What apply did (or would do) on one device; every line masked."""

    name: str
    status: DeviceStatus
    reason: str = ""
    controls: list[str] = []
    remediation: list[str] = []
    rollback: list[str] = []
    rolled_back: bool = False
    notes: list[str] = []


@dataclass
class DevicePlanned:
    """A device's plan with what the push needs; ``plan`` holds real lines (memory only)."""

    device: str
    target: DeviceTarget
    ctx: DeviceContext
    plan: DevicePlan
    secrets: list[str] = field(repr=False)
    running: str = field(repr=False)
    skipped: list[str] = field(default_factory=list)


def _todo(facts_platform: str, statuses: Mapping[str, str]) -> set[str]:
    return {
        cid
        for cid, status in statuses.items()
        if status in ("fail", "unknown") and cid in enforceable(facts_platform)
    }


def check_controls(ctx: DeviceContext, platform: str, running: str) -> dict[str, str]:
    """Each VC-NET control's status on a running config (pure)."""
    facts = parse_device_config(platform, running)
    return {c.id: c.check(facts, ctx).status for c in NETWORK_CONTROLS if c.applies({platform})}


def plan_one(inventory: Inventory, device: Device, key: bytes) -> DevicePlanned:
    """Fetch the running config and plan the remediation of one device.

    Raises:
        ConnectError: the device cannot be reached.
        InventoryError: a secret reference or baseline override is broken.
        VcopsError: the running config looks cut off (no plan is safe on it).
    """
    target = DeviceTarget.from_inventory(inventory, device)
    ctx = device_context(inventory, device)
    running = fetch_running_config(target)
    facts = parse_device_config(device.platform, running)
    if not facts.complete:
        raise VcopsError(
            f"{device.name}: the running config looks cut off; no remediation is planned "
            "on a partial config (fetch it again or check the session's output limits)"
        )
    statuses = {c.id: c.check(facts, ctx).status for c in NETWORK_CONTROLS}
    todo = _todo(device.platform, statuses)
    secrets = resolve_secrets(
        ctx.settings, inventory.root, where=f"inventory: device {device.name}"
    )
    intended = render_intended(
        device.platform, intent_vars(ctx, device.platform, facts.vty_lines, secrets=secrets)
    )
    plan = plan_device(
        device.platform, running, intended, todo, mask_key=key, secrets=secrets.values()
    )
    skipped = sorted(
        (todo - set(plan.controls)) | {c for c in NOT_ENFORCEABLE if statuses.get(c) == "fail"}
    )
    return DevicePlanned(
        device=device.name,
        target=target,
        ctx=ctx,
        plan=plan,
        secrets=list(secrets.values()),
        running=running,
        skipped=skipped,
    )


def verifier(planned: DevicePlanned) -> Callable[[], str | None]:
    """A fresh login, the running config re-read, every pushed control passing."""

    def verify() -> str | None:
        try:
            running = fetch_running_config(planned.target)
        except ConnectError as exc:
            return f"no fresh login after the push: {exc}"
        statuses = check_controls(planned.ctx, planned.target.platform, running)
        bad = [
            f"{c} {statuses.get(c, 'missing')}"
            for c in planned.plan.controls
            if statuses.get(c) != "pass"
        ]
        return f"still not passing: {', '.join(bad)}" if bad else None

    return verify


_VOLATILE = re.compile(
    r"(Building configuration|Current configuration|! (Last|NVRAM) config|ntp clock-period)"
)


def same_config(before: str, after: str) -> bool:
    """Equal but for the lines a device rewrites on every read (byte counts, times)."""

    def norm(text: str) -> list[str]:
        return [x.rstrip() for x in text.splitlines() if x.strip() and not _VOLATILE.search(x)]

    return norm(before) == norm(after)


def _reread(planned: DevicePlanned, attempts: int = 6, pause: float = 3.0) -> str | None:
    for attempt in range(attempts):
        try:
            return fetch_running_config(planned.target)
        except ConnectError:
            if attempt < attempts - 1:
                time.sleep(pause)
    return None


def push_one(
    planned: DevicePlanned,
    key: bytes,
    open_driver: Callable[[DeviceTarget], MergeDriver] | None = None,
) -> DeviceOutcome:
    """Push one device's plan with its safety net; the outcome says what happened."""
    plan = planned.plan
    base = DeviceOutcome(
        name=planned.device,
        status="unchanged",
        controls=list(plan.controls),
        remediation=list(plan.shown_remediation),
        rollback=list(plan.shown_rollback),
        notes=[f"not enforced: {c}" for c in planned.skipped],
    )
    if plan.empty:
        base.reason = "nothing to push (every enforceable control passes)"
        return base
    verify = verifier(planned)
    target = planned.target
    if target.transport == "napalm" and target.platform in COMMIT_CONFIRM:
        from vcops.snapshot.devices import napalm_driver

        opener = open_driver or napalm_driver
        try:
            pushed = merge_with_confirm(
                lambda: opener(target), "\n".join(plan.remediation) + "\n", verify
            )
        except Exception as exc:  # NAPALM raises its own tree: translate at the edge
            pushed = PushOutcome(via="napalm commit-confirm", error=f"{exc.__class__.__name__}")
    else:
        pushed = push_netmiko(target, plan, verify, key=key, secrets=planned.secrets)
    base.notes += pushed.notes
    if pushed.verified:
        base.status = "changed"
        base.reason = f"{len(plan.remediation)} lines via {pushed.via}; verified from a fresh login"
        return base
    if not pushed.pushed:
        base.status = (
            "unreachable" if "no answer" in pushed.error or "refused" in pushed.error else "failed"
        )
        base.reason = pushed.error or "not pushed"
        return base
    base.status = "failed"
    base.rolled_back = pushed.rolled_back
    after = _reread(planned)
    if after is None:
        state = "the device does not answer after the rollback"
    elif same_config(planned.running, after):
        state = "running config equals the one before the push"
    else:
        state = "running config still differs from the one before the push"
    how = "rolled back" if pushed.rolled_back else "rollback not confirmed"
    base.reason = f"{pushed.error}; {how}; {state}"
    return base


def run_devices(
    inventory: Inventory,
    devices: Sequence[Device],
    *,
    key: bytes,
    check: bool,
    max_parallel: int = 8,
    on_device: Callable[[str], None] | None = None,
) -> list[DeviceOutcome]:
    """Plan (and unless ``check``, push) every device in parallel; results in order."""

    def one(device: Device) -> DeviceOutcome:
        try:
            planned = plan_one(inventory, device, key)
        except ConnectError as exc:
            return DeviceOutcome(name=device.name, status="unreachable", reason=str(exc))
        except (InventoryError, VcopsError) as exc:
            return DeviceOutcome(name=device.name, status="failed", reason=str(exc).splitlines()[0])
        if check:
            plan = planned.plan
            return DeviceOutcome(
                name=device.name,
                status="unchanged" if plan.empty else "changed",
                reason="nothing to push" if plan.empty else f"{len(plan.remediation)} lines",
                controls=list(plan.controls),
                remediation=list(plan.shown_remediation),
                rollback=list(plan.shown_rollback),
                notes=[f"not enforced: {c}" for c in planned.skipped],
            )
        outcome = push_one(planned, key)
        if on_device is not None:
            on_device(f"{device.name}: {outcome.status}")
        return outcome

    if not devices:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(devices)))) as pool:
        return list(pool.map(one, devices))
