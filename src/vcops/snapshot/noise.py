"""Noise filters: lines that change without a config change (pure).

An unchanged device must make no change in the store, so timestamps, uptimes, byte
counts and clock drift values are dropped per platform, line endings and trailing
blanks are normalised, and the text always ends with exactly one newline. Example::

    >>> normalize_config("Building configuration...\\n! Time: Mon 10:00\\nhostname a\\n", "ios")
    'hostname a\\n'
"""

from __future__ import annotations

import re

_CISCO = (
    r"Building configuration\.\.\.",
    r"Current configuration\s*:\s*\d+ bytes",
    r"! Last configuration change at .*",
    r"! NVRAM config last updated at .*",
    r"! No configuration change since last restart",
    r"!\s*Time:.*",
    r"!Running configuration last done at:.*",
    r"!\s*Command: show (?:running|startup)-config.*",
    r"! Startup-config last modified at .*",
    r"Using \d+ out of \d+ bytes.*",
    r"ntp clock-period \d+",
    r".* uptime is .*",
)
_JUNOS = (
    r"## Last commit: .*",
    r"## Last changed: .*",
    r"# Last commit: .*",
    r".* uptime is .*",
)

NOISE: dict[str, re.Pattern[str]] = {
    platform: re.compile("|".join(f"(?:{p})" for p in patterns))
    for platform, patterns in {
        "ios": _CISCO,
        "eos": _CISCO,
        "nxos_ssh": _CISCO,
        "junos": _JUNOS,
    }.items()
}

#: Runtime fields inside ``nft list ruleset`` (set element timeouts counting down).
_NFT_EXPIRES = re.compile(r" expires (?:\d+(?:ms|[dhms]))+")


def normalize_text(text: str) -> str:
    """CRLF to LF, no trailing blanks, no leading or trailing empty lines, one final newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def normalize_config(text: str, platform: str) -> str:
    """A device config with the platform's noise lines dropped, normalised."""
    pattern = NOISE.get(platform)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if pattern is not None:
        lines = [line for line in lines if not pattern.fullmatch(line.rstrip())]
    return normalize_text("\n".join(lines))


def normalize_nft(text: str) -> str:
    """``nft -s list ruleset`` without the element timeouts that count down."""
    return normalize_text(_NFT_EXPIRES.sub("", text))


def is_error_output(text: str) -> bool:
    """Whether a device answered a show command with an error instead of a config."""
    head = "\n".join(text.strip().splitlines()[:3])
    return bool(
        re.search(
            r"% ?Invalid (?:input|command)|% ?Unknown command|No such command|"
            r"syntax error|% ?Incomplete command",
            head,
            re.IGNORECASE,
        )
    )
