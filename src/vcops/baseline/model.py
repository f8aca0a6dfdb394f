"""What a control is: data plus a pure check over gathered facts.

A control has a stable id (``VC-SSH-003``), the Code of Practice clause it serves
(``3.2.1`` security measures, ``3.2.2`` update and patch), a severity, what it applies
to (server roles, or device platforms), a title, a rationale, the expected value
drawn from the baseline settings, and a pure ``check(facts, settings)``.

A check returns a :class:`CheckResult`. ``unknown`` means the facts needed are
missing (never a pass); ``not_applicable`` is reserved for what cannot exist on the
target, and always says why (for example "not applicable in a container: the kernel
has no audit support").

Example::

    Control(
        id="VC-SSH-001", clause="3.2.1", severity="high", kind="server", applies_to=ALL,
        title="SSH refuses passwords", rationale="...",
        expected=lambda s: "passwordauthentication no",
        check=check_password_auth,
    )
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

Clause = Literal["3.2.1", "3.2.2"]
Severity = Literal["critical", "high", "medium", "low"]
Status = Literal["pass", "fail", "unknown", "not_applicable"]
TargetKind = Literal["server", "device"]

SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
#: ``applies_to`` value meaning every role (servers) or every platform (devices).
ALL = frozenset({"*"})

FactsT = TypeVar("FactsT")
SettingsT = TypeVar("SettingsT")


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one control on one target.

    ``expected`` and ``actual`` are short human-readable strings and must never
    contain a secret value: say "set (hidden)" or "the stock default" instead.
    """

    status: Status
    expected: str
    actual: str
    detail: str = ""


def passed(expected: str, actual: str, detail: str = "") -> CheckResult:
    return CheckResult("pass", expected, actual, detail)


def failed(expected: str, actual: str, detail: str = "") -> CheckResult:
    return CheckResult("fail", expected, actual, detail)


def unknown(expected: str, why: str) -> CheckResult:
    return CheckResult("unknown", expected, "unknown", why)


def not_applicable(expected: str, why: str) -> CheckResult:
    return CheckResult("not_applicable", expected, "not applicable", why)


@dataclass(frozen=True)
class Control(Generic[FactsT, SettingsT]):
    """One baseline control. ``check`` is pure: facts and settings in, verdict out."""

    id: str
    clause: Clause
    severity: Severity
    kind: TargetKind
    applies_to: frozenset[str]
    title: str
    rationale: str
    expected: Callable[[SettingsT], str]
    check: Callable[[FactsT, SettingsT], CheckResult]

    def applies(self, labels: frozenset[str] | set[str]) -> bool:
        """Whether the control applies to a target with these roles (or this platform)."""
        return "*" in self.applies_to or bool(self.applies_to & set(labels))
