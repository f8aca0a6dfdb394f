"""``vcops window run`` through site workers: the host steps of a site listed in
``[workers] sites`` run on that site's workers; the runner stays on the controller with
everything that is not host work (the batch plan, the policy gate's lease, per-host
progress and resume, audit entries, snapshot commits, notices).

Each step is one sealed task (:mod:`vcops.workers_seal`) naming the step as data (a
:class:`~vcops.window.remote.Step`: precheck, drain, install with the approved
versions, gate, reboot, start of named units, or a SIP OPTIONS probe), never a script:
the worker builds the script from its own inventory with the same code as the
controller (:func:`vcops.window.sites.run_here`), so anyone who can write to the broker
can neither run a command of their own nor replay an install past its expiry. Example::

    {"targets": ["kam-fra1-01"], "inventory": "5f0c9a1b...", "key": "1a2b3c4d5e6f7a8b",
     "steps": {"kam-fra1-01": {"kind": "install", "packages": [{"package": "openssl",
     "current": "3.0.14-1~deb12u2", "target": "3.0.15-1~deb12u1", "security": true}],
     "units": [], "sip_port": 5060}}, "timeout": 900, "expires": 1764500000,
     "seal": "9c1e..."}

and answer (per host: the step's records, never files)::

    {"kam-fra1-01": {"lines": {"install": [["0", "-"]], ...}, "error": "", "sip": null,
                     "via": "fra1@ctl-a"}}

The before- and after-snapshots of those hosts go through the workers as a ``snapshot
take`` does (collected and masked there; full collections, the precheck and the gate's
first reading asked as their own steps), a baseline window applies them as ``vcops
apply`` does, and a rollback restores their configs there
(:mod:`vcops.workers_restore`). A step waits (up to the lock's ttl) for the per-host lock, so a
resumed runner's precheck never overlaps the install its killed predecessor left
running on the worker.
"""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from vcops.connectors import broker
from vcops.enforce.apply import RemoteApply
from vcops.errors import VcopsError
from vcops.inventory.models import Server
from vcops.window.remote import Answer, Step
from vcops.window.sites import RunSteps, Said, WindowSites, run_here
from vcops.workers import Sealer, SitePlan, fan_out, payload_names, serving
from vcops.workers_apply import remote_apply, remote_push
from vcops.workers_restore import remote_restore
from vcops.workers_snapshot import remote_snapshot, worker_key

TASK = "vcops.window_steps"
_LINES = TypeAdapter(dict[str, list[list[str]]])
#: At most this many records of one verb, and characters per field, from a worker.
_MAX_RECORDS, _MAX_FIELD = 5000, 2000


def _refused(names: list[str], node: str, why: str) -> dict[str, object]:
    return {"worker": node, "results": {n: {"lines": None, "error": why} for n in names}}


def window_steps(payload: dict[str, object]) -> dict[str, object]:
    """The worker task: run each named server's step (this site's servers only)."""
    ctx = serving()
    names = payload_names(payload)
    _key, refused = worker_key(ctx, payload)
    steps: dict[str, Step] = {}
    if refused is None:
        raw = payload.get("steps")
        try:
            steps = {n: Step.model_validate(raw[n]) for n in names} if isinstance(raw, dict) else {}
        except (KeyError, ValueError):  # pydantic's errors are ValueErrors
            refused = f"worker {ctx.node}: an unreadable window step"
        if not steps and refused is None:
            refused = f"worker {ctx.node}: a window task without steps"
    if refused is not None:
        return _refused(names, ctx.node, refused)
    raw_timeout = payload.get("timeout")
    timeout = float(raw_timeout) if isinstance(raw_timeout, int | float) else 900.0
    timeout = min(max(timeout, 10.0), 3600.0)
    results: dict[str, object] = {}
    servers, elsewhere = ctx.site_servers(names)
    results |= {n: {"lines": None, "error": why} for n, why in elsewhere.items()}
    here = [s.name for s in servers]
    with broker.host_locks(
        ctx.broker_url, here, ctx.lock_ttl, renew=True, wait=float(ctx.lock_ttl)
    ) as (held, busy):
        for name in busy:
            why = f"{name}: another task kept it busy for {ctx.lock_ttl} s; try again"
            results[name] = {"lines": None, "error": why}
        mine = [s for s in servers if s.name in held]
        parallel = max(1, ctx.max_parallel // max(1, ctx.concurrency))
        said = run_here(ctx.inventory(), mine, steps, max_parallel=parallel, timeout=timeout)
        for name, one in said.items():
            results[name] = {
                "lines": one.answer.lines if one.answer is not None else None,
                "error": one.error,
                "sip": one.sip,
                "via": ctx.node,
            }
    return {"worker": ctx.node, "results": results}


# -- the controller side ---------------------------------------------------------------


def _read(_server: Server, item: dict[str, object]) -> Said:
    """One host's answer, bounded: the step's records as text, or why there are none."""
    error = str(item.get("error") or "")[:_MAX_FIELD]
    via = str(item.get("via") or "worker")[:200]
    sip = item.get("sip")
    raw = item.get("lines")
    if raw is None:
        return Said(None, error or "no answer", via=via)
    try:
        lines = _LINES.validate_python(raw)
    except ValidationError:
        raise ValueError("unreadable records") from None
    kept = {
        verb[:64]: [[a[:_MAX_FIELD] for a in args[:8]] for args in found[:_MAX_RECORDS]]
        for verb, found in list(lines.items())[:64]
    }
    return Said(Answer(lines=kept), error, sip if isinstance(sip, bool) else None, via)


def _unanswered(servers: list[Server], error: str) -> dict[str, Said]:
    return {s.name: Said(None, error) for s in servers}


def remote_steps(plan: SitePlan, key: bytes) -> RunSteps:
    """Run window steps on the servers' site workers (``key``: the controller's
    masking key: the tasks are sealed with a key derived from it; only its id is
    sent)."""

    def run(servers: list[Server], steps: dict[str, Step], timeout: float) -> dict[str, Said]:
        sealed = Sealer.of(plan, key, once=True)

        def payload(chunk: list[Server]) -> dict[str, object]:
            told = {s.name: steps[s.name].model_dump(mode="json") for s in chunk}
            return sealed(chunk, steps=told, timeout=timeout)

        try:
            return fan_out(plan, TASK, servers, payload, _read, _unanswered, lambda _n: None)
        except VcopsError as exc:  # e.g. the distributed extra is not installed
            return _unanswered(servers, str(exc))

    return run


def window_sites(plan: SitePlan, key: bytes) -> WindowSites:
    """The ``sites`` of a window run's context for the sites with workers."""
    applied: RemoteApply = remote_apply(plan, key)
    return WindowSites(
        routes=lambda s: s.site in plan.sites,
        steps=remote_steps(plan, key),
        snapshot=remote_snapshot(plan, key),
        apply=applied,
        restore=remote_restore(plan, key),
        push=remote_push(plan, key),
    )
