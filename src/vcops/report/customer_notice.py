"""The customer maintenance notice (Code of Practice 4.1.2): pure builders, no I/O.

What customers are told before a patch window: the customer-facing services it touches
(by the names customers know), their sites, the expected impact, the time in the
customers' timezone and in UTC, the change reference and whom to contact. Never a host
name, an address, a package or the window's internal title. Example::

    customer_services(window, inventory)
    # [Service(name='SIP signalling', sites=('London',), redundant=True)]
    notice_lead_problem(window, now, cfg.customer_notice)
    # "window W-20261201-ab12 starts 2026-12-01 22:00 UTC (30.0 hours from now); ..."
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from vcops.config import CustomerNoticeConfig
from vcops.errors import InventoryError, Problem
from vcops.inventory.models import Inventory, Server
from vcops.report.mail import build_message
from vcops.roles import service_names
from vcops.templating import environment
from vcops.window.model import Window

#: Customer-facing names of the roles customers use (``generic`` is not one of them).
SERVICE_NAMES: dict[str, str] = service_names()
OTHER_SERVICE = "Other customer-facing services"
IMPACT_REDUNDANT = "no interruption expected; calls may be moved between redundant nodes"
IMPACT_INTERRUPTION = "short interruption possible"

_PURPOSE = {
    "security-updates": "security updates",
    "all-updates": "software updates",
    "baseline": "security configuration changes",
}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def one_line(text: str) -> str:
    """Header-safe: no line breaks or runs of whitespace."""
    return " ".join(text.split())


def utc_minute(moment: datetime) -> str:
    """``2026-12-01 22:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Service:
    """A customer-facing service a window touches, e.g.
    ``Service("SIP signalling", ("London",), redundant=True)``."""

    name: str
    sites: tuple[str, ...]
    redundant: bool

    @property
    def impact(self) -> str:
        return IMPACT_REDUNDANT if self.redundant else IMPACT_INTERRUPTION


def _customer_facing(inventory: Inventory, server: Server) -> bool | None:
    """The ``customer_facing`` var (group vars, then host vars), or None when unset."""
    value = inventory.host_vars(server).get("customer_facing")
    if value is None or isinstance(value, bool):
        return value
    raise InventoryError(
        [
            Problem(
                str(inventory.root),
                f"server {server.name}",
                f"customer_facing is {value!r}",
                "write customer_facing: true or customer_facing: false",
            )
        ]
    )


def customer_services(window: Window, inventory: Inventory) -> list[Service]:
    """The customer-facing services the window touches, in a fixed order.

    A production host counts by its roles (``generic`` is internal); ``customer_facing:
    false`` leaves a host out, ``customer_facing: true`` counts it in any environment (a
    generic host then as "Other customer-facing services"). A host no longer in the
    inventory counts as "Other customer-facing services": better announced than missed.
    A service is redundant when every host of it in the plan is in a redundancy group
    with at least two servers (windows never take two members of a group at once).

    Raises:
        InventoryError: a ``customer_facing`` var that is not true or false.
    """
    group_sizes: dict[str, int] = {}
    for s in inventory.servers:
        if s.redundancy_group:
            group_sizes[s.redundancy_group] = group_sizes.get(s.redundancy_group, 0) + 1
    sites: dict[str, list[str]] = {}
    redundant: dict[str, bool] = {}
    for host in window.plan.hosts:
        server = inventory.target(host.target)
        if isinstance(server, Server):
            flag = _customer_facing(inventory, server)
            if flag is False or (flag is None and host.environment != "production"):
                continue
            names = [SERVICE_NAMES[r] for r in server.roles if r in SERVICE_NAMES]
            if not names and flag is not True:
                continue
            site = inventory.site(server.site)
            site_label = (site.description or site.name) if site else server.site
        elif host.environment == "production":
            names, site_label = [], ""
        else:
            continue
        in_group = (
            bool(host.redundancy_group) and group_sizes.get(host.redundancy_group or "", 0) >= 2
        )
        for name in names or [OTHER_SERVICE]:
            labels = sites.setdefault(name, [])
            if site_label and site_label not in labels:
                labels.append(site_label)
            redundant[name] = redundant.get(name, True) and in_group
    order = [*SERVICE_NAMES.values(), OTHER_SERVICE]
    return [
        Service(name=name, sites=tuple(sorted(sites[name])), redundant=redundant[name])
        for name in order
        if name in sites
    ]


def _offset(moment: datetime) -> str:
    delta = moment.utcoffset() or timedelta(0)
    sign = "-" if delta < timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _long(moment: datetime, zone: ZoneInfo | None) -> str:
    """``Tuesday 1 December 2026, 22:00 GMT (UTC+00:00)``; ``... 22:00 UTC`` without a zone."""
    local = moment.astimezone(zone or UTC)
    day = f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"
    if zone is None:
        return f"{day}, {local:%H:%M} UTC"
    return f"{day}, {local:%H:%M} {local.tzname()} ({_offset(local)})"


def _short(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    parts += [f"{rest} minute{'s' if rest != 1 else ''}"] if rest else []
    return " ".join(parts) or "0 minutes"


@dataclass(frozen=True)
class _NoticeView:
    subject: str
    operator: str
    reference: str
    contact: str
    purpose: str
    timezone: str
    start_local: str
    end_local: str
    start_utc: str
    end_utc: str
    duration: str
    services: list[Service]


def customer_notice_message(
    window: Window,
    inventory: Inventory,
    notice_cfg: CustomerNoticeConfig,
    *,
    sender: str,
    to: list[str],
) -> EmailMessage | None:
    """The maintenance notice for customers, or None when no customer-facing service is
    touched. Rendered from ``templates/email/customer_notice.*.j2``; no attachment.

    Raises:
        InventoryError: a ``customer_facing`` var that is not true or false.
    """
    services = customer_services(window, inventory)
    if not services:
        return None
    zone = ZoneInfo(notice_cfg.timezone)
    operator = one_line(notice_cfg.operator)
    reference = one_line(window.change_id)
    subject = (
        f"{operator}: planned maintenance {_short(window.start, zone)}"
        f" to {_short(window.end, zone)} (ref {reference})"
    )
    view = _NoticeView(
        subject=subject,
        operator=operator,
        reference=reference,
        contact=notice_cfg.contact,
        purpose=_PURPOSE[window.actions],
        timezone=notice_cfg.timezone,
        start_local=_long(window.start, zone),
        end_local=_long(window.end, zone),
        start_utc=_long(window.start, None),
        end_utc=_long(window.end, None),
        duration=_duration(window.duration_minutes),
        services=services,
    )
    env = environment("report")
    text = env.get_template("email/customer_notice.txt.j2").render(n=view)
    html = env.get_template("email/customer_notice.html.j2").render(n=view)
    return build_message(sender=sender, to=to, subject=subject, text=text, html=html)


def notice_lead_problem(
    window: Window, now: datetime, notice_cfg: CustomerNoticeConfig
) -> str | None:
    """Why the customer notice comes too late, or None when it gives enough notice."""
    need = timedelta(hours=notice_cfg.min_notice_hours)
    lead = window.start - now
    if lead >= need:
        return None
    hours = lead.total_seconds() / 3600
    when = f"{hours:.1f} hours from now" if hours >= 0 else f"{-hours:.1f} hours ago"
    return (
        f"window {window.id} starts {utc_minute(window.start)} ({when}); customers need"
        f" {notice_cfg.min_notice_hours} hours' notice ([customer_notice] min_notice_hours,"
        f" Code of Practice 4.1.2): move the start to {utc_minute(now + need)} or later,"
        " or record why the short notice is acceptable"
    )
