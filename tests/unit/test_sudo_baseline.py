"""A fleet managed through an unprivileged login: PermitRootLogin no and a sudoers drop-in
for that login, the same in both engines, expected by the scanner."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.conftest import REPO
from vcops.baseline.settings import server_settings
from vcops.enforce.files import HostState
from vcops.enforce.render import SUDOERS_DROP_IN, area_files
from vcops.enforce.vars import role_vars
from vcops.inventory import load_inventory
from vcops.scan import server_context


def test_a_non_root_login_means_no_root_login_unless_the_vars_say_otherwise() -> None:
    assert server_settings({}, user="root").ssh_permit_root_login == "prohibit-password"
    assert server_settings({}, user="vcops").ssh_permit_root_login == "no"
    kept = {"baseline_ssh_permit_root_login": "prohibit-password"}
    assert server_settings(kept, user="vcops").ssh_permit_root_login == "prohibit-password"


def test_both_engines_and_the_scanner_take_it_from_the_inventory_user() -> None:
    inv = load_inventory(REPO / "inventory")  # settings.ssh.user: vcops
    server = inv.servers[0]
    variables = role_vars(inv, server, controller_address=None)
    assert variables["vcops_ssh_permit_root_login"] == "no"
    assert variables["vcops_ssh_sudo_user"] == "vcops"
    files = {f.path: f for f in area_files("ssh", variables, HostState())}
    assert "PermitRootLogin no\n" in files["/etc/ssh/sshd_config"].content
    drop_in = files[SUDOERS_DROP_IN]
    assert drop_in.mode == "0440" and drop_in.validate is not None
    assert drop_in.validate[0].endswith("visudo") and "%s" in drop_in.validate
    assert "vcops ALL=(root) NOPASSWD: ALL\n" in drop_in.content
    ctx = server_context(inv, server, datetime.now(UTC))
    assert ctx.settings.ssh_permit_root_login == "no"


def test_a_root_managed_host_gets_no_drop_in(tmp_path: Path) -> None:
    root = tmp_path / "inv"
    root.mkdir()
    (root / "i.yml").write_text(
        "settings: {ssh: {user: root}}\nsites: [{name: s1}]\n"
        "servers: [{name: a, address: 192.0.2.1, roles: [generic], site: s1, environment: lab}]\n"
    )
    inv = load_inventory(root)
    variables = role_vars(inv, inv.servers[0], controller_address=None)
    assert variables["vcops_ssh_sudo_user"] == ""
    assert variables["vcops_ssh_permit_root_login"] == "prohibit-password"
    assert [f.path for f in area_files("ssh", variables, HostState())] == [
        "/etc/issue",
        "/etc/issue.net",
        "/etc/ssh/sshd_config",
    ]  # the banners and sshd_config, no sudoers drop-in


def test_the_ansible_role_installs_the_same_drop_in_validated() -> None:
    tasks = yaml.safe_load((REPO / "roles/vcops_ssh/tasks/sshd.yml").read_text())
    [task] = [t for t in tasks if "sudoers" in t["name"]]
    template = task["ansible.builtin.template"]
    assert template["dest"] == SUDOERS_DROP_IN and template["mode"] == "0440"
    assert (
        template["validate"].startswith("/usr/sbin/visudo -c") and template["src"] == "sudoers.j2"
    )
    assert task["when"] == "vcops_ssh_sudo_user | length > 0"
    assert (REPO / "roles/vcops_ssh/templates/sudoers.j2").is_file()


def test_the_lab_inventory_logs_in_as_vcops_by_default(tmp_path: Path) -> None:
    from vcops.lab.inventory import render_lab_yml
    from vcops.lab.plan import plan_hosts, plan_switches

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEWDckVHuawTcu1/mUyqVbS+kEp6p8HmFWWsgqHghBqN x"
    board = [
        {"name": n, "email": f"{n}@lab.invalid", "ssh_public_key": f"{key[:-3]}{i}AN {n}"}
        for i, n in enumerate(("alice", "bob", "carol"))
    ]
    root = tmp_path / "lab"
    root.mkdir()
    (root / "lab.yml").write_text(
        render_lab_yml(plan_hosts(2), plan_switches(0), board)  # type: ignore[arg-type]
    )
    inv = load_inventory(root)
    assert inv.settings.ssh.user == "vcops"
    for server in inv.servers:
        assert inv.ssh_user(server) == "vcops"
        variables = role_vars(inv, server, controller_address=None)
        assert variables["vcops_ssh_sudo_user"] == "vcops"
        assert variables["vcops_ssh_permit_root_login"] == "no"
    as_root = yaml.safe_load(render_lab_yml(plan_hosts(1), plan_switches(0), board, user="root"))  # type: ignore[arg-type]
    assert as_root["settings"]["ssh"]["user"] == "root"  # opt-in: lab up --user root
    assert [s["user"] for s in as_root["servers"]] == ["root"]
