"""Server controls for integrity (AIDE, debsums), logging (rsyslog, journald) and the
audit rule groups beyond the watches (VC-AIDE-*, VC-LOG-*, VC-AUD-003).

Pure like :mod:`vcops.baseline.server`: facts and context in, a verdict out.
"""

from __future__ import annotations

import itertools
import re

from vcops.baseline.context import ServerContext
from vcops.baseline.model import CheckResult, failed, passed, unknown
from vcops.baseline.server import service_running
from vcops.facts.server import ServerFacts

AIDE_TIMER = "vcops-aide-check.timer"
DAY = 86400


# --- integrity -------------------------------------------------------------------


def check_aide_installed(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "aide and debsums installed, the AIDE database built"
    if facts.packages is None:
        return unknown(expected, "dpkg-query did not run")
    missing = [p for p in ("aide", "debsums") if p not in facts.packages]
    if missing:
        return failed(expected, f"not installed: {', '.join(missing)}")
    if facts.aide is None:
        return unknown(expected, "the AIDE database could not be looked at")
    if facts.aide.db_mtime is None:
        return failed(expected, "no AIDE database (/var/lib/aide/vcops.db)")
    return passed(expected, "installed, database built")


def check_aide_timer(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = f"{AIDE_TIMER} enabled and active (daily AIDE check)"
    timer = facts.service(AIDE_TIMER)
    if timer is None:
        return unknown(expected, "systemctl did not answer")
    if not timer.exists:
        return failed(expected, "no daily AIDE check timer")
    if timer.enabled and timer.running:
        return passed(expected, "enabled, active")
    return failed(expected, f"{timer.unit_file or 'not enabled'}, {timer.active}")


def _age(seconds: int) -> str:
    return f"{seconds // DAY} d" if seconds >= DAY else f"{seconds // 3600} h"


def check_aide_report(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    days = ctx.settings.aide_check_max_age_days
    expected = f"an AIDE check in the last {days} d found no changed files"
    aide = facts.aide
    if aide is None:
        return unknown(expected, "the AIDE report could not be read")
    if aide.db_mtime is None:
        return failed(expected, "no AIDE database, so no check")
    now = int(ctx.now.timestamp())
    if aide.report_mtime is None or aide.report_mtime < aide.db_mtime:
        # The database was (re)built after the last report: nothing to compare yet.
        built = max(now - aide.db_mtime, 0)
        if built <= days * DAY:
            return passed(
                expected,
                f"database built {_age(built)} ago after hardening; its first check is due",
            )
        return failed(expected, f"no AIDE check since the database was built {_age(built)} ago")
    age = max(now - aide.report_mtime, 0)
    if age > days * DAY:
        return failed(expected, f"last AIDE check {_age(age)} ago")
    differences = aide.differences
    if differences is None:
        return unknown(expected, "the last AIDE report has no summary (a check still running?)")
    if differences:
        return failed(
            expected,
            f"{differences} entries differ {_age(age)} ago: {aide.added} added, "
            f"{aide.removed} removed, {aide.changed} changed",
        )
    return passed(expected, f"last check {_age(age)} ago: no changes in {aide.entries} entries")


# --- logging ---------------------------------------------------------------------


def check_rsyslog(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    return service_running(facts, "rsyslog")


def check_syslog_forwarding(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    servers = ctx.settings.syslog_servers
    want = {(s.address, s.port, s.protocol) for s in servers}
    expected = (
        "forwards to " + ", ".join(f"{a}:{p}/{t}" for a, p, t in sorted(want))
        if want
        else "local only (no syslog_servers in the inventory)"
    )
    if facts.rsyslog_configured is None or facts.rsyslog_targets is None:
        return unknown(expected, "the rsyslog config could not be read")
    if not facts.rsyslog_configured:
        return failed(expected, "rsyslog is not configured (no /etc/rsyslog.conf)")
    have = {(t.address, t.port, t.protocol) for t in facts.rsyslog_targets}
    missing = sorted(want - have)
    extra = sorted(have - want)
    problems = [f"missing {a}:{p}/{t}" for a, p, t in missing]
    problems += [f"forwards to {a}:{p}/{t}, which the inventory does not name" for a, p, t in extra]
    if problems:
        return failed(expected, "; ".join(problems))
    return passed(expected, f"{len(have)} targets as expected" if have else "local only")


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^([0-9]{1,12})([KMGT]?)$")


def _bytes(size: str) -> int | None:
    match = _SIZE.match(size.strip().upper())
    if not match:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


def check_journald(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    limit = ctx.settings.journald_system_max_use
    expected = f"journald Storage=persistent, SystemMaxUse at most {limit}"
    if facts.journald is None:
        return unknown(expected, "systemd-analyze cat-config did not run")
    storage = facts.journald.get("Storage", "auto (default)")
    use = facts.journald.get("SystemMaxUse")
    problems = []
    if storage != "persistent":
        problems.append(f"Storage={storage}")
    size, most = _bytes(use or ""), _bytes(limit)
    if use is None:
        problems.append("SystemMaxUse not set")
    elif size is None or most is None or size > most:
        problems.append(f"SystemMaxUse={use}")
    if problems:
        return failed(expected, ", ".join(problems))
    return passed(expected, f"Storage=persistent, SystemMaxUse={use}")


# --- audit rule groups -------------------------------------------------------------

AUDIT_SYSCALLS: dict[str, frozenset[str]] = {
    "time changes": frozenset({"settimeofday", "clock_settime", "adjtimex"}),
    "module loading": frozenset({"init_module", "finit_module", "delete_module"}),
    "mounts": frozenset({"mount"}),
    "permission changes": frozenset({"chmod", "fchmodat", "chown", "fchownat"}),
}
"""Rule group -> syscalls the loaded (or on-disk) rules must audit between them."""


def _syscalls(rules: list[str]) -> set[str]:
    found: set[str] = set()
    for rule in rules:
        words = rule.split()
        for flag, value in itertools.pairwise(words):
            if flag == "-S":
                found.update(value.split(","))
    return found


def _audits_exec(rules: list[str], path: str) -> bool:
    for rule in rules:
        words = rule.split()
        if f"path={path}" in words and any(w in {"perm=x", "perm=rx", "perm=wx"} for w in words):
            return True
        if words[:2] == ["-w", path] and "x" in (
            words[words.index("-p") + 1] if "-p" in words else ""
        ):
            return True
    return False


def check_audit_coverage(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    commands = ctx.settings.audit_privileged_commands
    immutable = ctx.settings.audit_immutable
    expected = (
        f"audit rules for {len(commands)} privileged commands, time changes, module loading, "
        "mounts and permission changes" + (", immutable (-e 2)" if immutable else "")
    )
    rules = facts.audit_active_rules if facts.audit_active_rules else facts.audit_rule_files
    if rules is None:
        return unknown(expected, "no audit rules could be read")
    missing = [c for c in commands if not _audits_exec(rules, c)]
    calls = _syscalls(rules)
    missing += [group for group, wanted in AUDIT_SYSCALLS.items() if not wanted <= calls]
    if immutable and "-e 2" not in [" ".join(r.split()) for r in facts.audit_rule_files or []]:
        missing.append("-e 2 (immutable)")
    source = "loaded" if facts.audit_active_rules else "in /etc/audit/rules.d"
    if missing:
        return failed(expected, f"missing: {', '.join(missing)}")
    return passed(expected, f"all rule groups {source}")
