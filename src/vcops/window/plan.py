"""Planning a window: what each target would get, gathered in one SSH round per host."""

from __future__ import annotations

from vcops.connectors.ssh import SshTarget, run_on_hosts
from vcops.errors import WindowError
from vcops.facts.server import parse_upgradable
from vcops.findings_store import list_findings
from vcops.inventory.models import Inventory, Server, Target
from vcops.store import Store
from vcops.window.model import Action, HostPlan, PackageChange, Plan

#: Refresh the package lists first: the board approves what the mirror offers today,
#: not what the host last heard about (a failed refresh still plans from the cache).
PLAN_SCRIPT = (
    "export LC_ALL=C\n"
    "apt-get -q update -o Acquire::http::Timeout=20 >/dev/null 2>&1 || echo '@@vcops-update failed'\n"
    "apt list --upgradable 2>/dev/null\n"
    "if [ -f /var/run/reboot-required ]; then echo '@@vcops-reboot yes'; else echo '@@vcops-reboot no'; fi\n"
)


def build_plan(
    inv: Inventory, targets: list[Target], actions: Action, store: Store, *, max_parallel: int = 50
) -> Plan:
    """The plan for these targets.

    Raises:
        WindowError: a target is a network device, or a server could not be reached.
    """
    devices = [t.name for t in targets if not isinstance(t, Server)]
    if devices:
        raise WindowError(
            f"patch windows cover servers; drop the devices from --targets: {', '.join(devices)}"
        )
    servers = [t for t in targets if isinstance(t, Server)]
    results = run_on_hosts(
        [SshTarget.from_inventory(inv, s) for s in servers], PLAN_SCRIPT, max_parallel=max_parallel
    )
    unreachable = [f"{r.name} ({r.error})" for r in results if not r.ok or r.result is None]
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
        assert result.result is not None
        text = result.result.stdout
        upgrades = parse_upgradable(text)
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
                reboot_required="@@vcops-reboot yes" in text,
            )
        )
    return Plan(actions=actions, hosts=hosts)
