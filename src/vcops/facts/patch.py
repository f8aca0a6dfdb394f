"""Patch-source facts (VC-PATCH-001/002/005..): the host's apt sources, the age of its
apt lists and what needrestart says, parsed from the ``facts`` task's records (pure).

The sections (appended to ``gather.sh``)::

    apt_sources        a tar of /etc/apt/sources.list and sources.list.d/*.list|*.sources
    apt_lists          the newest mtime (epoch seconds) under /var/lib/apt/lists
    needrestart        ``needrestart -b -r l``: ``NEEDRESTART-SVC: kamailio.service`` lines
    needrestart_conf   /etc/needrestart/conf.d/*.conf

Example::

    fields = parse_patch(sections, out)
    fields["apt_sources"][0].suites      # ("bookworm-security",)
    fields["needrestart_services"]       # ["kamailio.service"]
"""

from __future__ import annotations

import re

from vcops.connectors.hosttask import TaskOutput, tar_members
from vcops.facts.aptsources import codename_of, parse_files

MAX_LINE = 500
#: At most this many services are kept from needrestart's list.
MAX_SERVICES = 256
_SERVICE = re.compile(r"[A-Za-z0-9@._:\\-]{1,200}")
_EPOCH = re.compile(r"\d{1,12}(\.\d{1,10})?")


def parse_needrestart(text: str) -> list[str]:
    """``needrestart -b`` batch output: the ``NEEDRESTART-SVC`` units, bounded."""
    out: list[str] = []
    for line in text.splitlines()[:10_000]:
        key, sep, value = line.partition(":")
        unit = value.strip()
        if sep and key.strip() == "NEEDRESTART-SVC" and _SERVICE.fullmatch(unit):
            if unit not in out:
                out.append(unit)
    return out[:MAX_SERVICES]


def parse_lists_mtime(text: str) -> int:
    """``find /var/lib/apt/lists -maxdepth 1 -printf '%d %T@'`` (depth, mtime): the newest
    mtime of the directory and its entries, or 0 when it has no entries (no lists)."""
    values: list[tuple[str, int]] = []
    for line in text.splitlines()[:10_000]:
        depth, _, mtime = line.strip().partition(" ")
        if depth in {"0", "1"} and _EPOCH.fullmatch(mtime):
            values.append((depth, int(float(mtime))))
    if not any(depth == "1" for depth, _ in values):
        return 0
    return max(m for _, m in values)


def parse_patch(sections: dict[str, tuple[int, str]], out: TaskOutput) -> dict[str, object]:
    """The patch fields of :class:`vcops.facts.server.ServerFacts` from the task's
    sections (name -> (rc, text)) and its ``apt_sources`` tar record."""
    fields: dict[str, object] = {}
    rc, text = sections.get("os_release", (1, ""))
    if rc == 0 and (codename := codename_of(text)):
        fields["os_codename"] = codename
    record = out.get("apt_sources")
    if record is not None:
        files = {
            path: data.decode("utf-8", "replace")
            for path, data in tar_members(record.data).items()
            if path.startswith("/etc/apt/")
        }
        entries, notes = parse_files(files)
        fields["apt_sources"], fields["apt_sources_notes"] = entries, notes
    if "apt_lists" in sections and sections["apt_lists"][0] == 0:
        # 0: the directory holds no lists at all (apt-get update never succeeded)
        fields["apt_lists_mtime"] = parse_lists_mtime(sections["apt_lists"][1])
    if "needrestart" in sections:
        rc, text = sections["needrestart"]
        if rc == 0:
            fields["needrestart_services"] = parse_needrestart(text)
        else:
            fields["needrestart_error"] = (text.strip().splitlines() or ["needrestart failed"])[-1][
                :200
            ]
    if "needrestart_conf" in sections and sections["needrestart_conf"][0] == 0:
        fields["needrestart_conf"] = [
            ln.strip()[:MAX_LINE]
            for ln in sections["needrestart_conf"][1].splitlines()[:2000]
            if ln.strip() and not ln.strip().startswith("#")
        ]
    return fields
