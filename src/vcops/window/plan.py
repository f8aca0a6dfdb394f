"""Planning a window: what each target would get, gathered in one SSH round per host."""

from __future__ import annotations

from vcops.connectors.hosttask import ScriptTask, run_tasks
from vcops.connectors.ssh import SshTarget
from vcops.errors import WindowError
from vcops.facts.sections import parse_upgradable
from vcops.findings_store import list_findings
from vcops.inventory.models import Device, Inventory, Server, Target
from vcops.store import Store
from vcops.window.devices import plan_devices
from vcops.window.model import Action, HostPlan, PackageChange, Plan

#: Refresh the package lists first: the board approves what the mirror offers today,
#: not what the host last heard about (a failed refresh still plans from the cache).
PLAN_TASK = ScriptTask(
    name="plan",
    script=(
        "section update apt-get -q update -o Acquire::http::Timeout=20\n"
        "output upgradable apt list --upgradable\n"
        "section reboot test -f /var/run/reboot-required\n"
    ),
)


def build_plan(
    inv: Inventory,
    targets: list[Target],
    actions: Action,
    store: Store,
    *,
    max_parallel: int = 50,
    mask_key: bytes | None = None,
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
    device_plans = plan_devices(inv, devices, mask_key or b"")
    results = run_tasks(
        [SshTarget.from_inventory(inv, s) for s in servers], [PLAN_TASK], max_parallel=max_parallel
    )
    unreachable = [
        f"{r.name} ({r.error or 'no package list'})"
        for r in results
        if not r.ok or r.output("plan").ok_text("upgradable") is None
    ]
    if unreachable:
        raise WindowError(
            f"cannot plan unreachable hosts; fix them or leave them out: {'; '.join(unreachable)}"
        )
    open_findings: dict[str, list[str]] = {}
    if actions == "baseline":
        for f in list_findings(store, status="open"):
            open_findings.setdefault(f.target, []).append(f"{f.control_id} {f.title}")
    hosts = []
    for server, result in zip(servers, results, strict=True):
        out = result.output("plan")
        upgrades = parse_upgradable(out.ok_text("upgradable") or "")
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
                reboot_required=out.ok_text("reboot") is not None,
            )
        )
    by_name = {h.target: h for h in [*hosts, *device_plans]}
    return Plan(actions=actions, hosts=[by_name[t.name] for t in targets if t.name in by_name])
