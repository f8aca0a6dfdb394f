"""Both exports come from the same model: same hosts, same variables, no secret values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from vcops.inventory import load_inventory, render_export


def _pyinfra_namespace(text: str) -> dict[str, object]:
    namespace: dict[str, object] = {}
    exec(compile(text, "inventory.py", "exec"), namespace)
    return namespace


def test_ansible_and_pyinfra_exports_agree(make_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(make_inventory())
    ansible = yaml.safe_load(render_export(inv, "ansible"))
    pyinfra = _pyinfra_namespace(render_export(inv, "pyinfra"))

    a_hosts = ansible["all"]["children"]["servers"]["hosts"]
    p_hosts = dict(pyinfra["servers"])  # type: ignore[call-overload]
    assert list(a_hosts) == list(p_hosts) == ["kam-01", "kam-02", "ast-01"]
    for name, a_vars in a_hosts.items():
        p_vars = p_hosts[name]
        shared = {k: v for k, v in a_vars.items() if not k.startswith("ansible_")}
        # connection settings are ansible_* in one engine, ssh_* and _sudo* in the other
        assert shared == {k: v for k, v in p_vars.items() if not k.startswith(("ssh_", "_"))}
        assert a_vars["ansible_become"] == p_vars.get("_sudo", False)
        assert a_vars.get("ansible_become_user") == p_vars.get("_sudo_user")
        assert a_vars["ansible_host"] == p_vars["ssh_hostname"]
        assert a_vars["ansible_port"] == p_vars["ssh_port"]
        assert a_vars["ansible_user"] == p_vars["ssh_user"]

    ast = p_hosts["ast-01"]
    assert ast["ssh_port"] == 2222 and ast["ssh_user"] == "ops"
    assert ast["vcops_roles"] == ["asterisk", "generic"]
    assert ast["baseline_ssh_max_auth_tries"] == 2  # host var beats group var
    assert p_hosts["kam-01"]["baseline_ssh_max_auth_tries"] == 4  # later group wins

    # Groups: same membership in both engines (servers only in pyinfra).
    children = ansible["all"]["children"]
    assert (
        list(children["role_kamailio"]["hosts"]) == pyinfra["role_kamailio"] == ["kam-01", "kam-02"]
    )
    assert list(children["rg_kam_pair"]["hosts"]) == pyinfra["rg_kam_pair"]
    assert "platform_junos" in children and "platform_junos" not in pyinfra


def test_host_keys_are_pinned_and_strict(make_inventory: Callable[..., Path]) -> None:
    root = make_inventory(
        files={"ssh.yml": "settings: {ssh: {key_file: k, known_hosts_file: kh}}\n"}
    )
    inv = load_inventory(root)
    pyinfra = dict(_pyinfra_namespace(render_export(inv, "pyinfra"))["servers"])  # type: ignore[call-overload]
    assert pyinfra["kam-01"]["ssh_known_hosts_file"] == str(root.resolve() / "kh")
    assert pyinfra["kam-01"]["ssh_strict_host_key_checking"] == "yes"
    hosts = yaml.safe_load(render_export(inv, "ansible"))["all"]["children"]["servers"]["hosts"]
    args = hosts["kam-01"]["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile={root.resolve() / 'kh'}" in args
    assert "StrictHostKeyChecking=yes" in args
    assert hosts["kam-01"]["ansible_ssh_private_key_file"] == str(root.resolve() / "k")


def test_device_passwords_are_exported_as_references(make_inventory: Callable[..., Path]) -> None:
    root = make_inventory()
    inv = load_inventory(root)
    devices = yaml.safe_load(render_export(inv, "ansible"))["all"]["children"]["devices"]["hosts"]
    assert (
        devices["sw-01"]["ansible_password"] == "{{ lookup('ansible.builtin.env', 'SW_PASSWORD') }}"
    )
    assert devices["rtr-01"]["ansible_password"] == (
        f"{{{{ lookup('ansible.builtin.file', '{root.resolve() / 'secrets/rtr-01'}') }}}}"
    )
    assert devices["rtr-01"]["ansible_network_os"] == "junipernetworks.junos.junos"


def test_ansible_json_has_meta_hostvars_for_every_target(
    make_inventory: Callable[..., Path],
) -> None:
    inv = load_inventory(make_inventory())
    data = json.loads(render_export(inv, "ansible-json"))
    assert set(data["_meta"]["hostvars"]) == {"kam-01", "kam-02", "ast-01", "sw-01", "rtr-01"}
    assert data["role_kamailio"]["hosts"] == ["kam-01", "kam-02"]
    assert "role_kamailio" in data["all"]["children"]
