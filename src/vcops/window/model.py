"""The patch window: what it targets, when, how fast, what it does, and its plan.

Pure data and pure rules (no clock: ``now`` is a parameter). Example::

    Window(id="W-20261130-3f9a", title="December security updates", change_id="CHG-1042",
           requester="ops", targets="role:kamailio", start=..., duration_minutes=120,
           cutoff_minutes=30, max_concurrency="1", max_errors="1",
           actions="security-updates", reboot="if-needed", plan=Plan(...), plan_hash="...")
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

Action = Literal["security-updates", "all-updates", "baseline"]
Reboot = Literal["if-needed", "never", "always"]
State = Literal["pending", "approved", "rejected", "running", "finished", "halted", "expired"]
Decision = Literal["approve", "reject"]

_AMOUNT = re.compile(r"^([0-9]{1,9})(%?)$")
#: deb-version(7): [epoch:]upstream[-revision]; upstream starts with a digit.
_DEB_EPOCH_UPSTREAM = re.compile(r"(?:\d{1,9}:)?[0-9][A-Za-z0-9.+~:-]*")
_DEB_REVISION = re.compile(r"[A-Za-z0-9.+~]+")
_DEB_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]{0,127}")


def debian_version_problem(version: str) -> str | None:
    """Why ``version`` is not a Debian version (None when it is), e.g. ``1:2.3-4+deb12u1``."""
    if not version or len(version) > 256:
        return f"{version[:60]!r} is not a Debian version (empty or too long)"
    upstream, _, revision = version.rpartition("-") if "-" in version else (version, "", "")
    epoch_present = re.match(r"\d{1,9}:", upstream) is not None
    bare = upstream.split(":", 1)[1] if epoch_present else upstream
    if (
        not _DEB_EPOCH_UPSTREAM.fullmatch(upstream)
        or (":" in bare)
        or ("-" in version and not _DEB_REVISION.fullmatch(revision))
    ):
        return f"{version[:60]!r} is not a Debian version ([epoch:]upstream[-revision])"
    return None


def package_problems(host: HostPlan) -> list[str]:
    """Every package name or version in a host's plan that is not Debian's syntax."""
    problems = []
    for p in host.packages:
        if not _DEB_PACKAGE.fullmatch(p.package):
            problems.append(f"{host.target}: package name {p.package[:60]!r} is not valid")
        for what, version in (("target", p.target), ("current", p.current)):
            if what == "current" and not version:
                continue
            why = debian_version_problem(version)
            if why:
                problems.append(f"{host.target}: {p.package[:60]} {what} version {why}")
    return problems


class PackageChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    package: str
    current: str
    target: str
    security: bool


class HostPlan(BaseModel):
    """What a window will do to one host."""

    model_config = ConfigDict(frozen=True)

    target: str
    environment: str
    redundancy_group: str | None
    packages: list[PackageChange] = []
    baseline_changes: list[str] = []
    reboot_required: bool = False


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    actions: Action
    hosts: list[HostPlan]


def plan_hash(plan: Plan) -> str:
    """SHA-256 of the canonical JSON of the plan: what the board approves."""
    canonical = json.dumps(plan.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def terms_hash(window: Window) -> str:
    """SHA-256 of everything the board approves: the plan (hashed afresh, never the stored
    hash) and every term of the window (targets, times, cutoff, limits, actions, reboot
    policy, requester and the requester's key, change id, title). Left out: ``state``
    (it moves) and the requester's signature (it signs these terms)."""
    terms = window.model_dump(
        mode="json", exclude={"state", "plan", "plan_hash", "requester_signature"}
    )
    terms["plan_sha256"] = plan_hash(window.plan)
    canonical = json.dumps(terms, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_amount(text: str, *, what: str) -> str:
    """``2`` or ``25%``; returns it normalised."""
    m = _AMOUNT.match(text.strip())
    if (
        not m
        or (m[2] and not 0 < int(m[1]) <= 100)
        or (not m[2] and int(m[1]) < (0 if what == "max-errors" else 1))
    ):
        raise ValueError(f"{what} must be a count like 2 or a percentage like 25%")
    return f"{int(m[1])}{m[2]}"


def resolve_amount(amount: str, total: int, *, minimum: int) -> int:
    """A count, or a percentage of ``total`` rounded down but at least ``minimum``."""
    if amount.endswith("%"):
        return max(minimum, total * int(amount[:-1]) // 100)
    return int(amount)


def parse_duration(text: str) -> int:
    """``90m``, ``2h``, ``1h30m`` -> minutes."""
    m = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*", text)
    if not m or not (m[1] or m[2]):
        raise ValueError(f"invalid duration {text!r}: write it like 2h, 90m or 1h30m")
    return int(m[1] or 0) * 60 + int(m[2] or 0)


class Window(BaseModel):
    id: str
    title: str
    change_id: str
    requester: str
    targets: str
    start: datetime
    duration_minutes: int
    cutoff_minutes: int
    max_concurrency: str
    max_errors: str
    actions: Action
    reboot: Reboot
    plan: Plan
    plan_hash: str
    state: State = "pending"
    created_at: datetime
    #: The requester's SSH public key: who asked is this key, not the ``requester`` text.
    requester_key: str = ""
    #: The requester's signature over the terms (:mod:`vcops.window.request`).
    requester_signature: str = ""

    @field_validator("start", "created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("times must carry a timezone (for example 2026-12-01T22:00:00+00:00)")
        return value

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_minutes)

    @property
    def last_start(self) -> datetime:
        """No new host starts after this moment."""
        return self.end - timedelta(minutes=self.cutoff_minutes)

    @property
    def environments(self) -> set[str]:
        return {h.environment for h in self.plan.hosts}
