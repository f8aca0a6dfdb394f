"""Patch-window rules: plan hash, batches that respect redundancy groups, amounts, creation
checks (freezes, times), and when a window may run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vcops.inventory.models import Freeze
from vcops.window.model import (
    HostPlan,
    PackageChange,
    Plan,
    Window,
    debian_version_problem,
    package_problems,
    parse_amount,
    parse_duration,
    plan_hash,
    resolve_amount,
)
from vcops.window.rules import creation_problems, plan_batches, run_refusal

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def host(name: str, rg: str | None = None, env: str = "production") -> HostPlan:
    return HostPlan(
        target=name,
        environment=env,
        redundancy_group=rg,
        packages=[PackageChange(package="openssl", current="1", target="2", security=True)],
    )


def window(**kw: object) -> Window:
    plan = Plan(
        actions="security-updates",
        hosts=[host("a1", "A"), host("a2", "A"), host("b1", "B"), host("b2", "B")],
    )
    base: dict[str, object] = dict(
        id="W-1",
        title="t",
        change_id="CHG-1",
        requester="ops",
        targets="all",
        start=NOW + timedelta(hours=1),
        duration_minutes=120,
        cutoff_minutes=30,
        max_concurrency="2",
        max_errors="1",
        actions="security-updates",
        reboot="if-needed",
        plan=plan,
        plan_hash=plan_hash(plan),
        created_at=NOW,
    )
    return Window.model_validate(base | kw)


def test_plan_hash_is_stable_and_covers_every_field() -> None:
    w = window()
    assert plan_hash(w.plan) == w.plan_hash
    tampered = w.plan.model_copy(
        update={"hosts": [*w.plan.hosts[:3], host("b2", "B").model_copy(update={"packages": []})]}
    )
    assert plan_hash(tampered) != w.plan_hash


@pytest.mark.parametrize("concurrency", [1, 2, 3, 4, 10])
def test_batches_never_hold_two_members_of_a_redundancy_group(concurrency: int) -> None:
    hosts = [
        host("a1", "A"),
        host("a2", "A"),
        host("b1", "B"),
        host("b2", "B"),
        host("c1"),
        host("c2"),
    ]
    batches = plan_batches(hosts, concurrency)
    assert sorted(t for b in batches for t in b) == sorted(h.target for h in hosts)
    groups = {h.target: h.redundancy_group for h in hosts}
    for batch in batches:
        assert len(batch) <= concurrency
        rgs = [groups[t] for t in batch if groups[t]]
        assert len(rgs) == len(set(rgs)), batch
    if concurrency == 2:
        assert batches == [["a1", "b1"], ["a2", "b2"], ["c1", "c2"]]


def test_amounts_and_durations() -> None:
    assert parse_amount("25%", what="max-concurrency") == "25%"
    assert resolve_amount("25%", 10, minimum=1) == 2 and resolve_amount("10%", 3, minimum=1) == 1
    assert resolve_amount("10%", 3, minimum=0) == 0 and resolve_amount("3", 10, minimum=1) == 3
    for bad in ("0", "150%", "x", "-1", "\u00b2", "\u0661\u0660", "1" * 400):
        with pytest.raises(ValueError):
            parse_amount(bad, what="max-concurrency")
    assert parse_amount("0", what="max-errors") == "0"
    assert (
        parse_duration("1h30m") == 90
        and parse_duration("2h") == 120
        and parse_duration("45m") == 45
    )
    with pytest.raises(ValueError):
        parse_duration("2 hours")


def test_creation_checks() -> None:
    freeze = Freeze(
        name="xmas",
        start=NOW + timedelta(days=1),
        end=NOW + timedelta(days=3),
        reason="peak",
        environments=["production"],
    )
    hosts = [host("a1", "A")]
    ok = creation_problems(
        start=NOW + timedelta(hours=2),
        duration_minutes=120,
        cutoff_minutes=30,
        now=NOW,
        hosts=hosts,
        freezes=[freeze],
    )
    assert ok == []
    frozen = creation_problems(
        start=NOW + timedelta(days=2),
        duration_minutes=120,
        cutoff_minutes=30,
        now=NOW,
        hosts=hosts,
        freezes=[freeze],
    )
    assert len(frozen) == 1 and "overlaps freeze 'xmas'" in frozen[0]
    staging = creation_problems(
        start=NOW + timedelta(days=2),
        duration_minutes=120,
        cutoff_minutes=30,
        now=NOW,
        hosts=[host("s1", env="staging")],
        freezes=[freeze],
    )
    assert staging == []  # the freeze covers production only
    bad = creation_problems(
        start=NOW - timedelta(hours=5),
        duration_minutes=60,
        cutoff_minutes=60,
        now=NOW,
        hosts=[],
        freezes=[],
    )
    assert (
        any("cutoff" in p for p in bad)
        and any("already over" in p for p in bad)
        and any("no existing target" in p for p in bad)
    )
    assert any(
        "ends before it starts" in p
        for p in creation_problems(
            start=NOW, duration_minutes=0, cutoff_minutes=0, now=NOW, hosts=hosts, freezes=[]
        )
    )


def test_run_refusals() -> None:
    w = window(state="approved")
    inside = w.start + timedelta(minutes=10)
    assert run_refusal(w, now=inside, approvals_ok=2, quorum=2, current_hash=w.plan_hash) is None
    assert "requires 2" in str(
        run_refusal(w, now=inside, approvals_ok=1, quorum=2, current_hash=w.plan_hash)
    )
    assert "opens at" in str(
        run_refusal(
            w,
            now=w.start - timedelta(minutes=1),
            approvals_ok=2,
            quorum=2,
            current_hash=w.plan_hash,
        )
    )
    assert "cutoff" in str(
        run_refusal(w, now=w.last_start, approvals_ok=2, quorum=2, current_hash=w.plan_hash)
    )
    assert "plan changed" in str(
        run_refusal(w, now=inside, approvals_ok=2, quorum=2, current_hash="0" * 64)
    )
    rejected = window(state="rejected")
    assert "can never run" in str(
        run_refusal(rejected, now=inside, approvals_ok=5, quorum=2, current_hash=w.plan_hash)
    )


def test_times_need_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        window(start=datetime(2026, 12, 1, 22, 0))


@pytest.mark.parametrize(
    "version",
    ["1", "2.36-9+deb12u7", "1:9.2p1-2+deb12u3", "3.0.15-1~deb12u1", "20.0.0~rc1+dfsg-1", "0.9.8"],
)
def test_debian_versions_are_accepted(version: str) -> None:
    assert debian_version_problem(version) is None


@pytest.mark.parametrize(
    "version",
    [
        "",
        "1.0; rm -rf /",
        "1.0 -o Dpkg::Options::=--force-all",
        "$(id)",
        "a1.0",
        "1.0-",
        "1.0-rev/x",
        "1:2:3",
        "x:1.0",
        "1.0\n2.0",
        "9" * 300,
    ],
)
def test_other_versions_are_refused_at_creation(version: str) -> None:
    assert debian_version_problem(version) is not None
    bad = HostPlan(
        target="kam-01",
        environment="production",
        redundancy_group=None,
        packages=[
            PackageChange(package="openssl", current="3.0.11-1", target=version, security=True)
        ],
    )
    problems = creation_problems(
        start=NOW + timedelta(hours=1),
        duration_minutes=60,
        cutoff_minutes=10,
        now=NOW,
        hosts=[bad],
        freezes=[],
    )
    assert any(p.startswith("kam-01: openssl target version") for p in problems), problems


def test_a_package_name_that_is_not_debians_is_refused() -> None:
    bad = HostPlan(
        target="kam-01",
        environment="production",
        redundancy_group=None,
        packages=[PackageChange(package="-oAPT::x", current="1", target="2", security=True)],
    )
    assert any("package name" in p for p in package_problems(bad))


def test_a_verified_rejection_or_a_freeze_refuses_the_run() -> None:
    w = window(state="approved", start=NOW - timedelta(minutes=5))
    ok = dict(now=NOW, approvals_ok=2, quorum=2, current_hash=w.plan_hash)
    assert run_refusal(w, **ok) is None  # type: ignore[arg-type]
    assert "rejected" in str(run_refusal(w, rejections=1, **ok))  # type: ignore[arg-type]
    freeze = Freeze(name="f", start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1))
    assert "overlaps freeze 'f'" in str(run_refusal(w, freezes=[freeze], **ok))  # type: ignore[arg-type]
