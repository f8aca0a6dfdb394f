"""The policy gate: production only under an approved, open window's lease or an emergency."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.notify_data import START, make_window
from vcops.errors import ApprovalError
from vcops.inventory.models import Server
from vcops.policy import Emergency, WindowLease, WindowTerms, authorize, lease_window
from vcops.store import Store, open_store
from vcops.window.model import plan_hash
from vcops.window.rules import window_terms

INSIDE = START + timedelta(minutes=10)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'vcops.db'}", tmp_path)


def server(name: str, environment: str = "production") -> Server:
    return Server(
        name=name, address="192.0.2.5", roles=["kamailio"], site="s1", environment=environment
    )


def terms(approvals: int = 2, quorum: int = 2, **window: object) -> WindowTerms:
    w = make_window(**window)
    return window_terms(w, approvals_ok=approvals, quorum=quorum, current_hash=plan_hash(w.plan))


def test_a_lease_comes_only_from_an_approved_window_that_is_open_now() -> None:
    lease = lease_window(terms(), now=INSIDE)
    assert lease.window_id == "W-20261201-ab12"
    assert lease.targets == {"kam-lon1-01", "ast-man1-01"}
    with pytest.raises(TypeError, match=r"issued only by vcops\.policy\.lease_window"):
        WindowLease("W-forged", frozenset({"kam-lon1-01"}), START, START, "0" * 64)
    with pytest.raises(TypeError):
        dataclasses.replace(lease, targets=frozenset({"everything"}))
    refused = {
        "1 valid approval(s); the change board requires 2": (terms(approvals=1), INSIDE),
        "opens at": (terms(), START - timedelta(minutes=1)),
        "past its cutoff": (terms(), START + timedelta(minutes=90)),
        "rejected by the change board": (terms(approvals=5, state="rejected"), INSIDE),
        "is halted": (terms(state="halted"), INSIDE),
        "the plan changed": (dataclasses.replace(terms(), current_hash="f" * 64), INSIDE),
    }
    for message, (t, now) in refused.items():
        with pytest.raises(ApprovalError, match=re.escape(message)):
            lease_window(t, now=now)


def test_production_needs_a_grant_and_the_allowed_change_is_recorded(store: Store) -> None:
    lab, prod = server("lab-01", "lab"), server("kam-lon1-01")
    assert authorize([lab], None, action="apply", audit=store).basis == "no production target"
    with pytest.raises(ApprovalError, match="kam-lon1-01: production is changed only by an"):
        authorize([lab, prod], None, action="apply", hint="or exclude them with --limit")
    with pytest.raises(ApprovalError, match="--emergency REASON"):
        authorize([prod], Emergency("   "), action="apply")
    assert store.audit_entries(action="policy.*") == []  # refusals: the caller records them

    decision = authorize([prod], Emergency("CVE exploited"), action="apply", audit=store)
    assert (decision.basis, decision.why, decision.production) == (
        "emergency",
        "CVE exploited",
        ("kam-lon1-01",),
    )
    lease = lease_window(terms(), now=INSIDE)
    assert authorize([prod], lease, action="window.install", audit=store).basis == "window"
    entries = store.audit_entries(action="policy.allow")
    assert [(e.target, e.detail["basis"], e.detail["why"]) for e in entries] == [
        ("apply", "emergency", "CVE exploited"),
        ("window.install", "window", "W-20261201-ab12"),
    ]


def test_a_lease_covers_only_its_own_windows_targets() -> None:
    lease = lease_window(terms(), now=INSIDE)
    with pytest.raises(ApprovalError, match="kam-lon1-02: not in window W-20261201-ab12"):
        authorize([server("kam-lon1-01"), server("kam-lon1-02")], lease, action="window.install")
