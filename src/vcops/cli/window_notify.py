"""Window notifications from the CLI: who hears what, and the console line about it."""

from __future__ import annotations

from datetime import UTC, datetime

from vcops.cli.app import App
from vcops.cli.text import styled
from vcops.decisions import mail_event
from vcops.report.notify import Delivery
from vcops.report.window_mail import HostLine, WindowEvent
from vcops.window.model import Window
from vcops.window.progress import HostRecord
from vcops.window.runner import Notify


def tell(app: App, delivery: Delivery | None) -> None:
    if delivery is None or app.json:
        return
    if delivery.skipped_reason:
        app.err.print(styled("[dim]no {} mail: {}[/]", delivery.event, delivery.skipped_reason))
    elif delivery.errors:
        app.err.print(
            styled(
                "[yellow]{} mail to {} is queued in the outbox (not sent: {}); "
                "the next run sends it[/]",
                delivery.event,
                ", ".join(delivery.to),
                delivery.errors[0],
            )
        )
    else:
        app.err.print(styled("[dim]{} mail sent to {}[/]", delivery.event, ", ".join(delivery.to)))
    for warning in delivery.warnings:
        app.err.print(styled("[yellow]{}: {}[/]", delivery.event, warning))


def send(
    app: App,
    window: Window,
    event: WindowEvent,
    *,
    decided_by: str | None = None,
    reason: str = "",
    hosts: list[HostRecord] | None = None,
) -> None:
    """Mail ``event`` about ``window``; an approval that completes the quorum also sends the
    customer maintenance notice. Without an ``[smtp]`` section nothing is mailed."""
    lines = [HostLine(h.target, h.state, h.summary) for h in hosts or []]
    for delivery in mail_event(
        app.config(), app.inventory(), app.store(), window, event,
        now=datetime.now(UTC), decided_by=decided_by, reason=reason, hosts=lines,
    ):  # fmt: skip
        tell(app, delivery)


def notifier(app: App) -> Notify:
    """The runner's callback for started, finished and halted."""

    def notify(event: WindowEvent, window: Window, hosts: list[HostRecord], reason: str) -> None:
        send(app, window, event, reason=reason, hosts=hosts)

    return notify
