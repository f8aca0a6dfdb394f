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

needrestart is skipped the same way (``needrestart_check`` in ``gather.sh``), but only
while its last answer was "no service to restart": the stored entry then also holds
that fingerprint (:attr:`UpgradeCache.needrestart`), and :func:`read_needrestart` says
whether the host reused it. A host with services to restart runs needrestart at every
scan until they are restarted, and a fingerprint older than
:data:`NEEDRESTART_MAX_AGE` (the controller's clock) is not sent: what the fingerprint
cannot see (a script an interpreter runs, replaced outside dpkg) waits a day at most.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from vcops.connectors.hosttask import TaskOutput
from vcops.facts.sections import Upgrade, parse_upgradable
from vcops.facts.server import FINGERPRINT_RE

NEEDRESTART_MAX_AGE = timedelta(days=1)
"""How long a needrestart fingerprint is sent to the host after it was computed."""


class UpgradeCache(BaseModel):
    """What the store keeps per host: the fingerprint and the list computed under it;
    the needrestart fingerprint under which no service needed a restart ("" for none)
    and when it was computed."""

    fingerprint: str
    upgradable: list[Upgrade]
    needrestart: str = ""
    needrestart_at: datetime | None = None

    def needrestart_since(self, now: datetime) -> str:
        """The needrestart fingerprint to send, or "" once it is a day old (or from the
        future: a controller clock set back)."""
        at = self.needrestart_at
        fresh = at is not None and timedelta(0) <= now - at <= NEEDRESTART_MAX_AGE
        return self.needrestart if fresh else ""


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


class NeedrestartRead(BaseModel):
    """needrestart in one host's run: ``cached`` (the host matched the stored
    fingerprint: still no service to restart), ``computed`` (it ran), or None (no
    answer to use). ``store`` is the fingerprint to keep for the next scan ("" to drop
    it), None to keep what is stored."""

    state: Literal["cached", "computed"] | None = None
    store: str | None = None


def read_needrestart(out: TaskOutput, since: str, services: list[str] | None) -> NeedrestartRead:
    """The ``needrestart_state`` record of a facts run against the fingerprint sent to the
    host (``since``); ``services`` is what the ``needrestart`` section said when it ran
    (None: it failed). Only an answer with no service to restart is kept."""
    record = out.get("needrestart_state")
    words = record.text.split() if record is not None else []
    fingerprint = words[1] if len(words) == 2 and FINGERPRINT_RE.fullmatch(words[1]) else ""
    if words[:1] == ["unchanged"]:
        if since and fingerprint == since:
            return NeedrestartRead(state="cached")
        return NeedrestartRead(store="")  # an answer to a question this controller did not ask
    if words[:1] == ["computed"]:
        return NeedrestartRead(state="computed", store=fingerprint if services == [] else "")
    return NeedrestartRead()


def next_cache(
    cached: UpgradeCache | None,
    computed: UpgradeCache | None,
    needrestart: NeedrestartRead,
    now: datetime,
) -> UpgradeCache | None:
    """The entry to store for a host after its run (pure): the freshly computed pending
    upgrades or the stored ones, with the needrestart fingerprint the run gave (stamped
    ``now``) or the stored one. None when nothing changed (nothing to write)."""
    stored = (cached.needrestart, cached.needrestart_at) if cached is not None else ("", None)
    store = needrestart.store
    changed = store is not None and (store != "" or stored[0] != "")
    if computed is None and not changed:
        return None
    base = computed or cached or UpgradeCache(fingerprint="", upgradable=[])
    kept = (store, now if store else None) if changed and store is not None else stored
    return base.model_copy(update={"needrestart": kept[0], "needrestart_at": kept[1]})
