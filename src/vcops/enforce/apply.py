"""``vcops apply``: enforce the baseline on servers, or show what would change.

- ``check``: one SSH round per host reads every managed file (secrets masked on the
  host), the templates are rendered locally, and the differences come back as
  per-file unified diffs. Nothing is changed.
- a real run: the pyinfra baseline deploy (:mod:`vcops.enforce.pyinfra_run`) or the
  Ansible playbook of the ``vcops_*`` roles (:mod:`vcops.enforce.ansible`), with
  audit entries for the start, every host's result and the end.
- ``--engine ansible --check``: ``ansible-playbook --check --diff``, per host the
  tasks that would change and their diffs (secret-bearing tasks are ``no_log``).

Network devices in the selection go through :mod:`vcops.enforce.netdev_apply` whatever
the engine: remediation and rollback per device (``--check`` shows both), pushed with
commit-confirm or Netmiko, verified from a fresh login, rolled back on failure.

Production hosts are changed only with the policy gate's grant
(:func:`vcops.policy.authorize`): an approved window's lease, or an emergency reason;
the decision is recorded.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vcops.connectors.hosttask import HostTask, ScriptTask, run_tasks
from vcops.connectors.ssh import SshTarget
from vcops.enforce.ansible import run_ansible, run_ansible_devices
from vcops.enforce.ansible_events import AnsibleHost, Masker
from vcops.enforce.apply_models import (
    QUIET,
    ApplyReport,
    Engine,
    FileChange,
    HostOutcome,
    Progress,
)
from vcops.enforce.files import HostState, file_changed, parse_state
from vcops.enforce.helper import PACKAGES, areas, remote_command, state_spec
from vcops.enforce.hostkeys import lockout_problems
from vcops.enforce.netdev_apply import DeviceOutcome, run_devices
from vcops.enforce.pyinfra_run import CONDITIONAL, PyinfraHost, controller_address, run_pyinfra
from vcops.enforce.render import desired_files
from vcops.enforce.vars import role_vars
from vcops.errors import CommandError, InventoryError, Problem
from vcops.inventory.export import JsonValue
from vcops.inventory.models import Device, Inventory, Server, Target
from vcops.inventory.select import select_targets
from vcops.policy import Emergency, WindowLease, authorize
from vcops.snapshot.catalog import classify_path
from vcops.snapshot.mask import mask_text
from vcops.store import Store

__all__ = [
    "ApplyReport",
    "Engine",
    "FileChange",
    "HostOutcome",
    "RemoteApply",
    "apply_servers",
    "check_hosts",
    "diff_masker",
    "merge_check",
    "plan_host",
    "run_apply",
    "select_apply_targets",
    "unified_diff",
]


def select_apply_targets(
    inventory: Inventory, limit: str | None
) -> tuple[list[Server], list[Device]]:
    """The servers and devices ``--limit`` selects.

    Raises:
        InventoryError: the pattern is bad or selects nothing.
    """
    targets = select_targets(inventory, limit)
    servers = [t for t in targets if isinstance(t, Server)]
    devices = [t for t in targets if isinstance(t, Device)]
    if not servers and not devices:
        raise InventoryError(
            [Problem("--limit", limit or "all", "selects nothing", "see vcops inventory list")]
        )
    return servers, devices


def _devices(
    inventory: Inventory,
    devices: list[Device],
    engine: Engine,
    key: bytes,
    key_file: Path | None,
    check: bool,
    step: Callable[[str], None],
) -> list[HostOutcome]:
    """Devices through vcops's remediation code, directly or from the Ansible module."""
    if engine != "ansible":
        done = run_devices(inventory, devices, key=key, check=check, on_device=step)
        return [device_host(d) for d in done]
    if key_file is None:
        raise InventoryError(
            [Problem("apply", "devices", "no masking key file given", "pass mask_key_file")]
        )
    results, _seconds = run_ansible_devices(inventory, devices, mask_key_file=key_file, check=check)
    return [_ansible_outcome(r, check=check).model_copy(update={"kind": "device"}) for r in results]


def device_host(outcome: DeviceOutcome) -> HostOutcome:
    return HostOutcome(
        name=outcome.name,
        kind="device",
        status=outcome.status,
        reason=outcome.reason,
        changes=outcome.remediation,
        controls=outcome.controls,
        rollback=outcome.rollback,
        rolled_back=outcome.rolled_back,
        notes=outcome.notes,
    )


def unified_diff(path: str, live: str | None, desired: str) -> str:
    """A unified diff of a managed file, live -> desired (pure)."""
    before = (live or "").splitlines(keepends=True)
    after = desired.splitlines(keepends=True)
    lines = difflib.unified_diff(
        before, after, fromfile=f"{path} (live)" if live is not None else "/dev/null",
        tofile=f"{path} (vcops)",
    )  # fmt: skip
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def diff_masker(key: bytes) -> Masker:
    """Mask a file's text by its path with the snapshot masking rules and ``key``, so a
    check's diff shows a secret's marker (the same one its snapshot shows), never it.

    >>> diff_masker(bytes(32))("/etc/default/app", "password = s3cret")
    'password = <vcops:masked:hmac-sha256:b517fb51459d30f8>'
    """

    def mask(path: str, text: str) -> str:
        return mask_text(text, classify_path(path), key).text

    return mask


def plan_host(
    name: str, variables: dict[str, JsonValue], state: HostState, mask: Masker
) -> HostOutcome:
    """What an apply would change on one host, from its reported state (pure); both
    sides of each file's diff go through ``mask`` (the live file may hold secrets)."""
    files = []
    for want in desired_files(variables, state):
        live = state.files.get(want.path)
        if file_changed(want, live):
            content = live.content if live is not None and live.exists else None
            diff = unified_diff(
                want.path,
                mask(want.path, content) if content is not None else None,
                mask(want.path, want.content),
            )
            if not diff and live is not None:
                diff = f"{want.path}: mode/owner {live.mode} {live.owner}:{live.group} -> "
                diff += f"{want.mode} {want.owner}:{want.group}\n"
            files.append(FileChange(path=want.path, area=want.area, diff=diff))
    packages = sorted({p for a in areas(variables) for p in PACKAGES.get(a, ())} - state.packages)
    changed = bool(files or packages)
    return HostOutcome(
        name=name,
        status="changed" if changed else "unchanged",
        reason=(f"{len(files)} files, {len(packages)} packages would change" if changed else ""),
        changes=[f.path for f in files] + [f"install {p}" for p in packages],
        files=files,
        packages=packages,
    )


def check_hosts(
    inventory: Inventory, servers: list[Server], mask: Masker, parallel: int = 32
) -> list[HostOutcome]:
    """``--check``: read every host's managed files in one SSH round and diff them
    (masked by ``mask``)."""
    variables = {
        s.name: role_vars(inventory, s, controller_address=controller_address(s.address))
        for s in servers
    }

    def tasks(target: SshTarget) -> list[HostTask]:
        v = variables[target.name]
        paths = [f.path for f in desired_files(v, HostState())]
        command = remote_command("state", state_spec(v, paths))
        return [ScriptTask(name="enforce", script=f"output state {command}\n")]

    targets = [SshTarget.from_inventory(inventory, s) for s in servers]
    results = run_tasks(targets, tasks, max_parallel=parallel, timeout=120)
    outcomes = []
    for server, result in zip(servers, results, strict=True):
        if result.status == "unreachable":
            outcomes.append(
                HostOutcome(name=server.name, status="unreachable", reason=result.error or "")
            )
            continue
        out = result.output("enforce")
        try:
            state = parse_state(json.loads(out.ok_text("state") or ""))
        except ValueError:
            said = out.get("state-stderr")
            err = (said.text if said else result.error or "no output").strip().splitlines()[-1:]
            outcomes.append(
                HostOutcome(
                    name=server.name,
                    status="failed",
                    reason=f"could not read its state: {err[0] if err else 'no output'}",
                )
            )
            continue
        outcomes.append(plan_host(server.name, dict(variables[server.name]), state, mask))
    return outcomes


def merge_check(diffs: list[HostOutcome], dry: list[PyinfraHost]) -> list[HostOutcome]:
    """``--check`` with pyinfra: what changes is pyinfra's own dry-run plan; the masked
    file diffs come from :func:`check_hosts` (pure).

    The plan is what a real run executes (files, packages, services, sysctls, modes,
    reloads), so nothing a real apply changes is missing from it; the diffs show what
    the file operations in it would write.
    """
    planned = {h.name: h for h in dry}
    out = []
    for local in diffs:
        plan = planned.get(local.name)
        if local.status in {"unreachable", "failed"}:
            out.append(local)
        elif plan is None or not plan.reached:
            reason = "; ".join(plan.errors[-2:]) if plan else ""
            out.append(
                HostOutcome(name=local.name, status="unreachable", reason=reason or "no plan")
            )
        else:
            # a guarded operation (a reload after a file change) runs only when one
            # before it changes: with no firm change, none of them can fire
            firm = any(not c.endswith(CONDITIONAL) for c in plan.changed)
            changes = list(plan.changed) if firm else []
            out.append(
                local.model_copy(
                    update={
                        "status": "changed" if changes else "unchanged",
                        "reason": f"{len(changes)} operations would change (pyinfra dry run)"
                        if changes
                        else "nothing to change (pyinfra dry run)",
                        "changes": changes,
                    }
                )
            )
    return out


def _outcome(host: PyinfraHost) -> HostOutcome:
    if not host.reached:
        reason = "; ".join(host.errors[-2:]) or "could not connect"
        return HostOutcome(name=host.name, status="unreachable", reason=reason)
    if host.failed:
        detail = "; ".join(e for e in host.errors if "vcops:" in e) or "; ".join(host.errors[-2:])
        return HostOutcome(
            name=host.name,
            status="failed",
            reason=f"{', '.join(host.failed)} failed" + (f": {detail}" if detail else ""),
            changes=host.changed,
        )
    if host.changed:
        return HostOutcome(
            name=host.name,
            status="changed",
            reason=f"{len(host.changed)} operations changed",
            changes=host.changed,
        )
    return HostOutcome(name=host.name, status="unchanged", reason="nothing to change")


def _ansible_outcome(host: AnsibleHost, check: bool) -> HostOutcome:
    files = [
        FileChange(path=task, area=task.split(" : ", 1)[0], diff=diff)
        for task, diff in host.diffs.items()
    ]
    if not host.reached:
        reason = "; ".join(host.errors[-2:]) or "could not connect"
        return HostOutcome(name=host.name, status="unreachable", reason=reason)
    if host.failed:
        return HostOutcome(
            name=host.name,
            status="failed",
            reason="; ".join(host.errors[:2]),
            changes=host.changed,
            files=files,
        )
    if host.changed:
        verb = "would change" if check else "changed"
        return HostOutcome(
            name=host.name,
            status="changed",
            reason=f"{len(host.changed)} tasks {verb}",
            changes=host.changed,
            files=files,
        )
    return HostOutcome(name=host.name, status="unchanged", reason="nothing to change")


@dataclass(frozen=True)
class DeviceKey:
    """The masking key that masks device plans, and where it lives (the Ansible
    engine's device module reads the file)."""

    key: bytes
    file: Path | None = None


def apply_servers(
    inventory: Inventory,
    servers: list[Server],
    engine: Engine,
    check: bool,
    mask: Masker,
    progress: Progress = QUIET,
) -> list[HostOutcome]:
    """The engine part of an apply (or ``--check``) for ``servers`` (``mask``: the
    check diffs' masking; ``progress``: the engine's live reports).

    Raises:
        CommandError: the engine could not run.
    """
    if not servers:
        return []
    if engine == "ansible":
        results, _seconds = run_ansible(
            inventory, servers, check=check, mask=mask, progress=progress
        )
        return [_ansible_outcome(r, check=check) for r in results]
    if check:
        dry, _seconds = run_pyinfra(inventory, servers, dry=True)
        return merge_check(check_hosts(inventory, servers, mask), dry)
    ran, _seconds = run_pyinfra(inventory, servers, progress=progress)
    return [_outcome(r) for r in ran]


def apply_targets(
    inventory: Inventory,
    targets: list[Target],
    engine: Engine,
    check: bool,
    mask: Masker,
    devices: DeviceKey,
    step: Callable[[str], None] = lambda _m: None,
    progress: Progress = QUIET,
) -> list[HostOutcome]:
    """The engine part of an apply (or ``--check``): the servers with the engine, then
    the devices through their remediation code; the same code on the controller and on
    a site worker. ``progress`` hears of each target's end (once the engine says so, or
    with its outcome).

    Raises:
        CommandError: the engine could not run.
    """
    servers = [t for t in targets if isinstance(t, Server)]
    routers = [t for t in targets if isinstance(t, Device)]
    done = apply_servers(inventory, servers, engine, check, mask, progress)
    if routers:
        done += _devices(inventory, routers, engine, devices.key, devices.file, check, step)
    for outcome in done:
        progress.done(outcome.name)
    return done


@dataclass(frozen=True)
class RemoteApply:
    """Targets applied elsewhere (a site's workers): which ones (``routes``) and how
    (``run(targets, engine, check)``: each one's outcome, unreachable when no answer)."""

    routes: Callable[[Target], bool]
    run: Callable[[list[Target], Engine, bool], dict[str, HostOutcome]]


def run_targets(
    inventory: Inventory,
    targets: list[Target],
    engine: Engine,
    check: bool,
    mask: Masker,
    remote: RemoteApply | None,
    devices: DeviceKey,
    step: Callable[[str], None] = lambda _m: None,
    progress: Progress = QUIET,
) -> list[HostOutcome]:
    """The routed targets on their workers while the others run here; one list in the
    selection's order (``progress``: each target's end, a site's as its answer comes)."""
    routed = [t for t in targets if remote is not None and remote.routes(t)]
    local = [t for t in targets if t not in routed]
    if remote is None or not routed:
        return apply_targets(inventory, local, engine, check, mask, devices, step, progress)

    def there_and_done() -> dict[str, HostOutcome]:
        assert remote is not None
        answers = remote.run(routed, engine, check)
        for t in routed:
            progress.done(t.name)
        return answers

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vcops-remote-apply") as pool:
        away = pool.submit(there_and_done)
        try:
            here = apply_targets(inventory, local, engine, check, mask, devices, step, progress)
        except CommandError as exc:  # the workers' hosts may be applied: keep their record
            here = [
                HostOutcome(name=t.name, kind=t.kind, status="failed", reason=str(exc))
                for t in local
            ]
        there = away.result()
    done = {h.name: h for h in here} | there
    return [
        done.get(t.name)
        or HostOutcome(
            name=t.name, kind=t.kind, status="unreachable", reason="no answer from its site"
        )
        for t in targets
    ]


def run_apply(
    inventory: Inventory,
    limit: str | None,
    *,
    engine: Engine = "pyinfra",
    check: bool = False,
    emergency: str | None = None,
    lease: WindowLease | None = None,
    store: Store | None = None,
    on_step: Callable[[str], None] | None = None,
    snapshot: Callable[[list[Target], str], str | None] | None = None,
    mask_key: bytes | None = None,
    mask_key_file: Path | None = None,
    remote: RemoteApply | None = None,
    progress: Progress = QUIET,
) -> ApplyReport:
    """Apply (or check) the baseline on the selected servers (``progress``: where the
    engines are, as they run).

    Raises:
        CommandError: the engine could not run.

    ``snapshot(targets, reason)`` (when given) is called before and after a real run and
    returns the snapshot commit (None when nothing changed); both land in the audit log.
    ``mask_key`` (the snapshot masking key) masks device plans; needed with devices
    (``mask_key_file``, where it lives, too with ``engine="ansible"``).
    ``remote``: the servers and devices of sites with workers run there
    (:mod:`vcops.workers_apply`); the gate, the audit entries and the snapshots stay
    here.
        InventoryError: the selection is bad, a baseline override is invalid, or a
            server's pinned host key is one the ssh baseline stops offering.
        ApprovalError: production hosts without an emergency reason or the ``lease``
            of a window that covers them (the policy gate).
    """
    step = on_step or (lambda _m: None)
    servers, devices = select_apply_targets(inventory, limit)
    if lockout := lockout_problems(inventory, servers):  # before anything changes
        raise InventoryError(lockout)
    selection = limit or "all"
    started = time.monotonic()
    key = mask_key if mask_key is not None else b""
    # check diffs show the live files masked: with the snapshot key (markers match the
    # snapshots'), or a throwaway one (markers match nothing, values still hidden)
    masker = diff_masker(mask_key if mask_key is not None else os.urandom(32))
    if devices and mask_key is None:
        raise InventoryError(
            [Problem("apply", "devices", "no masking key given", "pass the snapshot key")]
        )
    targets: list[Target] = [*servers, *devices]
    device_key = DeviceKey(key, mask_key_file)
    if check:
        if servers:
            step(f"checking {len(servers)} servers with {engine} (nothing is changed)")
        if devices:
            step(f"planning {len(devices)} devices (nothing is changed)")
        hosts = run_targets(
            inventory, targets, engine, True, masker, remote, device_key, step, progress
        )
        return ApplyReport(
            engine=engine,
            check=True,
            selection=selection,
            emergency=emergency,
            seconds=round(time.monotonic() - started, 2),
            hosts=hosts,
        )
    authorize(
        targets,
        lease or (Emergency(emergency) if emergency else None),
        action="apply",
        hint="or exclude them with --limit",
        audit=store,
    )
    if store is not None:
        store.audit(
            "apply.start",
            selection,
            {"engine": engine, "hosts": [t.name for t in targets], "emergency": emergency},
        )
    before = snapshot(targets, f"before apply ({engine})") if snapshot is not None else None
    if snapshot is not None:
        step(f"snapshot before: {before or 'no change since the last snapshot'}")
    if servers:
        step(f"applying the baseline with {engine} on {len(servers)} servers")
    if devices:
        step(f"enforcing the baseline on {len(devices)} devices (commit-confirm or Netmiko)")
    hosts = run_targets(
        inventory, targets, engine, False, masker, remote, device_key, step, progress
    )
    report = ApplyReport(
        engine=engine,
        check=False,
        selection=selection,
        emergency=emergency,
        seconds=round(time.monotonic() - started, 2),
        hosts=hosts,
        snapshot_before=before,
    )
    if snapshot is not None:
        report.snapshot_after = snapshot(targets, f"after apply ({engine})")
        step(f"snapshot after: {report.snapshot_after or 'nothing changed'}")
    if store is not None:
        for host in hosts:
            store.audit(
                "apply.host",
                host.name,
                {"engine": engine, "status": host.status, "reason": host.reason,
                 "changes": host.changes, "rollback": host.rollback,
                 "rolled_back": host.rolled_back},
            )  # fmt: skip
        store.audit(
            "apply.end",
            selection,
            {
                "engine": engine,
                "seconds": report.seconds,
                "exit": report.exit_code(),
                "counts": {
                    s: sum(h.status == s for h in hosts) for s in sorted({h.status for h in hosts})
                },
                "emergency": emergency,
                "snapshot_before": report.snapshot_before,
                "snapshot_after": report.snapshot_after,
            },
        )
    return report
