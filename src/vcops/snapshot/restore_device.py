"""Device restore: NAPALM replace with commit-confirm, or the Netmiko line merge (I/O edge).

``method``: ``auto`` replaces through NAPALM when the device's transport is napalm and
falls back to the line merge, saying so, when the driver cannot load a replace
candidate (nothing was changed by then); ``replace`` and ``merge`` force one path.
After a real restore a new snapshot is taken and compared with the one restored: a
line still different is reported, never hidden.
"""

from __future__ import annotations

from vcops.connectors.netdev import DeviceTarget, translate_error
from vcops.errors import CommandError
from vcops.inventory.models import Device
from vcops.snapshot.build import RUNNING
from vcops.snapshot.catalog import PLATFORM_KINDS
from vcops.snapshot.devices import (
    DeviceConfigs,
    ReplaceUnsupported,
    fetch_configs,
    napalm_driver,
    push_lines,
    replace_config,
)
from vcops.snapshot.mask import MARKER_RE, collect_secrets, mask_text, unmask
from vcops.snapshot.models import RestoreFile, RestoreReport
from vcops.snapshot.noise import normalize_config
from vcops.snapshot.restore_plan import plan_line_merge, unified
from vcops.snapshot.take import SnapshotContext, device_snapshot, record, take_snapshots


def quiet(ctx: SnapshotContext) -> SnapshotContext:
    """The context without the audit store (restore writes its own entry)."""
    return SnapshotContext(
        inventory=ctx.inventory,
        repo=ctx.repo,
        key=ctx.key,
        max_parallel=ctx.max_parallel,
        actor=ctx.actor,
        store=None,
    )


def latest(ctx: SnapshotContext, host: str) -> str | None:
    """The newest commit holding the host's snapshot (what an unchanged take would repeat)."""
    commits = ctx.repo.host_commits(host)
    return commits[0] if commits else None


def restore_device(
    ctx: SnapshotContext,
    device: Device,
    stored: dict[str, bytes],
    commit: str,
    check: bool,
    skip_masked: bool,
    method: str,
) -> RestoreReport:
    """Plan and (unless ``check``) apply a device's stored running config."""
    target = DeviceTarget.from_inventory(ctx.inventory, device)
    kind = PLATFORM_KINDS.get(device.platform, "generic")
    wanted_masked = stored[RUNNING].decode("utf-8")
    live = fetch_configs(target, ctx.key)
    live_clean = normalize_config(live.running, device.platform)
    live_masked = mask_text(live_clean, kind, ctx.key).text
    diff = unified(live_masked, wanted_masked, RUNNING)
    report = RestoreReport(
        host=device.name,
        kind="device",
        rev=commit,
        check=check,
        status="planned",
        files=[RestoreFile(path=RUNNING, action="write", diff=diff)] if diff else [],
    )
    if not diff:
        report.status = "nothing-to-do"
        return report
    known = collect_secrets(live_clean, kind, ctx.key).secrets
    wanted, unresolved = unmask(wanted_masked, known)
    if method == "replace" or (method == "auto" and device.transport == "napalm"):
        if unresolved:
            report.status = "refused"
            report.error = (
                f"{device.name}: {RUNNING} holds {len(set(unresolved))} masked secret(s) that "
                "are not on the device any more, and a full replace would need them; restore "
                "by hand, or use --method merge --skip-masked to leave those lines alone"
            )
            return report
        try:
            return _replace(ctx, device, target, wanted, wanted_masked, report, live)
        except ReplaceUnsupported as exc:
            if method == "replace":
                raise CommandError(
                    f"{device.name}: NAPALM {device.platform} cannot load a replace candidate on "
                    f"this device ({exc}); use --method merge"
                ) from exc
            report.notes.append(
                f"NAPALM {device.platform} cannot load a replace candidate on this device "
                f"({exc}); nothing was changed by it: used the Netmiko line merge instead"
            )
    return _merge(ctx, device, target, live_clean, wanted, wanted_masked, report, skip_masked, live)


def _replace(
    ctx: SnapshotContext,
    device: Device,
    target: DeviceTarget,
    wanted: str,
    wanted_masked: str,
    report: RestoreReport,
    live: DeviceConfigs,
) -> RestoreReport:
    report.method = "napalm-replace"
    kind = PLATFORM_KINDS.get(device.platform, "generic")
    if not report.check:
        report.before_commit = _before(ctx, device, live)
    try:
        outcome = replace_config(lambda: napalm_driver(target), wanted, check=report.check)
    except (ReplaceUnsupported, CommandError):
        raise
    except Exception as exc:
        raise translate_error(target, exc) from exc
    if outcome.diff.strip():
        device_diff = mask_text(outcome.diff, kind, ctx.key).text
        report.files.append(
            RestoreFile(
                path="device diff (NAPALM compare_config)", action="write", diff=device_diff
            )
        )
    report.notes.extend(outcome.notes)
    if report.check:
        return report
    if not outcome.committed:
        report.status = "nothing-to-do"
        report.notes.append("NAPALM found no difference to commit")
        return report
    if outcome.confirmed:
        report.notes.append(
            "committed with commit-confirm, confirmed after a second session answered"
        )
    return _verify(ctx, device, wanted_masked, report)


def _merge(
    ctx: SnapshotContext,
    device: Device,
    target: DeviceTarget,
    live_clean: str,
    wanted: str,
    wanted_masked: str,
    report: RestoreReport,
    skip_masked: bool,
    live: DeviceConfigs,
) -> RestoreReport:
    report.method = "netmiko-merge"
    kind = PLATFORM_KINDS.get(device.platform, "generic")
    try:
        commands = plan_line_merge(live_clean, wanted, device.platform)
    except ValueError as exc:
        report.status = "refused"
        report.error = f"{device.name}: {exc}"
        return report
    marked = [c for c in commands if MARKER_RE.search(c)]
    if marked and not skip_masked:
        report.status = "refused"
        report.error = (
            f"{device.name}: {len(marked)} line(s) to push hold masked secrets that are not on "
            "the device any more; restore them by hand, or rerun with --skip-masked to leave "
            "them out"
        )
        report.commands = [mask_text(c, kind, ctx.key).text for c in commands]
        return report
    if marked:
        commands = [c for c in commands if not MARKER_RE.search(c)]
        report.notes.append(
            f"left out {len(marked)} line(s) holding unknown secrets (--skip-masked)"
        )
    report.commands = [mask_text(c, kind, ctx.key).text for c in commands]
    if not commands:
        report.status = "nothing-to-do"
        report.notes.append("no config line differs (only comments or ignored lines)")
        return report
    if report.check:
        return report
    report.before_commit = _before(ctx, device, live)
    errors = push_lines(target, commands, ctx.key)
    if errors:
        report.notes.append(f"the device rejected {len(errors)} line(s): " + " | ".join(errors[:5]))
    return _verify(ctx, device, wanted_masked, report)


def _before(ctx: SnapshotContext, device: Device, live: DeviceConfigs) -> str | None:
    snap = device_snapshot(ctx, device, live)
    if RUNNING not in snap.files:
        return None
    commit, _ = record(ctx, [snap], f"before restore of {device.name}", None, {})
    return commit or latest(ctx, device.name)


def _verify(
    ctx: SnapshotContext, device: Device, wanted_masked: str, report: RestoreReport
) -> RestoreReport:
    after = take_snapshots(
        quiet(ctx), [device], reason=f"after restore of {device.name} to {report.rev[:12]}"
    )
    report.after_commit = after.commit or latest(ctx, device.name)
    row = after.hosts[0]
    if row.status in {"unreachable", "failed"}:
        report.status = "failed"
        report.error = f"{device.name}: pushed, but the check afterwards failed: {row.error}"
        return report
    now = ctx.repo.read_tree(device.name, "HEAD").get(RUNNING, b"").decode("utf-8")
    residual = unified(now, wanted_masked, RUNNING)
    if residual:
        report.status = "failed"
        count = sum(1 for line in residual.splitlines()[2:] if line[:1] in "+-")
        report.error = (
            f"{device.name}: {count} line(s) still differ from the snapshot after the push"
        )
        report.files.append(
            RestoreFile(path=f"{RUNNING} (still differs)", action="write", diff=residual)
        )
        return report
    report.status = "restored"
    return report
