"""Planning a window: what each target would get, gathered in one SSH round per host
(the ``plan`` step: from here, or on the workers of the host's site)."""

from __future__ import annotations

from vcops.errors import WindowError
from vcops.facts.sections import parse_upgradable
from vcops.findings_store import list_findings
from vcops.inventory.models import Device, Inventory, Server, Target
from vcops.store import Store
from vcops.window.devices import plan_devices
from vcops.window.model import Action, HostPlan, PackageChange, Plan
from vcops.window.remote import Step, plan_answer
from vcops.window.sites import Said, WindowSites, run_steps


def build_plan(
    inv: Inventory,
    targets: list[Target],
    actions: Action,
    store: Store,
    *,
    max_parallel: int = 50,
    mask_key: bytes | None = None,
    sites: WindowSites | None = None,
) -> Plan:
    """The plan for these targets (devices: ``baseline`` windows only, each with its
    remediation lines masked with ``mask_key``, the snapshot key).

    Raises:
        WindowError: a device in a package window, or a target could not be reached.
    """
    devices = [t for t in targets if isinstance(t, Device)]
    if devices and (actions != "baseline" or mask_key is None):
        names = ", ".join(d.name for d in devices)
        raise WindowError(
            f"network devices take baseline windows only (--actions baseline): {names}"
        )
    servers = [t for t in targets if isinstance(t, Server)]
    device_plans = plan_devices(inv, devices, mask_key or b"", sites=sites)
    step = Step(kind="plan")
    said = run_steps(
        inv, servers, {s.name: step for s in servers}, sites, max_parallel=max_parallel, timeout=300
    )
    found: dict[str, tuple[str | None, bool]] = {}
    unreachable = []
    for server in servers:
        one = said.get(server.name) or Said(None, "no answer")
        found[server.name] = plan_answer(one.answer) if one.answer is not None else (None, False)
        if found[server.name][0] is None:
            unreachable.append(f"{server.name} ({one.error or 'no package list'})")
    if unreachable:
        raise WindowError(
            f"cannot plan unreachable hosts; fix them or leave them out: {'; '.join(unreachable)}"
        )
    open_findings: dict[str, list[str]] = {}
    if actions == "baseline":
        for f in list_findings(store, status="open"):
            open_findings.setdefault(f.target, []).append(f"{f.control_id} {f.title}")
    hosts = []
    for server in servers:
        listed, reboot = found[server.name]
        upgrades = parse_upgradable(listed or "")
        if actions == "security-updates":
            upgrades = [u for u in upgrades if u.security]
        packages = (
            []
            if actions == "baseline"
            else [
                PackageChange(
                    package=u.package, current=u.current, target=u.version, security=u.security
                )
                for u in upgrades
            ]
        )
        hosts.append(
            HostPlan(
                target=server.name,
                environment=server.environment,
                redundancy_group=server.redundancy_group,
                packages=sorted(packages, key=lambda p: p.package),
                baseline_changes=sorted(open_findings.get(server.name, [])),
                reboot_required=reboot,
            )
        )
    by_name = {h.target: h for h in [*hosts, *device_plans]}
    return Plan(actions=actions, hosts=[by_name[t.name] for t in targets if t.name in by_name])
