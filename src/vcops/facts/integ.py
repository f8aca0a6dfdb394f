"""Integrity and logging facts: AIDE's database and last report, journald's effective
settings and rsyslog's forwarding targets (pure parsers of ``gather.sh`` sections).

Sections (each one command's output, bounded on the host and again here)::

    aide          "db 1764500000" / "report none", then AIDE's report header
    journald      `systemd-analyze cat-config systemd/journald.conf`
    rsyslog_conf  /etc/rsyslog.conf and /etc/rsyslog.d/*.conf, or "no /etc/rsyslog.conf"

Example::

    integ_facts({"aide": (0, "db 1764500000\\nreport none\\n")})
    # {"aide": AideState(db_mtime=1764500000, report_mtime=None, ...)}
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

#: No more than this many characters of one section are parsed.
MAX_SECTION = 256_000
_NUMBER = re.compile(r"[0-9]{1,19}")


class AideState(BaseModel):
    """The vcops AIDE database and the last check's report (``None``: not there).

    ``added``/``removed``/``changed`` are None when the report said nothing differs
    (``clean``) or could not be read (``clean`` None).
    """

    model_config = ConfigDict(frozen=True)

    db_mtime: int | None = None
    report_mtime: int | None = None
    clean: bool | None = None
    entries: int | None = None
    added: int | None = None
    removed: int | None = None
    changed: int | None = None

    @property
    def differences(self) -> int | None:
        """Added + removed + changed entries; 0 for a clean report, None if unread."""
        if self.clean:
            return 0
        if None in (self.added, self.removed, self.changed):
            return None
        return (self.added or 0) + (self.removed or 0) + (self.changed or 0)


class SyslogTarget(BaseModel):
    """One rsyslog forwarding action: ``*.* action(type="omfwd" target=... )`` or ``@@host``."""

    model_config = ConfigDict(frozen=True)

    address: str
    port: int
    protocol: str
    tls: bool = False


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if _NUMBER.fullmatch(text) else None


def parse_aide(text: str) -> AideState:
    """The ``aide`` section (pure).

    >>> parse_aide("db 5\\nreport 9\\nAIDE found NO differences between database and "
    ...            "filesystem. Looks okay!!\\nNumber of entries:\\t12\\n").differences
    0
    """
    found: dict[str, int | bool | None] = {}
    labels = {
        "Total number of entries": "entries",
        "Number of entries": "entries",
        "Added entries": "added",
        "Removed entries": "removed",
        "Changed entries": "changed",
    }
    for line in text[:MAX_SECTION].splitlines()[:80]:
        key, _, value = line.partition(" ")
        if key in {"db", "report"} and f"{key}_mtime" not in found:
            found[f"{key}_mtime"] = _int(value)
            continue
        if "found NO differences" in line:
            found["clean"] = True
        elif "found differences" in line:
            found["clean"] = False
        label, sep, number = line.partition(":")
        if sep and label.strip() in labels and labels[label.strip()] not in found:
            found[labels[label.strip()]] = _int(number)
    return AideState.model_validate(found)


def parse_journald(text: str) -> dict[str, str]:
    """``[Journal]`` settings of the merged journald config, the last one winning (pure).

    >>> parse_journald("[Journal]\\n#Storage=auto\\nStorage=persistent\\n")
    {'Storage': 'persistent'}
    """
    out: dict[str, str] = {}
    section = ""
    for raw in text[:MAX_SECTION].splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Journal" and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


_ACTION = re.compile(r"action\s*\((.*?)\)", re.DOTALL | re.IGNORECASE)
_PARAM = re.compile(r'([A-Za-z.]+)\s*=\s*"([^"]*)"')
_LEGACY = re.compile(r"^\S+\s+(@@?)(?:\([^)]*\))?\[?([A-Za-z0-9:.-]+?)\]?(?::([0-9]{1,5}))?\s*$")


def _strip_comments(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def parse_syslog_targets(text: str) -> list[SyslogTarget]:
    """Every forwarding action of the rsyslog config, in order (pure).

    >>> parse_syslog_targets('*.* action(type="omfwd" target="10.0.0.5" port="6514" '
    ...                      'protocol="tcp" StreamDriver="gtls")\\n*.* @logs:514\\n')[1].protocol
    'udp'
    """
    body = _strip_comments(text[:MAX_SECTION])
    targets: list[SyslogTarget] = []
    for match in _ACTION.finditer(body):
        params = {k.lower(): v for k, v in _PARAM.findall(match[1])}
        if params.get("type", "").lower() != "omfwd" or "target" not in params:
            continue
        protocol = params.get("protocol", "udp").lower()
        tls = params.get("streamdriver", "").lower() in {"gtls", "ossl"}
        port = _int(params.get("port", "")) or (6514 if tls else 514)
        targets.append(
            SyslogTarget(
                address=params["target"], port=port, protocol="tls" if tls else protocol, tls=tls
            )
        )
    for line in body.splitlines():
        legacy = _LEGACY.match(line.strip())
        if legacy:
            protocol = "tcp" if legacy[1] == "@@" else "udp"
            port = _int(legacy[3] or "") or 514
            targets.append(SyslogTarget(address=legacy[2], port=port, protocol=protocol))
    return targets


def integ_facts(sections: Mapping[str, tuple[int, str]]) -> dict[str, object]:
    """The ServerFacts fields of the integrity and logging sections (pure); a section
    whose command failed or did not run leaves its fields out (unknown)."""
    facts: dict[str, object] = {}
    if "aide" in sections and sections["aide"][0] == 0:
        facts["aide"] = parse_aide(sections["aide"][1])
    if "journald" in sections and sections["journald"][0] == 0:
        facts["journald"] = parse_journald(sections["journald"][1])
    if "rsyslog_conf" in sections:
        rc, text = sections["rsyslog_conf"]
        if rc == 0:
            facts["rsyslog_configured"] = True
            facts["rsyslog_targets"] = parse_syslog_targets(text)
        elif text.startswith("no /etc/rsyslog.conf"):
            facts["rsyslog_configured"] = False
            facts["rsyslog_targets"] = []
    return facts
