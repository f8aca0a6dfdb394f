"""The role registry is the one role model, and every entry of it is consumed.

Walks :data:`vcops.roles.ROLES` and :data:`vcops.roles.DAEMONS` and checks, role by
role, that each module which needs the role model reads it from the registry (the
inventory, baseline settings and controls, both engines, snapshots, the window
runner's drain and gate, the customer notice, the lab), that each daemon area has its
templates, pyinfra deploy and Ansible role, and that units and config trees exist in
the cached lab image wherever the daemon is installed there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import get_args

import pytest

from tests.site_play import site_roles
from vcops import roles as registry
from vcops.baseline.catalog import SERVER_CATALOG
from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.enforce.helper import ACCOUNTING_PACKAGES, CONFIG_DIRS, PACKAGES, certificates
from vcops.enforce.pyinfra_deploy import AREA_DEPLOYS
from vcops.enforce.vars import (
    ALL_AREAS,
    COMMON_AREAS,
    LAST_AREAS,
    areas_for,
    vars_from_settings,
)
from vcops.inventory.models import Role, Server
from vcops.lab.image import IMAGE_PACKAGES, image_dir, rootfs
from vcops.lab.lifecycle import KAMAILIO_ROLES
from vcops.lab.plan import ROLES as LAB_ROLES
from vcops.paths import templates_dir
from vcops.report.customer_notice import SERVICE_NAMES
from vcops.snapshot.collect import paths_for_roles
from vcops.window import remote

REPO = Path(__file__).resolve().parents[2]
ROLE_NAMES = list(registry.ROLES)
DAEMON_NAMES = list(registry.DAEMONS)


def server(*roles: str) -> Server:
    return Server(
        name="h-01", address="192.0.2.9", roles=list(roles), site="s1", environment="production"
    )


def test_the_inventory_and_the_lab_know_exactly_the_registry_roles() -> None:
    assert set(get_args(Role)) == set(ROLE_NAMES)
    assert set(LAB_ROLES) == set(ROLE_NAMES)
    assert {d for r in registry.ROLES.values() for d in r.daemons} == set(DAEMON_NAMES)


@pytest.mark.parametrize("name", ROLE_NAMES)
def test_every_consumer_reads_the_role_from_the_registry(name: str) -> None:
    role = registry.ROLES[name]
    daemons = registry.daemons_of([name])
    # baseline areas: both engines' variables
    assert areas_for([name]) == [*COMMON_AREAS, *(d.area for d in daemons if d.area), *LAST_AREAS]
    # snapshot trees
    trees = paths_for_roles([name])
    assert all(t in trees for d in daemons for t in d.config_trees)
    # baseline settings: jails, config dirs, forwarding exception
    jails = [d.fail2ban_jail for d in daemons if d.fail2ban_jail]
    assert DEFAULT_SETTINGS.fail2ban_role_jails.get(name, []) == jails
    dirs = [d.config_dir for d in daemons if d.config_dir]
    assert DEFAULT_SETTINGS.voip_config_dirs.get(name) == (dirs[0] if dirs else None)
    assert (name in DEFAULT_SETTINGS.forwarding_roles) is role.forwards
    variables = vars_from_settings(DEFAULT_SETTINGS, [name], ["10.0.0.0/8"], None, "h-01")
    assert variables["vcops_kernel_forwarding"] is role.forwards
    assert variables["vcops_firewall_voip"] is bool(daemons)
    assert variables["vcops_fail2ban_jails"] == ["sshd", *jails]
    # controls: a daemon's area controls apply to every role that runs it
    judged = 0
    for control in SERVER_CATALOG:
        area = {"VC-KAM": "kamailio", "VC-AST": "asterisk", "VC-FS-": "freeswitch"}.get(
            control.id[:6]
        )
        if area:
            judged += 1
            assert control.applies({name}) is (area in registry.role_areas([name])), control.id
    assert judged == 13
    file_002 = next(c for c in SERVER_CATALOG if c.id == "VC-FILE-002")
    assert file_002.applies({name}) is bool(dirs)
    # window: gate units, SIP, drain counters
    s = server(name)
    assert remote.host_settings(s, {}).units_for(s) == [u for d in daemons for u in d.units]
    script = remote.drain_script([name])
    for d in daemons:
        assert (f"say calls {d.name}" in script) is bool(d.call_counter)
    assert registry.answers_sip([name]) is any(d.sip for d in daemons)
    # customer notice; the lab runs Kamailio where the role does
    assert SERVICE_NAMES.get(name) == role.service_name
    assert (name in KAMAILIO_ROLES) is ("kamailio" in role.daemons)


def test_sbc_runs_kamailio_so_it_is_drained_and_gated_like_kamailio() -> None:
    sbc = server("sbc")
    units = remote.host_settings(sbc, {}).units_for(sbc)
    assert units[0] == "kamailio.service"
    assert "say calls kamailio" in remote.drain_script(["sbc"])
    assert registry.answers_sip(["sbc"]) and "sbc" in registry.roles_with_area("kamailio")


@pytest.mark.parametrize("name", DAEMON_NAMES)
def test_every_daemon_area_has_templates_deploys_and_an_ansible_role(name: str) -> None:
    daemon = registry.DAEMONS[name]
    if daemon.call_counter:
        assert daemon.counter_tool and daemon.counter_tool in daemon.call_counter
        proc = subprocess.run(
            ["sh", "-n"],
            input=remote.drain_script(
                [r for r in ROLE_NAMES if name in registry.ROLES[r].daemons][:1]
            ),
            text=True,
            capture_output=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    for port_name, port in daemon.control_ports:
        assert DEFAULT_SETTINGS.management_ports[port_name] == port
    if daemon.area is None:
        return
    area = daemon.area
    assert area in ALL_AREAS and area in AREA_DEPLOYS and area in PACKAGES
    assert sorted((templates_dir() / area).glob("*.j2")), f"templates/{area}/ is empty"
    assert (REPO / "deploys" / f"{area}.py").is_file()
    assert (REPO / "roles" / f"vcops_{area}" / "tasks" / "main.yml").is_file()
    if daemon.config_dir:
        assert CONFIG_DIRS[area] == (f"vcops_{area}_config_dir", daemon.group)
    if daemon.tls:
        variables = vars_from_settings(
            DEFAULT_SETTINGS, [r for r in ROLE_NAMES if name in registry.ROLES[r].daemons][:1],
            [], None, "h-01",
        )  # fmt: skip
        assert area in certificates(variables)
    # the playbook applies the area's Ansible role on exactly the roles that run it
    when = site_roles()[f"vcops_{area}"] or ""
    assert {r for r in ROLE_NAMES if f"'{r}' in vcops_roles" in when} == set(
        registry.roles_with_area(area)
    )


@pytest.mark.parametrize("name", DAEMON_NAMES)
def test_units_and_snapshot_trees_exist_in_the_lab_image(name: str) -> None:
    daemon = registry.DAEMONS[name]
    root = rootfs(image_dir())
    if not root.is_dir():
        pytest.skip(f"no cached lab image at {root} (vcops lab image builds it)")
    if daemon.package not in IMAGE_PACKAGES:
        pytest.skip(f"{daemon.package} is not installed in the lab image")
    units = [u for u in daemon.units if (root / "lib/systemd/system" / u).is_file()]
    assert units, f"none of {daemon.units} in the image"
    for tree in daemon.config_trees:
        assert (root / tree).exists(), tree
    for tree in ("etc/ssh", "etc/nftables.conf", "etc/apt/sources.list.d"):
        assert tree in registry.COMMON_SNAPSHOT_TREES and (root / tree).exists(), tree


def role_packages(area: str) -> list[object]:
    """The ``names`` of every ``vcops_packages`` task of the area's Ansible role."""
    import yaml

    found = []
    for path in sorted((REPO / "roles" / f"vcops_{area}" / "tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            if "vcops_packages" in task:
                found.append(task["vcops_packages"]["names"])
    return found


@pytest.mark.parametrize("area", sorted(PACKAGES))
def test_both_engines_install_the_same_packages_for_an_area(area: str) -> None:
    """The Ansible role's one ``vcops_packages`` task names the packages the pyinfra
    deploy installs (``vcops.enforce.helper.PACKAGES``); the kernel area's list is a
    fact built from the same two parts."""
    found = role_packages(area)
    assert len(found) == bool(PACKAGES[area]), found  # none where the area installs none
    if not found:
        return
    if area == "kernel":
        assert found == ["{{ vcops_kernel_packages_wanted }}"]
        text = (REPO / "roles/vcops_kernel/tasks/sysctl.yml").read_text()
        wanted = text.split("vcops_kernel_packages_wanted: >-", 1)[1].split("\n\n", 1)[0]
        for package in (*PACKAGES["kernel"], *ACCOUNTING_PACKAGES):
            assert f"'{package}'" in wanted
        return
    assert sorted(map(str, found[0])) == sorted(PACKAGES[area])  # type: ignore[call-overload]
