"""The runner's next step from saved progress: batches, resume, max errors, cutoff, peers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vcops.window.model import HostPlan, Plan, Window, plan_hash
from vcops.window.progress import HostRecord, next_step

NOW = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def w(max_errors: str = "1", concurrency: str = "2") -> Window:
    hosts = [
        HostPlan(target=t, environment="production", redundancy_group=g)
        for t, g in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B"))
    ]
    plan = Plan(actions="all-updates", hosts=hosts)
    return Window(
        id="W",
        title="t",
        change_id="c",
        requester="r",
        targets="all",
        start=NOW,
        duration_minutes=120,
        cutoff_minutes=30,
        max_concurrency=concurrency,
        max_errors=max_errors,
        actions="all-updates",
        reboot="never",
        plan=plan,
        plan_hash=plan_hash(plan),
        state="approved",
        created_at=NOW,
    )


def p(**states: str) -> dict[str, HostRecord]:
    return {t: HostRecord(target=t, state=s) for t, s in states.items()}  # type: ignore[arg-type]


def test_walks_the_batches_and_resumes_without_redoing_finished_hosts() -> None:
    win = w()
    assert next_step(win, {}, NOW).hosts == ["a1", "b1"]
    assert next_step(win, p(a1="done", b1="done"), NOW).hosts == ["a2", "b2"]
    # Killed while a2 was running: a2 is redone, a1/b1 are not.
    assert next_step(win, p(a1="done", b1="done", a2="running", b2="done"), NOW).hosts == ["a2"]
    assert next_step(win, p(a1="done", b1="done", a2="done", b2="done"), NOW).action == "finish"


def test_max_errors_halts_and_a_failed_member_blocks_its_peer() -> None:
    assert next_step(w(max_errors="1"), p(a1="failed", b1="done"), NOW).action == "halt"
    step = next_step(w(max_errors="2"), p(a1="failed", b1="done"), NOW)
    assert step.action == "start" and step.hosts == ["b2"]  # a2 waits: its peer a1 failed
    assert next_step(w(max_errors="3"), p(a1="failed", b1="failed"), NOW).action == "blocked"


def test_unhealthy_peers_and_cutoff() -> None:
    assert next_step(w(), {}, NOW, frozenset({"A"})).hosts == ["b1"]
    step = next_step(w(), p(a1="done"), NOW + timedelta(minutes=90))
    assert step.action == "cutoff" and step.hosts == ["a2", "b1", "b2"]
