"""Window rules: creation checks, freezes, batches, and whether a window may run now. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from vcops.inventory.models import Freeze
from vcops.policy import WindowTerms, lease_refusal
from vcops.window.model import HostPlan, Window, package_problems, resolve_amount


def overlapping_freezes(
    start: datetime, end: datetime, environments: set[str], freezes: Sequence[Freeze]
) -> list[Freeze]:
    """Freezes that overlap [start, end) for any of the environments."""
    return [
        f for f in freezes if f.start < end and start < f.end and environments & set(f.environments)
    ]


def creation_problems(
    *,
    start: datetime,
    duration_minutes: int,
    cutoff_minutes: int,
    now: datetime,
    hosts: Sequence[HostPlan],
    freezes: Sequence[Freeze],
) -> list[str]:
    """Why a window cannot be created (empty when it can)."""
    problems = []
    if duration_minutes <= 0:
        problems.append("the window ends before it starts: give a positive --duration")
    if cutoff_minutes >= duration_minutes:
        problems.append(
            "the cutoff leaves no time to start any host: make --cutoff shorter than --duration"
        )
    if start.tzinfo is None:
        problems.append("--start has no timezone: write it like 2026-12-01T22:00:00+00:00")
    elif start + timedelta(minutes=duration_minutes) <= now:
        problems.append("the window is already over: pick a --start in the future")
    if not hosts:
        problems.append("the window names no existing target")
    if start.tzinfo is not None:
        end = start + timedelta(minutes=duration_minutes)
        problems += _freeze_lines(start, end, {h.environment for h in hosts}, freezes)
    for host in hosts:
        problems += package_problems(host)
    return problems


def _freeze_lines(
    start: datetime, end: datetime, environments: set[str], freezes: Sequence[Freeze]
) -> list[str]:
    lines = []
    for f in overlapping_freezes(start, end, environments, freezes):
        span = f"{f.start.isoformat()} to {f.end.isoformat()}, {', '.join(f.environments)}"
        lines.append(f"overlaps freeze {f.name!r} ({span}): {f.reason}")
    return lines


def freeze_problems(window: Window, freezes: Sequence[Freeze]) -> list[str]:
    """The freezes of today's calendar that the window overlaps (checked at creation, at
    approval and before a run: a freeze added later still stops the window)."""
    return _freeze_lines(window.start, window.end, window.environments, freezes)


def plan_batches(hosts: Sequence[HostPlan], max_concurrency: int) -> list[list[str]]:
    """Batches in host order: at most ``max_concurrency`` hosts, never two members of one
    redundancy group in the same batch (the other half keeps carrying calls)."""
    remaining = list(hosts)
    batches: list[list[str]] = []
    while remaining:
        batch: list[HostPlan] = []
        groups: set[str] = set()
        for host in list(remaining):
            if len(batch) >= max_concurrency:
                break
            if host.redundancy_group and host.redundancy_group in groups:
                continue
            batch.append(host)
            if host.redundancy_group:
                groups.add(host.redundancy_group)
            remaining.remove(host)
        batches.append([h.target for h in batch])
    return batches


def window_terms(
    window: Window,
    *,
    approvals_ok: int,
    quorum: int,
    current_hash: str,
    rejections: int = 0,
    freezes: Sequence[Freeze] = (),
) -> WindowTerms:
    """The window's terms as the policy gate judges them (pure)."""
    return WindowTerms(
        window_id=window.id,
        state=window.state,
        start=window.start,
        last_start=window.last_start,
        end=window.end,
        targets=frozenset(h.target for h in window.plan.hosts),
        plan_hash=window.plan_hash,
        current_hash=current_hash,
        approvals_ok=approvals_ok,
        quorum=quorum,
        rejections=rejections,
        freezes=tuple(freeze_problems(window, freezes)),
    )


def run_refusal(
    window: Window,
    *,
    now: datetime,
    approvals_ok: int,
    quorum: int,
    current_hash: str,
    rejections: int = 0,
    freezes: Sequence[Freeze] = (),
) -> str | None:
    """Why the window may not run now (None when it may): the policy gate's rule. A
    verified rejection stops it whatever its ``state`` says; so does a freeze that
    overlaps it."""
    terms = window_terms(
        window,
        approvals_ok=approvals_ok,
        quorum=quorum,
        current_hash=current_hash,
        rejections=rejections,
        freezes=freezes,
    )
    return lease_refusal(terms, now)


def max_concurrency(window: Window) -> int:
    return resolve_amount(window.max_concurrency, len(window.plan.hosts), minimum=1)


def max_errors(window: Window) -> int:
    return resolve_amount(window.max_errors, len(window.plan.hosts), minimum=0)
