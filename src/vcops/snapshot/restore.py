"""``snapshot restore``: put a host's config back as a snapshot had it (I/O edge).

Order of work for a real restore (``check=False``):

1. ask the policy gate (:func:`vcops.policy.authorize`): production needs the lease
   of the window rolling it back, or an emergency reason;
2. collect the live host once; plan from the stored snapshot and the live files;
3. refuse if a file needs a secret the store does not hold (or skip it);
4. commit a *before* snapshot (from that same collection), so nothing is lost;
5. apply (servers: one script; devices: NAPALM replace or Netmiko lines);
6. take an *after* snapshot and, for devices, check it matches the snapshot.

With ``check=True`` only steps 1-3 run and the masked diff is reported.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from vcops.connectors.hosttask import run_tasks
from vcops.connectors.ssh import SshTarget
from vcops.errors import CommandError, ConnectError, StoreError, VcopsError
from vcops.inventory.models import Server, Target
from vcops.policy import Emergency, WindowLease, authorize
from vcops.snapshot.build import (
    FILE_LIST,
    RUNNING,
    build_server_snapshot,
    parse_tar,
)
from vcops.snapshot.catalog import classify_path
from vcops.snapshot.mask import mask_text
from vcops.snapshot.models import HostSnapshot, RestoreReport
from vcops.snapshot.restore_device import latest, restore_device
from vcops.snapshot.restore_plan import plan_server_restore
from vcops.snapshot.restore_script import RestoreTask, ScriptResult, parse_restore_output
from vcops.snapshot.take import SnapshotContext, collect_servers, record, server_snapshot


def restore_target(
    ctx: SnapshotContext,
    target: Target,
    rev: str,
    *,
    check: bool = False,
    emergency: str | None = None,
    lease: WindowLease | None = None,
    skip_masked: bool = False,
    paths: list[str] | None = None,
    method: str = "auto",
    now: datetime,
    remote: RemoteRestore | None = None,
) -> RestoreReport:
    """Restore (or with ``check`` only plan) one target from the snapshot at ``rev``.

    A real restore of a production target needs the policy gate's grant: the ``lease``
    of the window rolling it back, or an ``emergency`` reason. ``remote``: a server it
    routes is restored by its site's worker (:mod:`vcops.workers_window`); the gate,
    the snapshot commits and the audit entry stay here.

    Raises:
        ApprovalError: production without an emergency reason.
        StoreError: no snapshot of the target at ``rev``.
        ConnectError: the target cannot be reached.
    """
    if not check:
        grant = lease or (Emergency(emergency) if emergency else None)
        authorize(
            [target],
            grant,
            action="snapshot.restore",
            hint="or use --check to see the diff",
            audit=ctx.store,
        )
    action = "snapshot.restore.check" if check else "snapshot.restore"
    try:
        report = _restore(ctx, target, rev, check, skip_masked, paths, method, now, remote)
    except VcopsError as exc:
        if ctx.store is not None:
            detail: dict[str, object] = {"rev": rev, "status": "error", "error": str(exc)}
            detail["emergency"] = emergency
            detail["window"] = lease.window_id if lease else None
            ctx.store.audit(action, target.name, detail, actor=ctx.actor)
        raise
    report.emergency = emergency if emergency and not check else None
    if ctx.store is not None:
        ctx.store.audit(
            action,
            target.name,
            {
                "rev": report.rev,
                "status": report.status,
                "method": report.method,
                "files": {f.path: f.action for f in report.files if f.action != "unchanged"},
                "emergency": report.emergency,
                "window": lease.window_id if lease and not check else None,
                "before": report.before_commit,
                "after": report.after_commit,
                "error": report.error,
            },
            actor=ctx.actor,
        )
    return report


def _restore(
    ctx: SnapshotContext,
    target: Target,
    rev: str,
    check: bool,
    skip_masked: bool,
    paths: list[str] | None,
    method: str,
    now: datetime,
    remote: RemoteRestore | None = None,
) -> RestoreReport:
    ctx.repo.require()
    commit = ctx.repo.resolve(rev)
    stored = ctx.repo.read_tree(target.name, commit)
    if not stored:
        raise StoreError(
            f"{target.name}: no snapshot at {rev}; see `vcops snapshot list {target.name}`"
        )
    if isinstance(target, Server):
        if FILE_LIST not in stored:
            raise StoreError(f"{target.name}: the snapshot at {rev} is not a server snapshot")
        if remote is not None and not check and remote.routes(target):
            done = remote.run(target, stored, commit)
            commits = {  # "before" first, as here; kept even when the restore stopped
                when: commit_kept(ctx, target.name, snap, reason)
                for when, (snap, reason) in done.kept.items()
            }
            if done.report is None:
                raise CommandError(done.error or f"{target.name}: no answer from its site")
            done.report.before_commit = commits.get("before")
            done.report.after_commit = commits.get("after")
            return done.report
        return restore_server_files(
            ctx,
            target,
            stored,
            commit,
            check=check,
            skip_masked=skip_masked,
            paths=paths,
            now=now,
            keep=lambda _when, snap, reason: commit_kept(ctx, target.name, snap, reason),
        )
    if RUNNING not in stored:
        raise StoreError(f"{target.name}: the snapshot at {rev} holds no running config")
    return restore_device(ctx, target, stored, commit, check, skip_masked, method)


#: Keeps a snapshot a server restore takes (``when``: before or after the write; None
#: when the host could not be collected after it): ``keep(when, snapshot, reason)`` ->
#: the commit holding it (None: kept for the controller to commit).
Keep = Callable[[Literal["before", "after"], HostSnapshot | None, str], str | None]

#: The snapshots a restore took elsewhere, by when, with their reasons.
Kept = dict[Literal["before", "after"], tuple[HostSnapshot | None, str]]


@dataclass
class Restored:
    """What a site worker answers for a restore: the report (None when it stopped with
    ``error``), and the snapshots it took for the controller to commit, by when (before
    the write, after it), with their reasons."""

    report: RestoreReport | None
    kept: Kept
    error: str = ""


@dataclass(frozen=True)
class RemoteRestore:
    """Servers restored elsewhere (a site's workers): which ones (``routes``) and how
    (``run(server, stored files, commit)``)."""

    routes: Callable[[Server], bool]
    run: Callable[[Server, dict[str, bytes], str], Restored]


def commit_kept(
    ctx: SnapshotContext, name: str, snap: HostSnapshot | None, reason: str
) -> str | None:
    """Commit a restore's snapshot; the host's newest commit when it is unchanged or
    was not collected (as a take would leave it)."""
    committed = record(ctx, [snap], reason, None, {})[0] if snap is not None else None
    return committed or latest(ctx, name)


def restore_server_files(
    ctx: SnapshotContext,
    server: Server,
    stored: dict[str, bytes],
    commit: str,
    *,
    check: bool,
    skip_masked: bool,
    paths: list[str] | None,
    now: datetime,
    keep: Keep,
) -> RestoreReport:
    """The host part of a server restore (the same code on the controller and on a
    site worker): collect the live files, plan, ``keep`` the live files' snapshot
    before anything is written, write and reload with the host-side script, ``keep``
    a snapshot after."""
    [live] = collect_servers(ctx, [server])
    if live.status == "unreachable":
        raise ConnectError(live.error or f"{server.name}: unreachable")
    if live.status != "ok":
        raise CommandError(live.error or f"{server.name}: collecting the live files failed")
    files = live.sections.get("files")
    found, _ = parse_tar(files.data if files else b"", live.roots)
    plan = plan_server_restore(
        stored, found, ctx.key, roots=live.roots, paths=paths, skip_masked=skip_masked
    )
    report = RestoreReport(
        host=server.name,
        kind="server",
        rev=commit,
        check=check,
        status="planned",
        method="ssh",
        files=[f for f in plan.files if f.action != "unchanged"],
        notes=plan.notes,
    )
    outside = [f.path for f in plan.refused if "outside the trees" in f.reason]
    if outside:
        report.status = "refused"
        report.error = (
            f"{server.name}: {', '.join(outside)}: outside the trees vcops collects for this "
            f"host's roles; the snapshot at {commit[:12]} was edited, nothing is restored"
        )
        return report
    if plan.refused:
        names = ", ".join(f.path for f in plan.refused)
        report.status = "refused"
        report.error = (
            f"{server.name}: {names}: the snapshot holds masked secrets the host no longer has; "
            "restore those files by hand, or rerun with --skip-masked to leave them as they are"
        )
        return report
    if not plan.writes:
        report.status = "nothing-to-do"
        return report
    if check:
        return report
    before = build_server_snapshot(server.name, live.sections, live.roots, ctx.key)
    report.before_commit = keep(
        "before", before, f"before restore of {server.name} to {commit[:12]}"
    )
    nonce = secrets.token_hex(8)
    run_id = f"restore-{now.strftime('%Y%m%dT%H%M%SZ')}-{nonce[:8]}"
    task = RestoreTask(
        writes=plan.writes, post_checks=plan.post_checks, reloads=plan.reloads, run_id=run_id
    )
    [ran] = run_tasks([SshTarget.from_inventory(ctx.inventory, server)], [task], timeout=300)
    if ran.status == "unreachable":
        raise ConnectError(ran.error or f"{server.name}: unreachable")
    out = ran.output("restore")
    if not ran.framed.started:
        raise CommandError(ran.error or f"{server.name}: the restore script did not start")
    result = parse_restore_output(out, plan.writes)
    report.reloaded = result.reloads
    for path, text in {**result.invalid, **result.post_failed}.items():
        kind = classify_path(path) if path.startswith("/") else "generic"
        report.notes.append(
            f"{path}: validation failed: {mask_text(text.strip(), kind, ctx.key).text[-400:]}"
        )
    for path in result.unvalidated:
        report.notes.append(f"{path}: its validator is not installed on the host; not validated")
    if not result.done:
        report.status = "failed"
        report.error = _stopped(server.name, result, out.rc if out.rc is not None else -1)
        return report
    report.status = "restored"
    unhealthy = {
        name: state
        for name, state in result.reloads.items()
        if name != "sysctl" and not state.startswith("not running") and state != "exit 0, active"
    }
    if unhealthy:
        report.status = "failed"
        report.error = f"{server.name}: files restored, but " + "; ".join(
            f"{name}: {state}" for name, state in unhealthy.items()
        )
    [again] = collect_servers(ctx, [server])
    after, _row = server_snapshot(ctx, server, again, None)  # None: unreachable again
    report.after_commit = keep("after", after, f"after restore of {server.name} to {commit[:12]}")
    return report


def _stopped(name: str, result: ScriptResult, exit_status: int) -> str:
    if result.invalid or result.post_failed:
        what = "validation failed: " + ", ".join([*result.invalid, *result.post_failed])
    else:
        what = result.failure or f"the script exited {exit_status} without finishing"
    if result.rolled_back:
        return f"{name}: restore stopped ({what}); every file was put back from the backup"
    if not result.written and not result.deleted:
        return f"{name}: restore stopped ({what}); no file was replaced"
    return f"{name}: restore stopped after replacing files ({what}); check the host"
