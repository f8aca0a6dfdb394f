"""Judging one target: every applicable control on its facts (pure), inside the
per-host boundary (:func:`contained`), with the baseline settings the inventory resolves
for it. The scan, the site workers and device apply all judge through here."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, TypeVar

from vcops.baseline.catalog import DEVICE_CATALOG, SERVER_CATALOG
from vcops.baseline.context import DeviceContext, ServerContext
from vcops.baseline.model import Control
from vcops.baseline.network import DeviceFacts
from vcops.baseline.settings import server_settings, settings_for
from vcops.connectors.hosttask import (
    Unreadable,
    read_host,
)
from vcops.facts.server import ServerFacts
from vcops.findings import (
    ControlResult,
    TargetOutcome,
)
from vcops.inventory.models import Device, Inventory, Server

F = TypeVar("F")
C = TypeVar("C")


def _evaluate(
    name: str,
    controls: Sequence[Control[F, C]],
    labels: set[str] | frozenset[str],
    facts: F,
    ctx: C,
) -> list[ControlResult]:
    results = []
    for control in controls:
        if not control.applies(labels):
            continue
        verdict = control.check(facts, ctx)
        results.append(
            ControlResult(
                target=name,
                control_id=control.id,
                clause=control.clause,
                severity=control.severity,
                title=control.title,
                status=verdict.status,
                expected=verdict.expected,
                actual=verdict.actual,
                detail=verdict.detail,
            )
        )
    return results


def evaluate_server(name: str, facts: ServerFacts, ctx: ServerContext) -> list[ControlResult]:
    """Every applicable server control on these facts (pure)."""
    return _evaluate(name, SERVER_CATALOG, ctx.roles, facts, ctx)


def evaluate_device(name: str, facts: DeviceFacts, ctx: DeviceContext) -> list[ControlResult]:
    """Every applicable device control on this running config (pure)."""
    return _evaluate(name, DEVICE_CATALOG, {facts.platform}, facts, ctx)


def device_context(inv: Inventory, device: Device) -> DeviceContext:
    """The resolved baseline and management networks for one device."""
    settings = settings_for(inv.host_vars(device), where=f"inventory: device {device.name}")
    return DeviceContext(settings, tuple(inv.management_networks(device)))


def server_context(inv: Inventory, server: Server, now: datetime) -> ServerContext:
    settings = server_settings(
        inv.host_vars(server), user=inv.ssh_user(server), where=f"inventory: server {server.name}"
    )
    return ServerContext(
        settings=settings,
        roles=frozenset(server.roles),
        management_networks=tuple(inv.management_networks(server)),
        now=now,
    )


def contained(
    target: str,
    kind: Literal["server", "device"],
    seconds: float,
    work: Callable[[], TargetOutcome],
) -> TargetOutcome:
    """Parse and evaluate one target inside the per-host boundary of the host-task layer
    (:func:`vcops.connectors.hosttask.read_host`; devices use the same one): whatever its
    output does (huge numbers, nesting that exhausts the stack, a type a check did not
    expect), only this target becomes *unknown*, with the reason; the rest of the scan
    goes on. The reason names the exception type and the function that raised it, never
    the exception's text (it could quote a config line holding a secret).

    Raises:
        InventoryError: a bad baseline override in the inventory (the operator's error,
            not the host's).
    """
    outcome = read_host(work)
    if isinstance(outcome, Unreadable):
        return TargetOutcome(
            target=target, kind=kind, status="unknown", error=outcome.error, seconds=seconds
        )
    return outcome
