"""Access controls (all roles): SSH host keys, DH group exchange, idle timeout, sessions,
keepalive, post-quantum key exchange, login banners and fail2ban ban escalation.

Pure like :mod:`vcops.baseline.server`: facts and context in, a result out. A key
that ``sshd -T`` does not print is *unknown*, never a pass.
"""

from __future__ import annotations

import fnmatch
import re

from vcops.baseline.context import ServerContext
from vcops.baseline.model import CheckResult, failed, not_applicable, passed, unknown
from vcops.baseline.server import NO_SSHD, _sshd
from vcops.baseline.settings import PQ_KEX
from vcops.facts.access import BANNER_FILES, KEY_FILES
from vcops.facts.sections import to_int
from vcops.facts.server import ServerFacts

BANNER_PATH = "/etc/issue.net"
"""The file sshd's ``Banner`` names (the same text as /etc/issue)."""
GEX_PREFIX = "diffie-hellman-group-exchange-"
#: What a banner must not show: getty escapes (\r kernel release, \v version, \s \m \n
#: \o \l ...) and the distribution's name or version.
_ESCAPE = re.compile(r"\\[a-zA-Z]")
_DISCLOSES = re.compile(
    r"\b(?:debian|ubuntu|gnu/linux|bookworm|trixie|bullseye|jammy|noble)\b", re.I
)


def _missing(key: str) -> str:
    return f"sshd -T printed no {key}"


# --- host keys ---------------------------------------------------------------------


def check_host_keys(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    """VC-SSH-009: sshd offers an ed25519 host key, RSA (>= the minimum size) only where
    the inventory allows it, and nothing else (no ECDSA, no DSA)."""
    s = ctx.settings
    expected = (
        f"host keys ed25519 and rsa >= {s.ssh_rsa_min_bits} bits only"
        if s.ssh_rsa_host_key
        else "host key ed25519 only (no ecdsa, rsa or dsa)"
    )
    if facts.sshd is None:
        return unknown(expected, NO_SSHD)
    configured = facts.sshd.get("hostkey")
    if not configured:
        return unknown(expected, _missing("hostkey"))
    if facts.host_keys is None:
        return unknown(expected, "ssh-keygen -l did not run on the host keys")
    offered, bad = [], []
    for path in configured:
        key = facts.host_keys.get(path)
        if key is None and fnmatch.fnmatchcase(path, KEY_FILES):
            continue  # the file does not exist: sshd skips it, so it is not offered
        if key is None:
            return unknown(expected, f"{path} is outside {KEY_FILES}: not described")
        if key.kind is None:
            continue  # missing or no key: sshd skips it, so it is not offered
        label = f"{key.kind.lower()} {key.bits}" if key.kind == "RSA" else key.kind.lower()
        offered.append(label)
        if key.kind == "ED25519":
            continue
        if key.kind == "RSA" and s.ssh_rsa_host_key and (key.bits or 0) >= s.ssh_rsa_min_bits:
            continue
        bad.append(f"{label} ({path})")
    if bad:
        return failed(expected, f"also offers {', '.join(bad)}")
    if "ed25519" not in offered:
        return failed(expected, "no ed25519 host key offered")
    return passed(expected, f"offers {', '.join(offered)}")


# --- key exchange ------------------------------------------------------------------


def check_group_exchange(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    """VC-SSH-010: DH group exchange is off, or every group in /etc/ssh/moduli is at
    least the minimum size."""
    floor = ctx.settings.ssh_moduli_min_bits
    expected = f"no DH group exchange, or /etc/ssh/moduli groups >= {floor} bits"
    if facts.sshd is None:
        return unknown(expected, NO_SSHD)
    kex = _sshd(facts, "kexalgorithms")
    if kex is None:
        return unknown(expected, _missing("kexalgorithms"))
    gex = [a for a in kex.split(",") if a.startswith(GEX_PREFIX)]
    if not gex:
        return passed(expected, "no DH group exchange offered")
    if facts.moduli_bits is None:
        return unknown(expected, f"offers {', '.join(gex)}; /etc/ssh/moduli not read")
    if not facts.moduli_bits:
        return failed(expected, f"offers {', '.join(gex)} without /etc/ssh/moduli")
    small = sum(n for bits, n in facts.moduli_bits.items() if bits < floor)
    if small:
        return failed(
            expected,
            f"offers {', '.join(gex)}; /etc/ssh/moduli has {small} groups under {floor} bits "
            f"(smallest {min(facts.moduli_bits)})",
        )
    return passed(expected, f"/etc/ssh/moduli smallest group {min(facts.moduli_bits)} bits")


def check_pq_kex_first(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    """VC-SSH-014: where this OpenSSH knows a post-quantum hybrid, sshd offers one first."""
    expected = "a post-quantum hybrid key exchange offered first"
    if facts.sshd is None:
        return unknown(expected, NO_SSHD)
    if facts.ssh_supported is None or not facts.ssh_supported.get("kex"):
        return unknown(expected, "ssh -Q kex did not run")
    known = [a for a in PQ_KEX if a in facts.ssh_supported["kex"]]
    if not known:
        return not_applicable(
            expected, f"OpenSSH {facts.openssh_version or '(version unknown)'} has no PQ hybrid"
        )
    kex = _sshd(facts, "kexalgorithms")
    if kex is None:
        return unknown(expected, _missing("kexalgorithms"))
    first = kex.split(",")[0]
    if first in PQ_KEX:
        return passed(expected, f"first: {first}")
    return failed(expected, f"first: {first} (this OpenSSH has {', '.join(known)})")


# --- sessions ----------------------------------------------------------------------


def _ints(facts: ServerFacts, keys: tuple[str, ...]) -> dict[str, int] | str:
    """The keys' integer values, or why they are unknown."""
    out: dict[str, int] = {}
    for key in keys:
        value = _sshd(facts, key)
        number = to_int(value) if value is not None else None
        if number is None:
            return _missing(key) if value is None else f"{key} {value[:40]} is no number"
        out[key] = number
    return out


def check_idle_timeout(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    """VC-SSH-011: an idle or dead client is dropped (ClientAliveInterval/CountMax)."""
    s = ctx.settings
    expected = (
        f"clientaliveinterval 1..{s.ssh_client_alive_interval}, "
        f"clientalivecountmax 1..{s.ssh_client_alive_count_max}"
    )
    if facts.sshd is None:
        return unknown(expected, NO_SSHD)
    values = _ints(facts, ("clientaliveinterval", "clientalivecountmax"))
    if isinstance(values, str):
        return unknown(expected, values)
    interval, count = values["clientaliveinterval"], values["clientalivecountmax"]
    actual = f"clientaliveinterval {interval}, clientalivecountmax {count}"
    ok = 1 <= interval <= s.ssh_client_alive_interval and 1 <= count <= s.ssh_client_alive_count_max
    return (passed if ok else failed)(expected, actual)


def check_max_sessions(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    """VC-SSH-012: few sessions per connection."""
    limit = ctx.settings.ssh_max_sessions
    expected = f"maxsessions <= {limit}"
    if facts.sshd is None:
        return unknown(expected, NO_SSHD)
    values = _ints(facts, ("maxsessions",))
    if isinstance(values, str):
        return unknown(expected, values)
    sessions = values["maxsessions"]
    return (passed if sessions <= limit else failed)(expected, f"maxsessions {sessions}")


# --- banners -----------------------------------------------------------------------


def _norm(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def check_banners(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    """VC-SSH-015: /etc/issue, /etc/issue.net and the SSH banner show the inventory's
    banner text and disclose no OS name or version (no getty escapes)."""
    want = _norm(ctx.settings.banner_text)
    expected = f"banner {BANNER_PATH}; {', '.join(BANNER_FILES)} = the inventory banner_text"
    if facts.sshd is None:
        return unknown(expected, NO_SSHD)
    banner = _sshd(facts, "banner")
    if banner is None:
        return unknown(expected, _missing("banner"))
    if facts.banners is None:
        return unknown(expected, "the banner files were not read")
    problems = [] if banner == BANNER_PATH else [f"sshd banner {banner[:80]}"]
    for path in BANNER_FILES:
        text = facts.banners.get(path)
        if text is None:
            problems.append(f"{path} missing")
            continue
        if _ESCAPE.search(text) or _DISCLOSES.search(text):
            problems.append(f"{path} discloses the OS")
        elif _norm(text) != want:
            problems.append(f"{path} is not the banner text")
    if problems:
        return failed(expected, "; ".join(problems))
    return passed(expected, f"banner {banner}; both files show the banner text")


# --- fail2ban ----------------------------------------------------------------------


def check_fail2ban_increment(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    """VC-F2B-002: every running jail escalates repeat offenders' bans
    (``bantime.increment``, set in vcops's jail.d file as fail2ban's docs ask)."""
    expected = "bantime.increment true in every fail2ban jail"
    if facts.fail2ban_jails is None:
        if facts.packages is not None and "fail2ban" not in facts.packages:
            return failed(expected, "fail2ban is not installed")
        return unknown(expected, facts.fail2ban_error or "fail2ban-client did not answer")
    if not facts.fail2ban_jails:
        return failed(expected, "fail2ban runs no jail")
    if facts.fail2ban_increment is None:
        return unknown(expected, "fail2ban-client get bantime.increment did not run")
    values = {j: facts.fail2ban_increment.get(j) for j in facts.fail2ban_jails}
    if missing := [j for j, v in values.items() if v is None]:
        return unknown(expected, f"no bantime.increment answer for {', '.join(missing)}")
    off = [f"{j} {v}" for j, v in values.items() if (v or "").lower() != "true"]
    if off:
        return failed(expected, f"not escalating: {', '.join(off)}")
    return passed(expected, f"on in {', '.join(values)}")
