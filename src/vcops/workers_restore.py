"""A window's rollback through site workers: the config restore of a server of a site
listed in ``[workers] sites`` runs on that site's worker, the rest of the rollback (the
policy gate's lease, the snapshot commits, the audit entry) on the controller.

The controller sends the host's files as its snapshot at the window's before-revision
holds them (masked: the same text that is in the controller's git repository) in a
sealed task (:mod:`vcops.workers_seal`). The worker runs the host part of a restore
with the same code as the controller
(:func:`vcops.snapshot.restore.restore_server_files`: collect the live files, plan,
fill in masked secrets from the live host, write with the host-side script that checks
and reloads, collect again) and answers with the report and the two snapshots it took
(before the write, after it), masked with its copy of the masking key; the controller
commits them. Example payload::

    {"targets": ["kam-fra1-01"], "inventory": "5f0c9a1b...", "key": "1a2b3c4d5e6f7a8b",
     "rev": "0c1d...", "files": {"files/etc/kamailio/kamailio.cfg": "<base64>", ...},
     "now": "2026-11-30T10:00:00+00:00", "expires": 1764500000, "seal": "9c1e..."}
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal

from vcops.connectors import broker
from vcops.errors import VcopsError
from vcops.inventory.models import Server
from vcops.snapshot.gitstore import SnapshotRepo
from vcops.snapshot.models import HostSnapshot, RestoreReport
from vcops.snapshot.restore import Kept, RemoteRestore, Restored, restore_server_files
from vcops.snapshot.take import SnapshotContext
from vcops.workers import Sealer, SitePlan, fan_out, payload_names, serving
from vcops.workers_snapshot import read_snapshot, worker_key

TASK = "vcops.window_restore"


def _stopped(names: list[str], why: str) -> dict[str, object]:
    return {n: {"report": None, "kept": {}, "error": why} for n in names}


def _stored(payload: dict[str, object]) -> dict[str, bytes]:
    raw = payload.get("files")
    if not isinstance(raw, dict):
        raise ValueError("no files")
    return {str(p): base64.b64decode(str(v), validate=True) for p, v in raw.items()}


def window_restore(payload: dict[str, object]) -> dict[str, object]:
    """The worker task: restore this site's server to the files the controller sent."""
    ctx = serving()
    names = payload_names(payload)
    key, refused = worker_key(ctx, payload)
    stored: dict[str, bytes] = {}
    now = datetime.now().astimezone()
    if refused is None:
        try:
            stored = _stored(payload)
            now = datetime.fromisoformat(str(payload.get("now")))
        except (ValueError, binascii.Error):
            refused = f"worker {ctx.node}: an unreadable restore task"
    rev = str(payload.get("rev", ""))[:64]
    if refused is not None or ctx.snapshots_dir is None:
        why = refused or "no snapshot directory"
        return {"worker": ctx.node, "results": _stopped(names, why)}
    servers, elsewhere = ctx.site_servers(names[:1])
    results: dict[str, object] = {}
    for name, why in elsewhere.items():
        results |= _stopped([name], why)
    snap_ctx = SnapshotContext(
        inventory=ctx.inventory(),
        repo=SnapshotRepo(ctx.snapshots_dir),  # never written here: the controller commits
        key=key,
        max_parallel=1,
        actor=ctx.node,
    )
    if not servers:
        return {"worker": ctx.node, "results": results}
    server = servers[0]  # one host per restore task
    kept: dict[str, object] = {}

    def keep(when: Literal["before", "after"], snap: HostSnapshot | None, reason: str) -> None:
        kept[when] = {"snapshot": snap.model_dump(mode="json") if snap else None, "reason": reason}

    with broker.host_locks(
        ctx.broker_url, [server.name], ctx.lock_ttl, renew=True, wait=float(ctx.lock_ttl)
    ) as (held, _busy):
        if not held:
            results |= _stopped([server.name], f"another task kept it busy for {ctx.lock_ttl} s")
            return {"worker": ctx.node, "results": results}
        try:
            report = restore_server_files(
                snap_ctx,
                server,
                stored,
                rev,
                check=False,
                skip_masked=False,
                paths=None,
                now=now,
                keep=keep,
            )
        except VcopsError as exc:  # the host went away mid-restore: keep what we took
            results[server.name] = {"report": None, "kept": kept, "error": str(exc)}
        else:
            results[server.name] = {"report": report.model_dump(mode="json"), "kept": kept}
    return {"worker": ctx.node, "results": results}


# -- the controller side ---------------------------------------------------------------


def _read(server: Server, item: dict[str, object]) -> Restored:
    """One host's answer, checked: a report of this host, snapshots of this host."""
    raw = item.get("report")
    report = RestoreReport.model_validate(raw) if raw is not None else None
    if report is not None and (report.host != server.name or report.kind != "server"):
        raise ValueError("the report is of another host")
    raw_kept = item.get("kept")
    kept: Kept = {}
    for when in ("before", "after"):
        entry = raw_kept.get(when) if isinstance(raw_kept, dict) else None
        if not isinstance(entry, dict):
            continue
        snap = entry.get("snapshot")
        checked = (
            read_snapshot(server, HostSnapshot.model_validate(snap)) if snap is not None else None
        )
        kept[when] = (checked, str(entry.get("reason", ""))[:300])
    return Restored(report, kept, str(item.get("error") or "")[:2000])


def remote_restore(plan: SitePlan, key: bytes) -> RemoteRestore:
    """The ``remote`` hook of :func:`vcops.snapshot.restore.restore_target` for the
    sites with workers (``key``: the controller's masking key; only its id is sent)."""

    def run(server: Server, stored: dict[str, bytes], rev: str) -> Restored:
        sealed = Sealer.of(plan, key, once=True)(
            [server],
            rev=rev,
            files={p: base64.b64encode(data).decode() for p, data in stored.items()},
            now=datetime.now().astimezone().isoformat(),
        )

        def fail(servers: list[Server], error: str) -> dict[str, Restored]:
            return {s.name: Restored(None, {}, error) for s in servers}

        try:
            done = fan_out(plan, TASK, [server], lambda _c: sealed, _read, fail, lambda _n: None)
        except VcopsError as exc:  # e.g. the distributed extra is not installed
            return Restored(None, {}, str(exc))
        return done.get(server.name) or Restored(None, {}, "no answer from its site")

    return RemoteRestore(routes=lambda s: s.site in plan.sites, run=run)
