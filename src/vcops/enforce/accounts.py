"""The accounts area beyond its files: what ``pam-auth-update`` must have written, which
modes and deny files to fix, and root's password age (pure; both engines use these
rules, the Ansible role in its own words, ``roles/vcops_accounts``).

The PAM profiles (``/usr/share/pam-configs/vcops-*``) only take effect through
``pam-auth-update``, which writes ``/etc/pam.d/common-*`` and keeps them across package
upgrades; vcops never edits those files itself. The faillock rules live in the auth
stack only, which sshd runs for passwords and keyboard-interactive but never for a
public key: failed passwords can lock a login's passwords, never its key.
"""

from __future__ import annotations

import shlex

from vcops.enforce.render import Vars

PAM_PROFILES = ("vcops-faillock", "vcops-faillock-notify", "vcops-pwquality", "vcops-pwhistory")
PAM_AUTH_UPDATE = (
    "DEBIAN_FRONTEND=noninteractive pam-auth-update --disable pwquality && "
    f"DEBIAN_FRONTEND=noninteractive pam-auth-update --enable {' '.join(PAM_PROFILES)}"
)
"""The package's own pwquality profile is replaced by vcops' (they conflict)."""

PAM_FILES = tuple(f"/etc/pam.d/common-{t}" for t in ("auth", "account", "password", "session"))

#: path -> (mode, owner, group) the accounts area keeps
MODES: dict[str, tuple[str, str, str]] = {
    "/etc/sudoers.d": ("750", "root", "root"),
    "/etc/crontab": ("600", "root", "root"),
    **{
        f"/etc/cron.{d}": ("700", "root", "root")
        for d in ("d", "daily", "hourly", "weekly", "monthly", "yearly")
    },
}
DENY_FILES = ("/etc/cron.deny", "/etc/at.deny")

ACCOUNTS_PROBES: dict[str, list[str]] = {
    "acc_pam": ["cat", *PAM_FILES],
    "acc_stat": ["stat", "-c", "%n %a %U %G", *MODES, *DENY_FILES],
    "acc_root": ["passwd", "-S", "root"],
}
"""What the deploy asks the host (in the one ``state`` fact)."""


def _int(variables: Vars, key: str) -> int:
    value = variables[key]
    assert isinstance(value, int)
    return value


def pam_rules(variables: Vars) -> list[str]:
    """The module rules (module and arguments) the common-* files must hold (pure).

    >>> pam_rules({"vcops_accounts_faillock_deny": 5, "vcops_accounts_faillock_fail_interval": 900,
    ...            "vcops_accounts_faillock_unlock_time": 900, "vcops_accounts_pwquality_retry": 3,
    ...            "vcops_accounts_pwquality_minlen": 14, "vcops_accounts_pwquality_minclass": 4,
    ...            "vcops_accounts_pwhistory_remember": 24})[0]
    'pam_faillock.so preauth deny=5 fail_interval=900 unlock_time=900'
    """
    lock = (
        f"deny={_int(variables, 'vcops_accounts_faillock_deny')} "
        f"fail_interval={_int(variables, 'vcops_accounts_faillock_fail_interval')} "
        f"unlock_time={_int(variables, 'vcops_accounts_faillock_unlock_time')}"
    )
    return [
        f"pam_faillock.so preauth {lock}",
        f"pam_faillock.so authfail {lock}",
        "pam_faillock.so",
        f"pam_pwquality.so retry={_int(variables, 'vcops_accounts_pwquality_retry')} "
        f"minlen={_int(variables, 'vcops_accounts_pwquality_minlen')} "
        f"minclass={_int(variables, 'vcops_accounts_pwquality_minclass')} enforce_for_root",
        f"pam_pwhistory.so remember={_int(variables, 'vcops_accounts_pwhistory_remember')} "
        "enforce_for_root use_authtok",
    ]


def pam_current(variables: Vars, common: str) -> bool:
    """Whether the common-* files (``acc_pam`` probe) already run every vcops rule and
    no other pam_pwquality rule (pure)."""
    rules = []
    for raw in common.splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("#") or " " not in line:
            continue
        rest = line.split(" ", 1)[1]  # drop the type
        if rest.startswith("["):
            rest = rest.partition("]")[2].strip()
        else:
            rest = rest.partition(" ")[2]
        rules.append(rest)
    wanted = pam_rules(variables)
    quality = [r for r in rules if r.startswith("pam_pwquality.so")]
    return all(w in rules for w in wanted) and quality == [wanted[3]]


def mode_fixes(stat_text: str) -> list[str]:
    """Shell commands that fix the modes and owners of :data:`MODES` and remove the deny
    files, from the ``acc_stat`` probe output (``path mode owner group``; pure)."""
    seen: dict[str, tuple[str, str, str]] = {}
    for line in stat_text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            seen[parts[0]] = (parts[1], parts[2], parts[3])
    fixes = []
    for path, want in MODES.items():
        if seen.get(path) != want:
            q = shlex.quote(path)
            fixes.append(f"chown {want[1]}:{want[2]} {q} && chmod {want[0]} {q}")
    fixes += [f"rm -f {shlex.quote(p)}" for p in DENY_FILES if p in seen]
    return fixes


def root_max_days(passwd_s: str) -> int | None:
    """``passwd -S root`` -> root's max password age (-1: none); None if unparsable."""
    parts = passwd_s.split()
    if len(parts) < 5 or not parts[4].lstrip("-").isdigit() or len(parts[4]) > 12:
        return None
    return int(parts[4])


def root_age_needed(variables: Vars, passwd_s: str) -> bool:
    """Whether root's max age must be set (the VC-ACC-004 rule; pure)."""
    want = _int(variables, "vcops_accounts_root_password_max_days")
    days = root_max_days(passwd_s)
    return days is None or not 0 <= days <= want or days >= 99999


def root_age_command(variables: Vars) -> str:
    """``chage -M`` for root, refused when root's password is already older than the new
    maximum: root's own key logins would then be refused as "password expired"."""
    days = _int(variables, "vcops_accounts_root_password_max_days")
    return (
        "last=$(getent shadow root | cut -d: -f3); today=$(( $(date +%s) / 86400 )); "
        f'if [ -n "$last" ] && [ "$last" -gt 0 ] && [ $((today - last)) -ge {days} ]; then '
        'echo "vcops: root password last changed $((today - last)) days ago; set a new one '
        f'before giving it a {days}-day maximum (key logins as root would be refused)" >&2; '
        f"exit 1; fi; chage -M {days} root"
    )
