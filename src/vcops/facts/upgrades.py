"""Pending upgrades, computed only when something ``apt list --upgradable`` reads changed.

``apt list --upgradable`` costs a host ~0.4 s of CPU per scan. The ``facts`` task
(``upgrades.sh``) fingerprints, host-side, what that answer depends on (the dpkg status
file, the apt lists and the apt sources, preferences and configuration: names, sizes,
inodes, mtimes and ctimes, hashed) and compares it with the fingerprint the controller
stored at the host's last scan (:attr:`vcops.facts.server.FactsTask.upgrades_since`). It
answers with an ``upgrades`` record, ``unchanged FP`` (no ``apt`` run) or ``computed FP``
with the list in the ``upgradable`` section. Still one script, one round trip, nothing
written on the host. :func:`read_upgrades` turns that answer and the stored
:class:`UpgradeCache` into the list to judge (pure; no clock anywhere: only equal
fingerprints reuse a list). Example::

    read = read_upgrades(run.output("facts"), UpgradeCache(fingerprint="5f0c...", upgradable=[]))
    read.state        # "cached": the host said "unchanged 5f0c..."
    read.upgradable   # the stored list
    read.cache        # None (nothing new to store)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from vcops.connectors.hosttask import TaskOutput
from vcops.facts.sections import Upgrade, parse_upgradable
from vcops.facts.server import FINGERPRINT_RE


class UpgradeCache(BaseModel):
    """What the store keeps per host: the fingerprint and the list computed under it."""

    fingerprint: str
    upgradable: list[Upgrade]


class UpgradesRead(BaseModel):
    """The pending upgrades of one host's run.

    ``upgradable`` is None when unknown (apt failed, or the host claimed "unchanged"
    for a fingerprint the controller does not hold); ``cache`` is the entry to store
    when the host computed a fresh list.
    """

    state: Literal["cached", "computed"] | None = None
    upgradable: list[Upgrade] | None = None
    cache: UpgradeCache | None = None


def read_upgrades(out: TaskOutput, stored: UpgradeCache | None) -> UpgradesRead:
    """The ``upgrades`` / ``upgradable`` records of a facts run against the stored entry."""
    record = out.get("upgrades")
    words = record.text.split() if record is not None else []
    fingerprint = words[1] if len(words) == 2 and FINGERPRINT_RE.fullmatch(words[1]) else None
    if words[:1] == ["unchanged"]:
        if stored is not None and fingerprint is not None and stored.fingerprint == fingerprint:
            return UpgradesRead(state="cached", upgradable=list(stored.upgradable))
        return UpgradesRead()  # an answer to a question this controller did not ask
    text = out.ok_text("upgradable")
    if text is None:
        return UpgradesRead(state="computed" if record is not None else None)
    upgradable = parse_upgradable(text)
    cache = None
    if words[:1] == ["computed"] and fingerprint is not None:
        cache = UpgradeCache(fingerprint=fingerprint, upgradable=upgradable)
    return UpgradesRead(state="computed", upgradable=upgradable, cache=cache)
