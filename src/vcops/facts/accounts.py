"""Accounts facts: the PAM stack, login.defs, root's password aging, the shell timeout,
sudo's Defaults, and cron/at access, parsed from the ``acc_*`` sections of ``gather.sh``.

Pure: section text in, :class:`AccountsFacts` out. A section that is missing or whose
command failed leaves its field ``None`` (the checks say *unknown*); every value read
from the host is bounded (lines, numbers) before a check sees it. Example::

    parse_pam_lines("/etc/pam.d/common-auth:auth requisite pam_faillock.so preauth deny=5")
    # {"common-auth": [PamLine(kind="auth", control="requisite",
    #                          module="pam_faillock.so", args=["preauth", "deny=5"])]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel

from vcops.facts.sections import ServiceState

MAX_LINES = 5000
"""Lines read from one section at most (a hostile host cannot make the parser slow)."""


class PamLine(BaseModel):
    """One rule of a PAM stack file: ``password requisite pam_pwquality.so retry=3``."""

    kind: str
    control: str
    module: str
    args: list[str]

    def arg(self, name: str) -> str | None:
        """The value of ``name=value`` among the arguments (the last one wins)."""
        value = None
        for a in self.args:
            key, sep, rest = a.partition("=")
            if sep and key == name:
                value = rest
        return value

    def flag(self, name: str) -> bool:
        return name in self.args


class FileMode(BaseModel):
    """``stat -c '%n %a %U %G %F'`` of one path."""

    path: str
    mode: int
    owner: str
    group: str
    kind: str


class AccountsFacts(BaseModel):
    """What the accounts checks read. ``None``: that part was not gathered (unknown)."""

    #: common-auth/-account/-password/-session -> their rules, in order
    pam: dict[str, list[PamLine]] | None = None
    #: pwquality.conf then pwquality.conf.d/*.conf, later keys win
    pwquality_conf: dict[str, str] | None = None
    faillock_conf: dict[str, str] | None = None
    login_defs: dict[str, str] | None = None
    #: ``passwd -S root`` fields: status, max days (-1 or 99999: never)
    root_status: str | None = None
    root_max_days: int | None = None
    #: the day root's password last changed, ``YYYY-MM-DD`` (None: unknown or never)
    root_changed: str | None = None
    #: ``file: line`` for every line naming TMOUT in the login shells' startup files
    tmout_lines: list[tuple[str, str]] | None = None
    #: (file, Defaults line) in the order sudo reads them
    sudo_defaults: list[tuple[str, str]] | None = None
    visudo_ok: bool | None = None
    visudo_error: str | None = None
    modes: dict[str, FileMode] | None = None
    #: /etc/cron.allow and /etc/at.allow -> the names listed (only files that exist)
    allow: dict[str, list[str]] | None = None
    cron_active: str | None = None
    cron_unit_file: str | None = None
    cron_loaded: bool | None = None


def _int(text: str) -> int | None:
    text = text.strip()
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        return None
    return int(text)


def _lines(text: str) -> list[str]:
    return text.splitlines()[:MAX_LINES]


def _split_rule(rest: str) -> list[str]:
    """A PAM rule's words, keeping a ``[success=1 default=ignore]`` control as one word."""
    rest = rest.strip()
    m = re.match(r"^(-?\w+)\s+\[([^\]]*)\]\s*(.*)$", rest)
    if m:
        return [m[1], f"[{m[2]}]", *m[3].split()]
    return rest.split()


def parse_pam_lines(text: str) -> dict[str, list[PamLine]]:
    """``grep -H`` output of the common-* files into rules per file (pure)."""
    out: dict[str, list[PamLine]] = {}
    for line in _lines(text):
        path, sep, rest = line.partition(":")
        if not sep or not path.startswith("/etc/pam.d/"):
            continue
        name = path.rsplit("/", 1)[1]
        words = _split_rule(rest)
        out.setdefault(name, [])
        if len(words) < 3 or words[0].startswith("@"):
            continue
        out[name].append(
            PamLine(
                kind=words[0].lstrip("-"),
                control=words[1],
                module=words[2].rsplit("/", 1)[-1],
                args=words[3:],
            )
        )
    return out


def parse_key_values(text: str) -> dict[str, str]:
    """``key = value`` (pwquality.conf, faillock.conf) or ``KEY value`` (login.defs)
    lines, comments dropped; a bare ``key`` (a flag) maps to ``""``; later keys win."""
    out: dict[str, str] = {}
    for raw in _lines(text):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]{0,63})(?:\s*=\s*|\s+|$)(.*)$", line)
        if m:
            out[m[1]] = m[2].strip()[:500]
    return out


def parse_passwd_status(text: str) -> tuple[str, int] | None:
    """``passwd -S root``: ``root P 11/30/2026 0 99999 7 -1`` -> (``P``, 99999)."""
    parts = text.split()
    if len(parts) < 5:
        return None
    days = _int(parts[4])
    return (parts[1], days) if days is not None else None


def parse_grep_h(text: str) -> list[tuple[str, str]]:
    """``grep -H`` output into (file, line) pairs (lines without a path dropped)."""
    out = []
    for line in _lines(text):
        path, sep, rest = line.partition(":")
        if sep and path.startswith("/etc/"):
            out.append((path, rest[:500]))
    return out


def parse_modes(text: str) -> dict[str, FileMode]:
    out: dict[str, FileMode] = {}
    for line in _lines(text):
        parts = line.split()
        if len(parts) >= 5 and re.fullmatch(r"[0-7]{1,4}", parts[1]):
            out[parts[0]] = FileMode(
                path=parts[0],
                mode=int(parts[1], 8),
                owner=parts[2],
                group=parts[3],
                kind=" ".join(parts[4:]),
            )
    return out


def _ok(sections: Mapping[str, tuple[int, str]], name: str) -> str | None:
    got = sections.get(name)
    return got[1] if got is not None and got[0] == 0 else None


def parse_accounts(
    sections: Mapping[str, tuple[int, str]], cron: ServiceState | None = None
) -> AccountsFacts | None:
    """The ``acc_*`` sections (name -> (exit status, text)) into :class:`AccountsFacts`;
    None when the host ran none of them (an older script). ``cron``: cron.service as the
    ``services`` section shows it (one ``systemctl show`` for every unit), None when that
    section failed."""
    if not any(name.startswith("acc_") for name in sections):
        return None
    facts: dict[str, object] = {}
    if "acc_pam" in sections:
        rc, pam_text = sections["acc_pam"]
        pam = parse_pam_lines(pam_text)
        if rc in (0, 1, 2) and pam:
            facts["pam"] = pam
    text: str | None
    if (text := _ok(sections, "acc_pwquality")) is not None:
        facts["pwquality_conf"] = parse_key_values(text)
    if (text := _ok(sections, "acc_faillock")) is not None:
        facts["faillock_conf"] = parse_key_values(text)
    if (text := _ok(sections, "acc_login_defs")) is not None:
        facts["login_defs"] = parse_key_values(text)
    if (text := _ok(sections, "acc_root")) is not None and (
        status := parse_passwd_status(text)
    ) is not None:
        facts["root_status"], facts["root_max_days"] = status
        changed = text.split()[2]
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", changed):
            facts["root_changed"] = changed
    if (text := _ok(sections, "acc_tmout")) is not None:
        facts["tmout_lines"] = parse_grep_h(text)
    if (text := _ok(sections, "acc_sudoers")) is not None:
        facts["sudo_defaults"] = parse_grep_h(text)
    if "acc_visudo" in sections:
        rc, said = sections["acc_visudo"]
        facts["visudo_ok"] = rc == 0
        if rc != 0:
            facts["visudo_error"] = (said.strip().splitlines() or ["visudo -c failed"])[0][:200]
    if (text := _ok(sections, "acc_stat")) is not None:
        facts["modes"] = parse_modes(text)
    if (text := _ok(sections, "acc_allow")) is not None:
        allow: dict[str, list[str]] = {}
        for path, name in parse_grep_h(text):
            allow.setdefault(path, []).append(name.strip())
        facts["allow"] = {p: [n for n in names if n] for p, names in allow.items()}
    if cron is not None:
        facts["cron_loaded"] = cron.load == "loaded"
        facts["cron_active"] = cron.active[:40]
        facts["cron_unit_file"] = cron.unit_file[:40]
    return AccountsFacts.model_validate(facts)
