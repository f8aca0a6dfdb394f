"""Patch-window mail and the customer maintenance notice: pure builders, no I/O.

- :func:`window_message`: one mail per window event (approval needed, approved, rejected,
  started, finished, halted) for the board, the requester and ops, with the plan, its
  sha256, the exact commands to approve or reject, and the window attached as JSON.
- :func:`recipients_for`: who gets which event.
- :func:`customer_services`, :func:`customer_notice_message`, :func:`notice_lead_problem`:
  the customer maintenance notice, from :mod:`vcops.report.customer_notice` (re-exported).

Example::

    msg = window_message("approval-needed", window, sender="vcops@example.net",
                         to=["dana@example.net"], quorum=2, approvals=0)
    msg["Subject"]  # 'vcops window W-20261201-ab12: approval needed (0/2) - December
                    #  security updates [CHG-1042]'
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Literal, get_args
from urllib.parse import quote

from vcops.config import Config
from vcops.inventory.models import Inventory
from vcops.report.customer_notice import (
    IMPACT_INTERRUPTION,
    IMPACT_REDUNDANT,
    OTHER_SERVICE,
    SERVICE_NAMES,
    Service,
    customer_notice_message,
    customer_services,
    notice_lead_problem,
    one_line,
    utc_minute,
)
from vcops.report.mail import Attachment, build_message
from vcops.templating import environment
from vcops.window.model import HostPlan, Window
from vcops.window.rules import max_errors

WindowEvent = Literal["approval-needed", "approved", "rejected", "started", "finished", "halted"]
WINDOW_EVENTS: tuple[WindowEvent, ...] = get_args(WindowEvent)

__all__ = [
    "HOST_STATES",
    "IMPACT_INTERRUPTION",
    "IMPACT_REDUNDANT",
    "OTHER_SERVICE",
    "SERVICE_NAMES",
    "WINDOW_EVENTS",
    "HostLine",
    "Service",
    "WindowEvent",
    "approval_commands",
    "customer_notice_message",
    "customer_services",
    "notice_lead_problem",
    "recipients_for",
    "window_json",
    "window_message",
    "window_subject",
]

#: The runner's per-host states; ``rolled-back`` counts as failed.
HOST_STATES = ("pending", "running", "done", "failed", "skipped", "rolled-back")


@dataclass(frozen=True)
class HostLine:
    """The runner's result for one host, e.g. ``HostLine("kam-01", "done", "3 packages")``.

    ``state`` is one of :data:`HOST_STATES`; any other state is shown as it is and counted
    nowhere (a notification never fails a window run).
    """

    target: str
    state: str
    detail: str


@dataclass(frozen=True)
class HostCounts:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    not_run: int = 0

    @classmethod
    def of(cls, hosts: Sequence[HostLine]) -> HostCounts:
        states = [h.state for h in hosts]
        return cls(
            done=states.count("done"),
            failed=states.count("failed") + states.count("rolled-back"),
            skipped=states.count("skipped"),
            not_run=states.count("pending") + states.count("running"),
        )


def window_subject(
    event: WindowEvent,
    window: Window,
    *,
    quorum: int,
    approvals: int,
    decided_by: str | None = None,
    hosts: Sequence[HostLine] = (),
) -> str:
    """``vcops window W-20261201-ab12: approved (2/2) - December security updates [CHG-1042]``."""
    counts = HostCounts.of(hosts)
    if event == "approval-needed":
        what = f"approval needed ({approvals}/{quorum})"
    elif event == "approved":
        what = f"approved ({approvals}/{quorum})"
    elif event == "rejected":
        what = f"rejected by {decided_by}" if decided_by else "rejected"
    elif event == "started":
        what = "started"
    elif event == "finished":
        what = f"finished: {counts.done} done, {counts.failed} failed"
        what += f", {counts.skipped} skipped" if counts.skipped else ""
        what += f", {counts.not_run} not run" if counts.not_run else ""
    elif event == "halted":
        limit = f"{max_errors(window)}"
        if window.max_errors.endswith("%"):
            limit = f"{window.max_errors} = {limit}"
        what = f"HALTED: {counts.failed} failed (max errors {limit})"
    else:
        raise ValueError(f"unknown window event {event!r}; use one of {', '.join(WINDOW_EVENTS)}")
    return f"vcops window {window.id}: {what} - {one_line(window.title)} [{one_line(window.change_id)}]"


def approval_commands(
    window_id: str, *, inventory_path: str | None = None, config_path: str | None = None
) -> tuple[str, str]:
    """The exact commands a board member runs to approve and to reject."""
    prefix = "vcops"
    if config_path:
        prefix += f" -c {shlex.quote(config_path)}"
    if inventory_path:
        prefix += f" -i {shlex.quote(inventory_path)}"
    wid = shlex.quote(window_id)
    return (
        f"{prefix} window approve {wid} --key ~/.ssh/id_ed25519",
        f'{prefix} window reject {wid} --reason "..."',
    )


PAYLOAD_PLACEHOLDER = "PAYLOAD.txt"


def signature_command(
    window_id: str, *, inventory_path: str | None = None, config_path: str | None = None
) -> str:
    """How an operator records a signature a member sent back (``PAYLOAD.txt.sig``)."""
    prefix = "vcops"
    if config_path:
        prefix += f" -c {shlex.quote(config_path)}"
    if inventory_path:
        prefix += f" -i {shlex.quote(inventory_path)}"
    return (
        f"{prefix} window approve {shlex.quote(window_id)} "
        f"--signature {PAYLOAD_PLACEHOLDER}.sig --member NAME"
    )


@dataclass(frozen=True)
class _HostView:
    target: str
    environment: str
    redundancy_group: str | None
    packages: list[str]
    baseline_changes: list[str]
    reboot: str


def _reboot_note(window: Window, host: HostPlan) -> str:
    if window.reboot == "always":
        return "reboot (policy: always)"
    if window.reboot == "never":
        pending = "; a reboot is already pending on the host" if host.reboot_required else ""
        return f"no reboot (policy: never){pending}"
    if host.reboot_required:
        return "reboot (required now)"
    return "reboot only if an update requires one"


def _plan_view(window: Window) -> list[_HostView]:
    return [
        _HostView(
            target=h.target,
            environment=h.environment,
            redundancy_group=h.redundancy_group,
            packages=[
                f"{p.package} {p.current} -> {p.target}" + (" (security)" if p.security else "")
                for p in h.packages
            ],
            baseline_changes=list(h.baseline_changes),
            reboot=_reboot_note(window, h),
        )
        for h in window.plan.hosts
    ]


@dataclass(frozen=True)
class _WindowView:
    event: str
    subject: str
    window: Window
    start: str
    end: str
    last_start: str
    quorum: int
    approvals: int
    decided_by: str | None
    reason: str
    approve_command: str
    reject_command: str
    payloads: list[str]
    window_url: str | None
    sign_command: str
    signature_command: str
    plan: list[_HostView]
    hosts: list[HostLine]
    counts: HostCounts


def window_json(
    event: WindowEvent,
    window: Window,
    *,
    quorum: int,
    approvals: int,
    decided_by: str | None = None,
    reason: str = "",
    hosts: Sequence[HostLine] = (),
) -> bytes:
    """The attachment: the window with its plan, the event and the per-host results."""
    payload = {
        "event": event,
        "window": window.model_dump(mode="json"),
        "end": window.end.isoformat(),
        "last_start": window.last_start.isoformat(),
        "approvals": approvals,
        "quorum": quorum,
        "decided_by": decided_by,
        "reason": reason,
        "hosts": [asdict(h) for h in hosts],
    }
    return json.dumps(payload, indent=2).encode()


def window_message(
    event: WindowEvent,
    window: Window,
    *,
    sender: str,
    to: list[str],
    quorum: int,
    approvals: int,
    decided_by: str | None = None,
    reason: str = "",
    hosts: Sequence[HostLine] = (),
    inventory_path: str | None = None,
    config_path: str | None = None,
    payloads: Sequence[tuple[str, bytes]] = (),
    base_url: str | None = None,
) -> EmailMessage:
    """The mail for one window event: text + HTML from ``templates/email/window.*.j2`` and
    the window as ``window-<id>.json``; ``payloads`` (file name, bytes to sign) attached as
    text files with the one-line ``ssh-keygen -Y sign`` command that signs them.

    Raises:
        ValueError: an unknown event.
    """
    subject = window_subject(
        event, window, quorum=quorum, approvals=approvals, decided_by=decided_by, hosts=hosts
    )
    approve, reject = approval_commands(
        window.id, inventory_path=inventory_path, config_path=config_path
    )
    view = _WindowView(
        event=event,
        subject=subject,
        window=window,
        start=utc_minute(window.start),
        end=utc_minute(window.end),
        last_start=utc_minute(window.last_start),
        quorum=quorum,
        approvals=approvals,
        decided_by=decided_by,
        reason=reason,
        approve_command=approve,
        reject_command=reject,
        payloads=[name for name, _ in payloads],
        window_url=f"{base_url}/windows/{quote(window.id, safe='')}" if base_url else None,
        sign_command=f"ssh-keygen -Y sign -n vcops-window -f ~/.ssh/id_ed25519 {PAYLOAD_PLACEHOLDER}",
        signature_command=signature_command(
            window.id, inventory_path=inventory_path, config_path=config_path
        ),
        plan=_plan_view(window),
        hosts=list(hosts),
        counts=HostCounts.of(hosts),
    )
    env = environment("report")
    text = env.get_template("email/window.txt.j2").render(m=view)
    html = env.get_template("email/window.html.j2").render(m=view)
    attachment = window_json(
        event,
        window,
        quorum=quorum,
        approvals=approvals,
        decided_by=decided_by,
        reason=reason,
        hosts=hosts,
    )
    return build_message(
        sender=sender,
        to=to,
        subject=subject,
        text=text,
        html=html,
        attachments=[
            Attachment(f"window-{window.id}.json", attachment, "application", "json"),
            *(Attachment(name, data, "text", "plain") for name, data in payloads),
        ],
    )


def _dedupe(addresses: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for address in addresses:
        key = address.strip().casefold()
        if key and key not in seen:
            seen.add(key)
            out.append(address.strip())
    return out


def recipients_for(
    event: WindowEvent, window: Window, config: Config, inventory: Inventory
) -> list[str]:
    """Who gets a window event, deduplicated in order.

    approval-needed: ``[recipients] board``, else every change-board member but the
    requester; approved/rejected: the requester (when a board member of that name
    exists) and ``[recipients] ops``; started/finished/halted: ``[recipients] ops``.
    """
    members = inventory.change_board.members
    if event == "approval-needed":
        to = list(config.recipients.board) or [
            m.email for m in members if m.name != window.requester
        ]
    elif event in ("approved", "rejected"):
        requester = [m.email for m in members if m.name == window.requester]
        to = [*requester, *config.recipients.ops]
    elif event in ("started", "finished", "halted"):
        to = list(config.recipients.ops)
    else:
        raise ValueError(f"unknown window event {event!r}; use one of {', '.join(WINDOW_EVENTS)}")
    return _dedupe(to)
