"""``vcops apply`` (both engines, and ``--check``) through site workers: the servers and
devices of a site listed in ``[workers] sites`` are applied by that site's workers; the
controller keeps the rest of the run (target selection, the lockout guard, the policy
gate, the audit entries, the snapshots before and after, the report).

A worker runs the same engine code as the controller
(:func:`vcops.enforce.apply.apply_targets`: pyinfra's deploy or dry run with the
per-file diffs, or the Ansible playbook; a device's remediation with its safety net)
and returns each target's
:class:`~vcops.enforce.apply_models.HostOutcome`. Check diffs are masked on the worker
with the masking key it reads from its own ``[store] state_dir`` (as a snapshot is);
the controller sends only the key's public id and a worker with another key refuses.
The payload is sealed (:mod:`vcops.workers_seal`): a worker applies only what its
controller sent, after the controller's policy gate. Example payload::

    {"targets": ["kam-fra1-01"], "inventory": "5f0c9a1b...", "key": "1a2b3c4d5e6f7a8b",
     "engine": "pyinfra", "check": false, "expires": 1764500000, "seal": "9c1e..."}

and answer (per host)::

    {"kam-fra1-01": {"outcome": {"name": "kam-fra1-01", "status": "changed", ...}}}

An apply is convergent (applying the baseline again changes nothing more) and a
per-host Redis lock, renewed while the engine runs, keeps a redelivered task off a
host the first attempt is still on. Hosts without an answer (broker down, no live
worker for the site, ``result_timeout``, an unreadable answer) are *unreachable* with
the reason (exit 3); the others are applied.
"""

from __future__ import annotations

from collections.abc import Callable

from vcops.connectors import broker
from vcops.enforce.apply import DeviceKey, RemoteApply, apply_targets, diff_masker
from vcops.enforce.apply_models import Engine, HostOutcome
from vcops.errors import VcopsError
from vcops.inventory.models import Device, Inventory, Target
from vcops.snapshot.keys import key_path
from vcops.window.devices import push_approved
from vcops.workers import Sealer, SitePlan, fan_out, payload_names, serving
from vcops.workers_snapshot import worker_key

TASK = "vcops.apply_chunk"


def _answer(name: str, status: str, reason: str) -> dict[str, object]:
    """(A refusal may not know whether the name is a server; the controller sets the
    kind from its own inventory.)"""
    outcome = HostOutcome.model_validate({"name": name, "status": status, "reason": reason})
    return {"outcome": outcome.model_dump(mode="json")}


def apply_chunk(payload: dict[str, object]) -> dict[str, object]:
    """The worker task: apply (or check) the baseline on these servers and devices of
    this site (with ``approved``: push a window's approved device lines, nothing else)."""
    ctx = serving()
    names = payload_names(payload)
    engine = payload.get("engine")
    key, refused = worker_key(ctx, payload)
    if refused is None and engine not in {"pyinfra", "ansible"}:
        refused = f"worker {ctx.node}: no such engine {str(engine)[:40]!r}"
    if refused is not None:
        return {"worker": ctx.node, "results": {n: _answer(n, "failed", refused) for n in names}}
    chosen: Engine = "ansible" if engine == "ansible" else "pyinfra"
    check = payload.get("check") is True
    inv = ctx.inventory()
    results: dict[str, object] = {}
    targets, elsewhere = ctx.site_targets(names)
    results |= {name: _answer(name, "failed", why) for name, why in elsewhere.items()}
    names_here = [t.name for t in targets]
    devices = DeviceKey(key, key_path(ctx.state_dir) if ctx.state_dir is not None else None)
    with broker.host_locks(ctx.broker_url, names_here, ctx.lock_ttl, renew=True) as (held, busy):
        for name in busy:
            why = f"{name}: another worker is on it right now; apply again later"
            results[name] = _answer(name, "unreachable", why)
        mine = [t for t in targets if t.name in held]
        try:
            if isinstance(approved := payload.get("approved"), dict):
                done = _push(ctx.inventory(), mine, key, approved)
            else:
                done = apply_targets(inv, mine, chosen, check, diff_masker(key), devices)
        except VcopsError as exc:  # the engine could not run on this worker
            done = [
                HostOutcome(name=t.name, kind=t.kind, status="failed", reason=str(exc))
                for t in mine
            ]
        for host in done:
            results[host.name] = {"outcome": host.model_dump(mode="json")}
    return {"worker": ctx.node, "results": results}


def _push(
    inv: Inventory, targets: list[Target], key: bytes, approved: dict[object, object]
) -> list[HostOutcome]:
    """A window's devices: push each one's approved remediation, and nothing else."""
    done = []
    for target in targets:
        lines = approved.get(target.name)
        if isinstance(target, Device) and isinstance(lines, list):
            done.append(push_approved(inv, target, key, [str(line) for line in lines]))
        else:
            why = "not touched: no approved lines for it in the task"
            done.append(
                HostOutcome(name=target.name, kind=target.kind, status="failed", reason=why)
            )
    return done


# -- the controller side ---------------------------------------------------------------


def _unreached(targets: list[Target], error: str) -> dict[str, HostOutcome]:
    return {
        t.name: HostOutcome(name=t.name, kind=t.kind, status="unreachable", reason=error)
        for t in targets
    }


def _read(target: Target, item: dict[str, object]) -> HostOutcome:
    """One target's answer, checked: this target's outcome (of its kind, unless the
    worker refused it without knowing what it is)."""
    outcome = HostOutcome.model_validate(item["outcome"])
    if outcome.name != target.name:
        raise ValueError("the answer is for another host")
    if outcome.kind != target.kind:
        if outcome.status != "failed" or outcome.changes or outcome.files:
            raise ValueError("the answer is for another kind of target")
        outcome.kind = target.kind
    return outcome


def remote_apply(plan: SitePlan, key: bytes) -> RemoteApply:
    """The ``remote`` hook of :func:`vcops.enforce.apply.run_apply` for the sites with
    workers (``key``: the controller's masking key; only its id is sent)."""

    def run(servers: list[Target], engine: Engine, check: bool) -> dict[str, HostOutcome]:
        sealed = Sealer.of(plan, key)

        def payload(chunk: list[Target]) -> dict[str, object]:
            return sealed(chunk, engine=engine, check=check)

        try:
            return fan_out(plan, TASK, servers, payload, _read, _unreached, lambda _n: None)
        except VcopsError as exc:  # e.g. the distributed extra is not installed
            return _unreached(servers, str(exc))

    return RemoteApply(routes=lambda s: s.site in plan.sites, run=run)


def remote_push(plan: SitePlan, key: bytes) -> Callable[[Device, list[str]], HostOutcome]:
    """A window's device push on its site's worker: the device is planned there and its
    remediation pushed only when the plan is the ``approved`` lines (the payload is
    sealed, so the lines are the ones the board approved)."""

    def push(device: Device, approved: list[str]) -> HostOutcome:
        one = Sealer.of(plan, key, once=True)
        sealed = one([device], engine="pyinfra", check=False, approved={device.name: approved})
        try:
            done = fan_out(plan, TASK, [device], lambda _c: sealed, _read, _unreached, _quiet)
        except VcopsError as exc:  # e.g. the distributed extra is not installed
            done = _unreached([device], str(exc))
        return done.get(device.name) or _unreached([device], "no answer from its site")[device.name]

    return push


def _quiet(_name: str) -> None:
    """No progress bar for one device."""
