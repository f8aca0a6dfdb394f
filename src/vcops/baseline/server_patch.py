"""Patch-source checks (3.2.2): can security updates reach the host at all?

VC-PATCH-001/002 pass only when they can: :func:`patch_gate` fails them, with the
reason, when the apt sources lack the security suite (or the configured mirror) or the
apt lists are stale, and makes them unknown when that could not be read. The sources,
the lists and needrestart are also controls of their own (VC-PATCH-005..008).
"""

from __future__ import annotations

import re

from vcops.baseline.context import ServerContext
from vcops.baseline.model import CheckResult, failed, passed, unknown
from vcops.facts.aptsources import missing_security
from vcops.facts.server import ServerFacts

_LIST_MODE = re.compile(r"""^\$nrconf\{restart\}\s*=\s*['"]l['"]\s*;""")


def sources_expected(ctx: ServerContext) -> str:
    mirror = ctx.settings.apt_security_mirror
    alt = f" or the mirror {mirror}" if mirror else ""
    return f"apt sources carry <codename>-security and <codename>-updates{alt}"


def sources_problem(facts: ServerFacts) -> tuple[str, str] | None:
    """Why the host's sources cannot be judged (``("unknown", why)``), else None."""
    if facts.apt_sources is None:
        return ("unknown", "the apt sources were not read")
    if not facts.os_codename:
        return ("unknown", "no VERSION_CODENAME in /etc/os-release")
    return None


def missing_sources(facts: ServerFacts, ctx: ServerContext) -> list[str]:
    assert facts.apt_sources is not None and facts.os_codename
    return missing_security(facts.apt_sources, facts.os_codename, ctx.settings.apt_security_mirror)


def _missing_reason(missing: list[str], ctx: ServerContext) -> str:
    mirror = ctx.settings.apt_security_mirror
    return (
        f"apt sources lack {', '.join(missing)}"
        + (f" and the mirror {mirror}" if mirror else "")
        + ": security updates cannot arrive"
    )


def lists_age_days(facts: ServerFacts) -> int | None:
    """Days since apt-get update last brought lists, by the host's own clock."""
    if facts.apt_lists_mtime is None or facts.now is None:
        return None
    return max(0, facts.now - facts.apt_lists_mtime) // 86400


def patch_gate(facts: ServerFacts, ctx: ServerContext, expected: str) -> CheckResult | None:
    """VC-PATCH-001/002 fail (or are unknown) when security updates cannot arrive."""
    problem = sources_problem(facts)
    if problem is not None:
        return unknown(expected, problem[1])
    reasons = []
    if missing := missing_sources(facts, ctx):
        reasons.append(_missing_reason(missing, ctx))
    age = lists_age_days(facts)
    if age is None:
        return unknown(expected, "the age of the apt lists was not read")
    limit = ctx.settings.apt_lists_max_age_days
    if facts.apt_lists_mtime == 0:
        reasons.append("no apt lists: apt-get update never succeeded")
    elif age > limit:
        reasons.append(f"apt lists {age} days old (limit {limit}): apt-get update is failing")
    return failed(expected, "; ".join(reasons)) if reasons else None


def check_security_sources(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = sources_expected(ctx)
    problem = sources_problem(facts)
    if problem is not None:
        return unknown(expected, problem[1])
    notes = f" ({'; '.join(facts.apt_sources_notes)})" if facts.apt_sources_notes else ""
    if missing := missing_sources(facts, ctx):
        return failed(expected, _missing_reason(missing, ctx) + notes)
    mirror = ctx.settings.apt_security_mirror
    live = [e for e in facts.apt_sources or [] if e.enabled and "deb" in e.types]
    uses_mirror = bool(mirror) and any(
        u.rstrip("/") == mirror.rstrip("/") for e in live for u in e.uris
    )
    return passed(
        expected,
        (f"mirror {mirror}" if uses_mirror else f"{facts.os_codename}-security and -updates")
        + notes,
    )


def check_apt_lists_fresh(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    limit = ctx.settings.apt_lists_max_age_days
    expected = f"apt lists refreshed within {limit} days"
    age = lists_age_days(facts)
    if age is None:
        return unknown(expected, "the age of the apt lists or the host clock was not read")
    if facts.apt_lists_mtime == 0:
        return failed(expected, "no apt lists: apt-get update never succeeded")
    return (failed if age > limit else passed)(expected, f"{age} days old")


def check_needrestart(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "needrestart installed, list mode ($nrconf{restart} = 'l')"
    if facts.packages is None or facts.needrestart_conf is None:
        return unknown(expected, "dpkg-query or the needrestart config was not read")
    if "needrestart" not in facts.packages:
        return failed(expected, "needrestart is not installed")
    if not any(_LIST_MODE.match(line) for line in facts.needrestart_conf):
        return failed(expected, "restart mode not set to list (l) in /etc/needrestart/conf.d")
    return passed(expected, "installed, list mode")


def check_outdated_services(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "no service running outdated libraries (needrestart)"
    if facts.needrestart_services is None:
        why = facts.needrestart_error or "needrestart did not run"
        return unknown(expected, why)
    services = facts.needrestart_services
    if services:
        shown = ", ".join(services[:8]) + (" ..." if len(services) > 8 else "")
        return failed(expected, f"{len(services)} running outdated libraries: {shown}")
    return passed(expected, "none")
