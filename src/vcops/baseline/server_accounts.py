"""Accounts controls (all roles): PAM (pwquality, faillock, pwhistory, tmpdir), login.defs,
root's password age, the idle shell timeout, sudo's Defaults, cron and at.

Every check is pure: :class:`~vcops.facts.server.ServerFacts` (its ``accounts`` part,
:mod:`vcops.facts.accounts`) and a :class:`~vcops.baseline.context.ServerContext` in,
a :class:`~vcops.baseline.model.CheckResult` out. Missing data is *unknown*, never a
pass. PAM is judged on the stack the host really runs (``/etc/pam.d/common-*``, as
``pam-auth-update`` wrote it), module arguments overriding the module's config file,
as PAM itself reads them.
"""

from __future__ import annotations

import re
import shlex
from datetime import date

from vcops.baseline.context import ServerContext
from vcops.baseline.model import CheckResult, failed, passed, unknown
from vcops.facts.accounts import AccountsFacts, PamLine
from vcops.facts.server import ServerFacts

NOT_GATHERED = "the accounts facts were not gathered (older scan script)"
CRON_DIRS = (
    "/etc/cron.d",
    "/etc/cron.daily",
    "/etc/cron.hourly",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/etc/cron.yearly",
)
ALLOW_FILES = ("/etc/cron.allow", "/etc/at.allow")
DENY_FILES = ("/etc/cron.deny", "/etc/at.deny")
SUDO_FLAGS = ("use_pty", "env_reset", "ignore_dot")
# pam_faillock's own defaults (faillock.conf(5)) when neither file nor argument sets them
FAILLOCK_DEFAULTS = {"deny": "3", "fail_interval": "900", "unlock_time": "600"}


def _num(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip().strip('"')
    if not text.isascii() or not re.fullmatch(r"-?\d{1,12}", text):
        return None
    return int(text)


def _acc(facts: ServerFacts) -> AccountsFacts | None:
    return facts.accounts


def _rules(acc: AccountsFacts, file: str, module: str) -> list[PamLine] | None:
    if acc.pam is None:
        return None
    return [r for r in acc.pam.get(file, []) if r.module == module]


def _effective(conf: dict[str, str], rule: PamLine, key: str, default: str) -> str:
    value = rule.arg(key) or conf.get(key) or default
    return "0" if value == "never" else value  # faillock's unlock_time = never


# --- PAM -------------------------------------------------------------------------


def check_pwquality(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    s = ctx.settings
    expected = (
        f"pam_pwquality in common-password: minlen >= {s.pwquality_minlen}, "
        f"minclass >= {s.pwquality_minclass}, retry <= {s.pwquality_retry}"
    )
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    rules = _rules(acc, "common-password", "pam_pwquality.so")
    if rules is None or acc.pwquality_conf is None:
        return unknown(expected, "the PAM stack or pwquality.conf could not be read")
    if not rules:
        return failed(expected, "pam_pwquality is not in the password stack")
    rule, conf = rules[0], acc.pwquality_conf
    minlen = _num(_effective(conf, rule, "minlen", "8"))
    minclass = _num(_effective(conf, rule, "minclass", "0"))
    retry = _num(_effective(conf, rule, "retry", "1"))
    actual = f"minlen {minlen}, minclass {minclass}, retry {retry}"
    ok = (
        minlen is not None
        and minlen >= s.pwquality_minlen
        and minclass is not None
        and minclass >= s.pwquality_minclass
        and retry is not None
        and 1 <= retry <= s.pwquality_retry
    )
    return (passed if ok else failed)(expected, actual)


def check_faillock(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    s = ctx.settings
    expected = (
        f"pam_faillock preauth and authfail in common-auth: deny <= {s.faillock_deny}, "
        f"fail_interval >= {s.faillock_fail_interval}, "
        f"unlock_time >= {s.faillock_unlock_time} (0: never)"
    )
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    rules = _rules(acc, "common-auth", "pam_faillock.so")
    if rules is None or acc.faillock_conf is None:
        return unknown(expected, "the PAM stack or faillock.conf could not be read")
    authfail = [r for r in rules if r.flag("authfail")]
    preauth = [r for r in rules if r.flag("preauth")]
    if not authfail:
        return failed(expected, "pam_faillock does not count failures in the auth stack")
    if not preauth:
        return failed(expected, "pam_faillock has no preauth rule: locked accounts still try")
    rule, conf = authfail[0], acc.faillock_conf
    values = {k: _num(_effective(conf, rule, k, d)) for k, d in FAILLOCK_DEFAULTS.items()}
    actual = ", ".join(f"{k} {v}" for k, v in values.items())
    deny, interval, unlock = values["deny"], values["fail_interval"], values["unlock_time"]
    ok = (
        deny is not None
        and 1 <= deny <= s.faillock_deny
        and interval is not None
        and interval >= s.faillock_fail_interval
        and unlock is not None
        and (unlock == 0 or unlock >= s.faillock_unlock_time)
    )
    return (passed if ok else failed)(expected, actual)


def check_pwhistory(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    want = ctx.settings.pwhistory_remember
    expected = f"pam_pwhistory in common-password: remember >= {want}"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    rules = _rules(acc, "common-password", "pam_pwhistory.so")
    if rules is None:
        return unknown(expected, "the PAM stack could not be read")
    if not rules:
        return failed(expected, "pam_pwhistory is not in the password stack")
    remember = _num(rules[0].arg("remember") or "10")
    ok = remember is not None and remember >= want
    return (passed if ok else failed)(expected, f"remember {remember}")


def check_pam_tmpdir(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "libpam-tmpdir installed, pam_tmpdir in common-session"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    rules = _rules(acc, "common-session", "pam_tmpdir.so")
    if rules is None or facts.packages is None:
        return unknown(expected, "the PAM stack or the package list could not be read")
    if "libpam-tmpdir" not in facts.packages:
        return failed(expected, "libpam-tmpdir is not installed")
    if not rules:
        return failed(expected, "pam_tmpdir is not in the session stack")
    return passed(expected, "per-user TMPDIR on login")


# --- login.defs, root, TMOUT --------------------------------------------------------


def check_password_hashing(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    s = ctx.settings
    cost_key, want = (
        ("YESCRYPT_COST_FACTOR", s.yescrypt_cost_factor)
        if s.login_encrypt_method == "YESCRYPT"
        else ("SHA_CRYPT_MIN_ROUNDS", s.sha_crypt_rounds)
    )
    expected = f"ENCRYPT_METHOD {s.login_encrypt_method}, {cost_key} >= {want}"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.login_defs is None:
        return unknown(expected, "/etc/login.defs could not be read")
    method = acc.login_defs.get("ENCRYPT_METHOD", "DES").upper()
    default = "5" if cost_key == "YESCRYPT_COST_FACTOR" else "5000"
    cost = _num(acc.login_defs.get(cost_key, default))
    actual = f"ENCRYPT_METHOD {method}, {cost_key} {cost}"
    ok = method == s.login_encrypt_method and cost is not None and cost >= want
    return (passed if ok else failed)(expected, actual)


def check_password_ages(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    s = ctx.settings
    expected = (
        f"PASS_MAX_DAYS <= {s.pass_max_days}, PASS_MIN_DAYS >= {s.pass_min_days}, "
        f"PASS_WARN_AGE >= {s.pass_warn_age}"
    )
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.login_defs is None:
        return unknown(expected, "/etc/login.defs could not be read")
    defs = acc.login_defs
    max_days = _num(defs.get("PASS_MAX_DAYS", "99999"))
    min_days = _num(defs.get("PASS_MIN_DAYS", "0"))
    warn = _num(defs.get("PASS_WARN_AGE", "7"))
    actual = f"PASS_MAX_DAYS {max_days}, PASS_MIN_DAYS {min_days}, PASS_WARN_AGE {warn}"
    ok = (
        max_days is not None
        and 0 < max_days <= s.pass_max_days
        and min_days is not None
        and min_days >= s.pass_min_days
        and warn is not None
        and warn >= s.pass_warn_age
    )
    return (passed if ok else failed)(expected, actual)


def umask_covers(live: str, wanted: str) -> bool:
    """Whether umask ``live`` masks at least every bit ``wanted`` masks (pure).

    >>> umask_covers("077", "027"), umask_covers("022", "027")
    (True, False)
    """
    try:
        have, need = int(live, 8), int(wanted, 8)
    except ValueError:
        return False
    return have & need == need and 0 <= have <= 0o777


def check_login_umask(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    want = ctx.settings.login_umask
    expected = f"UMASK {want} (or stricter) in /etc/login.defs"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.login_defs is None:
        return unknown(expected, "/etc/login.defs could not be read")
    value = acc.login_defs.get("UMASK", "022")
    return (passed if umask_covers(value, want) else failed)(expected, f"UMASK {value[:8]}")


def check_root_max_age(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    want = ctx.settings.root_password_max_days
    expected = f"root's password max age <= {want} days"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.root_max_days is None:
        return unknown(expected, "passwd -S root did not run")
    days = acc.root_max_days
    if days < 0 or days >= 99999:
        return failed(expected, "root's password never expires")
    if days > want:
        return failed(expected, f"{days} days")
    left = _days_left(acc.root_changed, days, facts.now)
    if left is not None and left <= ctx.settings.pass_warn_age:
        # an expired root password refuses root's key logins too (sshd runs the
        # account stack): a root-managed host would lock vcops out
        return failed(expected, f"{days} days; expires in {left} days: set a new root password")
    return passed(expected, f"{days} days")


def _days_left(changed: str | None, max_days: int, now: int | None) -> int | None:
    """Days until a password changed on ``changed`` (YYYY-MM-DD) expires, or None."""
    if changed is None or now is None:
        return None
    try:
        day = date.fromisoformat(changed)
    except ValueError:
        return None
    return (day - date(1970, 1, 1)).days + max_days - now // 86400


_READONLY = re.compile(
    r"(?:^|[;&|])\s*(?:readonly|declare\s+-[a-zA-Z]*r[a-zA-Z]*|typeset\s+-[a-zA-Z]*r[a-zA-Z]*)"
    r"\s+([^;&|]*)"
)


def check_shell_timeout(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    want = ctx.settings.shell_timeout
    expected = f"TMOUT <= {want}s, read-only, in /etc/profile.d"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.tmout_lines is None:
        return unknown(expected, "the login shells' startup files could not be read")
    values: list[int] = []
    readonly = False
    for _path, line in acc.tmout_lines:
        code = line.split("#", 1)[0]
        for m in re.finditer(r"(?:^|[\s;])TMOUT=([^\s;]*)", code):
            value = _num(m[1])
            if value is not None:
                values.append(value)
        for ro in _READONLY.finditer(code):
            if re.search(r"(^|\s)TMOUT(=|\s|$)", ro[1]):
                readonly = True
    if not values:
        return failed(expected, "no TMOUT set: idle shells stay open")
    bad = [v for v in values if v <= 0 or v > want]
    actual = f"TMOUT {', '.join(str(v) for v in values)}" + (
        ", read-only" if readonly else ", not read-only"
    )
    return (passed if readonly and not bad else failed)(expected, actual)


# --- sudo ------------------------------------------------------------------------------


def _sudo_file_read(path: str) -> bool:
    """sudo skips files in /etc/sudoers.d whose names end in ``~`` or contain a dot."""
    if not path.startswith("/etc/sudoers.d/"):
        return True
    name = path.rsplit("/", 1)[1]
    return "." not in name and not name.endswith("~")


def sudo_defaults(lines: list[tuple[str, str]]) -> dict[str, str | bool]:
    """The global ``Defaults`` in force after every file (the last setting wins; pure).

    >>> sudo_defaults([("/etc/sudoers", 'Defaults env_reset, !use_pty, umask=0027')])
    {'env_reset': True, 'use_pty': False, 'umask': '0027'}
    """
    state: dict[str, str | bool] = {}
    for path, line in lines:
        if not _sudo_file_read(path):
            continue
        m = re.match(r"^\s*Defaults\s+(.*)$", line)  # scoped Defaults:user etc. left out
        if not m:
            continue
        lexer = shlex.shlex(m[1].split("#", 1)[0], posix=True)
        lexer.whitespace = ","
        lexer.whitespace_split = True
        try:
            entries = [e.strip() for e in lexer if e.strip()]
        except ValueError:
            continue
        for entry in entries:
            key, sep, value = entry.partition("=")
            key = key.strip()
            if sep:
                state[key.rstrip("+-")] = value.strip()
            elif key.startswith("!"):
                state[key.lstrip("!").strip()] = False
            else:
                state[key] = True
    return state


def check_sudo_defaults(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    s = ctx.settings
    expected = (
        f"Defaults use_pty, env_reset, ignore_dot, logfile={s.sudo_logfile}, "
        f"umask {s.sudo_umask} or stricter"
    )
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.sudo_defaults is None:
        return unknown(expected, "the sudoers files could not be read")
    state = sudo_defaults(acc.sudo_defaults)
    missing = [f for f in SUDO_FLAGS if state.get(f) is not True]
    if state.get("logfile") != s.sudo_logfile:
        missing.append("logfile")
    umask = state.get("umask")
    if not isinstance(umask, str) or not umask_covers(umask, s.sudo_umask):
        missing.append("umask")
    if missing:
        return failed(expected, f"missing or off: {', '.join(missing)}")
    return passed(expected, "all set")


def _mode_ok(acc: AccountsFacts, path: str, most: int, group_any: bool = False) -> str | None:
    """None if ``path`` is root's and no more permissive than ``most``, else why not."""
    assert acc.modes is not None
    info = acc.modes.get(path)
    if info is None:
        return f"{path} missing"
    if info.mode & ~most & 0o7777:
        return f"{path} {info.mode:04o}"
    if info.owner != "root" or (not group_any and info.group != "root"):
        return f"{path} owned {info.owner}:{info.group}"
    return None


def check_sudoers_dir(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "/etc/sudoers.d 0750 root:root, visudo -c clean"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.modes is None or acc.visudo_ok is None:
        return unknown(expected, "stat or visudo -c did not run")
    problems = [p for p in [_mode_ok(acc, "/etc/sudoers.d", 0o750)] if p]
    if not acc.visudo_ok:
        problems.append(f"visudo -c: {acc.visudo_error or 'failed'}")
    if problems:
        return failed(expected, "; ".join(problems))
    return passed(expected, "0750 root:root, visudo -c clean")


# --- cron and at -----------------------------------------------------------------------


def check_cron_enabled(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "cron installed, enabled and running"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if facts.packages is None or acc.cron_loaded is None:
        return unknown(expected, "the package list or systemctl show cron did not run")
    if "cron" not in facts.packages or not acc.cron_loaded:
        return failed(expected, "cron is not installed")
    enabled = acc.cron_unit_file in {"enabled", "enabled-runtime", "static", "alias"}
    actual = f"{acc.cron_unit_file}, {acc.cron_active}"
    return (passed if enabled and acc.cron_active == "active" else failed)(expected, actual)


def check_cron_modes(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "/etc/crontab 0600, /etc/cron.{d,daily,hourly,weekly,monthly,yearly} 0700, root:root"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.modes is None:
        return unknown(expected, "stat did not run")
    problems = [_mode_ok(acc, "/etc/crontab", 0o600)]
    problems += [_mode_ok(acc, d, 0o700) for d in CRON_DIRS]
    bad = [p for p in problems if p]
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        return failed(expected, ", ".join(bad[:3]) + more)
    return passed(expected, "root only")


def check_cron_access(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "cron.allow and at.allow list root only; cron.deny and at.deny absent"
    acc = _acc(facts)
    if acc is None:
        return unknown(expected, NOT_GATHERED)
    if acc.modes is None or acc.allow is None:
        return unknown(expected, "stat or the allow files could not be read")
    problems = []
    for path in ALLOW_FILES:
        if path not in acc.modes:
            problems.append(f"{path} missing")
            continue
        names = [n for n in acc.allow.get(path, []) if not n.startswith("#")]
        if names != ["root"]:
            problems.append(f"{path} lists {', '.join(names[:5]) or 'nobody'}")
        if (why := _mode_ok(acc, path, 0o640, group_any=True)) is not None:
            problems.append(why)
    problems += [f"{p} present" for p in DENY_FILES if p in acc.modes]
    if problems:
        return failed(expected, "; ".join(problems))
    return passed(expected, "root only")
