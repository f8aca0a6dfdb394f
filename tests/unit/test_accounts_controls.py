"""The accounts controls (VC-PAM-*, VC-ACC-*, VC-SUDO-*, VC-CRON-*) on real captures.

``stock_kamailio.txt`` holds the ``acc_*`` sections of the stock lab image and
``hardened_kamailio.txt`` those of the same image after the accounts area's files and
commands (``make_hardened.py``): every control fails on the first, passes on the
second, and is *unknown* (never pass) when its facts are missing.
"""

from __future__ import annotations

import pytest

from tests.unit.test_server_facts import MGMT, NOW, facts
from vcops.baseline.context import ServerContext
from vcops.baseline.server_accounts import sudo_defaults, umask_covers
from vcops.baseline.server_catalog import SERVER_CONTROLS
from vcops.baseline.settings import DEFAULT_SETTINGS, settings_for
from vcops.enforce.accounts import mode_fixes, pam_current, pam_rules, root_age_needed
from vcops.enforce.vars import vars_from_settings
from vcops.facts.accounts import AccountsFacts, parse_accounts, parse_pam_lines
from vcops.facts.server import ServerFacts

PREFIXES = ("VC-PAM-", "VC-ACC-", "VC-SUDO-", "VC-CRON-")
CONTROLS = {c.id: c for c in SERVER_CONTROLS if c.id.startswith(PREFIXES)}
CTX = ServerContext(
    settings=DEFAULT_SETTINGS, roles=frozenset({"generic"}), management_networks=MGMT, now=NOW
)
VARS = vars_from_settings(DEFAULT_SETTINGS, ["generic"], [], None, "h")


def _status(control_id: str, f: ServerFacts, ctx: ServerContext = CTX) -> str:
    return CONTROLS[control_id].check(f, ctx).status


def _with(f: ServerFacts, **changes: object) -> ServerFacts:
    assert f.accounts is not None
    return f.model_copy(update={"accounts": f.accounts.model_copy(update=changes)})


def test_fourteen_controls_with_stable_ids() -> None:
    assert sorted(CONTROLS) == sorted(
        [f"VC-PAM-00{i}" for i in range(1, 5)]
        + [f"VC-ACC-00{i}" for i in range(1, 6)]
        + ["VC-SUDO-001", "VC-SUDO-002"]
        + [f"VC-CRON-00{i}" for i in range(1, 4)]
    )


@pytest.mark.parametrize("control_id", sorted(CONTROLS))
def test_stock_fails_hardened_passes_missing_is_unknown(control_id: str) -> None:
    assert _status(control_id, facts("stock_kamailio")) == "fail"
    assert _status(control_id, facts("hardened_kamailio")) == "pass"
    assert _status(control_id, ServerFacts()) == "unknown"
    # the accounts sections ran, but each part's own data is missing: still unknown
    partial = facts("hardened_kamailio").model_copy(
        update={"accounts": AccountsFacts(), "packages": None}
    )
    assert _status(control_id, partial) == "unknown"


def test_expected_values_come_from_the_settings_and_follow_overrides() -> None:
    strict = settings_for({"baseline_pwquality_minlen": 20, "baseline_faillock_deny": 3})
    ctx = ServerContext(
        settings=strict, roles=frozenset({"generic"}), management_networks=MGMT, now=NOW
    )
    hardened = facts("hardened_kamailio")
    assert "minlen >= 20" in CONTROLS["VC-PAM-001"].check(hardened, ctx).expected
    assert _status("VC-PAM-001", hardened, ctx) == "fail"  # 14 < 20
    assert _status("VC-PAM-002", hardened, ctx) == "fail"  # deny 5 > 3
    assert VARS["vcops_accounts_pwquality_minlen"] == DEFAULT_SETTINGS.pwquality_minlen


def test_module_arguments_override_the_config_files() -> None:
    hardened = facts("hardened_kamailio")
    weak_conf = _with(hardened, pwquality_conf={"minlen": "6"}, faillock_conf={"deny": "50"})
    assert _status("VC-PAM-001", weak_conf) == "pass"  # minlen=14 on the module line wins
    assert _status("VC-PAM-002", weak_conf) == "pass"
    assert hardened.accounts is not None and hardened.accounts.pam is not None
    pam = dict(hardened.accounts.pam)
    pam["common-auth"] = [
        r for r in pam["common-auth"] if not (r.module == "pam_faillock.so" and r.flag("preauth"))
    ]
    assert _status("VC-PAM-002", _with(hardened, pam=pam)) == "fail"  # no preauth
    never = _with(hardened, faillock_conf={"unlock_time": "never"})
    pam_no_args = parse_pam_lines(
        "/etc/pam.d/common-auth:auth requisite pam_faillock.so preauth\n"
        "/etc/pam.d/common-auth:auth [default=die] pam_faillock.so authfail\n"
    )
    never = _with(
        never, pam={**pam, **pam_no_args}, faillock_conf={"deny": "4", "unlock_time": "never"}
    )
    assert _status("VC-PAM-002", never) == "pass"  # unlock_time never = 0, stricter


def test_pam_control_brackets_keep_their_spaces() -> None:
    rules = parse_pam_lines(
        "/etc/pam.d/common-auth:auth\t[success=2 default=ignore]\tpam_unix.so nullok\n"
        "grep: /etc/pam.d/common-session: No such file or directory\n"
    )
    [rule] = rules["common-auth"]
    assert (rule.control, rule.module, rule.args) == (
        "[success=2 default=ignore]",
        "pam_unix.so",
        ["nullok"],
    )


def test_sudo_defaults_last_setting_wins_and_skipped_files_do_not_count() -> None:
    lines = [
        ("/etc/sudoers", "Defaults env_reset, use_pty"),
        ("/etc/sudoers.d/vcops-defaults", 'Defaults logfile="/var/log/sudo.log", umask=0077'),
        ("/etc/sudoers.d/zz-local", "Defaults !use_pty"),
        ("/etc/sudoers.d/old.bak", "Defaults ignore_dot"),  # sudo skips names with a dot
    ]
    state = sudo_defaults(lines)
    assert state["use_pty"] is False and "ignore_dot" not in state
    assert state["logfile"] == "/var/log/sudo.log" and state["umask"] == "0077"
    hardened = facts("hardened_kamailio")
    assert hardened.accounts is not None and hardened.accounts.sudo_defaults is not None
    overridden = [*hardened.accounts.sudo_defaults, ("/etc/sudoers.d/zz", "Defaults !use_pty")]
    assert _status("VC-SUDO-001", _with(hardened, sudo_defaults=overridden)) == "fail"
    broken = _with(hardened, visudo_ok=False, visudo_error="/etc/sudoers.d/x: syntax error")
    assert _status("VC-SUDO-002", broken) == "fail"


def test_umask_must_mask_at_least_the_wanted_bits() -> None:
    assert umask_covers("077", "027") and umask_covers("0027", "027")
    assert not umask_covers("022", "027") and not umask_covers("0x7", "027")


def test_tmout_must_be_set_low_and_read_only() -> None:
    hardened = facts("hardened_kamailio")
    writable = [("/etc/profile.d/t.sh", "TMOUT=600"), ("/etc/profile.d/t.sh", "export TMOUT")]
    assert _status("VC-ACC-005", _with(hardened, tmout_lines=writable)) == "fail"
    too_long = [("/etc/profile.d/t.sh", "readonly TMOUT=3600")]
    assert _status("VC-ACC-005", _with(hardened, tmout_lines=too_long)) == "fail"
    declared = [("/etc/profile.d/t.sh", "TMOUT=600; declare -r TMOUT")]
    assert _status("VC-ACC-005", _with(hardened, tmout_lines=declared)) == "pass"


def test_cron_access_wants_root_only_and_no_deny_files() -> None:
    hardened = facts("hardened_kamailio")
    assert hardened.accounts is not None and hardened.accounts.modes is not None
    more = _with(hardened, allow={"/etc/cron.allow": ["root", "bob"], "/etc/at.allow": ["root"]})
    assert _status("VC-CRON-003", more) == "fail"
    deny = dict(hardened.accounts.modes)
    deny["/etc/cron.deny"] = deny["/etc/cron.allow"].model_copy(update={"path": "/etc/cron.deny"})
    assert _status("VC-CRON-003", _with(hardened, modes=deny)) == "fail"


def test_root_password_that_never_expires_fails() -> None:
    hardened = facts("hardened_kamailio")
    assert _status("VC-ACC-004", _with(hardened, root_max_days=-1)) == "fail"
    assert _status("VC-ACC-004", _with(hardened, root_max_days=99999)) == "fail"
    assert _status("VC-ACC-004", _with(hardened, root_max_days=90)) == "pass"
    # a root password about to expire would refuse root's key logins too: drift
    now = hardened.model_copy(update={"now": 20787 * 86400})  # 2026-11-30
    assert _status("VC-ACC-004", _with(now, root_changed="2025-12-05")) == "fail"
    assert _status("VC-ACC-004", _with(now, root_changed="2026-06-01")) == "pass"


def test_parse_accounts_bounds_and_absence() -> None:
    assert parse_accounts({}) is None  # an older script: no accounts facts at all
    got = parse_accounts({"acc_root": (0, "root P 2026-11-30 0 " + "9" * 40 + " 7 -1\n")})
    assert got is not None and got.root_max_days is None  # an absurd number is not data
    hostile = parse_accounts({"acc_login_defs": (0, "UMASK 027\n" * 100_000)})
    assert hostile is not None and hostile.login_defs == {"UMASK": "027"}


# --- the deploy's own decisions (vcops.enforce.accounts), from the same captures ------


def _section(name: str, case: str) -> str:
    text = (facts.__globals__["GATHER"] / f"{case}.txt").read_text()
    marker = f"@@vcops-0123456789abcdef {name} "
    body = text.split(marker, 1)[1].split("\n", 1)[1]
    return body.split("@@vcops-0123456789abcdef ", 1)[0]


def _common(case: str) -> str:
    """The acc_pam capture as ``cat`` prints it (grep -H's path prefixes removed)."""
    return "\n".join(ln.split(":", 1)[1] for ln in _section("acc_pam", case).splitlines())


def test_pam_auth_update_runs_only_when_the_stack_lacks_a_vcops_rule() -> None:
    assert pam_current(VARS, _common("hardened_kamailio"))
    assert not pam_current(VARS, _common("stock_kamailio"))
    other = dict(VARS, vcops_accounts_faillock_deny=3)
    assert not pam_current(other, _common("hardened_kamailio"))  # a changed setting
    doubled = _common("hardened_kamailio") + "\npassword requisite pam_pwquality.so retry=3\n"
    assert not pam_current(VARS, doubled)  # the package's own profile came back
    assert pam_rules(VARS)[0].startswith("pam_faillock.so preauth deny=5")


def test_mode_fixes_and_root_age_from_the_probes() -> None:
    hardened = "\n".join(
        " ".join(ln.split()[:4]) for ln in _section("acc_stat", "hardened_kamailio").splitlines()
    )
    assert mode_fixes(hardened) == []
    stock = "/etc/sudoers.d 755 root root\n/etc/cron.deny 644 root root\n"
    fixes = mode_fixes(stock)
    assert "chown root:root /etc/sudoers.d && chmod 750 /etc/sudoers.d" in fixes
    assert "rm -f /etc/cron.deny" in fixes
    assert root_age_needed(VARS, "root P 2026-11-30 0 99999 7 -1")
    assert root_age_needed(VARS, "root P 2026-11-30 0 -1 7 -1")
    assert not root_age_needed(VARS, "root L 2026-11-30 0 365 7 -1")
    assert root_age_needed(VARS, "")  # unknown: set it
