"""Where a window's host steps run: over SSH from this machine, or on the workers of
the host's site when ``[workers] sites`` lists it (:mod:`vcops.workers_window`).

A step travels as data (:class:`~vcops.window.remote.Step`: its kind, the approved
packages, the units), and its script is built on the side that reaches the host, so
the controller and a site worker run the same text and read the answer with the same
code (:func:`run_here`). The runner keeps its bookkeeping (progress, audit entries,
snapshot commits, the policy gate) on the controller either way.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from vcops.connectors.hosttask import Unreadable, read_host, run_tasks
from vcops.connectors.sip import sip_alive
from vcops.connectors.ssh import SshTarget
from vcops.enforce.apply import RemoteApply
from vcops.enforce.apply_models import HostOutcome
from vcops.inventory.models import Device, Inventory, Server, Target
from vcops.snapshot.restore import RemoteRestore
from vcops.snapshot.take import Remote
from vcops.window.remote import Answer, Step, WindowTask, parse_answer


@dataclass(frozen=True)
class Said:
    """One host's answer to one step: its records (None when the host gave none), why
    not, for ``sip`` whether SIP OPTIONS were answered, and who reached the host
    (empty: this machine; else the site worker's node)."""

    answer: Answer | None
    error: str = ""
    sip: bool | None = None
    via: str = ""


#: ``steps(servers, step per name, timeout)``: each server's :class:`Said`.
RunSteps = Callable[[list[Server], dict[str, Step], float], dict[str, Said]]


@dataclass(frozen=True)
class WindowSites:
    """The targets a window runs through their site's workers (``routes``): servers'
    steps, snapshots (collected and masked there), baseline apply and the config
    restore of their rollback; devices' plans, snapshots and the push of their approved
    remediation (``push(device, approved lines)``)."""

    routes: Callable[[Target], bool]
    steps: RunSteps
    snapshot: Remote
    apply: RemoteApply
    restore: RemoteRestore
    push: Callable[[Device, list[str]], HostOutcome]


def run_here(
    inventory: Inventory,
    servers: list[Server],
    steps: dict[str, Step],
    *,
    max_parallel: int,
    timeout: float,
) -> dict[str, Said]:
    """Run each server's step over SSH from this machine, all at once; a ``sip`` step
    probes SIP OPTIONS from here instead."""
    out: dict[str, Said] = {}
    scripted: list[tuple[Server, str]] = []
    for server in servers:
        step = steps[server.name]
        script = step.script(server.roles)
        if script is None:
            alive = sip_alive(server.address, step.sip_port) is not None
            out[server.name] = Said(Answer(), sip=alive)
        else:
            scripted.append((server, script))
    if not scripted:
        return out
    text = {s.name: script for s, script in scripted}
    results = run_tasks(
        [SshTarget.from_inventory(inventory, s) for s, _ in scripted],
        lambda t: [WindowTask(script=text[t.name])],
        max_parallel=max_parallel,
        timeout=timeout,
    )
    for (server, _), r in zip(scripted, results, strict=True):
        if not r.framed.started:
            out[server.name] = Said(None, r.error or r.status)
            continue
        answer = read_host(partial(parse_answer, r.output("window")))
        if isinstance(answer, Unreadable):
            out[server.name] = Said(None, answer.error)
        else:
            out[server.name] = Said(answer, r.error or "")
    return out


def run_steps(
    inventory: Inventory,
    servers: list[Server],
    steps: dict[str, Step],
    sites: WindowSites | None,
    *,
    max_parallel: int,
    timeout: float,
) -> dict[str, Said]:
    """Each server's step, all at once: on its site's workers when ``sites`` routes
    it, over SSH from here otherwise."""
    away = [s for s in servers if sites is not None and sites.routes(s)]
    here = [s for s in servers if s not in away]
    if sites is None or not away:
        return run_here(inventory, here, steps, max_parallel=max_parallel, timeout=timeout)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vcops-site-steps") as pool:
        there = pool.submit(sites.steps, away, {s.name: steps[s.name] for s in away}, timeout)
        said = (
            run_here(inventory, here, steps, max_parallel=max_parallel, timeout=timeout)
            if here
            else {}
        )
        return said | there.result()
