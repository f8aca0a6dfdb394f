"""Send window notifications and the customer notice through the outbox, and audit them.

The edge around :mod:`vcops.report.window_mail`: pick the recipients, build the message,
queue it in the outbox and flush it. SMTP trouble (server down, refused, TLS or login
failure, a missing password variable) never raises: the message stays queued for the
next flush and the returned :class:`Delivery` carries the errors. Every attempt, and
every skip, lands in the audit log (``notify.window``, ``notify.customers``).

Example::

    d = notify_window(cfg, inv, store, window, "approval-needed", quorum=2, approvals=0,
                      now=datetime.now(UTC))
    d.to, d.sent, d.errors  # (('dana@example.net', 'erik@example.net'), 1, ())
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses

from vcops.config import Config
from vcops.errors import ConfigError, StoreError
from vcops.inventory.models import Inventory
from vcops.report.customer_notice import (
    customer_notice_message,
    customer_services,
    notice_lead_problem,
)
from vcops.report.mail import Outbox
from vcops.report.window_mail import (
    HostLine,
    WindowEvent,
    recipients_for,
    window_message,
    window_subject,
)
from vcops.store import Store
from vcops.window.model import Window


@dataclass(frozen=True)
class Delivery:
    """What became of one notification.

    ``sent`` counts every message the outbox flush delivered (older queued ones too);
    ``errors`` non-empty means the message is still queued; ``skipped_reason`` set means
    nothing was sent nor queued; ``warnings`` are problems that did not stop the mail
    (a customer notice with too little lead time).
    """

    event: str
    to: tuple[str, ...]
    subject: str
    sent: int = 0
    errors: tuple[str, ...] = ()
    skipped_reason: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors and not self.skipped_reason


def _recipients(msg: EmailMessage) -> list[str]:
    return [address for _, address in getaddresses([str(msg.get("To", ""))]) if address]


def deliver_and_audit(
    config: Config,
    store: Store,
    msg: EmailMessage,
    *,
    action: str,
    target: str,
    detail: dict[str, object] | None = None,
    now: datetime | None = None,
) -> tuple[int, list[str]]:
    """Queue the message, flush the outbox, audit ``action`` with to/subject/sent/errors.

    Returns (sent, errors); SMTP trouble is an error in the list, never an exception.

    Raises:
        StoreError: the outbox directory cannot be written (the message is not queued).
    """
    try:
        outbox = Outbox(config.outbox_dir)
        outbox.enqueue(msg)
    except OSError as exc:
        raise StoreError(
            f"{config.outbox_dir}: cannot queue mail ({exc.strerror or exc}); "
            "make the state directory writable"
        ) from exc
    try:
        sent, errors = outbox.flush(config.smtp)
    except (ConfigError, OSError, smtplib.SMTPException) as exc:
        sent = 0
        errors = [f"{exc}; the message is kept in {outbox.queued}"]
    store.audit(
        action,
        target,
        {
            **(detail or {}),
            "to": _recipients(msg),
            "subject": str(msg["Subject"]),
            "sent": sent,
            "errors": errors,
        },
        now=now,
    )
    return sent, errors


def notify_window(
    config: Config,
    inventory: Inventory,
    store: Store,
    window: Window,
    event: WindowEvent,
    *,
    quorum: int,
    approvals: int,
    decided_by: str | None = None,
    reason: str = "",
    hosts: Sequence[HostLine] = (),
    now: datetime,
    payloads: Sequence[tuple[str, bytes]] = (),
) -> Delivery:
    """Mail a window event to its recipients (:func:`recipients_for`) and audit it.

    ``payloads`` (file name, bytes) are attached for the board to sign. No recipients is
    a skip with a reason (audited), not an error.

    Raises:
        StoreError: the outbox directory cannot be written.
    """
    subject = window_subject(
        event, window, quorum=quorum, approvals=approvals, decided_by=decided_by, hosts=hosts
    )
    to = recipients_for(event, window, config, inventory)
    if not to:
        skipped = (
            "no recipients for approval-needed: set [recipients] board or add change_board members"
            if event == "approval-needed"
            else f"no recipients for {event}: set [recipients] ops"
        )
        store.audit(
            "notify.window",
            window.id,
            {
                "event": event,
                "to": [],
                "subject": subject,
                "sent": 0,
                "errors": [],
                "skipped": skipped,
            },
            now=now,
        )
        return Delivery(event=event, to=(), subject=subject, skipped_reason=skipped)
    msg = window_message(
        event,
        window,
        sender=config.smtp.from_,
        to=to,
        quorum=quorum,
        approvals=approvals,
        decided_by=decided_by,
        reason=reason,
        hosts=hosts,
        inventory_path=str(inventory.root),
        config_path=str(config.source.resolve()) if config.source else None,
        payloads=payloads,
        base_url=config.web.base_url,
    )
    sent, errors = deliver_and_audit(
        config,
        store,
        msg,
        action="notify.window",
        target=window.id,
        detail={"event": event},
        now=now,
    )
    return Delivery(event=event, to=tuple(to), subject=subject, sent=sent, errors=tuple(errors))


def notify_customers(
    config: Config, inventory: Inventory, store: Store, window: Window, *, now: datetime
) -> Delivery | None:
    """Send the customer maintenance notice to ``[recipients] customers`` and audit it.

    None when the window touches no customer-facing service. A skipped Delivery when it
    does but no customer recipients are configured (customers are then not informed:
    the skip is audited). A notice with less than ``min_notice_hours`` of lead time is
    still sent, with the problem in ``warnings`` and in the audit entry.

    Raises:
        StoreError: the outbox directory cannot be written.
        InventoryError: a ``customer_facing`` var that is not true or false.
    """
    if not customer_services(window, inventory):
        return None
    notice = config.customer_notice
    late = notice_lead_problem(window, now, notice)
    warnings = (late,) if late else ()
    to = list(config.recipients.customers)
    msg = customer_notice_message(window, inventory, notice, sender=config.smtp.from_, to=to)
    assert msg is not None  # customer_services was not empty
    subject = str(msg["Subject"])
    if not to:
        skipped = (
            "no customer recipients: set [recipients] customers to send the maintenance notice"
        )
        store.audit(
            "notify.customers",
            window.id,
            {
                "to": [],
                "subject": subject,
                "sent": 0,
                "errors": [],
                "skipped": skipped,
                "lead_time_problem": late,
            },
            now=now,
        )
        return Delivery(
            event="customer-notice",
            to=(),
            subject=subject,
            skipped_reason=skipped,
            warnings=warnings,
        )
    sent, errors = deliver_and_audit(
        config,
        store,
        msg,
        action="notify.customers",
        target=window.id,
        detail={"lead_time_problem": late},
        now=now,
    )
    return Delivery(
        event="customer-notice",
        to=tuple(to),
        subject=subject,
        sent=sent,
        errors=tuple(errors),
        warnings=warnings,
    )
