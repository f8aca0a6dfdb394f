"""What a window runner does next, from saved per-host progress: pure, so a runner killed
halfway resumes exactly where it stopped (finished hosts are never redone, a host that
was mid-flight is redone from its snapshot)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from vcops.window.model import HostPlan, Window
from vcops.window.rules import max_concurrency, max_errors, plan_batches

HostState = Literal["pending", "running", "done", "failed", "skipped"]


class HealthBefore(BaseModel):
    """How a host was before the window first touched it (kept for a resume)."""

    active: list[str]
    failed: list[str]
    sip: bool


class HostRecord(BaseModel):
    """One host's progress in a window, saved after every step."""

    target: str
    state: HostState = "pending"
    batch: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    #: One line for people: what happened or why it stopped.
    summary: str = ""
    #: Snapshot commit taken before the first change (kept across a resume: a rollback
    #: goes back to what the host was before the window touched it).
    before_rev: str | None = None
    after_rev: str | None = None
    step: str = ""
    attempts: int = 0
    health_before: HealthBefore | None = None
    installed: dict[str, str] = {}
    not_approved: dict[str, str] = {}
    #: Operations the baseline changed (``baseline`` windows).
    baseline: list[str] = []
    restarted: list[str] = []
    rebooted: bool = False
    drain: str = ""
    gate: list[str] = []
    rollback: str | None = None


class NextStep(BaseModel):
    action: Literal["start", "halt", "cutoff", "finish", "blocked"]
    hosts: list[str] = []
    reason: str = ""


def next_step(
    window: Window,
    progress: Mapping[str, HostRecord],
    now: datetime,
    unhealthy_groups: frozenset[str] = frozenset(),
) -> NextStep:
    """The next batch to start, or why nothing starts.

    ``unhealthy_groups`` are redundancy groups with a member that is down right now:
    no member of such a group starts (its peer is what carries the calls).
    """
    state = {
        h.target: progress.get(h.target, HostRecord(target=h.target)).state
        for h in window.plan.hosts
    }
    failed = [t for t, s in state.items() if s == "failed"]
    limit = max_errors(window)
    if failed and len(failed) >= max(limit, 1):
        return NextStep(
            action="halt",
            reason=f"{len(failed)} failed host(s) ({', '.join(failed)}) reached max errors {window.max_errors}",
        )
    remaining: list[HostPlan] = [
        h for h in window.plan.hosts if state[h.target] in {"pending", "running"}
    ]
    if not remaining:
        return NextStep(action="finish", reason="every host is done, failed or skipped")
    if now >= window.last_start:
        return NextStep(
            action="cutoff",
            hosts=[h.target for h in remaining],
            reason=f"past the cutoff {window.last_start.isoformat()}: {len(remaining)} host(s) not started",
        )
    failed_groups = {
        h.redundancy_group
        for h in window.plan.hosts
        if state[h.target] == "failed" and h.redundancy_group
    }
    blocked = failed_groups | set(unhealthy_groups)
    eligible = [h for h in remaining if not (h.redundancy_group and h.redundancy_group in blocked)]
    if not eligible:
        return NextStep(
            action="blocked",
            hosts=[h.target for h in remaining],
            reason=f"every remaining host has an unhealthy peer in {', '.join(sorted(blocked))}",
        )
    batch = plan_batches(eligible, max_concurrency(window))[0]
    return NextStep(action="start", hosts=batch)
