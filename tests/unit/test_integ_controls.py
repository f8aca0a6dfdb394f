"""Integrity, logging and audit-coverage controls (VC-AIDE-*, VC-LOG-*, VC-AUD-003):
parsers, checks on compliant / non-compliant / missing facts, and the rendered files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vcops.baseline.context import ServerContext
from vcops.baseline.model import CheckResult
from vcops.baseline.server_catalog import SERVER_CONTROLS
from vcops.baseline.settings import DEFAULT_SETTINGS, BaselineSettings, SyslogServer
from vcops.enforce.files import HostState
from vcops.enforce.pyinfra_deploy import audit_immutable
from vcops.enforce.render import area_files
from vcops.enforce.vars import vars_from_settings
from vcops.facts.integ import (
    AideState,
    SyslogTarget,
    integ_facts,
    parse_aide,
    parse_journald,
    parse_syslog_targets,
)
from vcops.facts.sections import ServiceState
from vcops.facts.server import ServerFacts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
HOUR = 3600
CONTROLS = {c.id: c for c in SERVER_CONTROLS}

CLEAN = """db 1
report 2
Start timestamp: 2026-11-30 10:00:00 +0000 (AIDE 0.18.3)
AIDE found NO differences between database and filesystem. Looks okay!!

Number of entries:\t14021
"""
DIRTY = """db 1
report 2
Start timestamp: 2026-11-30 10:00:00 +0000 (AIDE 0.18.3)
AIDE found differences between database and filesystem!!

Summary:
  Total number of entries:\t14022
  Added entries:\t\t1
  Removed entries:\t\t0
  Changed entries:\t\t2

---------------------------------------------------
Added entries:
---------------------------------------------------

f+++++++++++++++++: /usr/bin/Changed entries: 99
"""
RULES = [
    "-a always,exit -S all -F path=/usr/bin/sudo -F perm=x -F auid!=-1 -F key=privileged",
    "-a always,exit -S all -F path=/usr/bin/su -F perm=x -F auid!=-1 -F key=privileged",
    "-a always,exit -S all -F path=/usr/bin/passwd -F perm=x -F auid!=-1 -F key=privileged",
    "-a always,exit -S all -F path=/usr/bin/chsh -F perm=x -F auid!=-1 -F key=privileged",
    "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -F key=time-change",
    "-a always,exit -F arch=b64 -S init_module,delete_module,finit_module -F key=modules",
    "-a always,exit -F arch=b64 -S mount,umount2 -F auid!=-1 -F key=mounts",
    "-a always,exit -F arch=b64 -S chmod,fchmod,chown,fchown,lchown,fchownat,fchmodat "
    "-F auid!=-1 -F key=perm_mod",
]


def ctx(**settings: object) -> ServerContext:
    base = BaselineSettings.model_validate({**DEFAULT_SETTINGS.model_dump(), **settings})
    return ServerContext(
        settings=base, roles=frozenset({"generic"}), management_networks=(), now=NOW
    )


def check(control: str, facts: ServerFacts, **settings: object) -> CheckResult:
    return CONTROLS[control].check(facts, ctx(**settings))


def unit(active: str = "active", enabled: str = "enabled", load: str = "loaded") -> ServiceState:
    return ServiceState(load=load, active=active, sub="running", unit_file=enabled)


PKGS = {"aide": "0.18.3-1", "debsums": "3.0.2.1", "rsyslog": "8.2302.0-1"}


# --- parsers -----------------------------------------------------------------------


def test_aide_report_summary_is_parsed_and_bounded_to_its_header() -> None:
    clean = parse_aide(CLEAN)
    assert (clean.db_mtime, clean.report_mtime, clean.clean) == (1, 2, True)
    assert clean.differences == 0 and clean.entries == 14021
    dirty = parse_aide(DIRTY)
    # a file name that looks like a summary line does not override the summary
    assert (dirty.added, dirty.removed, dirty.changed, dirty.differences) == (1, 0, 2, 3)
    missing = parse_aide("db none\nreport none\n")
    assert missing.db_mtime is None and missing.report_mtime is None
    assert parse_aide("db 1\nreport 2\nStart timestamp: x\n").differences is None  # cut short
    assert parse_aide("db 99999999999999999999999\n").db_mtime is None  # too long


def test_journald_last_setting_wins_and_comments_are_ignored() -> None:
    text = (
        "# /etc/systemd/journald.conf\n[Journal]\n#Storage=auto\nStorage=volatile\n"
        "# /etc/systemd/journald.conf.d/90-vcops.conf\n[Journal]\nStorage=persistent\n"
        "SystemMaxUse=512M\n[Other]\nStorage=none\n"
    )
    assert parse_journald(text) == {"Storage": "persistent", "SystemMaxUse": "512M"}


def test_syslog_targets_from_actions_and_legacy_lines() -> None:
    text = (
        '*.* action(type="omfwd" target="10.0.0.5" port="6514" protocol="tcp"\n'
        '    StreamDriver="gtls" StreamDriverMode="1")\n'
        '# *.* action(type="omfwd" target="10.9.9.9")\n'
        '*.* action(type="omfile" file="/var/log/x")\n'
        "auth.* @@logs.example.net:1514\n*.* @10.0.0.7\n"
    )
    assert parse_syslog_targets(text) == [
        SyslogTarget(address="10.0.0.5", port=6514, protocol="tls", tls=True),
        SyslogTarget(address="logs.example.net", port=1514, protocol="tcp"),
        SyslogTarget(address="10.0.0.7", port=514, protocol="udp"),
    ]


def test_failed_sections_leave_the_fields_unknown() -> None:
    got = integ_facts({"aide": (1, ""), "journald": (1, "no such verb"), "rsyslog_conf": (1, "")})
    assert got == {}
    absent = integ_facts({"rsyslog_conf": (3, "no /etc/rsyslog.conf\n")})
    assert absent == {"rsyslog_configured": False, "rsyslog_targets": []}


# --- VC-AIDE -----------------------------------------------------------------------


def test_aide_installed() -> None:
    built = AideState(db_mtime=T - HOUR)
    assert check("VC-AIDE-001", ServerFacts(packages=PKGS, aide=built)).status == "pass"
    no_db = ServerFacts(packages=PKGS, aide=AideState())
    assert check("VC-AIDE-001", no_db).status == "fail"
    stock = ServerFacts(packages={"rsyslog": "1"}, aide=AideState())
    assert "aide, debsums" in check("VC-AIDE-001", stock).actual
    assert check("VC-AIDE-001", ServerFacts(packages=PKGS)).status == "unknown"


def test_aide_timer() -> None:
    ok = ServerFacts(services={"vcops-aide-check.timer": unit()})
    assert check("VC-AIDE-002", ok).status == "pass"
    off = ServerFacts(services={"vcops-aide-check.timer": unit("inactive", "disabled")})
    assert check("VC-AIDE-002", off).status == "fail"
    none = ServerFacts(services={"vcops-aide-check.timer": unit("inactive", "", "not-found")})
    assert check("VC-AIDE-002", none).actual == "no daily AIDE check timer"


@pytest.mark.parametrize(
    ("aide", "status", "needle"),
    [
        (AideState(db_mtime=T - 30 * HOUR, report_mtime=T - HOUR, clean=True, entries=9),
         "pass", "no changes in 9 entries"),
        (AideState(db_mtime=T - HOUR), "pass", "first check is due"),
        (AideState(db_mtime=T - 3 * 86400), "fail", "no AIDE check since"),
        (AideState(db_mtime=T - 9 * 86400, report_mtime=T - 5 * 86400, clean=True),
         "fail", "last AIDE check 5 d ago"),
        # a report older than the database belongs to the previous database
        (AideState(db_mtime=T - HOUR, report_mtime=T - 2 * HOUR, clean=False, added=4,
                   removed=0, changed=0), "pass", "first check is due"),
        (AideState(db_mtime=T - 30 * HOUR, report_mtime=T - HOUR, clean=False, added=1,
                   removed=0, changed=2), "fail", "3 entries differ"),
        (AideState(db_mtime=T - 30 * HOUR, report_mtime=T - HOUR), "unknown", ""),
        (AideState(), "fail", "no AIDE database"),
    ],
)  # fmt: skip
def test_aide_report(aide: AideState, status: str, needle: str) -> None:
    result = check("VC-AIDE-003", ServerFacts(aide=aide))
    assert result.status == status and needle in result.actual + result.detail


def test_aide_report_age_follows_the_setting() -> None:
    aide = AideState(db_mtime=T - 9 * 86400, report_mtime=T - 5 * 86400, clean=True)
    assert check("VC-AIDE-003", ServerFacts(aide=aide), aide_check_max_age_days=7).status == "pass"
    assert check("VC-AIDE-003", ServerFacts()).status == "unknown"


# --- VC-LOG ------------------------------------------------------------------------


def test_rsyslog_running() -> None:
    ok = ServerFacts(packages=PKGS, services={"rsyslog.service": unit()})
    assert check("VC-LOG-001", ok).status == "pass"
    stopped = ServerFacts(packages=PKGS, services={"rsyslog.service": unit("failed")})
    assert check("VC-LOG-001", stopped).status == "fail"
    assert check("VC-LOG-001", ServerFacts(packages={})).status == "fail"
    assert check("VC-LOG-001", ServerFacts(packages=PKGS)).status == "unknown"


def test_syslog_forwarding_matches_the_inventory() -> None:
    tls = SyslogServer(address="10.0.0.5", port=6514, protocol="tls", permitted_peer="logs")
    want = [tls.model_dump()]
    local = ServerFacts(rsyslog_configured=True, rsyslog_targets=[])
    assert check("VC-LOG-002", local).status == "pass"  # no servers: local only
    assert check("VC-LOG-002", local, syslog_servers=want).status == "fail"
    sent = SyslogTarget(address="10.0.0.5", port=6514, protocol="tls", tls=True)
    sending = ServerFacts(rsyslog_configured=True, rsyslog_targets=[sent])
    assert check("VC-LOG-002", sending, syslog_servers=want).status == "pass"
    # the same target in clear text is not the TLS target the inventory asks for
    plain = SyslogTarget(address="10.0.0.5", port=6514, protocol="tcp")
    clear = ServerFacts(rsyslog_configured=True, rsyslog_targets=[plain])
    assert check("VC-LOG-002", clear, syslog_servers=want).status == "fail"
    # a target the inventory does not name is drift (logs leak)
    assert "does not name" in check("VC-LOG-002", sending).actual
    stock = ServerFacts(rsyslog_configured=False, rsyslog_targets=[])
    assert check("VC-LOG-002", stock).status == "fail"
    assert check("VC-LOG-002", ServerFacts()).status == "unknown"


@pytest.mark.parametrize(
    ("journald", "status"),
    [
        ({"Storage": "persistent", "SystemMaxUse": "512M"}, "pass"),
        ({"Storage": "persistent", "SystemMaxUse": "100M"}, "pass"),
        ({"Storage": "persistent", "SystemMaxUse": "2G"}, "fail"),
        ({"Storage": "persistent", "SystemMaxUse": "lots"}, "fail"),
        ({"Storage": "persistent"}, "fail"),
        ({"SystemMaxUse": "512M"}, "fail"),
        ({}, "fail"),
        (None, "unknown"),
    ],
)
def test_journald(journald: dict[str, str] | None, status: str) -> None:
    assert check("VC-LOG-003", ServerFacts(journald=journald)).status == status


# --- VC-AUD-003 --------------------------------------------------------------------


def test_audit_coverage_loaded_or_on_disk() -> None:
    assert check("VC-AUD-003", ServerFacts(audit_active_rules=RULES)).status == "pass"
    on_disk = check("VC-AUD-003", ServerFacts(audit_rule_files=RULES))
    assert on_disk.status == "pass" and "rules.d" in on_disk.actual
    partial = check("VC-AUD-003", ServerFacts(audit_rule_files=RULES[1:-1]))
    assert partial.status == "fail"
    assert partial.actual == "missing: /usr/bin/sudo, permission changes"
    assert check("VC-AUD-003", ServerFacts()).status == "unknown"


def test_audit_immutable_is_opt_in() -> None:
    facts = ServerFacts(audit_rule_files=RULES)
    assert check("VC-AUD-003", facts, audit_immutable=True).status == "fail"
    locked = ServerFacts(audit_rule_files=[*RULES, "-e  2"])
    assert check("VC-AUD-003", locked, audit_immutable=True).status == "pass"
    assert audit_immutable("enabled 2\nfailure 1\n") and not audit_immutable("enabled 1\n")


# --- enforcement: the same files for both engines ----------------------------------


def _vars(**settings: object) -> dict[str, object]:
    base = BaselineSettings.model_validate({**DEFAULT_SETTINGS.model_dump(), **settings})
    return dict(vars_from_settings(base, ["generic"], ["10.0.0.0/8"], None, "gen-01"))


def test_integrity_files_are_validated_and_exclude_what_changes() -> None:
    files = {f.path: f for f in area_files("integrity", _vars(), HostState())}  # type: ignore[arg-type]
    conf = files["/etc/aide/vcops.conf"]
    assert conf.validate == ("aide", "--config-check", "--config=%s") and conf.mode == "0600"
    for path in ("/etc/vcops/.*", "/var/log", "/var/lib/apt", "/var/cache", "/proc", "/sys"):
        assert f"\n!{path}\n" in conf.content
    assert "\n!/etc/vcops\n" not in conf.content  # (AIDE regexes: it also left out /etc/vcops-x)
    assert "\n/etc VCOPS\n" in conf.content and "\n/ VCOPS\n" not in conf.content
    update = files["/usr/local/sbin/vcops-aide-update"].content
    assert "-cnewer" in update and "'/etc' '/usr'" in update
    assert "OnCalendar=daily" in files["/etc/systemd/system/vcops-aide-check.timer"].content
    service = files["/etc/systemd/system/vcops-aide-check.service"].content
    assert "SuccessExitStatus=1 2 3 4 5 6 7" in service
    # only a check writes the report the scan reads: a build must not replace it
    assert "report_url=file" not in conf.content
    assert "--check --after=report_url=file:/var/log/aide/vcops-check.log" in service


def test_logging_files_forward_only_to_inventory_targets() -> None:
    local = {f.path: f for f in area_files("logging", _vars(), HostState())}  # type: ignore[arg-type]
    rsyslog = local["/etc/rsyslog.d/90-vcops.conf"]
    assert "action(" not in rsyslog.content and rsyslog.validate is None
    journald = local["/etc/systemd/journald.conf.d/90-vcops.conf"].content
    assert "Storage=persistent\nSystemMaxUse=512M\n" in journald
    servers = [
        {"address": "10.0.0.5", "protocol": "tls", "port": 6514, "permitted_peer": "logs"},
        {"address": "10.0.0.6"},
    ]
    sending = area_files("logging", _vars(syslog_servers=servers), HostState())  # type: ignore[arg-type]
    text = sending[0].content
    assert sending[0].validate == ("rsyslogd", "-N1", "-f", "%s")
    assert parse_syslog_targets(text) == [
        SyslogTarget(address="10.0.0.5", port=6514, protocol="tls", tls=True),
        SyslogTarget(address="10.0.0.6", port=514, protocol="udp"),
    ]
    assert 'StreamDriverPermittedPeers="logs"' in text


def test_audit_rules_cover_the_groups_the_check_wants() -> None:
    (rules,) = area_files("audit", _vars(audit_immutable=True), HostState())  # type: ignore[arg-type]
    lines = [ln for ln in rules.content.splitlines() if ln and not ln.startswith("#")]
    facts = ServerFacts(audit_rule_files=lines)
    assert check("VC-AUD-003", facts, audit_immutable=True).status == "pass"
    assert lines[-1] == "-e 2"
    (plain,) = area_files("audit", _vars(), HostState())  # type: ignore[arg-type]
    assert "-e 2" not in plain.content
