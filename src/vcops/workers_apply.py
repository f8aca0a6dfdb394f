"""``vcops apply`` (both engines, and ``--check``) through site workers: the servers of
a site listed in ``[workers] sites`` are applied by that site's workers; the controller
keeps the rest of the run (target selection, the lockout guard, the policy gate, the
audit entries, the snapshots before and after, the report).

A worker runs the same engine code as the controller
(:func:`vcops.enforce.apply.apply_servers`: pyinfra's deploy or dry run with the
per-file diffs, or the Ansible playbook) and returns each host's
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

from vcops.connectors import broker
from vcops.enforce.apply import RemoteApply, apply_servers, diff_masker
from vcops.enforce.apply_models import Engine, HostOutcome
from vcops.errors import VcopsError
from vcops.inventory.models import Server
from vcops.snapshot.keys import key_id
from vcops.workers import SitePlan, fan_out, inventory_fingerprint, payload_names, serving
from vcops.workers_seal import seal
from vcops.workers_snapshot import worker_key

TASK = "vcops.apply_chunk"


def _answer(name: str, status: str, reason: str) -> dict[str, object]:
    outcome = HostOutcome.model_validate({"name": name, "status": status, "reason": reason})
    return {"outcome": outcome.model_dump(mode="json")}


def apply_chunk(payload: dict[str, object]) -> dict[str, object]:
    """The worker task: apply (or check) the baseline on these servers of this site."""
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
    servers, elsewhere = ctx.site_servers(names)
    results |= {name: _answer(name, "failed", why) for name, why in elsewhere.items()}
    names_here = [s.name for s in servers]
    with broker.host_locks(ctx.broker_url, names_here, ctx.lock_ttl, renew=True) as (held, busy):
        for name in busy:
            why = f"{name}: another worker is on it right now; apply again later"
            results[name] = _answer(name, "unreachable", why)
        mine = [s for s in servers if s.name in held]
        try:
            done = apply_servers(inv, mine, chosen, check, diff_masker(key)) if mine else []
        except VcopsError as exc:  # the engine could not run on this worker
            done = [HostOutcome(name=s.name, status="failed", reason=str(exc)) for s in mine]
        for host in done:
            results[host.name] = {"outcome": host.model_dump(mode="json")}
    return {"worker": ctx.node, "results": results}


# -- the controller side ---------------------------------------------------------------


def _unreached(servers: list[Server], error: str) -> dict[str, HostOutcome]:
    return {s.name: HostOutcome(name=s.name, status="unreachable", reason=error) for s in servers}


def _read(server: Server, item: dict[str, object]) -> HostOutcome:
    """One host's answer, checked: a server's outcome, and this server's."""
    outcome = HostOutcome.model_validate(item["outcome"])
    if outcome.name != server.name or outcome.kind != "server":
        raise ValueError("the answer is for another host")
    return outcome


def remote_apply(plan: SitePlan, key: bytes) -> RemoteApply:
    """The ``remote`` hook of :func:`vcops.enforce.apply.run_apply` for the sites with
    workers (``key``: the controller's masking key; only its id is sent)."""
    kid = key_id(key)

    def run(servers: list[Server], engine: Engine, check: bool) -> dict[str, HostOutcome]:
        fingerprint = inventory_fingerprint(plan.inventory_root)

        def payload(chunk: list[Server]) -> dict[str, object]:
            body: dict[str, object] = {
                "targets": [s.name for s in chunk],
                "inventory": fingerprint,
                "key": kid,
                "engine": engine,
                "check": check,
            }
            return seal(body, key, plan.result_timeout)

        try:
            return fan_out(plan, TASK, servers, payload, _read, _unreached, lambda _n: None)
        except VcopsError as exc:  # e.g. the distributed extra is not installed
            return _unreached(servers, str(exc))

    return RemoteApply(routes=lambda s: s.site in plan.sites, run=run)
